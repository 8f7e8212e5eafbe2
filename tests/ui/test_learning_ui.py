"""The Learn card in the served page: backward mode, a true class, five steps that lower the loss, Reset, a quiz."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pages import open_app
from test_formula_ui import assert_text_is_readable, opened

from cnnviz.article import SECTION_ANCHORS
from cnnviz.plots.formula import ASPECT, PLOT_RANGE
from cnnviz.quiz import significant

pytestmark = pytest.mark.ui
HEADING_TOP = """(id) => {
  const find = (root) => root.getElementById(id)
    || [...root.querySelectorAll("*")].reduce((hit, el) => hit || (el.shadowRoot && find(el.shadowRoot)), null)
  const heading = find(document)
  return heading ? heading.getBoundingClientRect().top : null
}"""


def open_learn(page, url: str) -> None:
    open_app(page, url)
    page.locator(".card-header").filter(has_text="Learn: loss, gradients").click()
    page.locator(".learn-readout").first.wait_for()


def shown_loss(page) -> str:
    return page.locator(".learn-loss-value").inner_text()


def test_backward_mode_steps_reset_and_a_quiz(app, page, wait_until, screenshot):
    open_learn(page, app.url)
    explainer = app.sessions[-1]
    learning, state = explainer.learning, explainer.state
    wait_until(lambda: shown_loss(page) == significant(learning.loss))

    card = page.locator(".card").filter(has_text="Learn: loss, gradients").first
    card.locator(".bk-input-group").filter(has_text="True class").locator("select").select_option(label="koala")
    wait_until(lambda: learning.true_class == state.network.class_names.index("koala"))
    card.locator(".backward-mode input[type=checkbox]").check()
    wait_until(lambda: learning.backward is not None)
    table = card.locator(".learn-output-gradient")
    table.wait_for()
    koala_row = table.locator("tr.true-class")
    expected = learning.backward.probabilities[learning.true_class] - 1
    wait_until(lambda: koala_row.locator("td").nth(3).inner_text().replace("−", "-") == f"{expected:.4f}")

    trained = state.trace
    losses = [learning.loss]
    for count in range(1, 6):
        card.get_by_role("button", name="Take a step").click()
        wait_until(lambda count=count: learning.steps == count, timeout=20)
        losses.append(learning.loss)
        wait_until(lambda: shown_loss(page) == significant(learning.loss))
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]
    wait_until(lambda: re.search(r"Step 5 \(η = 0\.0001\): loss", card.locator(".learn-readout").inner_text()))
    screenshot(card, "learn-after-five-steps")

    card.get_by_role("button", name="Reset").click()
    wait_until(lambda: learning.steps == 0)
    for name in trained:
        np.testing.assert_array_equal(state.trace[name], trained[name])
    wait_until(lambda: shown_loss(page) == significant(losses[0]))

    card.locator(".bk-input-group").filter(has_text="Question").locator("select").select_option(
        label="What size is the output?"
    )
    card.get_by_role("button", name="New question").click()
    wait_until(lambda: learning.question is not None)
    question = learning.question
    wait_until(lambda: question.prompt in card.locator(".quiz-prompt").inner_text())
    answer_box = card.locator("input[placeholder='Type a number']")
    answer_box.fill(str(int(question.answer)))
    card.get_by_role("button", name="Check").click()
    wait_until(lambda: learning.answered == 1)
    assert learning.score == 1
    feedback = card.locator(".quiz-feedback")
    wait_until(lambda: feedback.inner_text().startswith("Right."))
    assert question.explanation in feedback.inner_text()
    assert "Score: 1 of 1" in card.locator(".quiz-score").inner_text()
    screenshot(card, "learn-quiz-answered")
    # then the layer it asked about opens, in view: its elastic view slides the kernel the question was about
    card.get_by_role("button", name="See it in the network").click()
    wait_until(lambda: (state.layer, state.level) == (question.where["layer"], "elastic"))
    title = page.locator(".el-title")
    title.wait_for()
    wait_until(lambda: question.where["layer"] in title.inner_text())
    box = title.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"], "scrolled to the view"


def test_read_more_links_scroll_to_the_article(app, page, wait_until):
    open_learn(page, app.url)
    card = page.locator(".card").filter(has_text="Learn: loss, gradients").first
    anchor = SECTION_ANCHORS["backpropagation"]
    card.locator(".learn-links a").filter(has_text="Backpropagation").click()

    def heading_on_screen() -> bool:
        top = page.evaluate(HEADING_TOP, anchor)
        return top is not None and 0 <= top <= 200

    wait_until(heading_on_screen)


def test_the_elastic_views_info_button_reads_on_in_the_article_forward_and_backward(app, page, wait_until):
    conv = next(info.name for info in app_network().infos if info.kind == "conv2d")
    for mode, section in (("forward", "convolution"), ("backward", "backpropagation")):
        open_app(page, app.url, f"?layer={conv}&neuron=1&view=elastic&mode={mode}")
        page.locator(".el-title").wait_for()
        page.locator(".el-info").click()
        anchor = SECTION_ANCHORS[section]

        def heading_on_screen(anchor=anchor) -> bool:
            top = page.evaluate(HEADING_TOP, anchor)
            return top is not None and 0 <= top <= 200

        wait_until(heading_on_screen)


def backward_position(page) -> tuple[int, int]:
    row, col = page.locator(".fv-numbers.fv-backward").get_attribute("data-position").split(",")
    return int(row), int(col)


def shown_value(page, selector: str) -> float:
    return float(page.locator(f".fv-backward-view {selector}").first.get_attribute("data-value"))


def point_at_backward(page, box: tuple[float, ...]) -> None:
    """Move the mouse to the centre of a box of the backward maps plot (its coordinates, as MapsLayout gives them)."""
    canvas = page.locator(".fv-backward-view .bk-Canvas").first.bounding_box()
    (x0, x1), (y0, y1) = PLOT_RANGE["x"], PLOT_RANGE["y"]
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    page.mouse.move(
        canvas["x"] + (x - x0) / (x1 - x0) * canvas["width"], canvas["y"] + (y1 - y) / (y1 - y0) * canvas["height"]
    )


def test_follow_the_gradient_from_the_loss_to_a_first_layer_kernel_then_learn(app, page, wait_until, screenshot):
    page.set_viewport_size({"width": 1440, "height": 900})
    open_learn(page, app.url)
    explainer = app.sessions[-1]
    learning, state = explainer.learning, explainer.state
    card = page.locator(".card").filter(has_text="Learn: loss, gradients").first
    card.locator(".backward-mode input[type=checkbox]").check()
    wait_until(lambda: learning.backward is not None)
    trail = card.locator(".follow-the-gradient")
    names = [info.name for info in state.network.infos if info.kind in ("softmax", "conv2d")]

    # from the loss ...
    trail.get_by_role("button", name=names[-1], exact=True).click()
    opened(page, "backward-softmax")
    wait_until(lambda: shown_value(page, ".fv-loss") == learning.backward.loss)
    assert shown_value(page, ".fv-p-minus-y") == learning.backward.probabilities[0] - learning.backward.target[0]
    page.locator(".fv-close").click()
    wait_until(lambda: state.level != "formula")
    page.locator(".fv-backdrop").wait_for(state="hidden")

    # ... back to a first-layer kernel
    first = state.network.layer_names[0]
    trail.get_by_role("button", name=first, exact=True).click()
    opened(page, "backward-conv2d")
    neuron, channel = state.neuron, state.input_channel
    kernel = learning.backward.weight_gradients[first]["kernel"][:, :, channel, neuron]
    cells = page.locator(".fv-backward-view .fv-kernel-gradient td")
    shown_kernel = [float(cells.nth(i).get_attribute("data-value")) for i in range(kernel.size)]
    np.testing.assert_allclose(shown_kernel, kernel.ravel(), rtol=1e-12)
    layout = explainer.formula.backward.explained.layout
    for row, col in [(0, 0), (layout.output_size[0] - 1, 3), (7, layout.output_size[1] - 2)]:
        point_at_backward(page, layout.output_box(row, col))
        wait_until(lambda row=row, col=col: backward_position(page) == (row, col))
        assert (state.row, state.col) == (row, col)
        assert shown_value(page, ".fv-upstream") == learning.backward.upstream_of(first)[row, col, neuron]
    page.mouse.move(5, 890)
    page.locator(".fv-backward-view .fv-kernel-gradient button[data-pick='4']").click()  # the centre weight of 3×3
    wait_until(lambda: explainer.formula.backward.picked == 4)
    u, v = divmod(4, kernel.shape[1])
    wait_until(lambda: shown_value(page, ".fv-grad") == kernel[u, v])
    screenshot(page, "formula-backward-conv2d-followed")
    play = page.locator(".fv-play")  # Play sweeps the backward window as it does the forward one
    start = (state.row, state.col)
    play.click()
    wait_until(lambda: play.get_attribute("aria-pressed") == "true")
    wait_until(lambda: (state.row, state.col) != start)
    play.click()
    wait_until(lambda: play.get_attribute("aria-pressed") == "false")
    wait_until(lambda: backward_position(page) == (state.row, state.col))
    page.keyboard.press("Escape")
    wait_until(lambda: state.level != "formula")

    # five steps lower the loss; the backward view then shows the new gradients
    losses = [learning.loss]
    for count in range(1, 6):
        card.get_by_role("button", name="Take a step").click()
        wait_until(lambda count=count: learning.steps == count, timeout=20)
        losses.append(learning.loss)
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]
    wait_until(lambda: shown_loss(page) == significant(learning.loss))
    trail.get_by_role("button", name=first, exact=True).click()
    opened(page, "backward-conv2d")
    bias = learning.backward.weight_gradients[first]["bias"][state.neuron]
    wait_until(lambda: abs(shown_value(page, ".fv-bias-gradient") - bias) <= 1e-12 * abs(bias))
    page.keyboard.press("Escape")
    wait_until(lambda: state.level != "formula")

    # and a quiz question about the backward pass
    card.locator(".bk-input-group").filter(has_text="Question").locator("select").select_option(
        label="Which way will this weight move?"
    )
    card.get_by_role("button", name="New question").click()
    wait_until(lambda: learning.question is not None)
    question = learning.question
    card.get_by_label(str(question.answer), exact=True).check()
    card.get_by_role("button", name="Check").click()
    wait_until(lambda: learning.answered == 1)
    assert learning.score == 1
    wait_until(lambda: card.locator(".quiz-feedback").inner_text().startswith("Right."))


BACKWARD_VIEWS = [
    ("layer=conv_1_2&neuron=3&channel=4&row=10&col=20", "conv2d"),
    ("layer=relu_1_1&neuron=2&row=5&col=5", "relu"),
    ("layer=max_pool_2&neuron=3&row=4&col=6", "maxpool2d"),
    ("layer=flatten&neuron=77", "flatten"),
    ("layer=output&neuron=2", "dense"),
    ("layer=softmax&neuron=3", "softmax"),
]


@pytest.mark.parametrize("size", [(1440, 900), (390, 844)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_every_backward_formula_view_opens_from_a_link_and_reads_cleanly(app, browser, wait_until, screenshot, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    context.add_init_script("try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (e) {}")
    page = context.new_page()
    try:
        for query, kind in BACKWARD_VIEWS:
            open_app(page, app.url, f"?mode=backward&truth=5&view=formula&{query}")
            opened(page, f"backward-{kind}")
            learning = app.sessions[-1].learning
            assert learning.backward_mode and learning.true_class == 5
            assert page.locator(".fv-backward-view .fv-formulas math").count() >= 1
            assert_text_is_readable(page)
            screenshot(page, f"formula-backward-{kind}-{size[0]}")
    finally:
        context.close()


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_the_backward_mode_switch_beside_the_network_turns_every_column_into_gradients(app, new_page, wait_until, size):
    width, height = size
    page = new_page(width, height, has_touch=width < 600)
    open_app(page, app.url)
    explainer = app.sessions[-1]
    switch = page.get_by_role("switch", name="Backward mode")
    switch.scroll_into_view_if_needed()
    if width < 600:
        switch.tap()
    else:
        page.locator("label span", has_text="Backward mode").click()  # its words toggle it too
    wait_until(lambda: explainer.learning.backward is not None)
    hint = page.locator(".ov-hint").first
    wait_until(lambda: hint.inner_text().startswith("Backward mode: the loss is"))
    page.wait_for_function("() => location.search.includes('mode=backward')")  # `page.url` lags in a poll
    card = page.locator(".card").filter(has_text="Learn: loss, gradients").first
    card.locator(".learn-readout").wait_for()  # backward mode opens the card that explains it
    assert card.locator(".backward-mode input[type=checkbox]").is_checked()  # one state, two switches
    card.locator(".backward-mode input[type=checkbox]").uncheck()
    wait_until(lambda: not explainer.learning.backward_mode)
    wait_until(lambda: not switch.is_checked())


@pytest.mark.parametrize("size", [(1440, 900), (390, 844)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_a_formula_view_quizzes_on_its_own_layer_and_the_elastic_view_on_its_own(
    app, new_page, wait_until, screenshot, size
):
    width, height = size
    page = new_page(width, height, has_touch=width < 600)
    relu = next(info.name for info in app_network().infos if info.kind == "relu")
    open_app(page, app.url, f"?layer={relu}&neuron=2&view=formula&row=5&col=5")
    opened(page, "relu")
    explainer = app.sessions[-1]
    learning = explainer.learning
    dialog = page.locator(".fv-dialog")
    maps = dialog.locator("canvas").first.bounding_box()  # square cells at every width (once stretched on phones)
    assert maps["width"] / maps["height"] == pytest.approx(ASPECT, rel=0.03)
    ask = dialog.get_by_role("button", name="Quiz me on this")
    ask.scroll_into_view_if_needed()
    ask.click()
    wait_until(lambda: learning.question is not None)
    question = learning.question
    assert question.kind == "relu-output" and question.where["layer"] == relu
    dialog.locator(".quiz-prompt").filter(has_text=question.prompt).wait_for()
    dialog.locator("input[placeholder='Type a number']").fill(f"{question.answer:.4f}")
    dialog.get_by_role("button", name="Check").click()
    feedback = dialog.locator(".quiz-feedback")
    wait_until(lambda: feedback.count() and feedback.first.inner_text().startswith("Right."))
    assert_text_is_readable(page)
    screenshot(page, f"formula-quiz-{width}x{height}")
    page.keyboard.press("Escape")
    wait_until(lambda: explainer.state.level != "formula")
    # the conv elastic view asks about its own layer's size
    conv = next(info.name for info in app_network().infos if info.kind == "conv2d")
    open_app(page, app.url, f"?layer={conv}&neuron=0&view=elastic")  # a link, as a session's state is changed
    learning = app.sessions[-1].learning  # by its own page, never from the test's thread beside the server's
    view = page.locator(".el-view")
    view.get_by_role("button", name="Quiz me on this").click()
    wait_until(lambda: learning.question is not None and learning.question.where["layer"] == conv)
    assert learning.question.kind == "output-size"
    view.locator(".quiz-prompt").filter(has_text=learning.question.prompt).wait_for()


def app_network():
    from cnnviz.resources import shared_network

    return shared_network()
