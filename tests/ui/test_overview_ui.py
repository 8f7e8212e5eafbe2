"""The Overview and control panel in headless Chromium, driven as a student would drive them."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from pages import focused_element, open_app
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from cnnviz.app import _article_sections
from cnnviz.colors import DIVERGING, color_ranges, diverging_indices
from cnnviz.plots.overview import overview_layout
from cnnviz.resources import shared_network

pytestmark = pytest.mark.ui


def predicted_label(page) -> str:
    return page.locator(".ov-class.ov-predicted .ov-class-name").inner_text()


def test_overview_draws_every_neuron_and_the_prediction(page, app, screenshot, wait_until):
    open_app(page, app.url)
    assert page.locator(".ov-tile:not(.ov-class)").count() == 103
    assert page.locator(".ov-class").count() == 10
    state = app.sessions[-1].state
    assert predicted_label(page) == state.trace.predicted_class
    percent = page.locator(".ov-class.ov-predicted .ov-class-value").inner_text()
    assert percent == f"{100 * state.trace.probabilities.max():.1f}%"
    labels = page.locator(".ov-label span").all_inner_texts()
    assert labels == [column.name for column in overview_layout(state.network).columns]
    screenshot(page, "overview-1280")


@pytest.mark.parametrize("mode", ["unit", "module", "global"])
def test_canvas_pixels_have_the_engines_colours(page, app, mode, wait_until):
    open_app(page, app.url)
    if mode != "unit":
        page.get_by_role("button", name=mode.capitalize(), exact=True).click()
    state = app.sessions[-1].state
    wait_until(lambda: state.color_mode == mode)
    ranges = color_ranges(state.trace, mode)

    def drawn_in_the_engines_colours() -> bool:
        png = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        for layer, neuron in [("max_pool_2", 0), ("max_pool_2", 7), ("conv_2_2", 3), ("relu_1_2", 5)]:
            box = page.locator(f".ov-tile[data-layer='{layer}'][data-index='{neuron}']").bounding_box()
            values = state.trace[layer][..., neuron]
            rows, cols = values.shape
            for row, col in [(rows // 2, cols // 2), (1, cols - 2), (rows - 2, 1)]:
                x = box["x"] + (col + 0.5) * box["width"] / cols
                y = box["y"] + (row + 0.5) * box["height"] / rows
                # a tile has fewer pixels than a big map has cells: the pixel shows this cell or a neighbour
                around = values[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].ravel()
                expected = [DIVERGING[int(index)] for index in diverging_indices(around, ranges[layer])]
                expected_rgb = np.array([[int(color[i : i + 2], 16) for i in (1, 3, 5)] for color in expected])
                seen = np.array(png.getpixel((round(x), round(y))))
                distance = np.abs(seen - expected_rgb).max(axis=1).min()
                assert distance <= 24, f"{layer}[{neuron}] ({row},{col}) in {mode}"
        return True

    wait_until(drawn_in_the_engines_colours, timeout=30)  # the canvas redraws once the new colours arrive


def test_choosing_another_example_updates_the_prediction(page, app, catalog, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    target = next(e for e in catalog.examples if e.label == "koala")
    thumb = page.locator(f".thumb[data-key='{target.key}']")
    # clicked and read in one browser task: the server cannot have answered yet, so the choice shows as pending
    assert thumb.evaluate("button => { button.click(); return button.classList.contains('pending') }")
    assert page.locator(".gallery").get_attribute("aria-busy") == "true"
    wait_until(lambda: state.example == target.key)
    expected = shared_network().trace(target.image).predicted_class
    wait_until(lambda: predicted_label(page) == expected)
    wait_until(lambda: page.locator(".thumb.pending").count() == 0)  # the server's answer ends it
    assert page.locator(".gallery").get_attribute("aria-busy") == "false"
    screenshot(page, "overview-koala")


def test_gallery_arrow_keys_move_along_its_rows_and_columns(page, app, wait_until):
    open_app(page, app.url)
    thumbs = page.locator(".thumb")
    tops = [box["y"] for box in (thumbs.nth(i).bounding_box() for i in range(thumbs.count()))]
    per_row = tops.count(tops[0])
    assert 1 < per_row < thumbs.count()  # a grid, not one line
    thumbs.first.focus()
    keys = [thumbs.nth(i).get_attribute("data-key") for i in range(thumbs.count())]
    for key, index in [("ArrowDown", per_row), ("ArrowRight", per_row + 1), ("ArrowUp", 1), ("ArrowLeft", 0)]:
        page.keyboard.press(key)
        assert focused_element(page).get_attribute("data-key") == keys[index], key
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_until(lambda: app.sessions[-1].state.example == keys[per_row])


def png_bytes(color, size=(120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_upload_works_and_a_bad_upload_explains_itself(page, app, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    upload = page.locator("input[type=file]")
    upload.set_input_files({"name": "red.png", "mimeType": "image/png", "buffer": png_bytes((220, 20, 20))})
    wait_until(lambda: state.example == "" and abs(float(state.image[..., 0].mean()) - 220 / 255) < 1e-3)
    wait_until(lambda: predicted_label(page) == state.trace.predicted_class)
    before = state.image
    name = "<img src=x onerror=alert(1)>.jpg"
    upload.set_input_files({"name": name, "mimeType": "image/jpeg", "buffer": b"this is not a picture"})
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "not an image cnnviz can read" in alert.inner_text()
    assert state.image is before
    assert page.locator("img[src=x]").count() == 0
    screenshot(page, "overview-bad-upload")
    upload.set_input_files({"name": "blue.png", "mimeType": "image/png", "buffer": png_bytes((20, 20, 220))})
    wait_until(lambda: abs(float(state.image[..., 2].mean()) - 220 / 255) < 1e-3)
    wait_until(lambda: page.get_by_role("alert").count() == 0)


def test_hover_shows_incoming_edges_and_values(page, app, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    page.locator(".ov-tile[data-layer='conv_2_1'][data-index='4']").hover(force=True)  # the pointer is on the plot
    assert page.locator(".ov-edge").count() == 10
    values = state.trace["conv_2_1"][..., 4]
    readout = page.locator(".ov-readout").inner_text()
    assert "conv_2_1, neuron 5 of 10" in readout
    assert f"max {values.max():.2f}" in readout.replace("−", "-")
    screenshot(page, "overview-hover-conv")
    page.locator(".ov-tile[data-layer='relu_2_1'][data-index='4']").hover(force=True)
    assert page.locator(".ov-edge").count() == 1
    page.locator(".ov-class").nth(2).hover(force=True)
    assert page.locator(".ov-edge").count() == 10
    page.mouse.move(5, 5)
    assert page.locator(".ov-edge").count() == 0


def test_keyboard_moves_between_neurons_and_enter_selects(page, app, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    page.locator(".ov-tile[data-layer='conv_1_1'][data-index='0']").focus()
    for key in ["ArrowRight", "ArrowRight", "ArrowDown", "ArrowDown", "ArrowDown"]:
        page.keyboard.press(key)
    focused = page.locator(".ov-tile[data-layer='conv_1_2'][data-index='3']")
    assert focused.evaluate("node => node.getRootNode().activeElement === node")
    assert focused.evaluate("node => getComputedStyle(node).outlineStyle") != "none"
    assert "conv_1_2, neuron 4 of 10" in focused.get_attribute("aria-label")
    assert page.locator(".ov-edge").count() == 10
    page.keyboard.press("Enter")
    wait_until(lambda: (state.layer, state.neuron) == ("conv_1_2", 3))
    screenshot(page, "overview-keyboard")


def test_a_click_on_a_tile_or_a_class_selects_it_through_the_plot(page, app, wait_until):
    """The pointer goes to the plot (a Tap stream), not to the keyboard layer's buttons over it."""
    open_app(page, app.url)
    state = app.sessions[-1].state
    box = page.locator(".ov-tile[data-layer='relu_1_2'][data-index='6']").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_until(lambda: (state.layer, state.neuron) == ("relu_1_2", 6))
    open_app(page, app.url)  # a fresh page: the formula view is open over this one
    state = app.sessions[-1].state
    page.locator(".ov-class").nth(4).click(force=True)
    output = app.sessions[-1].overview.layout.columns[-1].name
    wait_until(lambda: (state.layer, state.neuron, state.level) == (output, 4, "elastic"))


