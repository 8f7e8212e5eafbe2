"""What a person sees, checked the way a person would look: pixels, text boxes, real clicks and taps.

Each test loads the page once and runs several checks on it, so the suite stays lean. Every test writes
screenshots to test-artifacts/gallery/ (overview, each view, the tour, the phone layout) for people to look at.
"""

from __future__ import annotations

import pytest
from pages import SKIP_TOUR, edge_problems, gallery_shot, looks_like, open_app, pixels, text_problems
from playwright.sync_api import expect

from cnnviz.plots.overview import bar_boxes, overview_layout

pytestmark = pytest.mark.ui

SIZES = {"1440x900": (1440, 900), "1280x800": (1280, 800), "390x844": (390, 844)}
TOUR_CARD = ".tour-card"


def rest_the_pointer(page) -> None:
    """Scroll to the top and move the pointer off the network, so two screenshots show the same page."""
    page.mouse.move(1, 1)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_function("() => window.scrollY === 0")


def wait_for_view(page, wait_until, state, layer: str, neuron: int) -> None:
    """Until the session has opened the elastic view of that neuron and its heading is on screen."""
    wait_until(lambda: (state.layer, state.neuron, state.level) == (layer, neuron, "elastic"))
    page.locator(".el-view .el-title").wait_for()


def elastic_closed(page) -> None:
    page.locator(".el-view").wait_for(state="hidden")


def card_on_screen(card, height: int) -> bool:
    box = card.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def spotlight_shown(page) -> bool:
    return page.evaluate(
        """() => { const root = document.querySelector('.cnnviz-tour')?.shadowRoot;
        const spot = root?.querySelector('.tour-spotlight');
        return Boolean(spot && spot.checkVisibility() && spot.getBoundingClientRect().width > 0); }"""
    )


def test_every_way_out_of_the_tour_leaves_the_page_undimmed(browser, app, wait_until):
    """Skip on the first visit, Done at the end, Esc on a reopened tour: the page looks as before the tour.

    On the way it walks every step: each card fits a 1280×800 laptop screen, buttons included, and the steps
    about a view open that view."""
    viewport = {"width": 1280, "height": 800}
    returning = browser.new_context(viewport=viewport)
    returning.add_init_script(SKIP_TOUR)  # a returning visitor's page: the picture without any tour
    page = returning.new_page()
    open_app(page, app.url)
    rest_the_pointer(page)
    before = pixels(page)
    returning.close()

    context = browser.new_context(viewport=viewport)  # a first visit: the tour opens by itself
    page = context.new_page()
    page.goto(app.url)
    card = page.locator(TOUR_CARD)

    def leave_and_compare(how: str) -> None:
        card.wait_for(state="hidden")
        wait_until(lambda: app.sessions[-1].state.level == "overview")
        elastic_closed(page)  # a view the tour opened has shrunk back
        rest_the_pointer(page)

        def as_before() -> bool:  # polled: the page may still be settling (a transition, a redraw)
            difference = looks_like(pixels(page), before)
            assert not difference, f"after {how} the page does not look as before the tour: {difference}"
            return True

        wait_until(as_before)
        assert not spotlight_shown(page), f"after {how} the tour's spotlight frame is still drawn"

    card.wait_for()
    gallery_shot(page, "tour-first-visit")
    card.get_by_role("button", name="Skip tour").click()
    leave_and_compare("Skip tour")
    assert page.evaluate("() => localStorage.getItem('cnnviz-tour-seen')") == "yes"  # it opens by itself once

    # every step, each card on the screen with its buttons, then Done
    launcher = page.get_by_role("button", name="Take the tour")
    launcher.click()
    steps = app.sessions[-1]._tour.steps
    for index, step in enumerate(steps):
        expect(card.locator(".tour-progress")).to_have_text(f"Step {index + 1} of {len(steps)}")
        expect(card.locator("h2")).to_have_text(step.title)
        level = step.opens[2] if step.opens else "overview"  # the steps about a view open it
        wait_until(lambda level=level: app.sessions[-1].state.level == level)
        page.locator(step.selector).first.wait_for()
        wait_until(lambda: spotlight_shown(page))
        wait_until(lambda: card_on_screen(card, viewport["height"]))
        if step.opens:
            gallery_shot(page, f"tour-step-{index + 1}-{level}")
        card.get_by_role("button", name="Done" if index == len(steps) - 1 else "Next").click()
    leave_and_compare("Done")
    assert app.sessions[-1].state.layer == ""  # the learner's own view is back

    # reopened, then Esc in the middle, while the tour shows the elastic view
    launcher.click()
    card.get_by_role("button", name="Next").click()
    card.get_by_role("button", name="Next").click()
    wait_until(lambda: app.sessions[-1].state.level == "elastic")
    page.keyboard.press("Escape")
    leave_and_compare("Esc")

    # a formula dialog opened afterwards has no frame drawn over it
    page.locator(".ov-tile[data-layer='relu_1_1'][data-index='2']").click(force=True)
    page.locator(".fv-dialog").wait_for()
    assert not spotlight_shown(page)
    context.close()


