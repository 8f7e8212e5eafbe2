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
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails

    (shown,) = panel_outputs_of(notebook, "explainer = Explainer()")
    page = shown["text/html"]
    assert "OverviewOverlay" in page and "Pick an image" in page
    assert all(name in page for name in shared_network().class_names)

    printed = "".join(output.get("text", "") for output in outputs_of(notebook, "trace = explainer.trace"))
    assert "conv_1_2 output: (60, 60, 10)" in printed
    assert "prediction: " in printed

    assert len(panel_outputs_of(notebook, 'activations = trace["conv_1_2"]')) == 1