def test_the_selected_neuron_and_its_formula_window_are_outlined_where_they_are_drawn(page, app, wait_until):
    relu = next(info.name for info in shared_network().infos if info.kind == "relu")
    open_app(page, app.url, f"?layer={relu}&neuron=2&view=formula&row=0&col=0")
    outlines = page.locator(".ov-selected")
    wait_until(lambda: outlines.count() == 2)  # the neuron's tile, and the window's cell at its top left
    tile = page.locator(f".ov-tile[data-layer='{relu}'][data-index='2']").bounding_box()
    shown, cell = outlines.nth(0).bounding_box(), outlines.nth(1).bounding_box()
    for side in ("x", "y", "width", "height"):  # the 3 px stroke is centred on the box's edge
        assert shown[side] == pytest.approx(tile[side], abs=4), side
    assert cell["x"] == pytest.approx(tile["x"], abs=3) and cell["y"] == pytest.approx(tile["y"], abs=3)
    assert cell["width"] < tile["width"] / 4  # one cell of the map
    page.keyboard.press("Escape")
    wait_until(lambda: app.sessions[-1].state.level == "overview")
    wait_until(lambda: outlines.count() == 0)


def test_url_restores_and_follows_the_state(page, app, catalog, wait_until, screenshot):
    key = catalog.examples[5].key
    open_app(page, app.url, f"?image={key}&layer=conv_2_2&neuron=6&details=true&colors=global")
    state = app.sessions[-1].state
    wait_until(lambda: (state.example, state.layer, state.neuron) == (key, "conv_2_2", 6))
    assert state.show_details and state.color_mode == "global"
    page.locator(".ov-label small").first.wait_for()
    assert page.locator(".ov-legend").count() == 2  # the input's grey legend and one shared range
    page.locator(".ov-tile[data-layer='max_pool_1'][data-index='2']").click(force=True)
    page.wait_for_url(re.compile(r"layer=max_pool_1&neuron=2"))
    screenshot(page, "overview-url-restored")


