"""The explainer: one session's state and views, as a plain layout (notebooks) or a page template (served)."""

from __future__ import annotations

import gc
import html
import logging
from collections.abc import Callable
from functools import cache, partial
from typing import Any

import numpy as np
import panel as pn
from bokeh.document import Document
from panel.io.resources import get_dist_path
from panel.viewable import Viewer

from cnnviz.engine import Network, Trace
from cnnviz.errors import CnnvizError
from cnnviz.examples import ExampleCatalog
from cnnviz.importers import explained_model
from cnnviz.learning_state import LearningState
from cnnviz.plots.overview import OUTPUT_KIND
from cnnviz.resources import shared_catalog, shared_network, single_threaded_blas
from cnnviz.serve import (
    close_half_open_connections,
    compress_websocket_messages,
    document_scheduler,
    later_under_lock,
    one_model_walk,
    return_memory_when_session_ends,
    skip_document_validation,
)
from cnnviz.state import ExplainerState, SharedLink
from cnnviz.views.article import LAYER_KIND_SECTIONS, SECTION_ANCHORS, Article
from cnnviz.views.component import SHRINKS, redraws_once
from cnnviz.views.controls import NARROW_SCREEN, ControlPanel, ReloadFromUrl
from cnnviz.views.elastic import ElasticView
from cnnviz.views.formula import FormulaView
from cnnviz.views.formula_backward import BackwardFormula
from cnnviz.views.lab import ChangedNetworkNotice, Lab
from cnnviz.views.learning import Learn, Quiz
from cnnviz.views.overview import Overview
from cnnviz.views.tour import Tour

TITLE = "cnnviz · CNN Explainer"
APP_CSS = """
.controls-title { margin: 4px 0; font-size: 1.05em; }
.upload-error { color: #8a1c1c; background: #fdecea; border: 1px solid #f5c2c0; border-radius: 6px; padding: 6px 10px; }
.image-caption { margin: 4px 0; }
.hint { color: #555; }
"""


# Beside the controls the network takes the rest of the row; below them (narrow screens, where the row becomes a
# column) it takes its own height: a zero flex basis there would squeeze it to nothing, under the article.
MAIN_COLUMN_CSS = f"""
:host {{ flex: 1 1 0; min-width: 0; }}
@media {NARROW_SCREEN} {{ :host {{ flex: 0 0 auto; width: 100%; }} }}
"""


