"""The conv elastic view in headless Chromium: open it, point, watch the sweep, open a formula, leave."""

from __future__ import annotations

import numpy as np
import pytest
from pages import focused_element, open_app, pixels, text_problems

from cnnviz.engine.explain import conv_channel_results
from cnnviz.plots.elastic import VIEW_HEIGHT, VIEW_WIDTH, cell_box
from cnnviz.views.elastic import MIN_PICTURE_WIDTH

pytestmark = pytest.mark.ui


def conv_view(app):
    return app.sessions[-1].elastic.panes["conv2d"]


def wait_open(page) -> None:
    """Until the view's heading and its drawn picture are on screen."""
    page.locator(".el-title").wait_for()
    canvas = page.locator(".el-scroll canvas").first  # Playwright's CSS pierces the shadow roots
    canvas.wait_for()
    page.wait_for_function("canvas => canvas.width > 300", arg=canvas.element_handle())


def plot_box(page):
    """The picture's box on screen and a function from plot coordinates to page pixels."""
    canvas = page.locator(".el-scroll canvas").first
    box = canvas.bounding_box()

    def to_page(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x / VIEW_WIDTH * box["width"], box["y"] + (-y) / VIEW_HEIGHT * box["height"]

    return box, to_page


def point_at(page, x: float, y: float, arrived=None) -> None:
    """Move the mouse there as a person does: from a little way off, in steps, then wiggle by a fraction of a
    pixel until `arrived()` holds (a busy server handles only the latest of the moves queued meanwhile)."""
    page.mouse.move(x - 30, y - 10)
    page.mouse.move(x, y, steps=8)
    for attempt in range(20):
        page.mouse.move(x + (0.3 if attempt % 2 else 0.0), y)
        page.wait_for_timeout(250)
        if arrived is None or arrived():
            return


def title_focused(page) -> None:
    """Until the open view's heading has the focus (through shadow roots)."""
    page.wait_for_function(
        "() => { const f = (r) => { const a = r.activeElement; return a && a.shadowRoot ? f(a.shadowRoot) : a; };"
        " const a = f(document); return a && a.classList.contains('el-title'); }"
    )


def centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def test_each_conv_layer_opens_with_the_engines_numbers_and_esc_leaves(page, app, wait_until, screenshot):
    page.set_viewport_size({"width": 1440, "height": 900})
    open_app(page, app.url)
    state = app.sessions[-1].state
    for layer, neuron in [("conv_1_1", 2), ("conv_2_2", 9)]:
        page.locator(f".ov-tile[data-layer='{layer}'][data-index='{neuron}']").click(force=True)
        wait_until(lambda wanted=(layer, neuron, "elastic"): (state.layer, state.neuron, state.level) == wanted)
        wait_open(page)
        view = conv_view(app)
        assert page.locator(".el-title").inner_text() == view.heading
        kernel = state.network.layer(layer).kernel.shape
        summary = page.locator(".el-summary").inner_text()
        assert f"own {kernel[0]}×{kernel[1]} kernel" in summary
        wait_until(lambda count=kernel[2]: page.locator(".el-explain button").count() == count)
        results = conv_channel_results(state.trace, layer, neuron)
        assert np.array_equal(view.explained.results, results)
        screenshot(page, f"elastic-{layer}")
        page.keyboard.press("Escape")
        wait_until(lambda: state.level == "overview")
        page.locator(".el-title").wait_for(state="hidden")
    page.locator(".ov-tile[data-layer='relu_1_1'][data-index='1']").hover(force=True)  # the overview is usable again


def test_pointing_moves_the_marker_and_the_readout_follows(page, app, wait_until, screenshot):
    page.set_viewport_size({"width": 1440, "height": 900})
    open_app(page, app.url)
    state = app.sessions[-1].state
    page.locator(".ov-tile[data-layer='conv_1_2'][data-index='3']").click(force=True)
    wait_open(page)
    view = conv_view(app)
    assert not view.playing  # the sweep waits for Play: every tick costs the server a redraw
    _box, to_page = plot_box(page)
    layout = view.explained.layout
    row, col = 17, 42
    target = centre(layout_cell(layout, row, col))
    point_at(page, *to_page(*target), lambda: (state.row, state.col) == (row, col))
    wait_until(lambda: (state.row, state.col) == (row, col))
    readout = page.locator(".el-readout")
    readout.locator(f"xpath=self::*[@data-position='{row},{col}']").wait_for()
    expected = float(state.trace["conv_1_2"][row, col, 3])
    assert float(readout.locator(".el-result").get_attribute("data-value")) == pytest.approx(expected, abs=1e-6)
    screenshot(page, "elastic-conv-pointed")

    page.get_by_role("button", name="Replay").click()  # starts over from the first window
    wait_until(lambda: view.playing and state.row < row)
    before = state.row * 60 + state.col
    wait_until(lambda: state.row * 60 + state.col > before)  # and moves on
    page.get_by_role("button", name="Pause").click()
    wait_until(lambda: not view.playing)
    paused = (state.row, state.col)
    page.get_by_role("button", name="Play", exact=True).wait_for()
    assert (state.row, state.col) == paused

    _box, to_page = plot_box(page)  # measured again: the readout's new lines may have moved the picture
    target = to_page(*centre(cell_box(layout.intermediate_box(6), layout.output_size, 30, 30)))
    near = lambda: abs(state.row - 30) <= 2 and abs(state.col - 30) <= 2  # noqa: E731 (a cell is under 1 px here)
    for _attempt in range(3):  # a click that lands while the server handles a pointer move may be dropped
        page.mouse.click(*target)
        try:
            wait_until(lambda: state.level == "formula", timeout=8)
            break
        except BaseException:  # pytest.fail raises Failed, which is no Exception subclass
            continue
    wait_until(lambda: (state.level, state.input_channel) == ("formula", 6))
    assert (state.layer, state.neuron) == ("conv_1_2", 3) and near()


def layout_cell(layout, row, col):
    return cell_box(layout.output_box(), layout.output_size, row, col)


def test_keyboard_back_button_and_image_changes(page, app, catalog, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    page.locator(".ov-tile[data-layer='conv_2_1'][data-index='0']").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_until(lambda: (state.layer, state.neuron, state.level) == ("conv_2_1", 1, "elastic"))
    wait_open(page)
    title_focused(page)
    view = conv_view(app)
    before = view.explained
    target = next(e for e in catalog.examples if e.label == "koala")
    page.locator(f".thumb[data-key='{target.key}']").click()  # the controls stay usable
    wait_until(lambda: view.explained is not before and view.explained.inputs is not before.inputs)
    assert np.array_equal(view.explained.results, conv_channel_results(state.trace, "conv_2_1", 1))
    assert state.level == "elastic"

    page.locator(".el-explain button").nth(2).focus()  # Tab and Enter reach every intermediate result
    page.keyboard.press("Enter")
    wait_until(lambda: (state.level, state.input_channel) == ("formula", 2))
    page.locator(".fv-dialog").wait_for()
    page.keyboard.press("Escape")  # the formula closes back into the elastic view
    wait_until(lambda: state.level == "elastic")
    page.locator(".fv-backdrop").wait_for(state="hidden")  # faded out; it gives the focus back as it goes

    def back_focused() -> bool:  # once the page has settled the focus where the closed dialog left it
        page.locator(".el-back").focus()
        return "el-back" in focused_element(page).get_attribute("class")

    wait_until(back_focused)
    page.keyboard.press("Enter")
    wait_until(lambda: state.level == "overview")


def test_the_view_looks_finished_on_a_phone(new_page, app, wait_until, screenshot):
    page = new_page(390, 844)
    page.goto(app.url + "?layer=conv_1_1&neuron=0&view=elastic")  # opens straight into the view
    wait_open(page)
    shot = pixels(page)
    assert shot.std() > 10  # something is drawn, not a blank page
    # the picture keeps a width at which its titles and legends stay apart, and scrolls sideways in the view,
    # which itself fits the screen
    assert page.locator(".el-scroll canvas").first.bounding_box()["width"] >= MIN_PICTURE_WIDTH - 1
    assert page.locator(".el-view").first.bounding_box()["width"] <= 390
    screenshot(page, "elastic-phone")
    page.locator(".el-back").click()
    wait_until(lambda: app.sessions[-1].state.level == "overview")


def test_backward_mode_on_a_phone_fits_the_screen_and_the_learn_card_takes_taps(new_page, app, screenshot, wait_until):
    """Backward mode opens the Learn card too; its columns once made the whole page 740 px wide on a phone."""
    page = new_page(390, 844)
    open_app(page, app.url, "?layer=conv_1_2&neuron=3&view=elastic&mode=backward&row=20&col=30")
    wait_open(page)
    page.locator(".el-readout[data-position='20,30']").wait_for()
    assert page.locator(".el-title").inner_text().startswith("Backward")
    assert "gradient arriving here" in page.locator(".el-readout").inner_text()
    for selector in (".el-view", ".el-title", ".el-readout", ".el-hint"):
        box = page.locator(selector).first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, (selector, box)
    screenshot(page, "elastic-backward-390x844")
    # the Learn card that backward mode opens: its columns stacked, each readable and usable by a tap
    card = page.locator(".card").filter(has_text="Learn: loss, gradients").first
    step = card.get_by_role("button", name="Take a step")
    step.scroll_into_view_if_needed()
    card_box, step_box = card.bounding_box(), step.bounding_box()
    assert card_box["width"] <= 390 and card_box["height"] > 800  # not collapsed over its contents
    assert card_box["y"] <= step_box["y"] and step_box["y"] + step_box["height"] <= card_box["y"] + card_box["height"]
    step.click(timeout=10_000)  # a real click: nothing drawn over the button takes it
    wait_until(lambda: app.sessions[-1].learning.steps == 1)
    screenshot(page, "learn-backward-390x844")


def test_the_flatten_and_softmax_views_show_p_minus_y_in_backward_mode_and_fit_a_phone(
    new_page, app, screenshot, wait_until
):
    """Their fixed-width picture once made the whole page as wide as itself on a phone, clipping every text."""
    from cnnviz.resources import shared_network

    infos = shared_network().infos
    page = new_page(390, 844, has_touch=True, is_mobile=True)
    open_app(page, app.url, f"?layer={infos[-2].name}&neuron=3&view=elastic&mode=backward")
    page.locator(".ed-sum").first.wait_for()
    learning = app.sessions[-1].learning
    wait_until(lambda: learning.backward is not None)
    p_minus_y = float(learning.backward.probabilities[3] - learning.backward.target[3])
    assert page.locator(".el-title").inner_text().startswith("Backward")
    upstream = page.locator(".ed-upstream").first
    assert float(upstream.get_attribute("data-value")) == pytest.approx(p_minus_y, abs=1e-12)
    for selector in (".el-view", ".el-title", ".ed-numbers", ".ed-legends"):
        box = page.locator(selector).first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, (selector, box)
    problems = text_problems(page, ".el-view")
    assert problems == [], "\n".join(problems)
    screenshot(page, "elastic-flatten-backward-390x844")
    page.get_by_role("button", name="Softmax →").tap()
    page.locator(".ed-gradient").first.wait_for()
    assert float(page.locator(".ed-gradient").first.get_attribute("data-value")) == pytest.approx(p_minus_y, abs=1e-12)
    assert float(page.locator(".ed-loss").first.get_attribute("data-value")) == pytest.approx(
        learning.backward.loss, rel=1e-12
    )
    problems = text_problems(page, ".el-view")
    assert problems == [], "\n".join(problems)
    screenshot(page, "elastic-softmax-backward-390x844")


def test_closing_the_softmax_formula_steps_back_through_softmax_mode_to_the_class_score(new_page, app, wait_until):
    """Closing the formula once landed straight on the flatten view, which then showed only its title."""
    from cnnviz.resources import shared_network

    infos = shared_network().infos
    page = new_page(1440, 900)
    open_app(page, app.url, f"?layer={infos[-2].name}&neuron=3&view=elastic")
    page.get_by_role("button", name="Softmax →").click()
    names = shared_network().class_names
    page.get_by_role("button", name=names[4], exact=True).click()
    state = app.sessions[-1].state
    wait_until(lambda: (state.layer, state.neuron, state.level) == (infos[-1].name, 4, "formula"))
    page.locator(".fv-dialog").wait_for()
    page.keyboard.press("Escape")
    wait_until(lambda: (state.layer, state.level) == (infos[-1].name, "elastic"))
    page.locator(".ed-captions:visible").filter(has_text="probability").wait_for()
    page.locator(".fv-backdrop").wait_for(state="hidden")  # faded out: the next Esc is softmax mode's
    page.keyboard.press("Escape")
    wait_until(lambda: (state.layer, state.neuron, state.level) == (infos[-2].name, 4, "elastic"))
    page.locator(".ed-captions:visible").filter(has_text="flatten").wait_for()
    page.locator(".ed-score:visible").wait_for()
    assert page.locator(".el-view canvas:visible").first.bounding_box()["height"] > 100
