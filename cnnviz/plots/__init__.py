"""Pure plotting functions: arrays in, plot objects out; no session state and no Panel."""

from bokeh.models import HoverTool


def no_pan_or_zoom(plot, _element) -> None:
    """A HoloViews plot hook: keep only hover tools. HoloViews gives every layer pan and zoom tools (`default_tools`
    on the overlay does not reach its layers); hidden with the toolbar they still take a drag, so a finger swiping
    over a picture on a phone moved the picture instead of scrolling the page."""
    toolbar = plot.state.toolbar
    kept = [tool for tool in toolbar.tools if isinstance(tool, HoverTool)]
    if kept != toolbar.tools:
        toolbar.tools = kept
