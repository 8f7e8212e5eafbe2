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
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from cnnviz.errors import CnnvizError

CHECKOUT = Path(__file__).resolve().parents[1]
ENTRY_POINT = CHECKOUT / "apps" / "explainer.py"
# page name -> `panel convert` target. The worker keeps the page responsive while Python computes; the single
# file runs Python on the page itself, for hosts that refuse to serve workers or for a quick look.
PAGES = {"index": "pyodide-worker", "single-file": "pyodide"}
# compiled packages that exist for the browser only as Pyodide's own builds: the Pyodide release fixes their version
PYODIDE_BUILDS = {"numpy", "pillow"}
REQUIREMENTS_FILE = "requirements.txt"
ASSETS_DIR = "static"
BOKEH_CDN = "https://cdn.bokeh.org/bokeh/release/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("site"), help="directory to write (default: %(default)s)")
    parser.add_argument("--weights", type=Path, default=None, help="the .npz weights to ship (default: as `serve`)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="prepared data whose gallery/ to ship (default: as `serve`)"
    )


def run(args: argparse.Namespace) -> int:
    out = export_site(args.out, weights=args.weights, data_dir=args.data_dir)
    size = site_payload(out)
    print(f"Wrote the static site to {out}/ ({size / 1e6:.2f} MB without Pyodide and the packages it downloads).")
    print(f"Try it: python -m http.server --directory {out} 8000, then open http://localhost:8000/")
    return 0


def export_site(out: Path, weights: Path | None = None, data_dir: Path | None = None) -> Path:
    """Build the static site in `out` (new, empty, or a previous export, which is replaced) and return its path."""
    from cnnviz.resources import default_weights_path, shared_network

    out = _prepare_out_dir(out)
    weights = Path(weights or default_weights_path())
    shared_network(weights)  # a missing or damaged file stops the export here, with its message
    with tempfile.TemporaryDirectory(prefix="cnnviz-export-") as scratch:
        stage = Path(scratch) / "app"
        stage.mkdir()
        wheel = build_wheel(Path(scratch) / "wheel")
        _copy(wheel, stage / wheel.name)  # installed from the requirements, which pack it into the same zip
        resources = [
            _copy(weights, stage / "weights" / weights.name),
            *_stage_training_record(weights, stage / "weights"),
            *_stage_gallery(data_dir, stage / "data"),
        ]
        requirements = stage / REQUIREMENTS_FILE
        requirements.write_text("\n".join(pinned_requirements(wheel)) + "\n", encoding="utf-8")
        entries = [_copy(ENTRY_POINT, stage / f"{page}.py") for page in PAGES]
        # the build-time pre-render must show exactly what the browser will load: the staged copies
        with _environment(CNNVIZ_WEIGHTS=str(stage / "weights" / weights.name), CNNVIZ_DATA_DIR=str(stage / "data")):
            for entry, (page, target) in zip(entries, PAGES.items(), strict=True):
                _convert(entry, out, target, requirements, resources, with_pwa=page == "index")
        _copy(requirements, out / REQUIREMENTS_FILE)
    for page, target in PAGES.items():
        localise_assets(out / f"{page}.html", out)
        explain_start_failures(out / f"{page}.html", target)
    _precache_site(out)
    return out


def site_payload(out: Path) -> int:
    """Bytes a host serves for the site: everything in `out` (Pyodide and the wheels it downloads are not there)."""
    return sum(path.stat().st_size for path in out.rglob("*") if path.is_file())


