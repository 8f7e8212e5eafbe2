"""The formula views in headless Chromium: every number read off the page equals the engine's.

The maps are one Bokeh plot; the tests point at a cell by converting the view's own plot coordinates
(`MapsLayout.input_box` / `output_box`) to pixels of the plot's canvas, as a person moving the mouse would.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import holoviews as hv
import numpy as np
import pytest
from pages import focused_element, open_app

from cnnviz.engine.explain import conv_step, pool_step, relu_step, softmax_terms
from cnnviz.plots.formula import PLOT_RANGE, window_marks

pytestmark = pytest.mark.ui

VIEWPORTS = [(1440, 900), (1280, 800), (390, 844)]

# Every piece of text in the dialog, as the boxes its characters occupy (through Panel's shadow roots), and
# whether an element cuts its own text off (an ellipsis, or overflow).
TEXT_BOXES = """() => {
  const find = (root) => { for (const node of root.querySelectorAll('*')) {
      if (node.classList && node.classList.contains('fv-dialog')) return node;
      if (node.shadowRoot) { const found = find(node.shadowRoot); if (found) return found; } } return null; };
  const dialog = find(document);
  const boxes = [], clipped = [];
  let node = 0;
  const walk = (node) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE && child.textContent.trim()) {
        const range = document.createRange();
        range.selectNodeContents(child);
        node += 1;
        for (const rect of range.getClientRects()) {
          if (rect.width > 0 && rect.height > 0) {
            const text = child.textContent.trim().slice(0, 30);
            boxes.push({ node, text, x: rect.x, y: rect.y, w: rect.width, h: rect.height });
          }
        }
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        if (child.tagName === 'STYLE' || child.tagName === 'SCRIPT') continue;
        if (child.tagName.toLowerCase() === 'math') {  // a typeset formula is one piece: its scripts touch by design
          const rect = child.getBoundingClientRect();
          const whole = { node: -boxes.length - 1, text: 'formula' };
          boxes.push({ ...whole, x: rect.x, y: rect.y, w: rect.width, h: rect.height });
          continue;
        }
        const style = getComputedStyle(child);
        if (style.display === 'none' || style.visibility === 'hidden') continue;
        const cuts = style.overflowX === 'hidden' || style.textOverflow === 'ellipsis';
        if (cuts && child.scrollWidth > child.clientWidth && child.clientWidth > 0) {
          clipped.push(child.textContent.trim());
        }
        if (child.shadowRoot) walk(child.shadowRoot);
        walk(child);
      }
    }
  };
  walk(dialog);
  const box = dialog.getBoundingClientRect();
  return { boxes, clipped, dialog: { x: box.x, y: box.y, w: box.width, h: box.height } };
}"""


INSIDE_DIALOG = """node => { for (let n = node; n; n = n.parentNode || n.host) {
  if (n.classList && n.classList.contains('fv-dialog')) return true; } return false; }"""


def shown(locator) -> str:
    return locator.inner_text().replace("−", "-").split()[0]


def assert_shown(locator, expected: float) -> None:
    """Equal to the engine's value to the precision on screen, and never "-0.000"."""
    text = shown(locator)
    decimals = len(text.partition(".")[2])
    assert abs(float(text) - expected) <= 0.5 * 10**-decimals + 1e-6, f"{text} shown for {expected}"
    assert text.strip("-0.") or not text.startswith("-"), f"{text} is a negative zero"


def position(page) -> tuple[int, int]:
    row, col = page.locator(".fv-numbers").get_attribute("data-position").split(",")
    return int(row), int(col)


def opened(page, kind: str) -> None:
    """Wait until the dialog explains a layer of `kind` and has finished fading in."""
    page.locator(f".fv-dialog[data-kind='{kind}']").wait_for()
    page.locator(".fv-backdrop.fv-shown").wait_for()
    page.wait_for_function(
        """() => { const find = (root) => { for (const node of root.querySelectorAll('*')) {
            if (node.classList && node.classList.contains('fv-dialog')) return node;
            if (node.shadowRoot) { const found = find(node.shadowRoot); if (found) return found; } } return null; };
          const dialog = find(document); return dialog && getComputedStyle(dialog.parentNode).opacity === '1'; }"""
    )


def point_at(page, box: tuple[float, ...]) -> None:
    """Move the mouse to the centre of a box given in the maps plot's coordinates."""
    canvas = page.locator(".fv-dialog .bk-Canvas").first.bounding_box()
    (x0, x1), (y0, y1) = PLOT_RANGE["x"], PLOT_RANGE["y"]
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    page.mouse.move(
        canvas["x"] + (x - x0) / (x1 - x0) * canvas["width"], canvas["y"] + (y1 - y) / (y1 - y0) * canvas["height"]
    )


