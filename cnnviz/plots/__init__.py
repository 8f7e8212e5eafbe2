"""Pure plotting functions: arrays in, plot objects out; no session state and no Panel."""

from bokeh.models import HoverTool


def picture_only(plot, _element) -> None:
    """A HoloViews plot hook for the app's pictures: no pan or zoom, and nothing painted that is never seen.

    - Only hover tools stay. HoloViews gives every layer pan and zoom tools (`default_tools` on the overlay does not
      reach its layers); hidden with the toolbar they still take a drag, so a finger swiping over a picture on a
      phone moved the picture instead of scrolling the page.
    - The grids (no lines, no bands) and the empty title are hidden. Bokeh paints them on every repaint all the
      same, and asks the browser for their colours' computed style each time: 3.5 ms of script per hover in a
      formula view (Chromium's profiler, 24 hovers: 143 → 59 ms of style lookups). The page looks the same.
    """
    figure = plot.state
    kept = [tool for tool in figure.toolbar.tools if isinstance(tool, HoverTool)]
    if kept != figure.toolbar.tools:
        figure.toolbar.tools = kept
    for unseen in (*figure.xgrid, *figure.ygrid):
        unseen.visible = False
    if figure.title is not None and not figure.title.text:
        figure.title.visible = False
