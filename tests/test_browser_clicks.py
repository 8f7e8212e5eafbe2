"""Clicks that reach the server are handled at once: each names a property the browser really sends."""

from __future__ import annotations

import pytest

from cnnviz.views.controls import BrowserControl
from cnnviz.views.elastic import ElasticCanvas
from cnnviz.views.overview import OverviewOverlay

CLICK_DRIVEN = [BrowserControl, OverviewOverlay, ElasticCanvas]


@pytest.mark.parametrize("component", CLICK_DRIVEN, ids=lambda component: component.__name__)
def test_every_undelayed_change_is_a_property_the_browser_sends(component):
    """Panel ignores names it does not know, so a renamed parameter would silently bring back its 50 ms wait."""
    synced = component._data_model.properties()
    assert component._priority_changes
    for name in component._priority_changes:
        assert name in component.param and name in synced, f"{component.__name__}.{name} is not sent by the browser"
