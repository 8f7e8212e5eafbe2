"""The tutorial article below the visualisation: one Markdown pane per section, the playground inside one of them.

Panel renders every pane inside its own shadow root, so `document.getElementById` and `#anchor` links cannot
reach a section heading. `SCROLL_TO_SECTION_JS` finds an id through nested shadow roots; the article installs
it as `window.cnnvizScrollToSection(id)`, and Python code scrolls with `Article.scroll_to(key)`.

Formulas are `$$…$$` / `$…$` in Markdown; the dollarmath plugin keeps Markdown from touching the TeX (`\\,`,
`_`, `*`) and `cnnviz.mathml` turns it into MathML on the server, which the browser draws by itself.

The article is the same for every visitor of one network, so its HTML is rendered once per process and network
(`article_html`, with the sizes and names of `network_facts`) and a session gets it as two HTML panes (before
and after the playground), not as one Markdown pane per section.
"""

from __future__ import annotations

import html
import json
from functools import cache, partial
from typing import Any

import panel as pn
import param
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from panel.custom import JSComponent
from panel.io.resources import CDN_DIST
from panel.viewable import Viewer

from cnnviz.article import LAYER_KIND_SECTIONS, SECTION_ANCHORS, network_facts, read_section
from cnnviz.engine import Network
from cnnviz.mathml import tex_to_mathml
from cnnviz.resources import shared_network
from cnnviz.views import DEEP_QUERY_JS
from cnnviz.views.playground import PLAYGROUND_HEIGHT, Playground

__all__ = ["LAYER_KIND_SECTIONS", "SCROLL_TO_SECTION_JS", "SECTION_ANCHORS", "Article", "scroll_to_section_js"]

SCROLL_TO_SECTION_JS = """
window.cnnvizScrollToSection = window.cnnvizScrollToSection || (() => {
  // The re-alignments still due after the last jump: a new jump or the reader's own scrolling cancels them, so
  // nobody is pulled back to a section they have just left.
  let due = []
  const cancel = () => { due.forEach(clearTimeout); due = [] }
  for (const type of ["wheel", "touchstart", "keydown", "pointerdown"]) addEventListener(type, cancel, true)
  return function (id) {
    cancel()
    const find = (root) => root.getElementById(id)
      || [...root.querySelectorAll("*")].reduce((hit, node) => hit || (node.shadowRoot && find(node.shadowRoot)), null)
    const target = find(document)
    if (!target) return false
    // Scroll only the box that scrolls the page (the template's main column, or the document): scrollIntoView
    // would also nudge every other ancestor, and a page a few pixels taller than the window stayed shifted up.
    const scroller = () => {
      for (let node = target.parentNode; node; node = node.parentNode || node.host) {
        if (node.nodeType === 1 && /(auto|scroll)/.test(getComputedStyle(node).overflowY)
            && node.scrollHeight > node.clientHeight) return node
      }
      return document.scrollingElement
    }
    const away = (box) => target.getBoundingClientRect().top
      - (box === document.scrollingElement ? 0 : box.getBoundingClientRect().top)
    const align = (behavior) => {
      const box = scroller()
      box.scrollBy({top: Math.floor(away(box)), behavior})  // never past the heading
    }
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches
    align(still ? "auto" : "smooth")
    target.focus({preventScroll: true})
    // Content above may still be growing (parts of a busy page arriving late), or a busy page's smooth scroll may
    // not have ended: put the heading back at the top while the page settles, unless the reader scrolls.
    const settle = () => Math.abs(away(scroller())) >= 1 && align("auto")
    due = [800, 1600, 3200, 6400].map((delay) => setTimeout(settle, delay))
    return true
  }
})();
"""
"""Defines `window.cnnvizScrollToSection(id) -> bool` (idempotent); prepend it to CustomJS / js_on_click code."""


def scroll_to_section_js(key: str) -> str:
    """Self-contained browser code that scrolls to a section, for client-side links (`js_on_click(code=...)`)."""
    return f"{SCROLL_TO_SECTION_JS}window.cnnvizScrollToSection({json.dumps(SECTION_ANCHORS[key])});"


class SectionScroller(JSComponent):
    """Invisible helper: installs the scroll function, follows a `#article-…` URL, scrolls on request, and says
    when the playground's slot comes near the screen (so the playground is built only for readers who get there).
    """

    playground_near = param.Boolean(default=False, doc="Set by the browser when the playground slot is near.")

    _esm = (
        SCROLL_TO_SECTION_JS
        + DEEP_QUERY_JS
        + """
export function render({ model }) {
  model.on("msg:custom", (message) => window.cnnvizScrollToSection(message.anchor))
  const watchSlot = (tries) => {
    const slot = deepQuery(document, ".playground-slot")
    if (!slot) { if (tries < 50) setTimeout(() => watchSlot(tries + 1), 100); return }
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) { observer.disconnect(); model.playground_near = true }
    }, { rootMargin: "600px 0px" })
    observer.observe(slot)
  }
  watchSlot(0)
  const wanted = decodeURIComponent(window.location.hash.slice(1))
  if (wanted.startsWith("article-")) {
    let tries = 0
    const follow = () => { if (!window.cnnvizScrollToSection(wanted) && ++tries < 50) setTimeout(follow, 100) }
    setTimeout(follow, 100)
  }
  return document.createElement("span")
}
"""
    )

    def scroll(self, anchor: str) -> None:
        self._send_msg({"anchor": anchor})