def test_two_sessions_never_share_state(new_page, app, catalog, wait_until):
    pages = [new_page() for _ in range(2)]
    keys = [e.key for e in catalog.examples if e.label in ("pizza", "school bus")][::3][:2]
    for page, key in zip(pages, keys, strict=True):
        open_app(page, app.url, f"?image={key}")
    first, second = app.sessions[-2].state, app.sessions[-1].state
    wait_until(lambda: (first.example, second.example) == tuple(keys))
    pages[0].locator(".ov-tile[data-layer='conv_1_1'][data-index='1']").click(force=True)
    wait_until(lambda: first.layer == "conv_1_1")
    assert second.layer == "" and second.example == keys[1]
    for page, state in zip(pages, (first, second), strict=True):
        assert predicted_label(page) == state.trace.predicted_class


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (1024, 768), (390, 844)])
def test_layout_fits_each_screen(new_page, app, width, height, screenshot):
    page = new_page(width, height)
    open_app(page, app.url)
    assert "width=device-width" in page.locator("meta[name='viewport']").get_attribute("content")
    frame = page.locator(".ov-scroll")
    scroll_width, client_width = frame.evaluate("n => [n.scrollWidth, n.clientWidth]")
    if width >= 1024:
        assert scroll_width <= client_width + 1  # the whole network is visible without scrolling
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= width + 1  # nothing pushes the page itself sideways; the overview scrolls inside
    # stacked, never drawn over each other: controls, then the network (above or beside), then the article
    controls, network = page.locator(".gallery").bounding_box(), frame.bounding_box()
    article = page.get_by_text("In this article:").bounding_box()
    assert network["y"] + network["height"] <= article["y"]
    if width < 1200:
        assert controls["y"] + controls["height"] <= network["y"]
    screenshot(page, f"layout-{width}x{height}")


