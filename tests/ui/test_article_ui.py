"""The article alone in headless Chromium: anchors reachable, formulas typeset offline, playground live, no jumps."""

from __future__ import annotations

import contextlib

import pytest

from cnnviz.playground import output_size
from cnnviz.views.article import SECTION_ANCHORS, Article
from cnnviz.views.playground import PLAYGROUND_HEIGHT

pytestmark = pytest.mark.ui
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect, PlaywrightTimeoutError = sync_api.expect, sync_api.TimeoutError

FIND = """(id) => {
  const find = (root) => root.getElementById(id)
    || [...root.querySelectorAll("*")].reduce((hit, el) => hit || (el.shadowRoot && find(el.shadowRoot)), null)
  return find(document)
}"""
SCROLLED_TO = f"""(id) => {{
  const el = ({FIND})(id)
  if (!el) return false
  const top = el.getBoundingClientRect().top
  const atBottom = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2
  return top >= 0 && top <= 40 || atBottom && top >= 0 && top < window.innerHeight - 40
}}"""
"""The heading sits at the top of the window, or the page is scrolled to its end with the heading visible."""
QUERY = """(selector) => {
  const query = (root) => root.querySelector(selector)
    || [...root.querySelectorAll("*")].reduce((hit, el) => hit || (el.shadowRoot && query(el.shadowRoot)), null)
  return query(document)
}"""


def make_article(articles: list[Article] | None = None):
    """A factory like the app's: one Article per session."""

    def make() -> Article:
        article = Article()
        if articles is not None:
            articles.append(article)
        return article

    return make


def open_article(page, url: str) -> None:
    """Load the page and wait until every section and its formulas are there."""
    page.goto(url)
    page.wait_for_function("typeof window.cnnvizScrollToSection === 'function'")
    page.wait_for_function(f"({FIND})('{SECTION_ANCHORS['limits']}') !== null")
    page.locator("math").first.wait_for()


def slider_handle(page, title: str):
    return page.locator(".bk-Slider", has=page.locator(".bk-slider-title", has_text=title)).locator(".noUi-handle")


def set_slider(page, title: str, value: int) -> None:
    """Move a Bokeh slider with the keyboard, one step at a time, as a user could.

    Bounds follow one another through the server, so wait until the target is inside the slider's range.
    """
    handle = slider_handle(page, title)
    page.wait_for_function(
        "([el, v]) => +el.getAttribute('aria-valuemin') <= v && v <= +el.getAttribute('aria-valuemax')",
        arg=[handle.element_handle(), value],
    )
    while (current := int(float(handle.get_attribute("aria-valuenow")))) != value:
        handle.focus()  # again each time: a slider redrawn because its bounds followed another one loses focus
        handle.press("ArrowRight" if value > current else "ArrowLeft")
        # a key that went to a slider being redrawn is lost: then read the value again and press once more
        with contextlib.suppress(PlaywrightTimeoutError):
            page.wait_for_function(
                "([el, before]) => +el.getAttribute('aria-valuenow') !== before",
                arg=[handle.element_handle(), current],
                timeout=5_000,
            )


def set_playground(page, n: int, p: int, k: int, s: int) -> None:
    """Reach a setting in an order the bounds always allow: shrink everything, set n, then grow k and p in turn.

    Each step waits until the server has taken it (its formula shows it): the next slider's bounds are the
    server's, and a busy server once still held the previous value when the next one arrived, and refused it."""
    formula = page.locator(".formula")

    def taken(text: str) -> None:
        expect(formula).to_contain_text(text)

    steps = [("Stride s", 1, ") / 1⌋"), ("Padding p", 0, " + 2×0 − "), ("Kernel size k", 1, " − 1) /"),
             ("Input size n", n, f"⌊({n} + ")]  # fmt: skip
    for title, value, shown in steps:
        set_slider(page, title, value)
        taken(shown)
    kernel, padding = 1, 0
    while (kernel, padding) != (k, p):
        kernel = min(k, n + 2 * padding)
        set_slider(page, "Kernel size k", kernel)
        taken(f" − {kernel}) /")
        padding = min(p, kernel - 1)
        set_slider(page, "Padding p", padding)
        taken(f" + 2×{padding} − ")
    set_slider(page, "Stride s", s)


def test_every_section_scrolls_into_view(page, serve, screenshot):
    open_article(page, serve(make_article()))
    screenshot(page, "article-top")
    for key, anchor in reversed(SECTION_ANCHORS.items()):
        assert page.evaluate("(id) => window.cnnvizScrollToSection(id)", anchor), key
        page.wait_for_function(SCROLLED_TO, arg=anchor)
    page.get_by_role("link", name="Max pooling").click()
    page.wait_for_function(SCROLLED_TO, arg=SECTION_ANCHORS["max-pooling"])
    screenshot(page, "article-max-pooling")


def test_a_url_with_an_anchor_opens_at_that_section(page, serve):
    page.goto(serve(make_article()) + "#" + SECTION_ANCHORS["softmax"])
    page.wait_for_function(SCROLLED_TO, arg=SECTION_ANCHORS["softmax"], timeout=10_000)


