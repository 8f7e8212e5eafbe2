"""A classroom on one server: sessions never see each other, are released when tabs close, survive a dropped link."""

from __future__ import annotations

import asyncio
import functools
import gc
import io
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor

import panel as pn
import pytest
from pages import open_app
from PIL import Image
from playwright.sync_api import expect

from cnnviz.app import Explainer
from cnnviz.resources import shared_catalog, shared_network
from cnnviz.serve import build_the_kept_session
from cnnviz.state import ExplainerState

pytestmark = pytest.mark.ui

# Record the page's websockets, so a test can drop the connection the way a flaky classroom Wi-Fi would.
RECORD_WEBSOCKETS = """
window.__sockets = [];
window.WebSocket = class extends window.WebSocket {
  constructor(...args) { super(...args); window.__sockets.push(this); }
};
"""

# Count what the server sends a tab, to show that other students' clicks send it nothing.
COUNT_RECEIVED = """
window.__received = 0;
window.WebSocket = class extends window.WebSocket {
  constructor(...args) { super(...args); this.addEventListener("message", () => { window.__received += 1; }); }
};
"""


@pytest.fixture
def app(serve, monkeypatch):
    """The real page with a fast session clean-up; `app.states` holds a weak reference to each session's state."""
    # Bokeh destroys a session once no tab has used it for this long (default 15 s, checked every 17 s): how soon a
    # closed tab's session goes. A tab's session is built when its websocket arrives (the server reuses sessions for
    # the HTML, as `cnnviz serve` does), so no session can expire before its page connects, however slowly.
    fast_cleanup = {"check_unused_sessions_milliseconds": 500, "unused_session_lifetime_milliseconds": 8000}
    monkeypatch.setattr(pn, "serve", functools.partial(pn.serve, **fast_cleanup))
    states: list[weakref.ref[ExplainerState]] = []

    def page_factory():
        explainer = Explainer(network=shared_network(), catalog=shared_catalog())
        states.append(weakref.ref(explainer.state))
        return explainer.page()

    class App:
        url = serve(page_factory)

        def latest_state(self) -> ExplainerState:
            """The newest session's state: the last page's, once that page shows (its session is built when its
            websocket arrives)."""
            state = states[-1]()
            assert state is not None, "the newest session was released while its tab is open"
            return state

    App.states = states
    return App()


def predicted_label(page) -> str:
    """The class the overview marks as predicted (its text also while an elastic view covers the overview)."""
    return page.locator(".ov-class.ov-predicted .ov-class-name").text_content()


def solid_png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 80), color).save(buffer, "PNG")
    return buffer.getvalue()


def test_two_concurrent_sessions_never_see_each_others_image_or_selection(app, new_page, wait_until, screenshot):
    keys = [example.key for example in shared_catalog().examples[:3]]
    first_page, second_page = new_page(), new_page()
    open_app(first_page, app.url, f"?image={keys[0]}")
    first = app.latest_state()
    open_app(second_page, app.url, f"?image={keys[1]}")
    second = app.latest_state()
    assert first is not second and first.network is second.network  # the weights are shared, read-only
    assert not any(array.flags.writeable for layer in first.network.layers for array in layer.weights().values())

    # interleaved, without waiting in between: the server handles both sessions at once
    first_page.locator(".ov-tile[data-layer='conv_1_1'][data-index='1']").click(force=True)
    second_page.locator("input[type=file]").set_input_files(
        {"name": "red.png", "mimeType": "image/png", "buffer": solid_png((220, 20, 20))}
    )
    first_page.locator(f".thumb[data-key='{keys[2]}']").click()
    second_page.locator(".ov-tile[data-layer='conv_2_1'][data-index='4']").click(force=True)

    wait_until(lambda: (first.example, first.layer, first.neuron) == (keys[2], "conv_1_1", 1))
    wait_until(lambda: (second.example, second.layer, second.neuron) == ("", "conv_2_1", 4))
    assert abs(float(second.image[..., 0].mean()) - 220 / 255) < 1e-3
    wait_until(lambda: first.image is shared_catalog()[keys[2]].image)  # the image follows its key at the next flush
    for page, state in [(first_page, first), (second_page, second)]:
        wait_until(lambda page=page, state=state: predicted_label(page) == state.trace.predicted_class)
    first_page.wait_for_url(f"**image={keys[2]}&layer=conv_1_1&neuron=1**")
    second_page.wait_for_url("**layer=conv_2_1&neuron=4**")
    assert keys[2] not in second_page.url
    first_title = shared_catalog()[keys[2]].title
    wait_until(lambda: first_page.locator(".image-caption b").inner_text() == first_title)
    wait_until(lambda: second_page.locator(".image-caption b").inner_text() == "Your image")
    screenshot(first_page, "sessions-first")
    screenshot(second_page, "sessions-second")