def intersect(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def open_class(page, wait_until, state, index: int, how: str, output: str) -> None:
    """Open a class of the output column with a real pointer click or a touch tap at its centre."""
    tile = page.locator(f".ov-class[data-index='{index}']")
    tile.scroll_into_view_if_needed()
    box = tile.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    if how == "tap":
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)
    wait_for_view(page, wait_until, state, output, index)


def test_a_phone_opens_every_class_by_click_and_by_tap(browser, app, wait_until):
    width, height = SIZES["390x844"]
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True)
    context.add_init_script(SKIP_TOUR)
    page = context.new_page()
    open_app(page, app.url)
    state = app.sessions[-1].state
    network = state.network
    output = network.infos[-2].name
    for index in range(len(network.class_names)):
        for how in ("click", "tap"):
            open_class(page, wait_until, state, index, how, output)
            if index == 0 and how == "tap":
                gallery_shot(page, "phone-flatten-view")
            page.keyboard.press("Escape")
            elastic_closed(page)
    context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_no_text_overlaps_or_is_clipped(browser, app, size, wait_until):
    """The overview (with and without details), the conv and flatten views and softmax mode, at each size."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=width < 700)
    context.add_init_script(SKIP_TOUR)
    page = context.new_page()
    open_app(page, app.url)
    network = app.sessions[-1].state.network
    problems: dict[str, list[str]] = {}

    def check(where: str, within: str | None = None) -> None:
        found = text_problems(page, within) + edge_problems(page)
        if found:
            problems[where] = found

    check("overview")
    gallery_shot(page, f"overview-{size}", full_page=True)
    page.locator("label span", has_text="Show details").click()  # the label toggles its switch, as labels do
    page.locator(".ov-legend").first.wait_for()
    page.wait_for_url("**details=true**")  # written once the session rests
    assert page.evaluate("() => location.search").count("details=true") == 1
    check("overview with details")
    gallery_shot(page, f"overview-details-{size}")

    state = app.sessions[-1].state
    conv = next(info.name for info in network.infos if info.kind == "conv2d")
    history = page.evaluate("() => history.length")
    page.locator(f".ov-tile[data-layer='{conv}'][data-index='3']").click(force=True)
    wait_for_view(page, wait_until, state, conv, 3)
    page.locator(".el-readout").wait_for()
    check("conv view")
    page.wait_for_url("**view=elastic**")  # the entry for the opened view, written once the session rests
    opened = page.evaluate("() => history.length")
    picture = page.locator(".el-view canvas").first
    picture.scroll_into_view_if_needed()
    box = picture.bounding_box()
    for step in range(6):  # pointer positions are not places to go Back to
        page.mouse.move(box["x"] + box["width"] * (0.55 + 0.05 * step), box["y"] + box["height"] * 0.5)
    check("conv view, pointed")
    gallery_shot(page, f"conv-view-pointed-{size}")
    assert page.evaluate("() => history.length") == opened, "pointing at the conv view added history entries"
    assert "details=true" in page.url, "the URL spells the details option differently after another change"
    assert opened == history + 1
    page.keyboard.press("Escape")
    elastic_closed(page)

    output_layer = network.infos[-2].name
    open_class(page, wait_until, state, 0, "tap" if width < 700 else "click", output_layer)
    check("flatten view")
    gallery_shot(page, f"flatten-view-{size}")
    page.get_by_role("button", name="Softmax →").click()
    wait_for_view(page, wait_until, state, network.infos[-1].name, 0)
    page.get_by_role("button", name=network.class_names[-1], exact=True).wait_for()
    check("softmax mode")
    gallery_shot(page, f"softmax-mode-{size}")
    context.close()
    assert not problems, "\n".join(f"{where}: {problem}" for where, found in problems.items() for problem in found)


def test_an_open_conv_view_is_not_replayed_by_a_colour_change_or_by_back(browser, app, wait_until):
    """Changing the colour range redraws the view without restarting its sweep; Back from its formula view shows
    the view as it was left, with no new sweep."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(SKIP_TOUR)
    page = context.new_page()
    open_app(page, app.url)
    session = app.sessions[-1]
    state = session.state
    conv = [info.name for info in state.network.infos if info.kind == "conv2d"][1]
    page.locator(f".ov-tile[data-layer='{conv}'][data-index='3']").click(force=True)
    wait_for_view(page, wait_until, state, conv, 3)
    view = session.elastic.panes["conv2d"]
    page.get_by_role("button", name="Play", exact=True).click()
    wait_until(lambda: view.playing and (state.row, state.col) != (0, 0))
    page.get_by_role("button", name="Global", exact=True).click()
    wait_until(lambda: state.color_mode == "global")
    reached = state.row * 10_000 + state.col
    wait_until(lambda: state.row * 10_000 + state.col > reached)  # the sweep went on from where it was
    assert view.playing, "a new colour range stopped the sweep"
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_until(lambda: not view.playing)

    page.locator(".el-explain button").nth(1).click()
    page.locator(".fv-dialog").wait_for()
    wait_until(lambda: "view=formula" in page.url)
    with page.expect_event("load"):  # the page follows the URL it went back to
        page.go_back()
    wait_until(lambda: app.sessions[-1].state.level == "elastic")
    page.locator(".el-view .el-title").wait_for()
    assert not app.sessions[-1].elastic.panes["conv2d"].playing, "Back replayed the sweep"
    context.close()


def test_every_class_bar_ends_before_its_value_in_backward_mode_on_a_phone(browser, app, wait_until):
    """Backward mode writes p − y after each bar ("−0.099", the longest value); on the narrowest overview the
    prediction's bar ran into it. Measured on the page: each bar's right end against its value's left edge."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    context.add_init_script(SKIP_TOUR)
    page = context.new_page()
    open_app(page, app.url, "?mode=backward")
    state = app.sessions[-1].state
    values = page.locator(".ov-class-value")
    wait_until(lambda: values.first.inner_text().startswith("−"))  # the prediction's p − y, negative
    layout = overview_layout(state.network)
    frame = page.locator(".ov-frame").bounding_box()
    for index, (_x0, _y0, bar_right, _y1) in enumerate(bar_boxes(layout, state.trace.probabilities)):
        value = values.nth(index).bounding_box()
        bar_end = frame["x"] + frame["width"] * bar_right / layout.width
        assert bar_end + 2 <= value["x"], (
            f"class {index}: the bar ends at {bar_end:.0f} px, its value starts at {value['x']:.0f}"
        )
    context.close()
