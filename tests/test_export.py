"""`cnnviz export`: the static site's files, its pinned TensorFlow-free requirements, and our wheel run as Pyodide will.

The browser checks (the pre-rendered page offline, the live Pyodide app) are in tests/ui/test_export_ui.py.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import bokeh
import panel as pn
import pytest
from panel.io.convert import BOKEH_CDN_WHL, PANEL_CDN_WHL, PYODIDE_PYC_URL, PYODIDE_URL

from cnnviz.app import TITLE
from cnnviz.data import load_gallery
from cnnviz.errors import CnnvizError
from cnnviz.export import PAGES, REQUIREMENTS_FILE, export_site

REMOTE_BY_DESIGN = {PYODIDE_URL, PYODIDE_PYC_URL, PANEL_CDN_WHL, BOKEH_CDN_WHL}
XML_NAMESPACES = "http://www.w3.org/"
MICROPIP_INSTALL = re.compile(r"micropip\.install\((\[.*?\])\)", re.S)
PINNED = re.compile(r"[A-Za-z0-9_.-]+==\d[\w.]*")
# what Pyodide 0.29.3's lock ships, which the browser runs (and .ci/run tests the engine under)
PYODIDE_VERSIONS = {"numpy": "2.2.5", "pillow": "11.3.0", "pandas": "2.3.3"}

# Runs in a plain interpreter, the way the Pyodide worker runs the app: our package from the wheel only, the
# unpacked resources as the working directory, no CNNVIZ_* variables, and TensorFlow impossible to import.
RUN_LIKE_PYODIDE = textwrap.dedent(
    """
    import importlib.abc, json, sys, threading
    sys.path[:0] = [sys.argv[1]]
    sys.path.extend(sys.argv[2:])

    class BlockTensorFlow(importlib.abc.MetaPathFinder):
        attempts = []

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("tensorflow", "keras"):
                self.attempts.append(name)
                raise ImportError(f"{name} is blocked: the browser has no TensorFlow")

    sys.meta_path.insert(0, BlockTensorFlow())
    import cnnviz
    from cnnviz.app import create_app
    from cnnviz.resources import default_weights_path, shared_catalog

    page = create_app()
    print(json.dumps({
        "package": cnnviz.__file__,
        "page": type(page).__name__,
        "weights": str(default_weights_path()),
        "photos": sum(not example.is_probe for example in shared_catalog().examples),
        "tensorflow_imports": BlockTensorFlow.attempts,
        "threads": [thread.name for thread in threading.enumerate()],
    }))
    """
)


@pytest.fixture(scope="module")
def site(tmp_path_factory, prepared_data_dir) -> Path:
    return export_site(tmp_path_factory.mktemp("export") / "site", data_dir=prepared_data_dir)


def micropip_installs(page_or_worker: Path) -> list[str]:
    (listing,) = MICROPIP_INSTALL.findall(page_or_worker.read_text(encoding="utf-8"))
    return ast.literal_eval(listing)


def test_site_has_both_pages_a_web_app_manifest_and_one_resources_zip_they_share(site, prepared_data_dir):
    assert sorted(path.name for path in site.glob("*.resources.zip")) == ["index.resources.zip"]
    for page in PAGES:
        assert (site / f"{page}.html").is_file()
    for loader in (site / "index.js", site / "single-file.html"):
        assert re.findall(r"\[('[\w.-]+\.resources\.zip')\]", loader.read_text(encoding="utf-8")) == [
            "'index.resources.zip'"
        ]
    assert (site / "index.js").is_file(), "the worker page needs its worker script"
    manifest = json.loads((site / "site.webmanifest").read_text(encoding="utf-8"))
    assert manifest["name"] == TITLE and manifest["start_url"] == "index.html"
    service_worker = (site / "serviceWorker.js").read_text(encoding="utf-8")
    assert all(f"'./{name}'" in service_worker for name in ("", "index.html", "index.js", "index.resources.zip"))

    with zipfile.ZipFile(site / "index.resources.zip") as archive:
        names = set(archive.namelist())
    photos = {f"data/gallery/{entry.path.name}" for entry in load_gallery(prepared_data_dir)}
    assert photos and photos | {"data/gallery/index.json", "weights/tiny_vgg.npz"} <= names
    assert any(re.fullmatch(r"packed_wheels/cnnviz-[\w.]+-py3-none-any\.whl", name) for name in names)


def test_requirements_pin_every_package_the_browser_installs_and_no_tensorflow(site):
    listed = (site / REQUIREMENTS_FILE).read_text(encoding="utf-8")
    lines = [line for line in listed.splitlines() if line and not line.startswith("#")]
    assert re.fullmatch(r"\./cnnviz-[\w.]+-py3-none-any\.whl", lines[0])
    assert all(PINNED.fullmatch(line) for line in lines[1:]), lines
    pins = dict(line.split("==") for line in lines[1:])
    # direct and indirect requirements alike, the compiled ones at Pyodide's own versions
    indirect = {"pyviz-comms", "markdown", "markdown-it-py", "linkify-it-py", "mdurl", "colorcet", "narwhals"}
    assert {"holoviews", "param", "latex2mathml", *indirect} <= set(pins)
    assert {name: pins[name] for name in PYODIDE_VERSIONS} == PYODIDE_VERSIONS
    assert not {"tensorflow", "keras", "tqdm-cli", "pooch", "threadpoolctl", "tornado"} & set(pins)
    assert "tensorflow" not in listed.lower()

    for installer in (site / "index.js", site / "single-file.html"):
        installs = micropip_installs(installer)
        assert f"panel-{pn.__version__}-py3-none-any.whl" in installs[1]
        assert f"bokeh-{bokeh.__version__}-py3-none-any.whl" in installs[0]
        assert re.fullmatch(r"emfs:packed_wheels/cnnviz-[\w.]+-py3-none-any\.whl", installs[2])
        assert all(PINNED.fullmatch(spec) for spec in installs[3:]), installs
        assert not any("tensorflow" in spec.lower() for spec in installs)


def test_pages_reach_out_only_for_pyodide_and_the_panel_and_bokeh_wheels(site):
    for page in PAGES:
        html = (site / f"{page}.html").read_text(encoding="utf-8")
        remote = {url for url in re.findall(r"https?://[^\s\"'<>)\\]+", html) if not url.startswith(XML_NAMESPACES)}
        assert remote <= REMOTE_BY_DESIGN, remote - REMOTE_BY_DESIGN
        assert "./static/bokeh/" in html and "./static/panel/" in html


def test_our_wheel_runs_the_app_like_pyodide(site, tmp_path):
    """Our wheel alone (no checkout), no TensorFlow, no threads, weights and photos from the unpacked resources."""
    with zipfile.ZipFile(site / "index.resources.zip") as archive:
        archive.extractall(tmp_path / "home")
    (wheel,) = (tmp_path / "home" / "packed_wheels").glob("cnnviz-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site-packages")
    dependencies = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CNNVIZ_")}
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUN_LIKE_PYODIDE, str(tmp_path / "site-packages"), *dependencies],
        cwd=tmp_path / "home",
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).is_relative_to(tmp_path / "site-packages")
    assert report["page"] == "Page"  # cnnviz.app.Page, the BootstrapTemplate every served session gets
    assert Path(report["weights"]) == tmp_path / "home" / "weights" / "tiny_vgg.npz"
    assert report["photos"] == len(list((tmp_path / "home" / "data" / "gallery").glob("*.jpg")))
    assert report["tensorflow_imports"] == []
    assert report["threads"] == ["MainThread"]


def test_browser_wheel_is_the_package_without_weights_and_with_valid_record(site, tmp_path):
    import base64
    import hashlib

    with zipfile.ZipFile(site / "index.resources.zip") as archive:
        archive.extractall(tmp_path)
    (wheel,) = (tmp_path / "packed_wheels").glob("cnnviz-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record = archive.read(next(name for name in names if name.endswith(".dist-info/RECORD"))).decode()
        for line in filter(None, record.splitlines()):
            name, digest, size = line.split(",")
            if digest:
                data = archive.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == (f"sha256={expected}", len(data)), name
    assert {"cnnviz/app.py", "cnnviz/views/overview.css", "cnnviz/article/intro.md"} <= set(names)
    assert not [name for name in names if name.startswith(("cnnviz/weights", "cnnviz/apps")) or ".pyc" in name]


def test_export_refuses_a_file_as_its_directory(tmp_path):
    (tmp_path / "site").write_text("not a directory", encoding="utf-8")
    with pytest.raises(CnnvizError, match="is a file"):
        export_site(tmp_path / "site")


def test_export_refuses_to_replace_a_directory_that_is_not_an_export(tmp_path):
    (tmp_path / "notes.txt").write_text("a teacher's notes", encoding="utf-8")
    with pytest.raises(CnnvizError, match="not a previous export"):
        export_site(tmp_path)
    assert (tmp_path / "notes.txt").is_file()
