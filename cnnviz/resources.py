"""What every session shares, loaded once per process: the trained network and the example images."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

from cnnviz.data import DataError
from cnnviz.engine import Network
from cnnviz.errors import CnnvizError
from cnnviz.examples import ExampleCatalog, catalog_for, gallery_folder
from cnnviz.offload import threads_available

Result = TypeVar("Result")
# A file on a network drive that stops answering blocks its reader for good; the server gives up after this long
# ($CNNVIZ_FILE_TIME_LIMIT seconds, default 15).
FILE_TIME_LIMIT_SECONDS = float(os.environ.get("CNNVIZ_FILE_TIME_LIMIT", "15"))
_still_reading: dict[str, threading.Thread] = {}


class SlowFileError(CnnvizError, TimeoutError):
    """A file read did not finish within the time limit."""


def within_time_limit(function: Callable[..., Result], *args: object, what: str) -> Result:
    """`function(*args)`, which reads `what`, given FILE_TIME_LIMIT_SECONDS (raises SlowFileError).

    The read runs in a daemon thread, since a blocked read cannot be interrupted; the caller stops waiting.
    While that read is still stuck, asking again fails at once instead of stalling every new session.
    Under Pyodide (no threads, files served with the page) it simply runs.
    """
    if not threads_available():
        return function(*args)
    stuck = _still_reading.get(what)
    if stuck is not None and stuck.is_alive():
        raise SlowFileError(f"Reading {what} still has not finished; is it on a drive that does not answer?")
    outcome: dict[str, object] = {}

    def read() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    reader = threading.Thread(target=read, name=f"cnnviz-read {what}", daemon=True)
    reader.start()
    reader.join(FILE_TIME_LIMIT_SECONDS)
    if reader.is_alive():
        _still_reading[what] = reader
        raise SlowFileError(
            f"Reading {what} took over {FILE_TIME_LIMIT_SECONDS:g} seconds, so cnnviz stopped waiting; "
            "is it on a drive that does not answer?"
        )
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


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


SHARED_TRACES_MEGABYTES = 32
"""The shared network keeps the traces of the images traced last, up to this much (Tiny VGG: ~40 images, its whole
gallery): a class clicking through the examples computes each one's forward pass once."""


@cache
def shared_network(path: Path | None = None) -> Network:
    """The trained network, read once and shared read-only by every session (raises WeightsError)."""
    path = path or default_weights_path()
    network = within_time_limit(Network.load, path, what=f"the weights file {path}")
    network.keep_recent_traces(SHARED_TRACES_MEGABYTES)
    return network


def shared_catalog(data_dir: Path | None = None) -> ExampleCatalog:
    """The shared network's example images (the gallery beside its weights, if any), built once and shared
    read-only by every session (raises DataError)."""
    return _read_catalog(shared_network(), gallery_folder(data_dir, default_weights_path()))


@cache  # every page load asks: read once, without a reader thread per page (a failed read is not kept: it retries)
def _read_catalog(network: Network, folder: Path) -> ExampleCatalog:
    try:
        return within_time_limit(catalog_for, network, folder, what=f"the example photos in {folder}")
    except OSError as error:  # e.g. a folder cnnviz may not read
        raise DataError(f"cnnviz cannot read the data folder {folder} ({error.strerror or error}).") from None


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
