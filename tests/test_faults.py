"""Start-up faults say what is wrong: missing or damaged weights (CLI and `panel serve`), missing example photos.

Each case runs the real command in a subprocess, so the per-process caches of weights and examples start empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bokeh.client import pull_session
from servers import free_port, wait_until_answering

import cnnviz.app  # noqa: F401  (registers the app's Bokeh models, to read a served document)
from cnnviz.examples import ADD_PHOTOS_HINT

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights" / "tiny_vgg.npz"


@pytest.fixture
def bad_weights(tmp_path) -> dict[str, tuple[Path, str]]:
    """Weights files that must not load, with the words their message must contain."""
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 this zip stops here")
    truncated = tmp_path / "truncated.npz"
    if WEIGHTS.is_file():
        truncated.write_bytes(WEIGHTS.read_bytes()[:2000])
    text = tmp_path / "notes.npz"
    text.write_text("a text file, renamed")
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04")
    return {
        "missing": (tmp_path / "missing.npz", "Weights file not found"),
        "damaged": (damaged, "is damaged or not a cnnviz .npz file"),
        "text": (text, "is damaged or not a cnnviz .npz file (it is no zip archive)"),  # numpy spoke of pickles
        "model": (model, f"is a model file, not cnnviz weights: import it first (cnnviz import {model})"),
        **({"truncated": (truncated, "is damaged or not a cnnviz .npz file")} if WEIGHTS.is_file() else {}),
    }


@pytest.mark.parametrize("case", ["missing", "damaged", "truncated", "text", "model"])
def test_cnnviz_serve_refuses_bad_weights_with_a_clear_message(bad_weights, case):
    if case not in bad_weights:
        pytest.skip(f"needs {WEIGHTS} to make a truncated copy")
    path, words = bad_weights[case]
    result = subprocess.run(
        [sys.executable, "-m", "cnnviz.cli", "serve", "--weights", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("cnnviz serve: ") and words in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr
    assert "Serving" not in result.stdout


def served_document(url: str) -> str:
    """What a browser would receive from `url`: every model's properties, as JSON text."""
    with pull_session(url=url) as session:
        models = session.document.models
        return json.dumps([model.properties_with_values(include_defaults=False) for model in models], default=str)