def test_one_students_clicks_send_nothing_to_another_tab(app, new_page, wait_until):
    """No shared state leaks into other sessions, not even a busy signal: their pages receive no message at all."""
    watcher, clicker = new_page(), new_page()
    watcher.add_init_script(COUNT_RECEIVED)
    open_app(watcher, app.url)
    open_app(clicker, app.url)
    clicker_state = app.latest_state()
    settled = []

    def quiet() -> bool:  # the watcher's own page has finished loading: nothing arrived for a second
        settled.append(watcher.evaluate("window.__received"))
        return len(settled) > 10 and settled[-1] == settled[-11] > 0

    wait_until(quiet, interval=0.1)
    before = settled[-1]
    for example in shared_catalog().examples[2:5]:
        clicker.locator(f".thumb[data-key='{example.key}']").click()
        wait_until(lambda example=example: predicted_label(clicker) == clicker_state.trace.predicted_class
                   and clicker_state.example == example.key)  # fmt: skip
    clicker.locator(".ov-tile[data-layer='conv_2_1'][data-index='2']").click(force=True)
    wait_until(lambda: (clicker_state.layer, clicker_state.neuron, clicker_state.level) == ("conv_2_1", 2, "elastic"))
    clicker.locator(".el-title").wait_for()
    clicker.keyboard.press("Escape")
    wait_until(lambda: clicker_state.level == "overview")
    watcher.wait_for_timeout(500)
    assert watcher.evaluate("window.__received") == before


def test_closed_tabs_release_their_sessions(app, new_page, wait_until, monkeypatch):
    # A closing tab can make Panel write to a dead socket; asyncio logs that error with a traceback that reaches
    # the session's document, and pytest's log capture would keep that record (and so the session) alive.
    monkeypatch.setattr(logging.getLogger("asyncio"), "propagate", False)
    # as `cnnviz serve` does at start-up, so the session kept for the HTML is nobody's (in a thread: Playwright's
    # event loop runs in this one)
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, build_the_kept_session(app.url)).result()
    assert len(app.states) == 1
    pages = [new_page() for _ in range(3)]
    for page in pages:
        open_app(page, app.url)
    pages[-1].locator("input[type=file]").set_input_files(
        {"name": "blue.png", "mimeType": "image/png", "buffer": solid_png((20, 20, 220))}
    )
    wait_until(lambda: app.latest_state().example == "")
    assert len(app.states) == 4  # one session per tab, each built once
    for page in pages:
        page.context.close()

    def released() -> bool:
        gc.collect()
        alive = [index for index, ref in enumerate(app.states) if ref() is not None]
        assert alive == [0], f"the states of sessions {alive} are in memory (0: the one kept for the HTML)"
        return True

    wait_until(released, timeout=60)


def test_a_dropped_websocket_comes_back_to_the_same_view(app, page, wait_until, screenshot):
    page.add_init_script(RECORD_WEBSOCKETS)
    key = shared_catalog().examples[4].key
    open_app(page, app.url, f"?image={key}")
    page.locator(".ov-tile[data-layer='conv_1_2'][data-index='3']").click(force=True)
    page.wait_for_url("**layer=conv_1_2&neuron=3**")

    page.evaluate("window.__sockets[0].close()")  # the page reloads once the server answers
    page.wait_for_event("load", timeout=20_000)
    expect(page.locator(".el-title")).to_contain_text("conv_1_2, neuron 4")  # the reloaded page shows the same view
    # the session the page shows, asked for once it shows: the server builds it when the page's websocket arrives
    restored = app.latest_state()
    wait_until(lambda: (restored.example, restored.layer, restored.neuron) == (key, "conv_1_2", 3))

    other = shared_catalog().examples[6]
    page.locator(f".thumb[data-key='{other.key}']").click()  # and it drives its new session
    wait_until(lambda: restored.example == other.key)
    wait_until(lambda: predicted_label(page) == restored.trace.predicted_class)
    screenshot(page, "sessions-reconnected")


def test_a_reload_restores_the_image_and_selection_from_the_url(app, page, wait_until):
    open_app(page, app.url)
    key = shared_catalog().examples[7].key
    page.locator(f".thumb[data-key='{key}']").click()
    page.locator(".ov-tile[data-layer='max_pool_1'][data-index='2']").click(force=True)
    page.wait_for_url(f"**image={key}**layer=max_pool_1&neuron=2**")
    before = app.latest_state()
    page.reload()
    page.locator(".ov-class").first.wait_for()

    def restored() -> bool:  # the newest session, built when the reloaded page's websocket arrived
        state = app.latest_state()
        assert state is not before, "no new session yet"
        assert (state.example, state.layer, state.neuron) == (key, "max_pool_1", 2)
        return predicted_label(page) == state.trace.predicted_class

    wait_until(restored, timeout=60)


def test_browser_back_brings_the_previous_view_back(app, page, wait_until):
    examples = shared_catalog().examples  # 8 probes, and the photos before them once `cnnviz data` has run
    first, second = examples[3], examples[-1]
    open_app(page, app.url, f"?image={first.key}")
    page.locator(".ov-tile[data-layer='conv_2_1'][data-index='4']").click(force=True)
    page.wait_for_url("**layer=conv_2_1&neuron=4**")
    page.locator(f".thumb[data-key='{second.key}']").click()
    page.wait_for_url(f"**image={second.key}**")
    with page.expect_event("load", timeout=60_000):  # the page reloads to follow the URL it went back to
        page.go_back()  # the URL of the first image with its selection

    def back_where_it_was() -> bool:
        state = app.latest_state()
        assert (state.example, state.layer) == (first.key, "conv_2_1")
        return predicted_label(page) == state.trace.predicted_class

    wait_until(back_where_it_was, timeout=60)
    expect(page.locator(f".thumb[data-key='{first.key}']")).to_have_attribute("aria-selected", "true")
