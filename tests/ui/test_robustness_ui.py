"""A classroom's worst moments in Chromium: a slow upload beside another student's click, hostile links, a lost
connection. Every check waits for a condition and asserts what happened in which order, never elapsed time."""

from __future__ import annotations

import threading

import pytest
from pages import open_app
from playwright.sync_api import expect
from test_sessions_ui import RECORD_WEBSOCKETS, predicted_label, solid_png

import cnnviz.state
from cnnviz.app import Explainer
from cnnviz.resources import shared_catalog, shared_network

pytestmark = pytest.mark.ui


@pytest.fixture
def app(serve):
    """The real page; `app.sessions` holds each browser session's Explainer."""
    sessions: list[Explainer] = []

    def page_factory():
        explainer = Explainer(network=shared_network(), catalog=shared_catalog())
        sessions.append(explainer)
        return explainer.page()

    class App:
        url = serve(page_factory)

    App.sessions = sessions
    return App()


def red_png() -> dict:
    return {"name": "red.png", "mimeType": "image/png", "buffer": solid_png((230, 20, 20))}


def test_one_sessions_slow_upload_does_not_hold_up_another_sessions_click(app, new_page, wait_until, monkeypatch):
    decoding, finish = threading.Event(), threading.Event()
    real_decode = cnnviz.state.prepare_upload

    def slow_decode(content: bytes, input_shape: tuple[int, ...]):
        decoding.set()
        assert finish.wait(120), "the test never let the decode finish"
        return real_decode(content, input_shape)

    monkeypatch.setattr(cnnviz.state, "prepare_upload", slow_decode)
    uploader, clicker = new_page(), new_page()
    open_app(uploader, app.url)
    uploading = app.sessions[-1]
    open_app(clicker, app.url)
    clicking = app.sessions[-1]
    try:
        uploader.locator("input[type=file]").set_input_files(red_png())
        wait_until(decoding.is_set, timeout=30)

        key = clicking.state.catalog.examples[3].key
        clicker.locator(f".thumb[data-key='{key}']").click()
        wait_until(lambda: clicking.state.example == key, timeout=30)
        wait_until(lambda: predicted_label(clicker) == clicking.state.trace.predicted_class, timeout=30)
        expect(clicker.locator(".image-caption")).to_contain_text(clicking.state.catalog[key].title)
        # the other session's click was answered while the upload was still being decoded
        assert not finish.is_set() and uploading.state.example != ""
    finally:
        finish.set()
    wait_until(lambda: uploading.state.example == "", timeout=60)
    expect(uploader.locator(".image-caption")).to_contain_text("Your image")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?layer=nope", "layer=nope is not a layer"),
        ("?neuron=99999&view=elastic", "neuron=99999 needs a layer"),
        ("?layer=conv_1_1&view=formula&channel=99", "channel=99 is out of range"),
        ("?whatif=kernel:conv_1_1.0.0=nan,0,0,0,0,0,0,0,0", "whatif"),
        ("?neuron=" + "9" * 400, "far out of range"),
    ],
)
def test_a_hostile_link_gets_a_sentence_and_the_next_click_updates_everything(app, page, wait_until, query, words):
    page.goto(app.url + query)
    expect(page.get_by_role("alert")).to_contain_text(words)
    state = app.sessions[-1].state
    key = state.catalog.examples[2].key
    page.locator(f".thumb[data-key='{key}']").click()
    wait_until(lambda: state.example == key, timeout=30)
    wait_until(lambda: predicted_label(page) == state.trace.predicted_class, timeout=30)
    expect(page.locator(".image-caption")).to_contain_text(state.catalog[key].title)
    expect(page.locator(".ov-class-value").first).not_to_contain_text("NaN")


def test_a_lost_connection_is_announced_with_the_lost_upload_and_so_is_its_return(
    app, new_page, wait_until, screenshot
):
    page = new_page()
    page.add_init_script(RECORD_WEBSOCKETS)
    open_app(page, app.url)
    page.locator("input[type=file]").set_input_files(red_png())
    expect(page.locator(".image-caption")).to_contain_text("Your image")

    # the server goes out of reach: the websocket closes and the page's checks for the server fail
    page.route("**/*bokeh*.js*", lambda route: route.abort())
    page.evaluate("window.__sockets.forEach((socket) => socket.close())")
    lost = page.get_by_role("alert").filter(has_text="connection to the server is lost")
    expect(lost).to_be_visible()
    expect(lost).to_contain_text("The image you uploaded (red.png) was lost")
    screenshot(page, "connection-lost")

    page.unroute("**/*bokeh*.js*")  # the server answers again: the page reloads and says so
    back = page.get_by_role("status").filter(has_text="Connected to the server again")
    expect(back).to_be_visible(timeout=60_000)
    expect(back).to_contain_text("red.png")
    page.locator(".ov-class").first.wait_for()
    screenshot(page, "connection-back")
    back.get_by_role("button", name="Dismiss").click()
    expect(back).to_have_count(0)


def test_a_lost_connection_without_an_upload_says_nothing_about_uploads(app, new_page):
    page = new_page()
    page.add_init_script(RECORD_WEBSOCKETS)
    open_app(page, app.url)
    page.route("**/*bokeh*.js*", lambda route: route.abort())
    page.evaluate("window.__sockets.forEach((socket) => socket.close())")
    lost = page.get_by_role("alert").filter(has_text="connection to the server is lost")
    expect(lost).to_be_visible()
    expect(lost).not_to_contain_text("upload")
