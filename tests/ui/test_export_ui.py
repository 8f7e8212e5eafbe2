"""The exported static site in headless Chromium, served from 127.0.0.1 by a plain file server.

The pages load Pyodide (and Panel's and Bokeh's Python wheels) from CDNs by design; nothing else may leave the
machine. Here those CDNs are unreachable, so the pre-rendered page is what a student sees first and what these tests
check; the live Pyodide app is exercised only where the CDN answers.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from panel.io.convert import PYODIDE_URL

from cnnviz.export import PAGES, export_site
from cnnviz.resources import shared_network

pytestmark = pytest.mark.ui

SITE_HOST = "127.0.0.1"
REMOTE_BY_DESIGN = ("https://cdn.jsdelivr.net/pyodide/", "https://cdn.holoviz.org/panel/")
LIVE_APP_TIMEOUT_MS = 300_000  # Pyodide, NumPy, pandas and Panel download and start in a fresh browser


class SilentHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory, prepared_data_dir) -> Path:
    return export_site(tmp_path_factory.mktemp("export") / "site", data_dir=prepared_data_dir)


@contextlib.contextmanager
def served(site: Path) -> Iterator[str]:
    """Any static host will do: here Python's file server on the loopback interface."""
    server = http.server.ThreadingHTTPServer((SITE_HOST, 0), functools.partial(SilentHandler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{SITE_HOST}:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def site_url(site) -> Iterator[str]:
    with served(site) as url:
        yield url


class Visit:
    """A fresh browser context that aborts every request leaving the machine and records what the page did."""

    def __init__(self, browser, offline_internet: bool = True) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.remote: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        if offline_internet:
            self.context.route("**/*", self._keep_local)
        self.page = self.context.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("requestfailed", lambda request: self.failed.append(request.url))

    def _keep_local(self, route) -> None:
        url = route.request.url
        if urlparse(url).hostname == SITE_HOST or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.remote.append(url)
            route.abort()

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.locator(".ov-class").first.wait_for()

    def unexpected(self) -> list[str]:
        """Requests and errors other than those of loading Pyodide, which cannot succeed without its CDN."""
        urls = [url for url in self.remote + self.failed if not url.startswith(REMOTE_BY_DESIGN)]
        # "Failed to load resource" names no URL: the failed requests above say which ones
        errors = [text for text in self.errors if PYODIDE_URL not in text and "Failed to load resource" not in text]
        return urls + errors


def center(box: dict) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


@pytest.fixture
def visit(browser) -> Iterator[Visit]:
    visit = Visit(browser)
    yield visit
    visit.context.close()


@pytest.mark.parametrize("page_name", list(PAGES))
def test_prerendered_overview_appears_with_no_internet(visit, site_url, page_name, screenshot):
    visit.open(f"{site_url}{page_name}.html")
    assert visit.page.locator(".ov-tile:not(.ov-class)").count() == 103
    assert visit.page.locator(".ov-class").count() == len(shared_network().class_names)
    assert visit.page.locator(".thumb").count() > 0
    # Pyodide cannot come from its CDN here: the page says so in words and stops spinning over the preview
    notice = visit.page.locator(".cnnviz-start-failed[role='alert']")
    notice.wait_for()
    assert "could not download or start it" in notice.inner_text()
    assert "pn-loading" not in visit.page.locator("body").get_attribute("class")
    assert "cdn.jsdelivr.net" in notice.inner_text() and "files.pythonhosted.org" in notice.inner_text()
    # on top of everything, and the preview under it takes no clicks (nothing could answer them)
    box = notice.bounding_box()
    on_top = "([x, y]) => document.querySelector('.cnnviz-start-failed').contains(document.elementFromPoint(x, y))"
    assert visit.page.evaluate(on_top, [box["x"] + 10, box["y"] + 10])
    assert visit.page.evaluate("document.body.inert && !document.querySelector('.cnnviz-start-failed').inert")
    thumbs = visit.page.locator(".thumb")
    before = thumbs.evaluate_all("els => els.map(e => e.className)")
    visit.page.mouse.click(*center(thumbs.nth(1).bounding_box()))
    assert thumbs.evaluate_all("els => els.map(e => e.className)") == before
    assert visit.page.locator(".tour-card").evaluate_all("cards => cards.every(c => !c.checkVisibility())")
    visit.page.wait_for_timeout(300)
    screenshot(visit.page, f"export-prerendered-{page_name}")
    notice.get_by_role("button", name="Dismiss this message").click()
    assert notice.count() == 0
    assert visit.unexpected() == []


# Pyodide's loader arrives but Python never starts (a blocked WebAssembly download, say): an async failure.
BROKEN_PYODIDE = "self.loadPyodide = async () => { throw new Error('no WebAssembly for this test'); };"


@pytest.mark.parametrize("page_name", list(PAGES))
def test_a_python_that_fails_to_start_is_explained_too(visit, site_url, page_name):
    visit.context.route(f"{PYODIDE_URL}*", lambda route: route.fulfill(body=BROKEN_PYODIDE,
                                                                      content_type="text/javascript"))  # fmt: skip
    visit.open(f"{site_url}{page_name}.html")
    notice = visit.page.locator(".cnnviz-start-failed[role='alert']")
    notice.wait_for()
    assert "could not download or start it" in notice.inner_text()
    assert "pn-loading" not in visit.page.locator("body").get_attribute("class")


def test_site_opens_offline_once_loaded(visit, site_url):
    """The service worker caches the whole site on the first visit; with the network gone, the page still opens."""
    visit.open(site_url)
    visit.page.wait_for_function(
        """async () => {
          const names = await caches.keys()
          const cached = await Promise.all(names.map(async (name) => (await caches.open(name)).match('./index.js')))
          return navigator.serviceWorker.controller !== null && cached.some(Boolean)
        }"""
    )
    visit.context.set_offline(True)
    visit.open(site_url)
    assert visit.page.locator(".ov-class").count() == len(shared_network().class_names)
    assert visit.unexpected() == []


def pyodide_cdn_unreachable() -> str:
    """Why the live app cannot run here, or '' when the Pyodide CDN answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(PYODIDE_URL, method="HEAD"), timeout=5):
            return ""
    except OSError as error:
        return f"the Pyodide CDN cannot be reached ({PYODIDE_URL}: {error}), so the live app cannot start"


@pytest.mark.timeout(600)
def test_live_pyodide_app_computes_in_the_browser(browser, site_url, prepared_data_dir, screenshot):
    if reason := pyodide_cdn_unreachable():
        pytest.skip(reason)
    from cnnviz.examples import build_catalog

    visit = Visit(browser, offline_internet=False)
    try:
        visit.open(f"{site_url}index.html")
        visit.page.wait_for_function(
            "!document.body.classList.contains('pn-loading')", timeout=LIVE_APP_TIMEOUT_MS, polling=1000
        )
        koala = next(example for example in build_catalog(prepared_data_dir).examples if example.label == "koala")
        visit.page.locator(f".thumb[data-key='{koala.key}']").click()
        expected = shared_network().trace(koala.image).predicted_class
        predicted = visit.page.locator(".ov-class.ov-predicted .ov-class-name")
        predicted.filter(has_text=expected).wait_for(timeout=60_000)
        screenshot(visit.page, "export-live-koala")
        assert visit.errors == []
    finally:
        visit.context.close()


@pytest.fixture(scope="module")
def self_contained_url(tmp_path_factory) -> Iterator[str]:
    """A self-contained export with Pyodide's real runtime (from its npm package) and stand-ins for the packages,
    whose wasm builds are only on Pyodide's CDN: the browser starts Python from the site, then cannot install."""
    from cnnviz import self_contained
    from cnnviz.errors import CnnvizError

    sources = self_contained.default_sources()
    try:
        runtime = self_contained._runtime(sources, progress=False)
    except CnnvizError as error:
        pytest.skip(f"Pyodide's runtime cannot be downloaded here: {error}")
    folder = tmp_path_factory.mktemp("self-contained")

    def runtime_only(lock, builds, sources, progress=False) -> self_contained.Bundle:
        wheels = {
            name: folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl" for name, version in lock.items()
        }
        for path in wheels.values():
            path.write_bytes(b"stand-in")
        return self_contained.Bundle(runtime, wheels)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(self_contained, "download", runtime_only)
        site = export_site(folder / "site", self_contained=True)
    with served(site) as url:
        yield url


@pytest.mark.parametrize("page_name", list(PAGES))
def test_self_contained_site_starts_python_from_the_site_alone(visit, self_contained_url, page_name, screenshot):
    loaded: dict[str, int] = {}
    visit.page.on("response", lambda response: loaded.__setitem__(urlparse(response.url).path, response.status))
    visit.open(f"{self_contained_url}{page_name}.html")
    notice = visit.page.locator(".cnnviz-start-failed[role='alert']")
    notice.wait_for(timeout=LIVE_APP_TIMEOUT_MS)
    # the interpreter, its standard library and its lock came from the site; the first package it asked for too
    for runtime_file in ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"):
        assert loaded.get(f"/pyodide/{runtime_file}") == 200, (runtime_file, loaded)
    # Python ran (its own traceback, from the site's standard library) and asked the site for its first package,
    # which only Pyodide's CDN has
    assert any("/lib/python313.zip/" in error and "ModuleNotFoundError" in error for error in visit.errors)
    requested = [urlparse(url).path for url in visit.failed] + list(loaded)
    assert any(path.startswith("/pyodide/micropip-") for path in requested), requested
    assert "everything it needs comes from this site" in notice.inner_text()
    screenshot(visit.page, f"export-self-contained-{page_name}")
    assert visit.remote == [], "a self-contained site asks no other host for anything"
