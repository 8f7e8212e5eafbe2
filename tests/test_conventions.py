"""One way to say things across the app: colours (blue positive, red negative), numbers and articles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import pytest

import cnnviz
from cnnviz.app import Explainer
from cnnviz.colors import DIVERGING, color_ranges, layer_groups
from cnnviz.engine import tiny_vgg
from cnnviz.examples import build_catalog, with_article
from cnnviz.plots.lab import saliency_map
from cnnviz.plots.overview import number_text
from cnnviz.training.architecture import Architecture
from cnnviz.views.lab import Workbench, kernels_caption
from cnnviz.views.tour import tour_steps

NETWORK = tiny_vgg(seed=1)


def test_layer_mode_gives_every_layer_its_own_range():
    trace = NETWORK.trace(np.random.default_rng(0).random((64, 64, 3), np.float32))
    groups = layer_groups(NETWORK, "layer")
    assert groups == [[name] for group in layer_groups(NETWORK, "global") for name in group]
    ranges = color_ranges(trace, "layer")
    for (name,) in groups:
        assert ranges[name] == pytest.approx(float(np.abs(trace[name]).max()) or 1.0)


def test_saliency_uses_the_apps_diverging_colours_blue_for_raising_the_score():
    strength = np.linspace(-1, 1, 64 * 64).reshape(64, 64)
    overlay = saliency_map(np.zeros((64, 64, 3)), strength, "koala")
    options = hv.Store.lookup_options("bokeh", overlay.Image.II, "style").kwargs
    assert options["cmap"] == DIVERGING  # red (negative) - white - blue (positive), as in every other view


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (-0.001, 2, "0.00"),
        (-0.004, 2, "0.00"),
        (0.0, 2, "0.00"),
        (-0.04, 1, "0.0"),
        (-1.5, 2, "−1.50"),
        (2.345, 1, "2.3"),
    ],
)
def test_numbers_never_read_minus_zero(value, digits, text):
    assert number_text(value, digits) == text


@pytest.mark.parametrize(
    ("noun", "text"),
    [("espresso", "an espresso"), ("orange", "an orange"), ("koala", "a koala"), ("lifeboat", "a lifeboat")],
)
def test_captions_use_the_right_article(noun, text):
    assert with_article(noun) == text


# -- the browser side stays small (issue 15): keyboard/ARIA, transitions, and no model knowledge ------------------
CNNVIZ = Path(cnnviz.__file__).parent
JS_BUDGET = 800  # lines of browser code in the whole package
JS_BUDGET_BESIDE_PANES = 550  # of which everything but the overview and elastic panes
PANES = ("overview", "elastic")  # rebuilt in parallel (issue 15): they bring their own budget


def code_lines(text: str) -> int:
    """Lines of code: neither blank nor only a comment."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith(("//", "/*", "*")))


def _strings(node: ast.AST) -> list[str]:
    """The literal text of a string expression (constants joined with +); file reads contribute nothing."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [] if node.value.endswith(".js") else [node.value]  # a file name, counted as the file
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _strings(node.left) + _strings(node.right)
    return []


def browser_code() -> dict[str, int]:
    """Lines of browser code per place: every .js file, and JavaScript written inside Python (`_esm = "…"`,
    `SOMETHING_JS = "…"`)."""
    found = {str(path.relative_to(CNNVIZ)): code_lines(path.read_text()) for path in sorted(CNNVIZ.rglob("*.js"))}
    for path in sorted(CNNVIZ.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    name = getattr(target, "id", "")
                    if (name == "_esm" or name.endswith("_JS")) and node.value is not None:
                        lines = sum(code_lines(text) for text in _strings(node.value))
                        if lines:
                            found[f"{path.relative_to(CNNVIZ)}:{node.lineno} {name}"] = lines
    return found


def test_the_browser_code_beside_the_overview_and_elastic_panes_stays_small():
    found = {place: lines for place, lines in browser_code().items() if not any(pane in place for pane in PANES)}
    assert found, "the count found no browser code at all"
    assert sum(found.values()) <= JS_BUDGET_BESIDE_PANES, found


OLD_ELASTIC_JS = CNNVIZ / "views" / "elastic.js"


@pytest.mark.skipif(
    OLD_ELASTIC_JS.exists() and code_lines(OLD_ELASTIC_JS.read_text()) > 300,
    reason="the hand-drawn elastic.js is still here: its replacement (issue 15, wave 2) brings the total down",
)
def test_all_browser_code_stays_within_its_budget():
    found = browser_code()
    assert sum(found.values()) <= JS_BUDGET, found


def test_no_component_reaches_into_panels_private_priority_hook():
    """Clicks reach Python through documented APIs (`send_msg` / `_handle_msg`, streams), not `_priority_changes`."""
    users = {str(path.relative_to(CNNVIZ)) for path in CNNVIZ.rglob("*.py") if "_priority_changes" in path.read_text()}
    assert not users, sorted(users)


# -- texts name the explained network's own sizes (issues 15, 16) ------------------------------------------------
def all_html(viewable) -> str:
    """Every HTML text a view shows (its HTML panes, in order)."""
    return "\n".join(str(pane.object) for pane in pn.panel(viewable).select(pn.pane.HTML))


def test_the_texts_name_the_sizes_of_the_network_they_explain(tmp_path):
    network = Architecture(kernel_size=5).engine_network((28, 28, 1), ("cats", "dogs"), seed=1)
    explainer = Explainer(network, build_catalog(tmp_path, network))
    texts = {
        "controls": all_html(explainer.controls),
        "article": all_html(explainer.article),
        "tour": " ".join(step.text for step in tour_steps(explainer.state)),
        "lab": all_html(Workbench(explainer.state, pn.Card()).tabs) + kernels_caption(network),
    }
    assert "What the network sees (28×28)" in texts["controls"]
    assert "28 × 28" in texts["tour"]
    assert "kernels (5×5, grey)" in texts["lab"]
    article = texts["article"].replace("\u00a0", " ")
    for fact in ("28 × 28 × 1 = 784", "knows 2 classes: cats and dogs", "5 × 5", "a grey picture: one grid"):
        assert fact in article, fact
    for place, text in texts.items():
        text = text.replace("\u00a0", " ")
        for other_network in ("64 × 64", "64×64", "Tiny VGG", "10 classes", "3 × 3", "3×3", "19,920", "koala"):
            assert other_network not in text, f"{place} says {other_network!r}"
    conv = next(info.name for info in network.infos if info.kind == "conv2d")
    explainer.state.select(conv, 0, "formula")
    kernel = re.search(r'<table class="fv-grid fv-kernel">(.*?)</table>', explainer.formula._numbers.pane.object)
    assert kernel is not None and kernel[1].count("<tr>") == 5 and kernel[1].count("<td") == 25
