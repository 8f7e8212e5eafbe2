"""What every session shares, loaded once per process: the trained network and the example images."""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from cnnviz.engine import Network
from cnnviz.examples import ExampleCatalog, catalog_for, gallery_folder

WEIGHTS_FILE = "tiny_vgg.npz"
_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_path(name: str) -> Path:
    """A folder cnnviz ships beside its code: `weights` or `apps`.

    An installed cnnviz carries them inside the package (cnnviz/weights, cnnviz/apps: see pyproject.toml); a
    checkout (and an editable install of it) keeps them at the top of the checkout, beside cnnviz/.
    """
    installed = _PACKAGE_DIR / name
    return installed if installed.is_dir() else _PACKAGE_DIR.parent / name


def app_entry_point() -> Path:
    """The script `panel serve` runs: apps/explainer.py of the checkout, or its installed copy."""
    return shipped_path("apps") / "explainer.py"


def default_weights_path() -> Path:
    """$CNNVIZ_WEIGHTS, else the shipped weights, else ./weights (where the static export puts them)."""
    if os.environ.get("CNNVIZ_WEIGHTS"):
        return Path(os.environ["CNNVIZ_WEIGHTS"])
    shipped = shipped_path("weights") / WEIGHTS_FILE
    return shipped if shipped.is_file() else Path.cwd() / "weights" / WEIGHTS_FILE


@cache
def shared_network(path: Path | None = None) -> Network:
    """The trained network, read once and shared read-only by every session (raises WeightsError)."""
    return Network.load(path or default_weights_path())


def shared_catalog(data_dir: Path | None = None) -> ExampleCatalog:
    """The shared network's example images (the gallery beside its weights, if any), built once and shared."""
    return catalog_for(shared_network(), gallery_folder(data_dir, default_weights_path()))


def single_threaded_blas() -> None:
    """Run NumPy's matrix products on one thread in this process.

    The engine's products are tiny (at most 3,600 × 90 by 90 × 10): splitting them over threads costs more than
    it saves, and on a busy server the threads wait for each other. Measured here with other jobs running: one
    trace took 16 ms with OpenBLAS's default threads and 1.5 ms with one. Called for served apps only, so a
    notebook user's own NumPy work keeps its threads.
    """
    if sys.platform == "emscripten":  # Pyodide: one thread anyway, and no native libraries to look for
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