class Explainer(Viewer):
    """CNN Explainer for one session: pick or upload an image and see every number the network computes.

    In a notebook, display it directly; `explainer.trace["conv_1_2"]` gives the current activations.
    """

    def __init__(self, network: Network | Any = None, catalog: ExampleCatalog | None = None, **params) -> None:
        super().__init__(**params)
        if network is None:
            network, catalog, history = shared_network(), catalog or shared_catalog(), None
        else:  # a Network, a weights or model file, or a Keras model
            network, catalog, history = explained_model(network, catalog)
        self.state = ExplainerState(network, catalog, history)
        sections = _article_sections()
        self.learning = LearningState(self.state)  # before the overview, which shows its backward mode
        self.overview = Overview(self.state, sections=sections, learning=self.learning)
        self.elastic = ElasticView(self.state, self.overview)  # draws over the overview, which it wraps
        self.controls = ControlPanel(self.state, self.learning)
        self.formula: FormulaView | None = None  # built the first time a formula view opens (most never do)
        self._formula_slot = pn.Column(sizing_mode="stretch_width", margin=0)
        self.article = Article(network)
        self.lab = Lab(self.state)
        self.learn = Learn(self.learning)
        self.state.param.watch(self._build_formula, "level")
        self._build_formula()
        self._layout = pn.Row(
            self.controls,
            pn.Column(
                ChangedNetworkNotice(self.state),
                self.elastic,
                self._formula_slot,
                self.lab,
                self.learn,
                sizing_mode="stretch_width",
                stylesheets=[MAIN_COLUMN_CSS],
            ),
            sizing_mode="stretch_width",
            stylesheets=[f"@media {NARROW_SCREEN} {{ :host {{ flex-direction: column !important; }} }}", SHRINKS],
        )

    def _build_formula(self, *_events) -> None:
        if self.formula is None and self.state.level == "formula":
            self.formula = FormulaView(
                self.state, backward=BackwardFormula(self.state, self.learning), quiz=Quiz(self.learning, here=True)
            )
            self._formula_slot.objects = [self.formula]

    # -- for notebooks and scripts ---------------------------------------------------------------------
    @property
    def trace(self) -> Trace:
        """Every layer's output for the current image, by layer name."""
        return self.state.trace

    def show_example(self, key: str) -> None:
        self.state.example = key

    def show_array(self, image: np.ndarray, title: str = "Your array") -> None:
        self.state.use_array(image, title)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- served ----------------------------------------------------------------------------------------
    def sync_url(self) -> None:
        """Mirror image, selection and options in the URL query, and restore them from it."""
        if pn.state.location is not None:
            self.link = SharedLink(self.state, self.learning)  # checks every value a link brings (cnnviz.state)
            self.link.defer_window_writes = when_resting(URL_WINDOW_REST_MS)
            self.link.sync_with(pn.state.location)

    def page(self) -> pn.template.BaseTemplate:
        self.sync_url()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            _styles_from_this_server(pn.state.curdoc)
            pn.state.on_session_destroyed(return_memory_when_session_ends)
            self.state.requests.schedule = document_scheduler(pn.state.curdoc)  # a burst of clicks: newest only
            self.state.requests.batch = partial(one_model_walk, pn.state.curdoc)  # one walk per flush, not per plot
            self.state.echo_later = when_resting(ECHO_REST_MS)
        self._tour = Tour(self.state)
        template = Page(
            title=TITLE,
            design=PageDesign,
            header_background="#2f3e4e",
            # Panel's busy spinner follows one server-wide counter: every click in any session would update the
            # spinner of every open session (work that grows with the class size, and a signal across sessions).
            busy_indicator=None,
            meta_viewport="width=device-width, initial-scale=1",  # phones lay the page out at their own width
            header=[self._tour],
            main=[self._layout, self.article, ReloadFromUrl(height=0, margin=0)],
        )
        return template


def _styles_from_this_server(doc: Document) -> None:
    """Panel's stylesheets come from this server (where it serves them), also for a session built when its
    websocket arrives.

    Panel writes the server's address for its stylesheets (`dist_url`) into a session while it renders the page's
    HTML for it. A session built later, when its websocket arrives (every tab's with `reuse_sessions`, as `cnnviz
    serve` runs; any tab whose first session expired before the browser connected), never had that HTML, and
    Panel pointed its stylesheets at its CDN: in a classroom without internet the page lost Panel's styles."""
    doc.template_variables.setdefault("dist_url", get_dist_path())  # the CDN only where Panel uses it (export)


URL_WINDOW_REST_MS = 300
"""How long the formula view's window rests before the URL shows its position."""
ECHO_REST_MS = 300
"""Behind a formula view, the elastic marker and the overview's outline follow a pointer resting this long. Not
shorter: a redraw of the conv view's marker (~40 ms of the server) then started between two pointer moves a person
makes a tenth of a second apart, and the next move's numbers waited for it."""


def when_resting(delay_ms: int) -> Callable[[Callable[[], None]], None]:
    """A scheduler for this session that runs only the latest function it was given, once `delay_ms` pass without
    another (under the session's document lock); at once where there is no server session (a notebook, the
    static export)."""
    doc = pn.state.curdoc
    pending: list = []

    def schedule(function: Callable[[], None]) -> None:
        while pending:
            pending.pop().cancel()
        timer = later_under_lock(doc, redraws_once(function), delay_ms / 1000)
        if timer is not None:
            pending.append(timer)

    return schedule


