"""`cnnviz export --self-contained`: everything the browser runs, downloaded into the site at export time.

A plain export loads Pyodide and its compiled packages from Pyodide's CDN, Panel's and Bokeh's wheels from Panel's
CDN and the other pure-Python packages from PyPI, so a school network that blocks those hosts gets the pre-rendered
preview and nothing more. A self-contained export downloads them once, each checked against a published checksum,
and the pages load them from the site itself:

- Pyodide's runtime from its npm package (the tarball's integrity hash, as npm publishes it, is pinned here);
- Pyodide's packages (NumPy, Pillow, pandas, micropip, ...) from Pyodide's CDN, checked against its lock's sha256;
- every other package, Panel and Bokeh included, from PyPI through pip, which checks the index's hashes and
  honours a configured mirror.

pooch downloads into its cache folder and pip keeps what it already has, so a second export downloads nothing.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cnnviz.errors import CnnvizError

# npm's integrity hash of the `pyodide` package of each Pyodide release panel convert may use (hex of npm's sha512)
RUNTIME_HASHES = {
    "0.29.3": "sha512:db6501ba13896b08fbbca5274bbfc5df12bee75e4b25d8e23001e809fb92ebf3"
    "db1e23ab4905676300defb6b1b57088e677b0c31ec5d5c809ec3a36a38c40680",
}
NPM_TARBALL = "https://registry.npmjs.org/pyodide/-/pyodide-{version}.tgz"
# what the pages load of the runtime: the loader, the interpreter, the standard library and the package lock
RUNTIME_FILES = ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
PYODIDE_DIR = "pyodide"  # the runtime and Pyodide's packages, where loadPyodide() finds its lock and packages
WHEELS_DIR = "wheels"  # the pure-Python wheels micropip installs by URL
DOWNLOAD_TIMEOUT_S = 60
# micropip.install([...]) in the worker script and the single-file page, as panel convert writes it
MICROPIP_INSTALL = re.compile(r"micropip\.install\((\[.*?\])\)", re.S)
SELF_CONTAINED_HOSTS = "everything it needs comes from this site"


@dataclass(frozen=True)
class Sources:
    """Where the downloads come from and where they are kept between exports."""

    runtime_url: str
    runtime_hash: str  # as pooch takes it: "sha512:<hex>"
    packages_url: str  # the folder of Pyodide's packages, ending in "/"
    cache: Path


@dataclass(frozen=True)
class Bundle:
    """The downloaded files: Pyodide's runtime and packages, and pure-Python wheels by package name."""

    pyodide: list[Path]
    wheels: dict[str, Path]


def default_sources() -> Sources:
    import pooch
    from panel.io.convert import PYODIDE_URL

    from cnnviz.export import PYODIDE_ENVIRONMENT

    version = PYODIDE_ENVIRONMENT["pyodide"]
    return Sources(
        runtime_url=NPM_TARBALL.format(version=version),
        runtime_hash=RUNTIME_HASHES[version],
        packages_url=PYODIDE_URL.rsplit("/", 1)[0] + "/",
        cache=Path(pooch.os_cache("cnnviz")) / f"pyodide-{version}",
    )


def download(
    lock: dict[str, str],
    builds: dict[str, tuple[str, str, str, list[str]]],
    sources: Sources,
    *,
    progress: bool = False,
) -> Bundle:
    """Download what the browser installs for `lock` (name -> version; `builds` is Pyodide's own lock).

    Pyodide's packages come first: they are the downloads most often blocked, and nothing else is fetched in vain.
    """
    from cnnviz.export import PANEL_WHEELS

    from_pyodide = {name for name in lock if name in builds and name not in PANEL_WHEELS} | {"micropip"}
    pyodide = [
        _retrieve(sources.packages_url + builds[name][1], f"sha256:{builds[name][2]}", sources.cache, progress)
        for name in sorted(_with_dependencies(from_pyodide, builds))
    ]
    pyodide += _runtime(sources, progress)
    wheels = _pypi_wheels({name: version for name, version in lock.items() if name not in from_pyodide}, sources)
    return Bundle(pyodide, wheels)


