"""cnnviz: an interactive explainer that shows every number a small CNN computes."""

__version__ = "0.1.0"
