"""A JSComponent around Panel children that lets them go when the session closes."""

from __future__ import annotations

from bokeh.model import Model
from panel.custom import Child, Children, JSComponent
from panel.viewable import Viewable


class ParentComponent(JSComponent):
    """Cleans its `Child` / `Children` up itself when a session ends.

    Panel's own clean-up finds a component's children through its Bokeh model, but Bokeh has already cleared that
    model's properties when a closed tab's session is destroyed; the children's HoloViews plots then stay
    registered with their streams' callbacks, and through them the session's state outlives the tab.
    """

    def _cleanup(self, root: Model | None = None) -> None:
        if root is not None:
            for name, parameter in self.param.objects("existing").items():
                if isinstance(parameter, (Child, Children)):
                    value = getattr(self, name)
                    for child in value if isinstance(value, list) else [value]:
                        if isinstance(child, Viewable):
                            child._cleanup(root)
        super()._cleanup(root)