def install(bundle: Bundle, out: Path, loaders: list[Path]) -> None:
    """Copy the bundle into the site and point each loader (worker script, single-file page) at it."""
    from panel.io.convert import BOKEH_CDN_WHL, PANEL_CDN_WHL, PYODIDE_PYC_URL, PYODIDE_URL

    from cnnviz.export import PANEL_WHEELS

    for path in bundle.pyodide:
        shutil.copyfile(path, _folder(out / PYODIDE_DIR) / path.name)
    local = {name: f"./{WHEELS_DIR}/{path.name}" for name, path in bundle.wheels.items()}
    for path in bundle.wheels.values():
        shutil.copyfile(path, _folder(out / WHEELS_DIR) / path.name)
    cdn_wheels = dict(zip((BOKEH_CDN_WHL, PANEL_CDN_WHL), sorted(PANEL_WHEELS), strict=True))

    def local_spec(spec: str) -> str:
        if spec in cdn_wheels:
            return local[cdn_wheels[spec]]
        name, _, _version = spec.partition("==")
        return local.get(_canonical(name), spec)  # Pyodide's packages stay names: its lock finds them

    def local_install(match: re.Match) -> str:
        specs = [local_spec(spec) for spec in ast.literal_eval(match.group(1))]
        # the list is complete (the export's lock): resolving dependencies would ask PyPI for what is listed
        return f"micropip.install({specs!r}, deps=False)"

    runtime = f"./{PYODIDE_DIR}/pyodide.js"
    for loader in loaders:
        text = loader.read_text(encoding="utf-8")
        text = MICROPIP_INSTALL.sub(local_install, text).replace(PYODIDE_URL, runtime).replace(PYODIDE_PYC_URL, runtime)
        loader.write_text(text, encoding="utf-8")


def _with_dependencies(names: set[str], builds: dict[str, tuple[str, str, str, list[str]]]) -> set[str]:
    """The names and everything Pyodide's lock says they depend on (loadPackage fetches those too)."""
    found: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += builds[name][3]
    return found


def _runtime(sources: Sources, progress: bool) -> list[Path]:
    import pooch

    members = [f"package/{name}" for name in RUNTIME_FILES]
    untar = pooch.Untar(members=members, extract_dir="runtime")
    _retrieve(sources.runtime_url, sources.runtime_hash, sources.cache, progress, processor=untar)
    return [sources.cache / "runtime" / member for member in members]


def _retrieve(url: str, known_hash: str, cache: Path, progress: bool, processor: Callable | None = None) -> Path:
    """One download, checked against its hash; any failure becomes one sentence naming the file and its host."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")  # the progress bar says enough
    name = url.rsplit("/", 1)[-1]
    try:
        result = pooch.retrieve(
            url,
            known_hash,
            fname=name,
            path=cache,
            processor=processor,
            downloader=pooch.HTTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT_S),
        )
    except requests.HTTPError as error:
        raise _cannot_download(name, url, f"HTTP {error.response.status_code}") from error
    except requests.RequestException as error:
        raise _cannot_download(name, url, "no connection") from error
    except ValueError as error:  # pooch: the hash does not match
        raise _cannot_download(name, url, "its checksum does not match the published one") from error
    return Path(result) if isinstance(result, str) else cache  # a processor's result: the files it unpacked


def _cannot_download(name: str, url: str, reason: str) -> CnnvizError:
    host = urlparse(url).hostname or url
    return CnnvizError(
        f"cannot download {name} from {host} ({reason}), so the self-contained site cannot be built here: "
        f"export where {host} is reachable, or without --self-contained."
    )


def _pypi_wheels(pins: dict[str, str], sources: Sources) -> dict[str, Path]:
    """The pure-Python wheels, through pip (the user's index and mirror settings apply; hashes are checked)."""
    from cnnviz.export import PYODIDE_ENVIRONMENT

    folder = _folder(sources.cache / WHEELS_DIR)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", "any",
        "--implementation", "py", "--python-version", PYODIDE_ENVIRONMENT["python_version"], "--progress-bar", "off",
        "--dest", str(folder), *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = _wheels_in(folder, pins)
    if result.returncode != 0 or len(wheels) < len(pins):
        errors = [
            line.removeprefix("ERROR: ").strip() for line in result.stderr.splitlines() if line.startswith("ERROR")
        ]
        missing = ", ".join(sorted(set(pins) - set(wheels)))
        reason = errors[0].rstrip(".") if errors else f"no wheel of {missing} for Python in the browser"
        raise CnnvizError(
            f"pip could not download the packages the site runs ({reason}), so the self-contained site cannot be "
            "built here: export where PyPI (or your pip index) is reachable, or without --self-contained."
        )
    return wheels


def _wheels_in(folder: Path, pins: dict[str, str]) -> dict[str, Path]:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    wheels = {}
    for path in folder.glob("*.whl"):
        try:
            name, version, *_ = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if pins.get(name) == str(version):
            wheels[str(name)] = path
    return wheels


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
