"""`cnnviz export --self-contained`: downloads checked against their hashes, cached, and pages that load only from
the site; every download that cannot be made is one sentence and exit code 2.

The downloads come from a local server that plays npm's tarball host, Pyodide's CDN and a PyPI simple index.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import http.server
import io
import os
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnviz import self_contained
from cnnviz.cli import main
from cnnviz.errors import CnnvizError
from cnnviz.export import PAGES, export_site, pyodide_lock
from cnnviz.self_contained import PYODIDE_DIR, RUNTIME_FILES, WHEELS_DIR, Bundle, Sources

XML_NAMESPACES = "http://www.w3.org/"
NUMPY = "numpy-2.2.5-cp313-cp313-pyodide_2025_0_wasm32.whl"
PARAM = "param-2.4.2-py3-none-any.whl"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel_bytes(name: str, version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            f"{name}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
    return buffer.getvalue()


def runtime_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in (*RUNTIME_FILES, "README.md"):
            data = f"// {name}\n".encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str]

    def log_message(self, *args) -> None:
        self.requested.append(self.path)


@pytest.fixture
def index(tmp_path, monkeypatch) -> Iterator[tuple[Sources, list[str], dict]]:
    """A local server with a runtime tarball, two Pyodide packages (micropip needs packaging) and a one-wheel index;
    pip is pointed at it and sees none of this machine's pip settings."""
    root = tmp_path / "server"
    files = {
        "npm/pyodide-9.9.9.tgz": runtime_tarball(),
        f"pyodide/{NUMPY}": b"numpy for the browser",
        "pyodide/micropip-0.11.0-py3-none-any.whl": b"micropip",
        "pyodide/packaging-24.2-py3-none-any.whl": b"packaging",
        f"files/{PARAM}": wheel_bytes("param", "2.4.2"),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "simple" / "param").mkdir(parents=True)
    (root / "simple" / "param" / "index.html").write_text(
        f'<a href="../../files/{PARAM}#sha256={sha256(files[f"files/{PARAM}"])}">{PARAM}</a>', encoding="utf-8"
    )
    builds = {
        "numpy": ("2.2.5", NUMPY, sha256(files[f"pyodide/{NUMPY}"]), []),
        "micropip": ("0.11.0", "micropip-0.11.0-py3-none-any.whl", sha256(b"micropip"), ["packaging"]),
        "packaging": ("24.2", "packaging-24.2-py3-none-any.whl", sha256(b"packaging"), []),
    }
    requested: list[str] = []
    handler = type("Handler", (RecordingHandler,), {"requested": requested})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", f"{url}/simple/")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    sources = Sources(
        runtime_url=f"{url}/npm/pyodide-9.9.9.tgz",
        runtime_hash=f"sha512:{hashlib.sha512(files['npm/pyodide-9.9.9.tgz']).hexdigest()}",
        packages_url=f"{url}/pyodide/",
        cache=tmp_path / "cache",
    )
    yield sources, requested, builds
    server.shutdown()
    thread.join()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


def one_sentence(text: str) -> bool:
    return "\n" not in text.strip() and text.strip().endswith(".") and "Traceback" not in text


def test_downloads_are_checked_cached_and_complete(index):
    sources, requested, builds = index
    bundle = self_contained.download({"numpy": "2.2.5", "param": "2.4.2"}, builds, sources)
    assert sorted(path.name for path in bundle.pyodide) == sorted(
        [NUMPY, "micropip-0.11.0-py3-none-any.whl", "packaging-24.2-py3-none-any.whl", *RUNTIME_FILES]
    )
    assert all(path.is_file() for path in bundle.pyodide)
    assert (sources.cache / "runtime" / "package" / "pyodide.asm.wasm").read_text() == "// pyodide.asm.wasm\n"
    assert {name: path.name for name, path in bundle.wheels.items()} == {"param": PARAM}

    downloads = [path for path in requested if not path.startswith("/simple/")]
    self_contained.download({"numpy": "2.2.5", "param": "2.4.2"}, builds, sources)  # a second export
    assert [path for path in requested if not path.startswith("/simple/")] == downloads, "downloaded twice"


def test_a_host_that_cannot_be_reached_is_one_sentence(index):
    sources, _requested, builds = index
    blocked = Sources(sources.runtime_url, sources.runtime_hash, closed_port_url(), sources.cache)
    with pytest.raises(CnnvizError) as raised:
        self_contained.download({"numpy": "2.2.5"}, builds, blocked)
    message = str(raised.value)
    assert re.match(r"cannot download [\w.-]+\.whl from 127\.0\.0\.1 \(no connection\)", message)
    assert "without --self-contained" in message and one_sentence(message)


