"""The floor of Bokeh alone: one figure showing one small image (`bokeh serve`)."""

import numpy as np
from bokeh.io import curdoc
from bokeh.plotting import figure

plot = figure(width=300, height=300, toolbar_location=None)
plot.image(image=[np.random.default_rng(0).random((64, 64))], x=0, y=0, dw=1, dh=1, palette="Greys256")
curdoc().add_root(plot)
