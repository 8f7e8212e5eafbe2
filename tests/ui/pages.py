"""Helpers for driving the served app in a page (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations


def open_app(page, url: str, query: str = "") -> None:
    """Load the app (with an optional `?query`) and wait until the overview's neurons are there."""
    page.goto(url + query)
    page.locator(".ov-class").first.wait_for()
    page.wait_for_timeout(300)


def focused_element(page):
    """The element with the keyboard focus, looked up through the shadow roots Panel renders components into."""
    return page.evaluate_handle(
        """() => { let active = document.activeElement;
        while (active && active.shadowRoot && active.shadowRoot.activeElement) active = active.shadowRoot.activeElement;
        return active; }"""
    ).as_element()