def test_python_can_scroll_the_browser(page, serve, wait_until):
    articles: list[Article] = []
    open_article(page, serve(make_article(articles)))
    wait_until(lambda: articles)
    articles[0].scroll_to("limits")
    page.wait_for_function(SCROLLED_TO, arg=SECTION_ANCHORS["limits"])


def test_formulas_are_typeset_without_the_internet_or_mathjax(page, serve, screenshot):
    open_article(page, serve(make_article()))
    assert page.locator("math").count() >= 15
    assert page.locator("math[display=block]").count() >= 5
    fraction = page.locator("math[display=block] mfrac").first.bounding_box()
    assert fraction["height"] > 20  # drawn as a real two-line fraction, not as TeX source
    assert page.evaluate("() => document.querySelector('script[src*=\"bokeh-mathjax\"]') === null")
    page.evaluate("(id) => window.cnnvizScrollToSection(id)", SECTION_ANCHORS["softmax"])
    page.wait_for_function(SCROLLED_TO, arg=SECTION_ANCHORS["softmax"])
    screenshot(page, "article-softmax-formula")


def test_the_playground_loads_without_moving_the_article(page, serve):
    """The slot keeps its height from placeholder to playground, and the text after it stays where it was.

    (Positions are measured relative to the slot; the playground itself must fit inside the space reserved
    for it.)
    """
    geometry = f"""() => {{
      const slot = ({QUERY})(".playground-slot")
      const box = slot.getBoundingClientRect()
      const next = ({FIND})("{SECTION_ANCHORS["relu"]}").getBoundingClientRect()
      const inner = ({QUERY})(".playground")
      return {{height: box.height, gap: next.top - box.bottom, loaded: inner !== null,
               overflow: inner ? inner.scrollHeight - box.height : 0}}
    }}"""
    page.goto(serve(make_article()))
    page.locator(".playground-slot").wait_for()
    page.wait_for_function(f"({FIND})('{SECTION_ANCHORS['relu']}') !== null")
    first = page.evaluate(geometry)
    assert not first["loaded"]  # built only for readers who come near it
    page.evaluate("(id) => window.cnnvizScrollToSection(id)", SECTION_ANCHORS["hyperparameters"])
    page.locator(".formula").wait_for()
    page.wait_for_timeout(300)
    loaded = page.evaluate(geometry)
    assert loaded["loaded"]
    assert loaded["height"] == first["height"] == PLAYGROUND_HEIGHT
    assert loaded["gap"] == first["gap"]
    assert loaded["overflow"] <= 0, "the playground is taller than the space reserved for it"


@pytest.mark.parametrize(("n", "p", "k", "s"), [(7, 1, 3, 2), (5, 0, 3, 1), (4, 2, 5, 3), (3, 1, 2, 1)])
def test_the_playground_follows_the_sliders(page, serve, screenshot, n, p, k, s):
    open_article(page, serve(make_article()))
    page.evaluate("(id) => window.cnnvizScrollToSection(id)", SECTION_ANCHORS["hyperparameters"])
    slider_handle(page, "Stride s").wait_for()
    set_playground(page, n, p, k, s)
    size = output_size(n, p, k, s)
    formula = page.locator(".formula")
    expected = f"= ⌊({n} + 2×{p} − {k}) / {s}⌋ + 1 = ⌊{n + 2 * p - k} / {s}⌋ + 1 = {size}"
    expect(formula).to_contain_text(expected)
    expect(page.locator(".result")).to_have_text(str(size))
    expect(page.locator(".fits")).to_have_count(1)
    screenshot(page.locator(".playground"), f"playground-{n}-{p}-{k}-{s}")


def test_an_uneven_stride_is_explained_in_words(page, serve, screenshot):
    open_article(page, serve(make_article()))
    page.evaluate("(id) => window.cnnvizScrollToSection(id)", SECTION_ANCHORS["hyperparameters"])
    slider_handle(page, "Stride s").wait_for()
    set_playground(page, 6, 0, 3, 2)
    explanation = page.locator(".misfit")
    for words in ("does not fit evenly", "6 + 2×0 − 3 = 3", "column 5 is never covered", "Strides that fit here"):
        expect(explanation).to_contain_text(words)
    expect(page.locator(".result")).to_have_text("2")
    page.get_by_text("Window 1 of 4: rows 0–2, columns 0–2").wait_for()
    page.locator("button.next").click()  # the window moves by the stride, 2 columns
    page.get_by_text("Window 2 of 4: rows 0–2, columns 2–4").wait_for()
    page.locator("button.play").click()
    page.get_by_text("Window 4 of 4: rows 2–4, columns 2–4").wait_for(timeout=10_000)
    page.locator("button.pause").click()
    page.wait_for_timeout(1000)  # let the three grids catch up with the last tick before the screenshot
    screenshot(page.locator(".playground"), "playground-uneven-stride")
