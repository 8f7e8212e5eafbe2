"""The floor of Panel and HoloViews: one HoloViews picture in a Panel pane, no template (`panel serve`)."""

import holoviews as hv
import numpy as np
import panel as pn

hv.extension("bokeh")
pn.extension()
pn.pane.HoloViews(hv.RGB(np.random.default_rng(0).random((64, 64, 3))).opts(width=300, height=300)).servable()
