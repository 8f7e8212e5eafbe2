"""What the views share: one walk of the page's models per change, the numbers of a window move sent first (and
computed once), and a JSComponent that lets its children go."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import panel as pn
import param
from bokeh.model import Model
from panel.custom import Child, Children, JSComponent
from panel.viewable import Viewable

from cnnviz.serve import one_model_walk

Handler = TypeVar("Handler", bound=Callable)

SHRINKS = ":host { min-width: 0 !important; }"
"""For every container between a fixed-width picture (which scrolls sideways on a phone) and the page: Panel gives
each stretching container its widest child's width as its minimum, so without this the page itself grew as wide
as the picture and clipped every text beside it."""


def redraws_once(handler: Handler) -> Handler:
    """Run `handler` (a stream subscriber, a browser message, a timer tick) inside `one_model_walk`: a pointer move
    in a formula view redraws three plots (its window, the elastic view's marker, the overview's outline), and
    none of them adds a model, so the page's models are not walked at all instead of three times."""

    @wraps(handler)
    def frozen(*args, **kwargs):
        with one_model_walk(pn.state.curdoc):
            return handler(*args, **kwargs)

    return frozen  # type: ignore[return-value]


def move_window(state: param.Parameterized, row: int, col: int, show_numbers: Callable[[int, int], None]) -> None:
    """Move a formula view's window to (row, col), the numbers first.

    Two messages: Panel writes each as its `hold()` ends, so the numbers leave before HoloViews redraws the
    outline that follows the state (~20 ms of the server), and the browser lays them out meanwhile; the outline
    comes a frame or two later. The view's own watcher on the state then finds its numbers already shown.
    """
    with pn.io.hold():
        show_numbers(row, col)
    with pn.io.hold():
        state.param.update(row=row, col=col)


class NumbersPane:
    """A formula view's numbers, as an HTML pane that renders them only for what it does not show yet.

    After `move_window` has shown a window's numbers, the view's watcher on the state asks for the same ones:
    rendering them again cost ~3 ms of the server's Python per pointer move, for HTML identical to what is shown.
    """

    def __init__(self, render: Callable[..., str], **pane_params: Any) -> None:
        self.pane = pn.pane.HTML("", **pane_params)
        self._render = render
        self._shown: tuple = ()

    def show(self, explained: object, *where: object) -> None:
        """The numbers of `render(explained, *where)`; `explained` is compared by identity (a new trace, layer or
        colour mode builds a new one), `where` (window, picked weight, rate …) by value."""
        if self._shown and self._shown[0] is explained and self._shown[1:] == where:
            return
        self._shown = (explained, *where)
        self.pane.object = self._render(explained, *where)


class ParentComponent(JSComponent):
    """Cleans its `Child` / `Children` up itself when a session ends.

    Panel's own clean-up finds a component's children through its Bokeh model, but Bokeh has already cleared that
    model's properties when a closed tab's session is destroyed; the children's HoloViews plots then stay
    registered with their streams' callbacks, and through them the session's state outlives the tab.
    """

    @classmethod
    def _patch_datamodel_ref(cls, props: Model, ref: str) -> None:
        """Tag only this component's own data model, not every one reachable from it.

        After each change of a property, Panel re-tags every data model reachable from the component's data, and
        a Child is reachable: the overview's plot (73 models, ~15 ms) was walked on every image switch, the
        formula view's panes on every open. The children's data models were tagged when they were built, and a
        plain property change reaches no new model (Panel sends children apart from the data).
        """
        tag = f"__ref:{ref}"
        if tag not in props.tags:
            props.tags.append(tag)

    def _cleanup(self, root: Model | None = None) -> None:
        if root is not None:
            for name, parameter in self.param.objects("existing").items():
                if isinstance(parameter, (Child, Children)):
                    value = getattr(self, name)
                    for child in value if isinstance(value, list) else [value]:
                        if isinstance(child, Viewable):
                            child._cleanup(root)
        super()._cleanup(root)
