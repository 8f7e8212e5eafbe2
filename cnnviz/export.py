"""`cnnviz export --out DIR`: the explainer as a static website where every visitor's browser does the computing.

`panel convert` runs the same entry point as `panel serve` (apps/explainer.py) once at build time to pre-render the
page, and embeds it so that Pyodide runs it again in the browser. What the browser needs besides Pyodide:

- our package as a wheel, and the weights and example photos, packed in one zip that Pyodide unpacks into its
  working directory, which is where `cnnviz.resources` and `cnnviz.data` look when no checkout is around;
- a pinned requirement list (panel and bokeh become Panel's own wheels of exactly the installed versions);
- Bokeh's and Panel's JavaScript and stylesheets, copied beside the pages instead of linked from their CDNs, so the
  pre-rendered overview appears before, and without, any request to the internet;
- a web-app manifest and a service worker that caches the site, so it keeps working offline once loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from cnnviz import self_contained as self_contained_site
from cnnviz.errors import CnnvizError

# page name -> `panel convert` target. The worker keeps the page responsive while Python computes; the single
# file runs Python on the page itself, for hosts that refuse to serve workers or for a quick look.
PAGES = {"index": "pyodide-worker", "single-file": "pyodide"}
# Pyodide's packages and their versions, from its release's lock (see browser_lock)
PYODIDE_LOCK_FILE = "pyodide_lock.json"
# environment markers as the browser evaluates them (Pyodide 0.29.3: CPython 3.13 compiled to WebAssembly)
PYODIDE_ENVIRONMENT = {
    "pyodide": "0.29.3",
    "python_version": "3.13",
    "python_full_version": "3.13.2",
    "sys_platform": "emscripten",
    "platform_system": "Emscripten",
    "platform_machine": "wasm32",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
# package parts the browser's wheel leaves out: the weights travel in the resources zip, each page embeds the app
# script, and the lock is for the export alone
BROWSER_WHEEL_SKIPS = {"weights", "apps", "__pycache__", PYODIDE_LOCK_FILE}
# `panel convert` installs its own wheels of these, at the installed versions, in place of Pyodide's
PANEL_WHEELS = {"panel", "bokeh"}
WHEEL_DATE = (2020, 1, 1, 0, 0, 0)  # fixed, so the same code packs to the same bytes and the cache stays valid
REQUIREMENTS_FILE = "requirements.txt"
ASSETS_DIR = "static"
BOKEH_CDN = "https://cdn.bokeh.org/bokeh/release/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("site"), help="directory to write (default: %(default)s)")
    parser.add_argument("--weights", type=Path, default=None, help="the .npz weights to ship (default: as `serve`)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="prepared data whose gallery/ to ship (default: as `serve`)"
    )
    parser.add_argument(
        "--self-contained",
        action="store_true",
        help="download Pyodide and every package into the site, so it needs no CDN (for networks that block them)",
    )


def run(args: argparse.Namespace) -> int:
    out = export_site(
        args.out, weights=args.weights, data_dir=args.data_dir, self_contained=args.self_contained, progress=True
    )
    size = site_payload(out)
    what = "with Pyodide and every package" if args.self_contained else "without Pyodide and the packages it downloads"
    print(f"Wrote the static site to {out}/ ({size / 1e6:.2f} MB {what}).")
    print(f"Try it: python -m http.server --directory {out} 8000, then open http://localhost:8000/")
    return 0


def export_site(
    out: Path,
    weights: Path | None = None,
    data_dir: Path | None = None,
    *,
    self_contained: bool = False,
    sources: self_contained_site.Sources | None = None,
    progress: bool = False,
) -> Path:
    """Build the static site in `out` (new, empty, or a previous export, which is replaced) and return its path.

    `self_contained` downloads Pyodide and every package into the site (from `sources`, by default the public
    ones), before anything else, so that a download that cannot be made stops the export at once.
    """
    from tqdm import tqdm

    from cnnviz.examples import gallery_folder
    from cnnviz.resources import WEIGHTS_FILE, app_entry_point, default_weights_path, shared_network

    out = _prepare_out_dir(out)
    weights = Path(weights or default_weights_path())
    shared_network(weights)  # a missing or damaged file stops the export here, with its message
    bundle = None
    if self_contained:
        sources = sources or self_contained_site.default_sources()
        bundle = self_contained_site.download(browser_lock(), pyodide_lock(), sources, progress=progress)
    with tqdm(total=3 + len(PAGES), desc="Exporting", unit="step", disable=not progress) as steps:
        with tempfile.TemporaryDirectory(prefix="cnnviz-export-") as scratch:
            stage = Path(scratch) / "app"
            stage.mkdir()
            wheel = pack_wheel(stage)  # installed from the requirements, which pack it into the resources zip
            # under the name the browser looks for (resources.default_weights_path), whatever --weights chose
            staged_weights = stage / "weights" / WEIGHTS_FILE
            resources = [
                _copy(weights, staged_weights),
                *_stage_training_record(weights, staged_weights),
                *_stage_gallery(gallery_folder(data_dir, weights), stage / "data"),
            ]
            requirements = stage / REQUIREMENTS_FILE
            requirements.write_text(lock_text(wheel), encoding="utf-8")
            steps.update()
            entries = [_copy(app_entry_point(), stage / f"{page}.py") for page in PAGES]
            # the build-time pre-render must show exactly what the browser will load: the staged copies
            staged = {"CNNVIZ_WEIGHTS": str(staged_weights), "CNNVIZ_DATA_DIR": str(stage / "data")}
            with _environment(**staged):
                for entry, (page, target) in zip(entries, PAGES.items(), strict=True):
                    steps.set_postfix_str(f"{page}.html")
                    _convert(entry, out, target, requirements, resources, with_pwa=page == "index")
                    steps.update()
            _copy(requirements, out / REQUIREMENTS_FILE)
        share_resources(out)
        if bundle:
            self_contained_site.install(
                bundle, out, [_python_loader(out, page, target) for page, target in PAGES.items()]
            )
        hosts = self_contained_site.SELF_CONTAINED_HOSTS if bundle else NEEDED_HOSTS
        for page, target in PAGES.items():
            localise_assets(out / f"{page}.html", out)
            explain_start_failures(out / f"{page}.html", target, hosts)
        steps.update()
        _precache_site(out)
        steps.update()
    return out


def _python_loader(out: Path, page: str, target: str) -> Path:
    """The file that loads Pyodide and installs the packages: the worker's script, or the page itself."""
    return out / f"{page}.js" if target == "pyodide-worker" else out / f"{page}.html"


