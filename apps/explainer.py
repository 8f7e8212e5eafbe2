"""Entry point for `panel serve apps/explainer.py`: one explainer per browser session."""

from cnnviz.app import create_app

create_app().servable()
