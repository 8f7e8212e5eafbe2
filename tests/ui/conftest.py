"""Playwright fixtures shared by every UI test.

- `browser`: one headless Chromium for the whole session (skips with the reason when it cannot start).
- `page`: a fresh page per test that FAILS the test on a console error, an uncaught exception, or any request
  that leaves the machine (the app must work offline: no CDN).
- `serve(factory) -> url`: a Panel server on a free port, set up as `cnnviz serve` sets it up (the HTML of every page
  comes from one kept session; each tab gets its own session when its websocket arrives), stopped after the test.
- `wait_until(condition)`: poll a Python condition (e.g. server-side state) until it holds.
- `screenshot(page_or_locator, name)`: save a PNG under `test-artifacts/` for a human to look at.
"""

from __future__ import annotations

import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import panel as pn
import pytest
from pages import SKIP_TOUR

from cnnviz.app import Explainer
from cnnviz.examples import build_catalog
from cnnviz.resources import shared_network

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("CNNVIZ_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _wait_until(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll until `condition()` is truthy or stops raising AssertionError; fail with its last error if not."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
            problem = "the condition stayed false"
        except AssertionError as error:
            problem = str(error)
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s: {problem}")
        time.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    return _wait_until


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (set CNNVIZ_CHROMIUM)")
    sync_api.expect.set_options(timeout=30_000)  # UI assertions wait longer than 5 s: this machine is often busy
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, serve):
    """A 1280×900 page; the test fails afterwards if the page logged an error or tried to reach the internet.

    It depends on `serve` only so that pytest closes the page before it stops the servers.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(SKIP_TOUR)
    problems: list[str] = []

    def keep_local(route) -> None:
        if urlparse(route.request.url).hostname in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            problems.append(f"request to the internet: {route.request.url}")
            route.abort()

    context.route("**/*", keep_local)
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    yield page
    context.close()
    if problems:
        pytest.fail("the page reported problems:\n" + "\n".join(problems))


@pytest.fixture
def new_page(browser) -> Iterator[Callable[..., object]]:
    """Factory for extra pages, each in its own context (own session and storage), as a returning visitor."""
    contexts = []

    def make(width: int = 1280, height: int = 900, **options):
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        context.add_init_script(SKIP_TOUR)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def serve(monkeypatch) -> Iterator[Callable[[Callable[[], object]], str]]:
    """Start a Panel server for `factory` (called once per session, like `panel serve`) and return its URL."""
    monkeypatch.setattr(pn.config, "reuse_sessions", True)  # as `cnnviz serve`: a tab's page is built once

    def start(factory: Callable[[], object]) -> str:
        server_id = uuid.uuid4().hex
        pn.serve(factory, port=0, threaded=True, show=False, liveness=True, server_id=server_id)
        _wait_until(lambda: server_id in pn.state._servers)
        url = f"http://localhost:{pn.state._servers[server_id][0].port}/"

        def alive() -> bool:
            try:
                with urllib.request.urlopen(f"{url}liveness", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        _wait_until(alive)
        return url

    yield start
    threads = list(pn.state._threads.values())
    pn.state.kill_all_servers()  # stops every thread once (stopping one twice raises), without waiting for them
    # Wait until each server has shut down: Bokeh keeps one process-wide stack of the documents being worked on
    # (`patch_curdoc`), so a stopping server's clean-up, still running beside the next test's server, could pick
    # that server's document as its own and hand a model of one page to the other ("Models must be owned by only
    # a single document"; one CI run, the next test's page never built).
    for thread in threads:
        thread.join(timeout=60)
    pn.state.reset()


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """`screenshot(target, name, **options)`: a page or a locator (one element); options go to Playwright."""

    def save(target, name: str, **options) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        target.screenshot(path=str(path), **options)
        return path

    return save


# -- the real app, served once per test, with each browser session's Explainer kept for server-side checks --
@pytest.fixture(scope="module")
def catalog(prepared_data_dir):
    return build_catalog(prepared_data_dir)


@pytest.fixture
def app(serve, catalog):
    """Serve the real page; `app.sessions` holds each browser session's Explainer for server-side checks."""
    sessions: list[Explainer] = []

    def page_factory():
        explainer = Explainer(network=shared_network(), catalog=catalog)
        sessions.append(explainer)
        return explainer.page()

    url = serve(page_factory)

    class App:
        pass

    result = App()
    result.url, result.sessions = url, sessions
    return result
