"""What the served page changes for a pointer move or an image switch: data and texts, never a part's stylesheets,
sizing or borders.

A changed stylesheet makes the browser style that part anew, a changed sizing or border lays its figure out anew:
each cost the browser 0.3–0.8 s when it happened on a formula view's first pointer move, and a border undone by a
plot hook relaid the conv view's figure on every move. No browser here: the page is built into a Bokeh document as
a served session's is, and its models are compared before and after each action.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from bokeh.document import Document
from panel.io.state import set_curdoc

from cnnviz.app import Explainer
from cnnviz.serve import one_model_walk

LOOKS = ("stylesheets", "sizing_mode", "min_border_left", "min_border_right", "min_border_top", "min_border_bottom")


def _looks(doc: Document) -> dict[tuple[str, str], object]:
    """Every model's stylesheets (as URLs and texts), sizing and borders."""
    looks = {}
    for model in doc.models:
        for name in LOOKS:
            if name in model.properties():
                value = getattr(model, name)
                if name == "stylesheets":
                    value = [getattr(sheet, "url", None) or str(sheet) for sheet in value]
                looks[model.id, name] = value
    return looks


@pytest.mark.parametrize("opened_by_a_link", [False, True], ids=["overview first", "formula view from a link"])
def test_pointer_moves_and_image_switches_change_no_parts_stylesheets_sizing_or_borders(opened_by_a_link):
    explainer = Explainer()
    state = explainer.state
    state.echo_later = lambda show: show()  # the panes behind a formula view follow at once, not after a rest
    conv = next(info.name for info in state.network.infos if info.kind == "conv2d")
    keys = [example.key for example in state.catalog.examples]
    doc = Document()
    with set_curdoc(doc):
        if opened_by_a_link:  # a link's view is restored before the page is built
            state.select(conv, 1, level="formula")
        explainer.page().server_doc(doc)
        # (what the learner does, whether it may change looks: opening a view lays the page out anew anyway)
        actions: list[tuple[str, Callable[[], object], bool]] = [
            ("image switch", lambda: setattr(state, "example", keys[1]), False),
            ("open the conv view", lambda: state.select(conv, 2), True),
            ("pointer move in the conv view", lambda: state.param.update(row=3, col=4), False),
            ("another pointer move in the conv view", lambda: state.param.update(row=5, col=4), False),
            ("image switch with the conv view open", lambda: setattr(state, "example", keys[2]), False),
            ("open a formula view", lambda: state.select(conv, 2, level="formula"), True),
            ("pointer move in the formula view", lambda: state.param.update(row=7, col=8), False),
            ("another pointer move in the formula view", lambda: state.param.update(row=9, col=8), False),
            ("image switch with the formula view open", lambda: setattr(state, "example", keys[3]), False),
        ]
        for label, action, opens in actions:
            before = _looks(doc)
            with one_model_walk(doc):
                action()
            after = _looks(doc)
            changed = sorted(f"{doc.get_model_by_id(key[0])}.{key[1]}" for key in before.keys() & after.keys()
                             if before[key] != after[key])  # fmt: skip
            assert opens or not changed, f"{label} changed {changed}"