def hover_output(page, session, wait_until, row: int, col: int) -> None:
    point_at(page, session.formula.explained.layout.output_box(row, col))
    wait_until(lambda: position(page) == (row, col))


def first_outline_change(page, received: list[str], session) -> int | None:
    """Index of the first message in `received` that changes the data of the formula view's outline (its data
    source, in any rendering of the plot as it is now), or None."""
    page.evaluate("0")  # Playwright's sync API hands over the frames it received only during one of its calls
    changes = [
        f'"ColumnDataChanged","model":{{"id":"{marks.handles["source"].id}"}}'
        for plot, _pane in session.formula._maps.objects[1]._plots.values()
        for marks in plot.subplots.values()
        if isinstance(marks.current_frame, hv.Rectangles)
    ]
    return next((i for i, message in enumerate(received) if any(change in message for change in changes)), None)


def overlaps(boxes) -> list[tuple[str, str]]:
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if a["node"] == b["node"]:
                continue  # the lines of one wrapped text
            dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if dx > 1 and dy > 1:
                found.append((a["text"], b["text"]))
    return found


def assert_text_is_readable(page) -> None:
    """No two pieces of text overlap, none is cut off or sticks out of the dialog."""
    measured = page.evaluate(TEXT_BOXES)
    assert measured["boxes"], "no text measured"
    assert not overlaps(measured["boxes"]), overlaps(measured["boxes"])[:5]
    assert not measured["clipped"], measured["clipped"]
    dialog = measured["dialog"]
    for box in measured["boxes"]:
        assert dialog["x"] - 1 <= box["x"] and box["x"] + box["w"] <= dialog["x"] + dialog["w"] + 1, box


