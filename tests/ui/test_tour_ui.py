"""The first-visit guided tour: it opens by itself once, steps through to the end, and can be reopened."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from cnnviz.app import Explainer
from cnnviz.examples import build_catalog
from cnnviz.resources import shared_network

pytestmark = pytest.mark.ui


def on_screen(box: dict, height: int) -> bool:
    return box["y"] >= 0 and box["y"] + box["height"] <= height


def test_tour_walks_through_every_part_and_can_be_reopened(browser, serve, tmp_path, wait_until, screenshot):
    sessions: list[Explainer] = []

    def page_factory():
        sessions.append(Explainer(network=shared_network(), catalog=build_catalog(tmp_path)))
        return sessions[-1].page()

    url = serve(page_factory)
    height = 800  # a common laptop screen: every card must fit on it, buttons included
    context = browser.new_context(viewport={"width": 1280, "height": height})  # a first visit: empty storage
    page = context.new_page()
    page.goto(url)
    card = page.locator(".tour-card")
    card.wait_for()
    state = sessions[-1].state
    # the steps about the elastic and formula views open them, so the learner sees what the card describes
    levels = ["overview", "overview", "elastic", "formula", "overview", "overview"]
    assert len(sessions[-1]._tour.steps) == len(levels)
    titles = []
    for index, level in enumerate(levels):
        expect(card.locator(".tour-progress")).to_have_text(f"Step {index + 1} of {len(levels)}")
        titles.append(card.locator("h2").text_content())
        wait_until(lambda level=level: state.level == level)
        screenshot(page, f"tour-step-{index + 1}")
        wait_until(lambda: on_screen(card.bounding_box(), height), timeout=5)
        card.get_by_role("button", name="Done" if index == len(levels) - 1 else "Next").click()
    assert len(set(titles)) == len(levels)
    card.wait_for(state="hidden")
    assert (state.layer, state.level) == ("", "overview")  # the learner's own view is back

    page.reload()  # seen once: it does not open by itself again
    page.locator(".ov-class").first.wait_for()
    page.wait_for_timeout(900)
    assert not card.is_visible()
    page.get_by_role("button", name="Take the tour").click()
    card.wait_for()
    page.keyboard.press("Escape")
    card.wait_for(state="hidden")
    context.close()
