"""The flatten and softmax elastic views served on their own, in headless Chromium, as a person uses them.

The page holds both views over one session state (as the explainer's elastic container does); the test points,
clicks, taps and presses keys for real, converting the views' own plot coordinates (`FlattenLayout`, softmax
rows) to pixels of the plot's canvas, and checks what the session's state and the page show.
"""

from __future__ import annotations

from types import SimpleNamespace

import panel as pn
import pytest
from pages import gallery_shot, text_problems

from cnnviz.engine.explain import dense_step, flatten_index
from cnnviz.examples import build_catalog
from cnnviz.plots.elastic_dense import SOFTMAX_WIDTH
from cnnviz.plots.formula import format_number
from cnnviz.resources import shared_network
from cnnviz.state import ExplainerState
from cnnviz.views.elastic_dense import FlattenElastic, SoftmaxElastic

pytestmark = pytest.mark.ui

VIEWPORTS = [(1440, 900), (390, 844)]


@pytest.fixture
def served(serve):
    """Serve both views; `served.sessions` holds each page's (state, flatten view, softmax view)."""
    network = shared_network()
    catalog = build_catalog(network=network)
    sessions = []

    def page_factory():
        state = ExplainerState(network, catalog)
        flatten, softmax = FlattenElastic(state), SoftmaxElastic(state)
        state.select(network.infos[-2].name, 2, level="elastic")
        sessions.append((state, flatten, softmax))
        return pn.Column(flatten, softmax, sizing_mode="stretch_width", stylesheets=[":host { min-width: 0 }"])

    return SimpleNamespace(url=serve(page_factory), sessions=sessions)


def canvas_point(page, width: float, height: float, x: float, y: float) -> tuple[float, float]:
    """Page pixel of plot point (x, y) on the visible plot whose data spans [0, width] × [−height, 0]."""
    canvas = page.locator(".bk-Canvas >> visible=true").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    scroller = page.locator(".scrollable-horizontal >> visible=true")
    if scroller.count():  # a narrow screen scrolls the flatten picture sideways: bring the point into view
        scroller.first.evaluate("(node, left) => { node.scrollLeft = left; }", x / width * box["width"] - 150)
        box = canvas.bounding_box()
    return box["x"] + x / width * box["width"], box["y"] - y / height * box["height"]


def open_page(browser, served, width: int, height: int, touch: bool = False):
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=touch)
    page = context.new_page()
    page.goto(served.url)
    page.locator(".ed-captions >> visible=true").first.wait_for()
    page.locator(".bk-Canvas >> visible=true").first.wait_for()
    return context, page


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_hovering_a_pooled_pixel_follows_it_and_a_click_on_the_score_opens_softmax(
    browser, served, wait_until, width, height
):
    context, page = open_page(browser, served, width, height)
    try:
        state, flatten, _ = served.sessions[-1]
        layout = flatten.layout
        rows, cols, channels = layout.shape
        row, col, channel = rows // 2, cols // 3, channels - 1
        x0, y0, x1, y1 = layout.cell_box(row, col, channel)
        page.mouse.move(*canvas_point(page, layout.width, layout.height, (x0 + x1) / 2, (y0 + y1) / 2))
        index = flatten_index(layout.shape, row, col, channel)
        wait_until(lambda: flatten.inspected == index)
        step = dense_step(state.trace, flatten.layer, 2)
        element = page.locator(".ed-element >> visible=true")
        wait_until(lambda: f"element {index}:" in element.inner_text())
        assert format_number(float(step.products[index])) in element.inner_text()
        assert page.locator(".ed-score").first.inner_text() == format_number(step.result)
        gallery_shot(page, f"elastic-flatten-{width}x{height}", full_page=True)
        problems = text_problems(page)
        assert problems == [], "\n".join(problems)
        x0, y0, x1, y1 = layout.score_box
        page.mouse.click(*canvas_point(page, layout.width, layout.height, (x0 + x1) / 2, (y0 + y1) / 2))
        wait_until(lambda: (state.layer, state.level) == (state.network.infos[-1].name, "elastic"))
        page.get_by_role("button", name=state.network.class_names[0], exact=True).wait_for()
        gallery_shot(page, f"elastic-softmax-{width}x{height}", full_page=True)
        problems = text_problems(page)
        assert problems == [], "\n".join(problems)
    finally:
        context.close()


def test_the_keyboard_reaches_softmax_mode_and_opens_a_class_formula_with_enter(browser, served, wait_until):
    context, page = open_page(browser, served, 1440, 900)
    try:
        state = served.sessions[-1][0]
        button = page.get_by_role("button", name="Softmax →")
        button.focus()
        page.keyboard.press("Enter")
        wait_until(lambda: (state.layer, state.level) == (state.network.infos[-1].name, "elastic"))
        name = state.network.class_names[4]
        page.get_by_role("button", name=name, exact=True).wait_for()
        page.get_by_role("button", name=name, exact=True).focus()
        page.keyboard.press("Enter")
        wait_until(lambda: (state.neuron, state.level) == (4, "formula"))
    finally:
        context.close()


def test_a_touch_tap_on_a_logit_opens_its_formula_on_a_phone(browser, served, wait_until):
    context, page = open_page(browser, served, 390, 844, touch=True)
    try:
        state, _, softmax = served.sessions[-1]
        page.get_by_role("button", name="Softmax →").tap()
        wait_until(lambda: state.level == "elastic" and state.layer == state.network.infos[-1].name)
        page.get_by_role("button", name=state.network.class_names[0], exact=True).wait_for()
        classes = softmax.explained.count
        page.touchscreen.tap(*canvas_point(page, SOFTMAX_WIDTH, classes, 0.6, -(classes - 0.5)))
        wait_until(lambda: (state.neuron, state.level) == (classes - 1, "formula"))
        problems = text_problems(page)
        assert problems == [], "\n".join(problems)
    finally:
        context.close()