def test_conv_formula_follows_the_pointer_with_the_engines_numbers(page, app, screenshot, wait_until):
    received: list[str] = []  # the server's websocket messages, in order
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: received.append(str(frame))))
    open_app(page, app.url, "?layer=conv_1_2&neuron=3&view=formula&channel=4&row=10&col=20")
    opened(page, "conv2d")
    session = app.sessions[-1]
    state = session.state
    assert position(page) == (10, 20)
    # a move sends the numbers first, then the outline HoloViews redraws (its data source), which follows them
    received.clear()
    hover_output(page, session, wait_until, 30, 30)
    wait_until(lambda: first_outline_change(page, received, session) is not None)
    numbers = next(i for i, message in enumerate(received) if "data-position=&quot;30,30&quot;" in message)
    assert numbers < first_outline_change(page, received, session), "the outline's data came before the numbers"
    drawn = window_marks(session.formula.explained.layout, 30, 30)
    np.testing.assert_allclose(session.formula.marks.last.array(), drawn.array())
    assert page.locator(".fv-dialog math[display=block]").count() == 1  # MathML, typeset by the browser itself
    layout = session.formula.explained.layout
    for side, (row, col) in [("output", (0, 0)), ("output", (59, 59)), ("input", (31, 7)), ("output", (42, 13))]:
        if side == "output":
            hover_output(page, session, wait_until, row, col)
        else:
            before = position(page)
            point_at(page, layout.input_box(row, col, 1, 1))
            wait_until(lambda before=before: position(page) != before)
        r, c = position(page)
        assert (state.row, state.col) == (r, c)  # the window lives on the session state
        step = conv_step(state.trace, "conv_1_2", r, c, 3)
        if side == "input":  # the window under the pointer covers the pixel pointed at
            assert step.origin[0] <= row < step.origin[0] + 3 and step.origin[1] <= col < step.origin[1] + 3
        products = page.locator(".fv-products td b")
        for i in range(9):
            assert_shown(products.nth(i), step.products[i // 3, i % 3, 4])
        assert_shown(page.locator(".fv-arithmetic .fv-total"), step.channel_sums[4])
        chips = page.locator(".fv-join .fv-sum .fv-value")
        for channel in range(10):
            assert_shown(chips.nth(channel), step.channel_sums[channel])
        assert_shown(page.locator(".fv-join .fv-bias"), step.bias)
        assert_shown(page.locator(".fv-join .fv-result"), step.result)
    screenshot(page, "formula-conv")
    assert_text_is_readable(page)
    # keys: the arrows move the window, space plays and pauses the sweep
    page.mouse.move(5, 890)
    page.locator(".fv-dialog").focus()
    r, c = position(page)
    page.keyboard.press("ArrowLeft")
    wait_until(lambda: position(page) == (r, c - 1))
    page.keyboard.press("Space")
    wait_until(lambda: page.locator(".fv-play").get_attribute("aria-pressed") == "true")
    wait_until(lambda: position(page) > (r, c), timeout=15)  # the sweep moves on, a couple of windows a second
    page.keyboard.press("Space")
    wait_until(lambda: page.locator(".fv-play").get_attribute("aria-pressed") == "false")
    # a modal dialog: Tab and Shift+Tab cycle through its own controls, never behind the backdrop
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        assert focused_element(page).evaluate(INSIDE_DIALOG), f"{key} left the dialog"
    page.keyboard.press("Escape")
    wait_until(lambda: state.level == "elastic")
    page.locator(".fv-backdrop").wait_for(state="hidden")


def window_in_url(page) -> tuple[int, int]:
    query = parse_qs(page.evaluate("location.search").lstrip("?"))
    return int(query.get("row", ["0"])[0]), int(query.get("col", ["0"])[0])


def test_back_leaves_a_formula_view_in_one_step_however_long_it_was_explored(page, app, wait_until):
    open_app(page, app.url)
    session = app.sessions[-1]
    page.locator(".ov-tile[data-layer='relu_1_1'][data-index='2']").click(force=True)
    opened(page, "relu")
    entries = page.evaluate("history.length")
    for row, col in [(3, 4), (10, 40), (50, 2), (20, 20), (61, 61), (0, 30)]:
        hover_output(page, session, wait_until, row, col)
    # the URL follows once the window rests (row 0 is the default, which the query may leave out)
    wait_until(lambda: window_in_url(page) == (0, 30))
    assert page.evaluate("history.length") == entries  # every move replaced the entry, none was added
    page.go_back()
    page.locator(".ov-class").first.wait_for()
    wait_until(lambda: app.sessions[-1] is not session and app.sessions[-1].state.level == "overview")
    page.locator(".fv-backdrop").wait_for(state="hidden")


def test_relu_formula_opens_from_the_overview_and_the_info_button_reads_on(page, app, screenshot, wait_until):
    open_app(page, app.url)
    page.locator(".ov-tile[data-layer='relu_1_1'][data-index='2']").click(force=True)
    opened(page, "relu")
    session = app.sessions[-1]
    for row, col in [(0, 0), (30, 31), (61, 5), (17, 44)]:
        hover_output(page, session, wait_until, row, col)
        step = relu_step(session.state.trace, "relu_1_1", row, col, 2)
        assert_shown(page.locator(".fv-equation .fv-x"), step.x)
        assert_shown(page.locator(".fv-equation .fv-y"), step.y)
    screenshot(page, "formula-relu")
    page.locator(".fv-info").click()
    wait_until(lambda: session.state.level == "overview")
    wait_until(lambda: focused_element(page).get_attribute("id") == "article-relu")


def test_a_tap_pins_the_window(page, app, wait_until):
    open_app(page, app.url)
    page.locator(".ov-tile[data-layer='max_pool_1'][data-index='5']").click(force=True)
    opened(page, "maxpool2d")
    session = app.sessions[-1]
    layout = session.formula.explained.layout
    point_at(page, layout.output_box(4, 9))
    page.mouse.down()
    page.mouse.up()
    wait_until(lambda: session.formula.pinned and position(page) == (4, 9))
    point_at(page, layout.output_box(20, 20))
    page.wait_for_timeout(500)  # the pointer moved on; the pinned window must not follow it
    assert position(page) == (4, 9)
    step = pool_step(session.state.trace, "max_pool_1", 4, 9, 5)
    terms = page.locator(".fv-equation .fv-term")
    for i in range(4):
        assert_shown(terms.nth(i), step.window[i // 2, i % 2])
    assert page.locator(".fv-equation .fv-term.fv-max").count() == 1
    assert_shown(page.locator(".fv-equation .fv-y"), step.result)
    page.mouse.click(640, 890)  # a click outside the dialog, on the dimmed page, closes it
    wait_until(lambda: session.state.level == "overview")
    page.locator(".fv-backdrop").wait_for(state="hidden")


def test_softmax_formula_opens_a_class_by_click_tap_and_enter(page, app, screenshot, wait_until):
    open_app(page, app.url, "?layer=softmax&neuron=0&view=formula")
    opened(page, "softmax")
    state = app.sessions[-1].state
    terms = softmax_terms(state.trace.logits)
    assert_shown(page.locator(".fv-softmax-result .fv-result"), terms.probabilities[0])
    assert_shown(page.locator(".fv-softmax-result .fv-total"), terms.total)
    # hovering a class lights up its term of the sum (in the browser alone)
    page.locator(".fv-logit[data-index='3']").hover()
    lit = page.locator(".fv-denominator .fv-exp[data-index='3']").evaluate("n => getComputedStyle(n).borderTopColor")
    other = page.locator(".fv-denominator .fv-exp[data-index='4']").evaluate("n => getComputedStyle(n).borderTopColor")
    assert lit != other
    screenshot(page, "formula-softmax")
    page.locator(".fv-logit[data-index='5']").click()
    wait_until(lambda: state.neuron == 5)
    page.locator(".fv-title", has_text=state.network.class_names[5]).wait_for()
    assert_shown(page.locator(".fv-softmax-result .fv-result"), terms.probabilities[5])
    page.locator(".fv-logit[data-index='2']").focus()
    page.keyboard.press("ArrowRight")  # along the classes
    page.keyboard.press("Enter")
    wait_until(lambda: state.neuron == 3)
    page.locator(".fv-close").click()
    wait_until(lambda: state.level == "elastic")


def test_softmax_class_opens_with_a_touch_tap(browser, app, wait_until):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    context.add_init_script("try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (e) {}")
    page = context.new_page()
    try:
        open_app(page, app.url, "?layer=softmax&neuron=0&view=formula")
        opened(page, "softmax")
        state = app.sessions[-1].state
        page.locator(".fv-logit[data-index='4']").tap()
        wait_until(lambda: state.neuron == 4)
    finally:
        context.close()


@pytest.mark.parametrize("size", VIEWPORTS, ids=lambda size: f"{size[0]}x{size[1]}")
def test_no_text_overlaps_or_is_cut_off_in_any_formula_view(browser, app, wait_until, screenshot, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    context.add_init_script("try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (e) {}")
    page = context.new_page()
    try:
        for query, kind in [
            ("?layer=conv_1_1&neuron=2&view=formula&channel=1&row=5&col=5", "conv2d"),
            ("?layer=relu_2_1&neuron=1&view=formula", "relu"),
            ("?layer=max_pool_2&neuron=3&view=formula", "maxpool2d"),
            ("?layer=softmax&neuron=3&view=formula", "softmax"),
        ]:
            open_app(page, app.url, query)
            opened(page, kind)
            assert_text_is_readable(page)
            if size == VIEWPORTS[0]:
                screenshot(page, f"formula-{kind}-{size[0]}")
    finally:
        context.close()


@pytest.mark.parametrize(
    ("whatif", "slope", "equation_start", "relu_title", "pool", "pool_title"),
    [
        ("relu:0.1 pool:min", 0.1, "max(0.1 ×", "Leaky ReLU", "min", "Min pooling"),
        ("relu:1.0 pool:average", 1.0, "", "No activation", "mean", "Average pooling"),
    ],
)
def test_relu_and_pool_formulas_say_what_a_what_if_experiment_computes(
    page, app, screenshot, wait_until, whatif, slope, equation_start, relu_title, pool, pool_title
):
    """Under an experiment the title, the equation, the plot and the numbers describe the changed layer."""
    open_app(page, app.url, "?whatif=" + whatif.replace(" ", "%20"))
    session = app.sessions[-1]
    page.locator(".ov-tile[data-layer='relu_1_2'][data-index='4']").click(force=True)
    opened(page, "relu")
    trace = session.state.trace
    assert trace.network.layer("relu_1_2").negative_slope == slope
    hover_output(page, session, wait_until, 10, 20)
    step = relu_step(trace, "relu_1_2", 10, 20, 4)
    equation = page.locator(".fv-equation").inner_text()
    assert page.locator(".fv-title").inner_text().startswith(relu_title)
    assert "max(0," not in equation and equation.startswith(equation_start)
    assert page.locator(".fv-equation .fv-x").count() == (1 if slope == 1.0 else 2)  # max(s × x, x) shows x twice
    assert page.locator(".fv-curve").get_attribute("points").startswith(f"-1,{slope:g} ")  # the negative branch
    assert_shown(page.locator(".fv-equation .fv-y"), step.y)
    screenshot(page.locator(".fv-dialog"), f"formula-relu-{slope:g}")
    page.keyboard.press("Escape")
    page.locator(".fv-backdrop").wait_for(state="hidden")

    page.locator(".ov-tile[data-layer='max_pool_2'][data-index='3']").click(force=True)
    opened(page, "maxpool2d")
    hover_output(page, session, wait_until, 5, 7)
    step = pool_step(trace, "max_pool_2", 5, 7, 3)
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


def test_scrolling_the_dialog_never_scrolls_the_page_behind_it(page, app):
    """Scrolled past its end, the dialog kept scrolling the page behind it: after closing, the header was cut off."""
    open_app(page, app.url, "?layer=conv_1_1&neuron=0&view=formula&channel=0&mode=backward")
    page.locator(".fv-numbers").wait_for()
    page.mouse.move(720, 500)
    for _ in range(30):
        page.mouse.wheel(0, 400)
    page.wait_for_timeout(500)
    assert page.evaluate("document.scrollingElement.scrollTop") == 0