def build_wheel(dest: Path) -> Path:
    """Build our wheel offline from a clean copy of the checkout (no stale build/ dir, nothing written to the tree)."""
    if not (CHECKOUT / "pyproject.toml").is_file() or not ENTRY_POINT.is_file():
        raise CnnvizError(f"`cnnviz export` needs a source checkout; none found at {CHECKOUT}.")
    source = dest / "source"
    shutil.copytree(CHECKOUT / "cnnviz", source / "cnnviz", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        _copy(CHECKOUT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    result = subprocess.run([*command, "-w", str(dest), str(source)], capture_output=True, text=True)
    wheels = sorted(dest.glob("cnnviz-*.whl"))
    if result.returncode or not wheels:
        raise CnnvizError(f"Building the cnnviz wheel failed:\n{result.stdout}{result.stderr}")
    _check_wheel_has_package_files(wheels[0], source / "cnnviz")
    return wheels[0]


def _check_wheel_has_package_files(wheel: Path, package: Path) -> None:
    """The browser has nothing but the wheel: a stylesheet or article left out would only fail there."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    missing = sorted(
        relative
        for path in package.rglob("*")
        if path.is_file() and (relative := path.relative_to(package.parent).as_posix()) not in shipped
    )
    if missing:
        raise CnnvizError(
            f"The wheel lacks {', '.join(missing)}: list their patterns under "
            "[tool.setuptools.package-data] in pyproject.toml."
        )


def pinned_requirements(wheel: Path) -> list[str]:
    """Our wheel, then each of its dependencies at exactly the version installed here (the one the tests ran with).

    Panel and Bokeh appear for the record; `panel convert` replaces them with its own wheels of the same versions.
    """
    from packaging.requirements import Requirement

    lines = [f"./{wheel.name}"]
    for requirement in map(Requirement, _wheel_requirements(wheel)):
        if requirement.marker:  # an extra (train, test): never needed in the browser
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError as error:
            raise CnnvizError(f"{requirement.name} is not installed; run `pip install -e .` first.") from error
        if not requirement.specifier.contains(installed, prereleases=True):
            raise CnnvizError(f"{requirement.name} {installed} is installed, but cnnviz needs {requirement}.")
        if requirement.name.lower() in PYODIDE_BUILDS:
            from panel.io.convert import PYODIDE_VERSION

            lines.append(f"# {requirement}: Pyodide {PYODIDE_VERSION}'s own build")
        else:
            lines.append(f"{requirement.name}=={installed}")
    return lines


def _wheel_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = (name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        text = archive.read(metadata_name).decode("utf-8")
    return Parser().parsestr(text).get_all("Requires-Dist") or []


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


START_FAILED_NOTICE = """<style>
.cnnviz-start-failed { position: fixed; z-index: 1000; left: 50%; bottom: 16px; transform: translateX(-50%);
  display: flex; gap: 12px; align-items: flex-start; max-width: min(680px, 92vw); padding: 12px 16px;
  border-radius: 8px; background: #fff8e1; border: 1px solid #f0c36d; color: #3b2f00;
  font: 15px/1.45 system-ui, sans-serif; box-shadow: 0 4px 16px #0002; }
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
  text.textContent = "The live explainer could not start: the browser could not download or start Python for "
    + "this page (Pyodide and Panel come from cdn.jsdelivr.net and cdn.holoviz.org). What you see is the first "
    + "example as it was computed when the site was built. Check the internet connection and reload the page to "
    + "pick images and open the views.";
  const dismiss = document.createElement("button");
  dismiss.setAttribute("aria-label", "Dismiss this message");
  dismiss.textContent = "×";
  dismiss.addEventListener("click", () => note.remove());
  note.append(text, dismiss);
  document.body.append(note);
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


def explain_start_failures(page: Path, target: str) -> None:
    """Make a page whose Python cannot load or start say so in words (Panel's keep spinning over the preview)."""
    _hook_start(page, START_FAILURE_HOOKS[target], START_FAILED_NOTICE)
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


def _stage_training_record(weights: Path, stage_weights: Path) -> list[Path]:
    """Copy the model card and its epoch checkpoints, which the Lab's training timeline loads beside the weights."""
    from cnnviz.lab_state import model_card_path, read_history

    card = model_card_path(weights)
    if not card.is_file():
        return []
    checkpoints = [checkpoint.path for checkpoint in read_history(card).checkpoints]
    return [_copy(path, stage_weights / path.relative_to(card.parent)) for path in [card, *checkpoints]]


def _stage_gallery(data_dir: Path | None, stage_data: Path) -> list[Path]:
    """Copy the example photos and their index; none prepared means the site shows the generated probes."""
    from cnnviz.data import GALLERY_DIR_NAME, GALLERY_INDEX_NAME, default_data_dir, load_gallery

    gallery = Path(data_dir or default_data_dir()) / GALLERY_DIR_NAME
    entries = load_gallery(gallery.parent)
    if not entries:
        print(f"No example photos in {gallery}: the site will show generated probe images (see `cnnviz data`).")
        return []
    files = [gallery / GALLERY_INDEX_NAME, *(entry.path for entry in entries)]
    return [_copy(path, stage_data / GALLERY_DIR_NAME / path.name) for path in files]


def _prepare_out_dir(out: Path) -> Path:
    """An empty directory to write to; refuses to empty one that is not a previous export."""
    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        if not (out / "index.resources.zip").is_file():
            raise CnnvizError(f"{out} is not empty and is not a previous export; choose a new directory.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
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
