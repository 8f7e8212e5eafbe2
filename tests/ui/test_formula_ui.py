"""The formula views in headless Chromium: every number read off the page equals the engine's."""

from __future__ import annotations

import pytest
from pages import focused_element, open_app

from cnnviz.engine.explain import conv_step, pool_step, relu_step, softmax_terms

pytestmark = pytest.mark.ui


def shown(locator) -> float:
    """A displayed number, as the learner reads it."""
    return float(locator.inner_text().replace("−", "-").split()[0])


def assert_shown(locator, expected: float) -> None:
    """Equal to the engine's value to the precision on screen."""
    text = locator.inner_text().replace("−", "-").split()[0]
    decimals = len(text.partition(".")[2])
    assert abs(float(text) - expected) <= 0.5 * 10**-decimals + 1e-6, f"{text} shown for {expected}"


def position(page) -> tuple[int, int]:
    row, col = page.locator("[data-position]").get_attribute("data-position").split(",")
    return int(row), int(col)


def hover_cell(page, matrix: str, row: int, col: int, rows: int, cols: int) -> None:
    box = page.locator(f".fv-map-frame[data-matrix='{matrix}']").bounding_box()
    page.mouse.move(box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows)


def test_conv_formula_shows_the_engines_products_sum_bias_and_result(page, app, screenshot, wait_until):
    url, sessions = app.url, app.sessions
    open_app(page, url, "?layer=conv_1_2&neuron=3&view=formula&channel=4&row=10&col=20")
    page.locator(".fv-dialog[data-kind='conv2d']").wait_for()
    state = sessions[-1].state
    trace = state.trace
    assert position(page) == (10, 20)
    assert page.locator(".fv-formula math[display=block]").count() == 1  # MathML, typeset by the browser itself
    for matrix, (row, col) in [("sums", (0, 0)), ("sums", (59, 59)), ("input", (31, 7)), ("sums", (42, 13))]:
        size = (60, 60) if matrix == "sums" else (62, 62)
        hover_cell(page, matrix, row, col, *size)
        r, c = position(page)
        if matrix == "sums":
            assert (r, c) == (row, col)
        step = conv_step(trace, "conv_1_2", r, c, 3)
        products = page.locator(".fv-products .fv-product")
        for i in range(9):
            assert_shown(products.nth(i), step.products[i // 3, i % 3, 4])
        assert_shown(page.locator(".fv-arithmetic .fv-total"), step.channel_sums[4])
        chips = page.locator(".fv-join .fv-sum")
        for channel in range(10):
            assert_shown(chips.nth(channel), step.channel_sums[channel])
        assert_shown(page.locator(".fv-join .fv-bias"), step.bias)
        assert_shown(page.locator(".fv-join .fv-result"), step.result)
        # the two matrices stay in sync: the window on the input crop, the result cell on the output crop
        cell = page.locator(".fv-output-crop .fv-in")
        assert (int(cell.get_attribute("data-row")), int(cell.get_attribute("data-col"))) == (r, c)
        window = page.locator(".fv-input-crop .fv-in")
        assert (int(window.first.get_attribute("data-row")), int(window.first.get_attribute("data-col"))) == step.origin
    wait_until(lambda: (state.row, state.col) == position(page))  # the resting window reaches the server
    screenshot(page, "formula-conv")
    page.mouse.move(5, 890)
    page.keyboard.press("ArrowRight")
    r, c = position(page)
    page.keyboard.press("Space")
    page.wait_for_timeout(600)
    page.keyboard.press("Space")
    assert position(page) > (r, c)  # the sweep moved on, then paused
    assert page.locator(".fv-play").get_attribute("aria-pressed") == "false"
    # a modal dialog: Tab and Shift+Tab cycle through its own controls, never behind the backdrop
    for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:
        page.keyboard.press(key)
        assert focused_element(page).evaluate("node => Boolean(node.closest('.fv-dialog'))"), f"{key} left the dialog"
    page.keyboard.press("Escape")
    wait_until(lambda: state.level == "elastic")
    page.locator(".fv-backdrop").wait_for(state="hidden")


def test_relu_formula_opens_from_the_overview_and_shows_max_of_zero_and_x(page, app, screenshot, wait_until):
    url, sessions = app.url, app.sessions
    open_app(page, url)
    page.locator(".ov-tile[data-layer='relu_1_1'][data-index='2']").click()
    page.locator(".fv-dialog[data-kind='relu']").wait_for()
    trace = sessions[-1].state.trace
    for matrix, row, col in [("input", 0, 0), ("results", 30, 31), ("input", 61, 5), ("results", 17, 44)]:
        hover_cell(page, matrix, row, col, 62, 62)
        assert position(page) == (row, col)
        step = relu_step(trace, "relu_1_1", row, col, 2)
        assert_shown(page.locator(".fv-equation .fv-x"), step.x)
        assert_shown(page.locator(".fv-equation .fv-y"), step.y)
    screenshot(page, "formula-relu")
    # the info button closes the view and jumps to the article's section (its heading takes the focus)
    page.locator(".fv-info").click()
    wait_until(lambda: sessions[-1].state.level == "overview")
    wait_until(lambda: focused_element(page).get_attribute("id") == "article-relu")


def test_pool_formula_shows_the_window_and_its_maximum(page, app, screenshot):
    url, sessions = app.url, app.sessions
    open_app(page, url)
    page.locator(".ov-tile[data-layer='max_pool_1'][data-index='5']").click()
    page.locator(".fv-dialog[data-kind='maxpool2d']").wait_for()
    trace = sessions[-1].state.trace
    for matrix, row, col, size in [("results", 4, 9, 30), ("input", 51, 20, 60), ("results", 29, 0, 30)]:
        hover_cell(page, matrix, row, col, size, size)
        r, c = position(page)
        assert (r, c) == ((row, col) if matrix == "results" else (row // 2, col // 2))
        step = pool_step(trace, "max_pool_1", r, c, 5)
        terms = page.locator(".fv-equation .fv-term")
        for i in range(4):
            assert_shown(terms.nth(i), step.window[i // 2, i % 2])
        assert page.locator(".fv-equation .fv-term.fv-max").count() == 1
        assert terms.nth(2 * step.argmax[0] + step.argmax[1]).get_attribute("class").endswith("fv-max")
        assert_shown(page.locator(".fv-equation .fv-y"), step.result)
    screenshot(page, "formula-pool")


def test_softmax_formula_links_terms_and_logits_both_ways(page, app, screenshot, wait_until):
    url, sessions = app.url, app.sessions
    open_app(page, url, "?layer=softmax&neuron=0&view=formula")
    page.locator(".fv-dialog[data-kind='softmax']").wait_for()
    state = sessions[-1].state
    terms = softmax_terms(state.trace.logits)
    assert_shown(page.locator(".fv-softmax-result .fv-result"), terms.probabilities[0])
    assert_shown(page.locator(".fv-softmax-result .fv-total"), terms.total)
    for j in (3, 7):
        page.locator(f".fv-denominator .fv-exp[data-index='{j}']").hover()
        assert page.locator(".fv-logit.fv-linked .fv-logit-name").inner_text() == state.network.class_names[j]
        assert_shown(page.locator(".fv-logit.fv-linked .fv-logit-value"), terms.logits[j])
        assert_shown(page.locator(".fv-exp.fv-linked .fv-value"), terms.exps[j])
    page.locator(".fv-logit").nth(5).hover()
    assert page.locator(".fv-exp.fv-linked").get_attribute("data-index") == "5"
    screenshot(page, "formula-softmax")
    page.locator(".fv-logit").nth(5).click()
    wait_until(lambda: state.neuron == 5)
    page.locator(".fv-title", has_text=state.network.class_names[5]).wait_for()
    assert_shown(page.locator(".fv-softmax-result .fv-result"), terms.probabilities[5])
    page.locator(".fv-close").click()
    wait_until(lambda: state.level == "elastic")


@pytest.mark.parametrize(
    ("whatif", "slope", "equation_start", "relu_title", "pool", "pool_title"),
    [
        ("relu:0.1 pool:min", 0.1, "max(0.1 ×", "Leaky ReLU", "min", "Min pooling"),
        ("relu:1.0 pool:average", 1.0, "", "No activation", "mean", "Average pooling"),
    ],
)
def test_relu_and_pool_formulas_say_what_a_what_if_experiment_computes(
    page, app, screenshot, whatif, slope, equation_start, relu_title, pool, pool_title
):
    """Under an experiment the title, the equation, the plot and the numbers describe the changed layer."""
    url, sessions = app.url, app.sessions
    open_app(page, url, "?whatif=" + whatif.replace(" ", "%20"))
    page.locator(".ov-tile[data-layer='relu_1_2'][data-index='4']").click()
    page.locator(".fv-dialog[data-kind='relu']").wait_for()
    trace = sessions[-1].state.trace
    assert trace.network.layer("relu_1_2").negative_slope == slope
    hover_cell(page, "input", 10, 20, 60, 60)
    step = relu_step(trace, "relu_1_2", 10, 20, 4)
    equation = page.locator(".fv-equation").inner_text()
    assert page.locator(".fv-title").inner_text().startswith(relu_title)
    assert "max(0," not in equation and equation.startswith(equation_start)
    assert page.locator(".fv-equation .fv-x").count() == (1 if slope == 1.0 else 2)  # max(s × x, x) shows x twice
    if slope == 1.0:
        assert "max(" not in equation
    assert page.locator(".fv-curve").get_attribute("points").startswith(f"-1,{slope:g} ")  # the negative branch
    assert_shown(page.locator(".fv-equation .fv-y"), step.y)
    screenshot(page.locator(".fv-dialog"), f"formula-relu-{slope:g}")
    page.keyboard.press("Escape")
    page.locator(".fv-dialog[data-kind='relu']").wait_for(state="hidden")

    page.locator(".ov-tile[data-layer='max_pool_2'][data-index='3']").click()
    page.locator(".fv-dialog[data-kind='maxpool2d']").wait_for()
    hover_cell(page, "results", 5, 7, 13, 13)
    step = pool_step(trace, "max_pool_2", *position(page), 3)
    assert page.locator(".fv-title").inner_text().startswith(pool_title)
    assert page.locator(".fv-equation").inner_text().startswith(f"{pool}(")
    assert_shown(page.locator(".fv-equation .fv-y"), step.result)
    kept = page.locator(".fv-equation .fv-term.fv-max")
    if pool == "mean":
        assert kept.count() == 0  # the average keeps no single cell
    else:
        assert kept.count() == 1
        assert_shown(kept, step.result)  # the outlined cell is the smallest, the value kept
    screenshot(page.locator(".fv-dialog"), f"formula-pool-{pool}")