@pytest.fixture
def panel_serve() -> Iterator:
    """`panel_serve(**env)` runs `panel serve apps/explainer.py`; returns (one session's document as JSON, the log)."""
    processes: list[subprocess.Popen] = []

    def run(**env: str) -> tuple[str, str]:
        port = free_port()
        command = [sys.executable, "-m", "panel", "serve", "apps/explainer.py", "--port", str(port)]
        command += ["--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
        process = subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        processes.append(process)
        wait_until_answering(f"http://127.0.0.1:{port}/liveness", process, 90, "panel serve")
        # in a thread: Bokeh's client runs its own event loop, and the UI tests' Playwright may own this thread's
        with ThreadPoolExecutor(1) as pool:
            page = pool.submit(served_document, f"http://127.0.0.1:{port}/explainer").result()
        process.terminate()
        return page, process.communicate(timeout=30)[0]

    yield run
    for process in processes:
        if process.poll() is None:
            process.kill()


def test_a_session_built_when_its_websocket_arrives_takes_no_style_from_the_internet(panel_serve):
    """Every tab's session under `cnnviz serve` is built when its websocket arrives (the HTML comes from one kept
    session), as `served_document` builds this one; Panel pointed such a session's stylesheets at its CDN, and a
    classroom without internet lost Panel's styles."""
    page, _log = panel_serve()
    assert "static/extensions/panel/" in page
    assert "cdn.holoviz.org" not in page


def test_panel_serve_with_bad_weights_shows_why_instead_of_a_traceback(bad_weights, panel_serve):
    for case, (path, words) in bad_weights.items():
        page, log = panel_serve(CNNVIZ_WEIGHTS=str(path))
        assert "cnnviz cannot start" in page and words in page, case
        assert f"cnnviz cannot start: {'Weights file not found' if case == 'missing' else 'Weights file'}" in log
        assert "Traceback" not in log, case


def test_without_example_photos_the_app_runs_on_probes_and_says_how_to_add_photos(tmp_path, panel_serve):
    if not WEIGHTS.is_file():
        pytest.skip(f"needs the trained weights at {WEIGHTS}")
    page, log = panel_serve(CNNVIZ_DATA_DIR=str(tmp_path))
    assert "No example photos are prepared yet" in page and "cnnviz data --source" in page
    assert ADD_PHOTOS_HINT.startswith("No example photos are prepared yet")
    assert "probe-" in page  # the gallery offers the generated probe images
    assert "Traceback" not in log and "cannot start" not in page


# -- every shared resource damaged, missing or blocking: a sentence in the page and in `cnnviz serve` ----------------
GALLERY_ENTRY = {"file": "koala_1.jpg", "label": "koala", "class_index": 5, "source": "val_1.JPEG"}


def weights_with_card(folder: Path, card: str) -> Path:
    """A copy of the weights with the given model card text beside it."""
    folder.mkdir()
    weights = folder / "tiny_vgg.npz"
    weights.write_bytes(WEIGHTS.read_bytes())
    weights.with_suffix(".json").write_text(card)
    return weights


def data_with_index(folder: Path, index: str) -> Path:
    (folder / "gallery").mkdir(parents=True)
    (folder / "gallery" / "index.json").write_text(index)
    return folder


def blocking_gallery(folder: Path) -> Path:
    """A gallery whose photo is a FIFO nobody writes to: reading it blocks, like a hung network drive."""
    data_with_index(folder, json.dumps([GALLERY_ENTRY]))
    os.mkfifo(folder / "gallery" / GALLERY_ENTRY["file"])
    return folder


@pytest.fixture
def bad_resources(tmp_path) -> dict[str, tuple[dict[str, str], str]]:
    """Environment for each damaged resource that stops the app, with the words its message must contain."""
    if not WEIGHTS.is_file():
        pytest.skip(f"needs the trained weights at {WEIGHTS}")
    card_with_bad_types = json.dumps({"checkpoints": [{"epoch": "one", "file": "x.npz", "test_top1": 0.5}]})
    return {
        "model card not JSON": (
            {"CNNVIZ_WEIGHTS": str(weights_with_card(tmp_path / "a", "{ this is not json"))},
            "The model card",
        ),
        "model card with wrong types": (
            {"CNNVIZ_WEIGHTS": str(weights_with_card(tmp_path / "b", card_with_bad_types))},
            "The model card",
        ),
        "gallery photo that blocks": (
            {"CNNVIZ_DATA_DIR": str(blocking_gallery(tmp_path / "e")), "CNNVIZ_FILE_TIME_LIMIT": "2"},
            "took over 2 seconds, so cnnviz stopped waiting",
        ),
    }


@pytest.fixture
def bad_gallery_indexes(tmp_path) -> dict[str, dict[str, str]]:
    """A damaged gallery index costs only the photos: the app says why and offers the probe images."""
    return {
        "gallery index not JSON": {"CNNVIZ_DATA_DIR": str(data_with_index(tmp_path / "c", "[{"))},
        "gallery index of the wrong shape": {
            "CNNVIZ_DATA_DIR": str(data_with_index(tmp_path / "d", json.dumps([{"file": 3}])))
        },
    }


def test_cnnviz_serve_names_every_damaged_or_blocking_resource(bad_resources):
    for case, (env, words) in bad_resources.items():
        result = subprocess.run(
            [sys.executable, "-m", "cnnviz.cli", "serve", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
        )
        assert result.returncode == 2, (case, result.stderr)
        assert result.stderr.startswith("cnnviz serve: ") and words in result.stderr, case
        assert "Traceback" not in result.stderr and "Serving" not in result.stdout, case


def test_cnnviz_serve_says_why_a_damaged_gallery_is_not_shown_and_serves_the_probes(bad_gallery_indexes):
    for case, env in bad_gallery_indexes.items():
        process = subprocess.Popen(
            [sys.executable, "-m", "cnnviz.cli", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
        )
        said = []
        try:
            for line in process.stdout:  # up to the line that says it serves (or the end, if it stopped)
                said.append(line)
                if line.startswith("Serving"):
                    break
        finally:
            process.kill()
            process.communicate(timeout=30)
        output = "".join(said)
        assert "is malformed" in output, (case, output)
        assert output.splitlines()[-1].startswith("Serving") and "Traceback" not in output, (case, output)


def test_panel_serve_shows_why_for_every_damaged_or_blocking_resource(bad_resources, panel_serve):
    for case, (env, words) in bad_resources.items():
        page, log = panel_serve(**env)
        assert "cnnviz cannot start" in page and words in page, case
        assert "cnnviz cannot start" in log and "Traceback" not in log, case


def test_panel_serve_says_why_a_damaged_gallery_is_not_shown(bad_gallery_indexes, panel_serve):
    page, log = panel_serve(**bad_gallery_indexes["gallery index not JSON"])
    assert "is malformed" in page and "probe-" in page, "the page says why and offers the probe images"
    assert "cnnviz cannot start" not in page and "Traceback" not in log


def test_an_unreadable_data_folder_is_a_sentence(monkeypatch, tmp_path):
    from cnnviz import resources
    from cnnviz.data import DataError

    def refuse(_network: object, _data_dir: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(resources, "catalog_for", refuse)
    with pytest.raises(DataError, match=f"cannot read the data folder {tmp_path} \\(Permission denied\\)"):
        resources.shared_catalog(tmp_path)


def test_a_read_that_blocks_gives_up_and_later_calls_fail_at_once(monkeypatch, tmp_path):
    from cnnviz import resources

    fifo = tmp_path / "hung.npz"
    os.mkfifo(fifo)
    monkeypatch.setattr(resources, "FILE_TIME_LIMIT_SECONDS", 0.2)
    try:
        # the second call does not wait again while the first read is stuck
        for words in ("so cnnviz stopped waiting", "still has not finished"):
            with pytest.raises(resources.SlowFileError, match=words):
                resources.within_time_limit(Path.read_bytes, fifo, what=f"the file {fifo}")
        assert resources._still_reading[f"the file {fifo}"].is_alive()
    finally:
        with open(fifo, "wb"):  # a writer that closes at once: the stuck read ends
            pass


def test_websocket_pings_close_half_open_connections_under_both_servers(monkeypatch):
    """`panel serve` gets the ping settings through the handler's properties, `cnnviz serve` as server settings."""
    import argparse

    import panel as pn
    from bokeh.server.views.ws import WSHandler

    from cnnviz import serve

    monkeypatch.setattr(WSHandler, "ping_interval", WSHandler.ping_interval)  # restored after the test
    monkeypatch.setattr(WSHandler, "ping_timeout", WSHandler.ping_timeout)
    serve.close_half_open_connections()

    class Handler(WSHandler):
        def __init__(self, settings: dict) -> None:  # no connection: only the settings matter here
            self._settings = settings

        settings = property(lambda handler: handler._settings)

    assert (Handler({}).ping_interval, Handler({}).ping_timeout) == (20, 30)
    given = Handler({"websocket_ping_interval": 5, "websocket_ping_timeout": 7})
    assert (given.ping_interval, given.ping_timeout) == (5, 7)

    if not WEIGHTS.is_file():
        pytest.skip(f"needs the trained weights at {WEIGHTS}")
    served: dict = {}
    scheduled: list[tuple] = []

    class NotListening:  # what pn.serve(start=False) returns, minus the listening
        port = 0
        start = staticmethod(lambda: None)
        io_loop = argparse.Namespace(start=lambda: None, add_callback=lambda *call: scheduled.append(call))

    def record(*_args, **kwargs) -> NotListening:
        served.update(kwargs)
        return NotListening()

    monkeypatch.setattr(pn, "serve", record)
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve.run(parser.parse_args(["--port", "0", "--address", "127.0.0.1"])) == 0
    assert served["websocket_ping_interval"] == 20 and served["websocket_ping_timeout"] == 30
    # and, once listening, the session kept for every tab's HTML is built before any student comes
    assert scheduled == [(serve.build_the_kept_session, "http://127.0.0.1:0/explainer")]


def test_websocket_messages_are_compressed_unless_the_server_was_given_a_level(monkeypatch):
    """Neither server compresses its websocket messages by default; a level given (`--websocket-compression-level`)
    is kept."""
    from bokeh.server.views.ws import WSHandler

    from cnnviz import serve

    monkeypatch.setattr(WSHandler, "get_compression_options", WSHandler.get_compression_options)  # restored after
    serve.compress_websocket_messages()

    class Handler(WSHandler):
        def __init__(self, level: int | None) -> None:  # no connection: only the level given matters here
            self._compression_level, self._mem_level = level, None

    assert Handler(None).get_compression_options() == {"compression_level": serve.WEBSOCKET_COMPRESSION_LEVEL}
    assert Handler(6).get_compression_options()["compression_level"] == 6