_render_math = partial(dollarmath_plugin, renderer=lambda tex, options: tex_to_mathml(tex, options["display_mode"]))
"""Markdown-it plugin: keep Markdown away from the TeX and turn each formula into MathML."""


def _contents_html() -> str:
    links = " · ".join(
        f'<a href="#{anchor}" onclick="window.cnnvizScrollToSection(\'{anchor}\'); return false;">'
        f"{html.escape(read_section(key)[0])}</a>"
        for key, anchor in SECTION_ANCHORS.items()
    )
    return f'<nav class="article-contents" aria-label="Article sections"><b>In this article:</b> {links}</nav>'


PLAYGROUND_AFTER = "hyperparameters"  # the section the playground belongs to


@cache
def article_html(facts: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The whole article about a network (its `network_facts`) as HTML, split where the playground goes:
    (contents + sections up to it, the rest). Rendered once per process and network."""
    markdown = MarkdownIt("gfm-like").use(_render_math)
    parts: list[list[str]] = [[_contents_html()], []]
    for key, anchor in SECTION_ANCHORS.items():
        title, body = read_section(key, dict(facts))
        body = body.replace(" × ", "\u00a0×\u00a0")  # keep "64 × 64" on one line
        part = parts[1] if parts[1] or key == _after_playground() else parts[0]
        part.append(
            f'<section class="article-section article-section-{key}">'
            f'<h2 id="{anchor}" tabindex="-1">{html.escape(title)}</h2>\n{markdown.render(body)}</section>'
        )
    return "\n".join(parts[0]), "\n".join(parts[1])


def _after_playground() -> str:
    """The first section after the playground's."""
    keys = list(SECTION_ANCHORS)
    return keys[keys.index(PLAYGROUND_AFTER) + 1]


class Article(Viewer):
    """The explanations behind the visualisation, one section per layer kind, plus how to use the app.

    The playground is heavy (three plots, sliders, a player: about 0.9 s of server time), so the article reserves
    its exact height and builds it only when a reader scrolls near it: nothing above or below moves when it
    arrives, and a class of visitors who never scroll that far costs the server nothing.
    """

    playground_loaded = param.Boolean(default=False, constant=True, doc="Whether the playground has been built.")

    def __init__(self, network: Network | None = None, **params: Any) -> None:
        super().__init__(**params)
        network = shared_network() if network is None else network
        self._scroller = SectionScroller(width=0, height=0, margin=0)
        self._playground_slot = pn.Column(
            pn.pane.HTML(
                "<div class='placeholder'>Loading the playground…</div>",
                stylesheets=[_STYLESHEET],
                sizing_mode="stretch_both",
            ),
            height=PLAYGROUND_HEIGHT,
            sizing_mode="stretch_width",
            css_classes=["playground-slot"],
        )
        before, after = article_html(tuple(network_facts(network).items()))
        self._layout = pn.Column(
            pn.pane.HTML(before, stylesheets=_TEXT_STYLESHEETS, sizing_mode="stretch_width"),
            self._playground_slot,
            pn.pane.HTML(after, stylesheets=_TEXT_STYLESHEETS, sizing_mode="stretch_width"),
            self._scroller,
            sizing_mode="stretch_width",
            max_width=880,
            css_classes=["article"],
        )
        self._scroller.param.watch(self._load_playground, "playground_near")

    def _load_playground(self, _event: param.parameterized.Event | None = None) -> None:
        if self.playground_loaded:
            return
        self._playground_slot.objects = [Playground()]
        with param.edit_constant(self):
            self.param.update(playground_loaded=True)

    def scroll_to(self, key: str) -> None:
        """Scroll the browser to a section, by SECTION_ANCHORS key (e.g. from a click on a layer label)."""
        self._scroller.scroll(SECTION_ANCHORS[key])

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


_STYLESHEET = """
:host { font-size: 16px; line-height: 1.55; color: #222; }
h2 { margin-top: 0.9em; scroll-margin-top: 12px; }
h2:focus { outline: none; }
.article-contents { font-size: 14px; line-height: 1.9; color: #444; }
.article-contents a { color: #1f5fa8; text-decoration: none; white-space: nowrap; }
.article-contents a:hover { text-decoration: underline; }
.placeholder { height: 100%; display: flex; align-items: center; justify-content: center;
               background: #f6f6f6; border-radius: 6px; color: #777; }
mjx-container[display="true"] { display: block; text-align: center; margin: 0.8em 0; overflow-x: auto; }
"""
_TEXT_STYLESHEETS = [f"{CDN_DIST}css/markdown.css", _STYLESHEET]  # as a Markdown pane has them