def site_payload(out: Path) -> int:
    """Bytes a host serves for the site: everything in `out` (Pyodide and the packages too when self-contained)."""
    return sum(path.stat().st_size for path in out.rglob("*") if path.is_file())


def share_resources(out: Path) -> None:
    """Let every page unpack the first page's resources zip: `panel convert` writes the same zip once per page."""
    shared, *others = (f"{page}.resources.zip" for page in PAGES)
    for page, duplicate in zip(list(PAGES)[1:], others, strict=True):
        for path in (out / f"{page}.html", out / f"{page}.js"):
            if path.is_file() and duplicate in (text := path.read_text(encoding="utf-8")):
                path.write_text(text.replace(repr(duplicate), repr(shared)), encoding="utf-8")
        (out / duplicate).unlink()


def pack_wheel(dest: Path) -> Path:
    """Pack the cnnviz that is running into a wheel for the browser; no build tools, no checkout needed.

    The same code whether cnnviz is a checkout, an editable install or an installed wheel. The weights and the app
    script are left out: the weights travel in the resources zip (`--weights` may choose others) and each page
    embeds the script.
    """
    import base64
    import hashlib

    import cnnviz

    package = Path(cnnviz.__file__).resolve().parent
    dist_info = f"cnnviz-{cnnviz.__version__}.dist-info"
    files = {
        path.relative_to(package.parent).as_posix(): path.read_bytes()
        for path in sorted(package.rglob("*"))
        if path.is_file()
        and not BROWSER_WHEEL_SKIPS & set(path.relative_to(package).parts)
        and path.suffix not in {".pyc", ".pyo"}
    }
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: cnnviz\nVersion: {cnnviz.__version__}\n".encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: cnnviz export\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )

    def record(name: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{name},sha256={digest},{len(data)}"

    records = [record(name, data) for name, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(records) + "\n").encode()
    wheel = dest / f"cnnviz-{cnnviz.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=WHEEL_DATE), data, zipfile.ZIP_DEFLATED)
    return wheel


def pyodide_lock() -> dict[str, tuple[str, str, str, list[str]]]:
    """Pyodide's own packages (name -> version, wheel file, sha256, depends) for the Pyodide `panel convert` uses."""
    from panel.io.convert import PYODIDE_VERSION

    lock = json.loads((Path(__file__).parent / PYODIDE_LOCK_FILE).read_text(encoding="utf-8"))
    if f"v{lock['pyodide']}" != PYODIDE_VERSION:
        raise CnnvizError(
            f"This Panel converts to Pyodide {PYODIDE_VERSION}, but cnnviz knows the packages of Pyodide "
            f"{lock['pyodide']}: install a Panel within cnnviz's range (pip install -U cnnviz)."
        )
    return lock["packages"]


def browser_lock() -> dict[str, str]:
    """Every package the browser installs, indirect ones included, at one exact version each.

    Pyodide's own packages (NumPy, Pillow, pandas, ...) at the version its release ships, everything else at the
    version installed here, which the tests ran with. A requirement the browser's version does not meet stops the
    export with its name.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    builds = {name: build for name, build in pyodide_lock().items() if name not in PANEL_WHEELS}
    pinned: dict[str, str] = {}
    pending = [Requirement(text) for text in _cnnviz_requires()]
    while pending:
        requirement = pending.pop(0)
        if requirement.marker and not requirement.marker.evaluate(PYODIDE_ENVIRONMENT):
            continue  # an extra (train, test), or not for the browser
        name = canonicalize_name(requirement.name)
        version = pinned.get(name) or (builds[name][0] if name in builds else _installed_version(name))
        if not requirement.specifier.contains(version, prereleases=True):
            where = f"Pyodide {PYODIDE_ENVIRONMENT['pyodide']}" if name in builds else "this environment"
            raise CnnvizError(
                f"{name} {version} (from {where}) does not meet {requirement}, so the site would not start."
            )
        if name in pinned:
            continue
        pinned[name] = version
        if name in builds:
            pending += [Requirement(dependency) for dependency in builds[name][3]]
        else:
            pending += [Requirement(text) for text in _installed_requires(name)]
    return dict(sorted(pinned.items()))


def lock_text(wheel: Path) -> str:
    """The requirements file `panel convert` gets: our wheel, then the lock. Panel and Bokeh stay for the record;
    `panel convert` replaces them with its own wheels of the same versions."""
    from panel.io.convert import PYODIDE_VERSION

    lines = [
        f"# written by `cnnviz export` for Pyodide {PYODIDE_VERSION}: every package the browser installs, pinned",
        f"./{wheel.name}",
        *(f"{name}=={version}" for name, version in browser_lock().items()),
    ]
    return "\n".join(lines) + "\n"


def _cnnviz_requires() -> list[str]:
    """The requirements of the cnnviz that is running: its checkout's pyproject.toml, else its installed metadata
    (an editable install's metadata is as old as the install)."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return _installed_requires("cnnviz")


def _installed_requires(name: str) -> list[str]:
    try:
        return metadata.requires(name) or []
    except metadata.PackageNotFoundError as error:
        raise CnnvizError(f"{name} is not installed here; install cnnviz (pip install .) first.") from error


def _installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError as error:
        raise CnnvizError(f"{name} is not installed here; install cnnviz (pip install .) first.") from error


def localise_assets(page: Path, out: Path) -> None:
    """Point the page's Bokeh and Panel CDN links at copies beside it, so it renders with no internet.

    URLs without a local counterpart (Panel's and Bokeh's Python wheels, Pyodide) stay on their CDNs.
    """
    import bokeh
    from bokeh.util.paths import bokehjs_path
    from panel.io.resources import CDN_DIST, DIST_DIR

    bokeh_file = re.compile(rf"(bokeh[\w-]*)-{re.escape(bokeh.__version__)}(\.min\.js)")
    sources = {CDN_DIST: (DIST_DIR, "panel"), BOKEH_CDN: (Path(bokehjs_path()) / "js", "bokeh")}

    def local(match: re.Match) -> str:
        prefix, path = match.group(1), match.group(2)
        source_dir, target_dir = sources[prefix]
        name = path.split("?")[0]
        source = source_dir / (bokeh_file.sub(r"\1\2", name) if prefix == BOKEH_CDN else name)
        if not source.is_file():
            return match.group(0)
        _copy_with_css_references(source, out / ASSETS_DIR / target_dir / name)
        return f"./{ASSETS_DIR}/{target_dir}/{name}"

    url = re.compile(f"({re.escape(CDN_DIST)}|{re.escape(BOKEH_CDN)})([^\"'\\s)<>]+)")
    page.write_text(url.sub(local, page.read_text(encoding="utf-8")), encoding="utf-8")


# every host the pages download from: Pyodide, NumPy, Pillow and pandas; Panel's and Bokeh's wheels; the other
# pure-Python packages (micropip asks PyPI's index, which points at its file host)
NEEDED_HOSTS = (
    "Pyodide and its packages come from cdn.jsdelivr.net, Panel and Bokeh from cdn.holoviz.org, "
    "the other packages from pypi.org and files.pythonhosted.org"
)
START_FAILED_NOTICE = """<style>
.cnnviz-start-failed { position: fixed; z-index: 2147483647; left: 50%; bottom: 16px; transform: translateX(-50%);
  display: flex; gap: 12px; align-items: flex-start; max-width: min(680px, 92vw); padding: 12px 16px;
  border-radius: 8px; background: #fff8e1; border: 1px solid #f0c36d; color: #3b2f00;
  font: 15px/1.45 system-ui, sans-serif; box-shadow: 0 4px 16px #0002; }
html.cnnviz-preview-only .cnnviz-tour { display: none; }
.cnnviz-start-failed button { flex: none; border: 0; background: none; font-size: 20px; line-height: 1;
  cursor: pointer; color: inherit; }
</style>
<script>
// Say why the live explainer did not start, instead of a spinner that never stops.
window.cnnvizStartFailed = () => {
  if (!document.body.classList.contains("pn-loading")) return;  // it started: later errors are not start-up's
  for (const name of [...document.body.classList]) if (name.startsWith("pn-")) document.body.classList.remove(name);
  for (const message of document.querySelectorAll(".pn-loading-msg")) message.remove();
  const note = document.createElement("div");
  note.className = "cnnviz-start-failed";
  note.setAttribute("role", "alert");
  const text = document.createElement("p");
  text.style.margin = "0";
  text.textContent = "The live explainer could not start: this page runs Python in your browser, and the browser "
    + "could not download or start it (NEEDED_HOSTS). What you see is the first example as it was computed when "
    + "the site was built, so clicks on it do nothing. Check the internet connection and reload the page.";
  // the preview cannot answer clicks or keys: everything but this notice becomes inert, and the tour, which
  // could not be closed, goes away
  document.body.inert = true;
  document.documentElement.classList.add("cnnviz-preview-only");
  const dismiss = document.createElement("button");
  dismiss.setAttribute("aria-label", "Dismiss this message");
  dismiss.textContent = "×";
  dismiss.addEventListener("click", () => note.remove());
  note.append(text, dismiss);
  document.documentElement.append(note);  // beside the inert body, not in it
};
</script>
"""
# Where each page starts Python, and the same text with the notice hooked to a failure: Pyodide's script not
# loading, or any later step failing (a rejection inside Pyodide's cross-origin code fires no
# "unhandledrejection" event, so the start-up promise itself is caught).
START_FAILURE_HOOKS = {
    "pyodide-worker": [
        ('new Worker("./index.js");', 'new Worker("./index.js"); pyodideWorker.onerror = window.cnnvizStartFailed;'),
    ],
    "pyodide-worker script": [  # in the worker: an error thrown there reaches the page's Worker object
        ("\nstartApplication()", "\nstartApplication().catch((error) => setTimeout(() => { throw error; }))"),
    ],
    "pyodide": [
        ('/pyodide.js" defer>', '/pyodide.js" defer onerror="window.cnnvizStartFailed()">'),
        ("main();", "main().catch((error) => { window.cnnvizStartFailed(); throw error; });"),
    ],
}


def explain_start_failures(page: Path, target: str, needed_hosts: str = "") -> None:
    """Make a page whose Python cannot load or start say so in words (Panel's keep spinning over the preview),
    naming what the browser must reach."""
    notice = START_FAILED_NOTICE.replace("NEEDED_HOSTS", needed_hosts or NEEDED_HOSTS)
    _hook_start(page, START_FAILURE_HOOKS[target], notice)
    if target == "pyodide-worker":
        _hook_start(page.with_suffix(".js"), START_FAILURE_HOOKS["pyodide-worker script"])


def _hook_start(path: Path, hooks: list[tuple[str, str]], notice: str = "") -> None:
    text = path.read_text(encoding="utf-8")
    for step, hooked in hooks:
        if text.count(step) != 1:
            raise CnnvizError(f"{path.name}: panel convert's page changed; cnnviz cannot hook its start-up errors.")
        text = text.replace(step, hooked)
    if notice:
        text = text.replace("</head>", notice + "</head>", 1)
    path.write_text(text, encoding="utf-8")


def _copy_with_css_references(source: Path, target: Path) -> None:
    """Copy a file; for a stylesheet also the files its relative url(...) references (e.g. spinner images)."""
    _copy(source, target)
    if source.suffix == ".css":
        for reference in re.findall(r"url\(['\"]?([^'\")]+)", source.read_text(encoding="utf-8")):
            if not reference.startswith(("data:", "http:", "https:", "#")):
                referenced = (source.parent / reference).resolve()
                if referenced.is_file():
                    _copy(referenced, (target.parent / reference).resolve())


def _precache_site(out: Path) -> None:
    """Let the service worker cache the whole site on its first visit, not only Panel's icons."""
    import uuid

    from panel.io.convert import SERVICE_WORKER_TEMPLATE

    from cnnviz.app import TITLE

    files = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    urls = ["./"] + [f"./{name}" for name in files if name != "serviceWorker.js"]  # "./": the site's address
    pre_cache = ", ".join(map(repr, urls))
    worker = SERVICE_WORKER_TEMPLATE.render(uuid=uuid.uuid4().hex, name=TITLE, pre_cache=pre_cache)
    (out / "serviceWorker.js").write_text(worker, encoding="utf-8")


def _convert(entry: Path, out: Path, target: str, requirements: Path, resources: list[Path], with_pwa: bool) -> None:
    from panel.io.convert import convert_apps

    from cnnviz.app import TITLE

    convert_apps(
        [str(entry)],
        dest_path=out,
        title=TITLE,
        runtime=target,
        requirements=requirements,
        resources=[str(path) for path in resources],
        build_index=False,
        build_pwa=with_pwa,
        max_workers=1,
        http_patch=False,  # cnnviz makes no HTTP requests: no need for the unpinned pyodide-http
        verbose=False,
    )
    if not (out / f"{entry.stem}.html").is_file():  # panel convert prints the reason and carries on
        raise CnnvizError(f"panel convert could not build {entry.stem}.html for {target} (see the message above).")


def _stage_training_record(weights: Path, staged_weights: Path) -> list[Path]:
    """Copy the model card (named after the staged weights) and its epoch checkpoints, which the Lab's training
    timeline loads beside the weights."""
    from cnnviz.lab_state import model_card_path, read_history

    card = model_card_path(weights)
    if not card.is_file():
        return []
    checkpoints = [checkpoint.path for checkpoint in read_history(card).checkpoints]
    staged_card = _copy(card, model_card_path(staged_weights))
    return [staged_card, *(_copy(path, staged_weights.parent / path.relative_to(card.parent)) for path in checkpoints)]


def _stage_gallery(data_dir: Path, stage_data: Path) -> list[Path]:
    """Copy the example photos and their index; none prepared means the site shows the generated probes."""
    from cnnviz.data import GALLERY_DIR_NAME, GALLERY_INDEX_NAME, load_gallery

    gallery = data_dir / GALLERY_DIR_NAME
    entries = load_gallery(gallery.parent)
    if not entries:
        print(f"No example photos in {gallery}: the site will show generated probe images (see `cnnviz data`).")
        return []
    files = [gallery / GALLERY_INDEX_NAME, *(entry.path for entry in entries)]
    return [_copy(path, stage_data / GALLERY_DIR_NAME / path.name) for path in files]


def _prepare_out_dir(out: Path) -> Path:
    """An empty directory to write to; refuses a file, and a non-empty directory that is not a previous export."""
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise CnnvizError(f"--out {out} is a file; give a directory to write the site to.")
    if out.exists() and any(out.iterdir()):
        if not (out / f"{next(iter(PAGES))}.resources.zip").is_file():
            raise CnnvizError(f"{out} is not empty and is not a previous export; choose a new directory.")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CnnvizError(f"cannot create {out} ({error.strerror or error}).") from error
    return out


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the conversion processes (they inherit them), then restore the old ones."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