def test_a_file_that_does_not_match_its_checksum_is_refused(index):
    sources, _requested, builds = index
    builds["numpy"] = (*builds["numpy"][:2], sha256(b"another file"), [])
    with pytest.raises(CnnvizError, match=r"checksum does not match the published one"):
        self_contained.download({"numpy": "2.2.5"}, builds, sources)
    tampered = Sources(sources.runtime_url, "sha512:" + "0" * 128, sources.packages_url, sources.cache / "other")
    builds["numpy"] = (*builds["numpy"][:2], sha256(b"numpy for the browser"), [])
    with pytest.raises(CnnvizError, match=r"cannot download pyodide-9\.9\.9\.tgz .*checksum does not match"):
        self_contained.download({"numpy": "2.2.5"}, builds, tampered)


def test_a_package_the_index_lacks_is_named(index):
    sources, _requested, builds = index
    with pytest.raises(CnnvizError) as raised:
        self_contained.download({"param": "2.4.2", "not-on-this-index": "1.0"}, builds, sources)
    message = str(raised.value)
    assert message.startswith("pip could not download the packages the site runs (") and "not-on-this-index" in message
    assert "without --self-contained" in message and one_sentence(message)


def test_cli_says_why_in_one_sentence_and_exits_2(index, tmp_path, monkeypatch, capsys):
    sources, _requested, _builds = index
    blocked = Sources(sources.runtime_url, sources.runtime_hash, closed_port_url(), sources.cache)
    monkeypatch.setattr(self_contained, "default_sources", lambda: blocked)
    assert main(["export", "--self-contained", "--out", str(tmp_path / "site")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("cnnviz export: cannot download ") and one_sentence(error)
    assert not (tmp_path / "site" / "index.html").exists()  # stopped before building anything


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A self-contained export of the real app, with stand-in files for the downloads (named as the real ones)."""
    folder = tmp_path_factory.mktemp("self-contained")

    def fake_download(lock, builds, sources, progress=False) -> Bundle:
        pyodide = []
        for name in ["micropip", "packaging", *(name for name in lock if name in builds and name not in PANEL)]:
            pyodide.append(folder / "downloads" / builds[name][1])
        pyodide += [folder / "downloads" / name for name in RUNTIME_FILES]
        wheels = {
            name: folder / "downloads" / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            for name, version in lock.items()
            if name not in builds or name in PANEL
        }
        for path in [*pyodide, *wheels.values()]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"stand-in")
        return Bundle(pyodide, wheels)

    PANEL = {"panel", "bokeh"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(self_contained, "download", fake_download)
        return export_site(folder / "site", self_contained=True, sources=Sources("", "", "", folder))


def test_pages_load_pyodide_and_every_package_from_the_site(site):
    builds = pyodide_lock()
    for name in ("index.html", "index.js", "single-file.html"):
        text = (site / name).read_text(encoding="utf-8")
        remote = {url for url in re.findall(r"https?://[^\s\"'<>)\\`]+", text) if not url.startswith(XML_NAMESPACES)}
        assert remote == set(), (name, remote)
    assert 'importScripts("./pyodide/pyodide.js")' in (site / "index.js").read_text(encoding="utf-8")
    assert '<script src="./pyodide/pyodide.js"' in (site / "single-file.html").read_text(encoding="utf-8")
    for loader in ("index.js", "single-file.html"):
        text = (site / loader).read_text(encoding="utf-8")
        # the export's complete lock, installed as it is: no dependency resolution, which would ask PyPI
        (listing,) = re.findall(r"micropip\.install\((\[.*?\]), deps=False\)", text, re.S)
        specs = ast.literal_eval(listing)
        for spec in specs:
            if spec.startswith(f"./{WHEELS_DIR}/"):
                assert (site / spec).is_file(), spec
            elif not spec.startswith("emfs:"):
                name, version = spec.split("==")
                assert builds[name][0] == version and (site / PYODIDE_DIR / builds[name][1]).is_file(), spec
        assert any(re.fullmatch(r"\./wheels/panel-[\w.]+-py3-none-any\.whl", spec) for spec in specs)
        assert any(re.fullmatch(r"\./wheels/bokeh-[\w.]+-py3-none-any\.whl", spec) for spec in specs)
    assert {path.name for path in (site / PYODIDE_DIR).iterdir()} >= {*RUNTIME_FILES, builds["micropip"][1]}


def test_the_failure_notice_names_no_cdn_and_the_service_worker_caches_the_downloads(site):
    page = (site / f"{next(iter(PAGES))}.html").read_text(encoding="utf-8")
    assert "everything it needs comes from this site" in page and "cdn.jsdelivr.net" not in page
    service_worker = (site / "serviceWorker.js").read_text(encoding="utf-8")
    assert "'./pyodide/pyodide.asm.wasm'" in service_worker