class PageDesign(pn.theme.Bootstrap):
    """Bootstrap, with only its modifiers (`theme/bootstrap.css`) in each part's shadow root, ever.

    Panel's template gives its design to the page's parts after their models exist, with the modifiers only; a
    part's next update then asks the design for its full stylesheets, which add Bootstrap itself (~230 KB of rules)
    to that part. So the first update of each part re-sent its stylesheets, and the browser styled it anew: 0.3–0.8 s
    on the first pointer move in a formula view. Bootstrap in every part from the start is no cure: the style work
    of every later update grows (a conv formula hover: ~90 → ~150 ms). This design answers every part the way the
    template applies it (`tests/test_page_updates.py`).
    """

    def params(self, viewable: pn.viewable.Viewable, doc: Document | None = None) -> tuple[dict, dict]:
        modifiers, child_modifiers = self._get_modifiers(viewable, theme=self.theme, isolated=False)
        # stylesheet URLs to models, one per URL and page, as Panel's own `params` keeps them
        self._patch_modifiers(doc, modifiers, {} if doc is None else pn.state._stylesheets.setdefault(doc, {}))
        return modifiers, child_modifiers


class Page(pn.template.BootstrapTemplate):
    """The served page (in `PageDesign`). Panel adds its parts to the document one root at a time, and Bokeh walks
    every model of the document after each one; frozen, the document takes stock once, at the end (about a sixth of
    the build)."""

    def server_doc(self, doc: Document | None = None, title: str | None = None, location: bool = True) -> Document:
        document = doc or pn.state.curdoc
        if document is None:
            return super().server_doc(doc, title, location)
        with document.models.freeze():
            return super().server_doc(document, title, location)


def _article_sections() -> dict[str, str]:
    """Layer kind -> article anchor, so the overview's layer labels can jump to their explanation."""
    sections = {kind: SECTION_ANCHORS[key] for kind, key in LAYER_KIND_SECTIONS.items()}
    sections[OUTPUT_KIND] = sections["dense"]  # the overview's output column shows the dense layer's classes
    return sections


def error_page(error: Exception) -> pn.viewable.Viewable:
    """What the browser shows when the app cannot start (e.g. no weights): the reason, not a traceback."""
    return pn.Column(
        pn.pane.HTML(f"<h1>{TITLE}</h1><p role='alert'><b>cnnviz cannot start:</b> {html.escape(str(error))}</p>"),
        sizing_mode="stretch_width",
    )


UNUSED_BOKEH_BUNDLES = ("bokeh-mathjax", "bokeh-gl")  # panel.min.js needs bokeh-tables


def trim_served_bundle() -> None:
    """Stop the server from shipping ~2 MB of JavaScript this app never runs.

    Panel adds Bokeh's MathJax bundle (1.8 MB) whenever a page has any HTML pane, and Bokeh always adds its
    WebGL bundle. cnnviz draws on canvas and writes formulas as MathML (`cnnviz.mathml`), which the browser
    typesets by itself, so the served page leaves both out. Only for served apps: a notebook keeps the
    defaults, because other cells may need them.
    """
    from bokeh.resources import Resources
    from panel.io import resources as panel_resources

    panel_resources._panel_use_mathjax = lambda roots: False
    Resources._default_components = [c for c in Resources._default_components if c not in UNUSED_BOKEH_BUNDLES]


@cache
def _prepare_server_process() -> None:
    """What a serving process sets once for all its sessions."""
    trim_served_bundle()
    single_threaded_blas()
    close_half_open_connections()
    compress_websocket_messages()
    skip_document_validation()


@cache
def _load_shared_once() -> None:
    """Load what every session shares, then take it out of the garbage collector's sight (`gc.freeze`): the
    libraries, weights and examples never become garbage, and each collection no longer walks them (measured:
    half the collector's time per page with 15 sessions open)."""
    shared_network()
    shared_catalog()
    gc.collect()
    gc.freeze()


def create_app() -> pn.viewable.Viewable:
    """The served page of one session."""
    _prepare_server_process()
    pn.extension(raw_css=[APP_CSS])
    try:
        _load_shared_once()
        explainer = Explainer()
        return explainer.page()
    except CnnvizError as error:  # weights, model card, example photos: damaged, missing or not answering
        logging.getLogger(__name__).error("cnnviz cannot start: %s", error)  # for whoever runs `panel serve`
        return error_page(error)