def test_a_finger_swiping_over_the_network_on_a_phone_scrolls_the_page(new_page, app):
    """The plots take no drag (no pan tool, even hidden): a swipe over them must scroll the page, as elsewhere."""
    page = new_page(390, 844, has_touch=True, is_mobile=True)
    open_app(page, app.url)
    plot = page.locator(".ov-scroll .bk-Canvas").first
    plot.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = plot.bounding_box()
    x, start = box["x"] + min(box["width"], 380) / 2, box["y"] + box["height"] * 0.6
    touch = page.context.new_cdp_session(page)
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": start}]})
    for step in range(1, 11):
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": start - 20 * step}]})
        page.wait_for_timeout(16)
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(500)
    assert plot.bounding_box()["y"] < box["y"] - 100  # the page moved up under the finger


def test_every_layer_label_jumps_to_its_article_section(page, app):
    open_app(page, app.url)
    sections = _article_sections()
    page.mouse.move(640, 450)
    for column in overview_layout(app.sessions[-1].state.network).columns:
        jump_from_the_top(page, column.name, sections[column.kind])
        # only the page's scrolling column moved: the document itself (and so the header) stays in place
        assert page.evaluate("document.scrollingElement.scrollTop") == 0
    # a reader who scrolls on straight after a jump is not pulled back to the section once the page has settled
    jump_from_the_top(page, column.name, sections[column.kind])
    page.mouse.wheel(0, 400)
    page.wait_for_function(f"(id) => ({SECTION_TOP})(id) < -300", arg=sections[column.kind])
    page.wait_for_timeout(6500)  # past the jump's last re-alignment
    assert page.evaluate(SECTION_TOP, sections[column.kind]) < -300


def jump_from_the_top(page, layer: str, anchor: str) -> None:
    """Wheel back to the top of the page's scrolling column, click the layer's label, wait for its section."""
    page.mouse.wheel(0, -100_000)
    page.wait_for_function("document.querySelector('#main').scrollTop === 0")
    page.wait_for_function(SECTION_DRAWN, arg=anchor)  # a busy server draws the article later
    page.locator(f".ov-label[data-layer='{layer}']").click()
    wait_for_section_in_view(page, anchor)


def wait_for_section_in_view(page, anchor: str) -> None:
    """Wait until the section's heading is in the top half of the window; say where it is if it never gets there."""
    try:
        page.wait_for_function(SECTION_IN_VIEW, arg=anchor, polling="raf")
    except PlaywrightTimeoutError:
        where = page.evaluate(
            f"""(id) => {{ const main = document.querySelector('#main');
            return {{top: ({SECTION_TOP})(id), main: [main.scrollTop, main.scrollHeight, main.clientHeight],
                     innerHeight, jump: typeof window.cnnvizScrollToSection}}; }}""",
            anchor,
        )
        pytest.fail(f"section {anchor} never came into view: {where}")


FIND_SECTION = """const find = (root) => root.getElementById?.(id)
    || [...root.querySelectorAll('*')].reduce((hit, el) => hit || (el.shadowRoot && find(el.shadowRoot)), null);
  const target = find(document);"""
SECTION_DRAWN = f"""(id) => {{ {FIND_SECTION} return Boolean(target && target.getBoundingClientRect().height > 0); }}"""
SECTION_TOP = f"""(id) => {{ {FIND_SECTION} return target ? target.getBoundingClientRect().top : null; }}"""
# in the top half of the window and still for a few frames: the jump's smooth scroll has ended
SECTION_IN_VIEW = f"""(id) => {{
  const top = ({SECTION_TOP})(id);
  const seen = window.sectionTops = window.sectionTops?.id === id ? window.sectionTops : {{id, tops: []}};
  seen.tops = [...seen.tops.slice(-4), top];
  const still = seen.tops.length === 5 && seen.tops.every((t) => t === top);
  return still && top !== null && top >= -5 && top < innerHeight / 2;
}}"""
