"""The floor of the page cnnviz serves: Panel's Bootstrap template around one HoloViews picture and one HTML
pane (`panel serve`)."""

import holoviews as hv
import numpy as np
import panel as pn

hv.extension("bokeh")
pn.extension()
picture = hv.RGB(np.random.default_rng(0).random((64, 64, 3))).opts(width=300, height=300)
pn.template.BootstrapTemplate(title="floor", main=[pn.pane.HoloViews(picture), pn.pane.HTML("<p>text</p>")]).servable()
