"""notebooks/explainer.ipynb runs headless from top to bottom and shows the explainer inline."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnviz.resources import shared_network

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explainer.ipynb"
CELL_TIMEOUT = 240  # seconds; the first cell imports Panel and HoloViews in a cold kernel

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")


PANEL_OUTPUT = "application/vnd.holoviews_exec.v0+json"  # what a live Panel object displays as
# run in the kernel after the notebook: the stylesheet URLs on the internet of every model of every view shown
STYLESHEETS_FROM_THE_INTERNET = """
from bokeh.models import ImportedStyleSheet
from panel.io.state import state
print(sorted({
    sheet.url for _view, _root, document, _comm in state._views.values() for model in document.models
    for sheet in getattr(model, "stylesheets", None) or []
    if isinstance(sheet, ImportedStyleSheet) and sheet.url.startswith("http")
}))
"""


def outputs_of(notebook, source_start: str) -> list[dict]:
    (cell,) = (cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.startswith(source_start))
    return cell.outputs


def panel_outputs_of(notebook, source_start: str) -> list[dict]:
    return [output["data"] for output in outputs_of(notebook, source_start) if PANEL_OUTPUT in output.get("data", {})]


def test_notebook_is_stored_without_outputs():
    """Outputs carry megabytes of page data and change on every run: they belong in nobody's diff."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(
        not cell.get("outputs") and not cell.get("execution_count") for cell in notebook.cells if "outputs" in cell
    )


def test_notebook_runs_headless_and_shows_the_explainer(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    notebook.cells.append(nbformat.v4.new_code_cell(STYLESHEETS_FROM_THE_INTERNET))
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails
    # every view the kernel drew, after Run All's updates too, carries its stylesheets inline
    assert "".join(output.get("text", "") for output in notebook.cells.pop().outputs).strip() == "[]"

    (shown,) = panel_outputs_of(notebook, "explainer = Explainer()")
    page = shown["text/html"]
    assert "OverviewKeys" in page and "Pick an image" in page
    assert all(name in page for name in shared_network().class_names)

    printed = "".join(output.get("text", "") for output in outputs_of(notebook, "trace = explainer.trace"))
    assert "conv_1_2 output: (60, 60, 10)" in printed
    assert "prediction: " in printed

    assert len(panel_outputs_of(notebook, 'activations = trace["conv_1_2"]')) == 1


def test_narrow_screen_rules_also_follow_the_cell_width():
    from cnnviz.notebook import rules_for_the_cell

    css = "@media (max-width: 1199px) { :host { flex-direction: column !important; } .a { b: c; } }\n.x { y: z; }"
    assert rules_for_the_cell(css) == (
        css + "\n@container (max-width: 1199px) { :host { flex-direction: column !important; } .a { b: c; } }"
    )
    assert (
        rules_for_the_cell(".x { y: z; } @media print { .x { y: w; } }") == ".x { y: z; } @media print { .x { y: w; } }"
    )


def test_stylesheets_panel_would_link_from_its_cdn_come_inline():
    import base64

    from bokeh.models import ImportedStyleSheet
    from panel.io.resources import CDN_DIST, DIST_DIR, LOCAL_DIST

    from cnnviz.notebook import _inline_after_patch

    for url in (f"{CDN_DIST}bundled/theme/native.css", f"{LOCAL_DIST}css/loading.css"):
        sheet = ImportedStyleSheet(url=url)
        _inline_after_patch(sheet, CDN_DIST)
        prefix = "data:text/css;base64,"
        assert sheet.url.startswith(prefix), url
        shipped = DIST_DIR / url.removeprefix(CDN_DIST).removeprefix(LOCAL_DIST)
        assert base64.b64decode(sheet.url.removeprefix(prefix)).decode() == shipped.read_text(encoding="utf-8")
    elsewhere = ImportedStyleSheet(url="https://example.org/theirs.css")
    _inline_after_patch(elsewhere, CDN_DIST)
    assert elsewhere.url == "https://example.org/theirs.css"  # not Panel's: left alone


def test_held_messages_are_sent_once_in_order_when_the_comm_opens_on_another_thread():
    """The output's comm may open on a kernel subshell's thread while a cell still sends (JupyterLab 4.4+)."""
    import threading

    from cnnviz.notebook import CommHeldUntilRendered

    sent: list = []

    class Opened:
        def send(self, data, metadata=None, buffers=()):
            sent.append(data)

    comm = CommHeldUntilRendered()
    comm._comm_opened = Opened()
    # JupyterComm.init would open an ipykernel comm: stand in for it

    def fake_init(self) -> None:
        self._comm = self._comm_opened

    jupyter_comm = CommHeldUntilRendered.__mro__[1]
    original = jupyter_comm.init
    jupyter_comm.init = fake_init
    try:
        sender = threading.Thread(target=lambda: [comm.send(index) for index in range(2000)])
        sender.start()
        comm.init()
        sender.join()
    finally:
        jupyter_comm.init = original
    assert sent == list(range(2000))


def test_the_views_comm_messages_are_handled_on_the_main_shell():
    """ipykernel 7 routes a comm's messages by its `_reply_subshell_for`: Panel's handler stays off subshells."""
    from cnnviz.notebook import ClientCommOnMainShell, _on_the_main_shell

    assert _on_the_main_shell({"data": 1}, "a-subshell-id") is None
    assert "_handle_open" in ClientCommOnMainShell.__dict__
