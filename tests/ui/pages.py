"""Helpers for driving the served app in a page (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The guided tour opens on a first visit; tests that are not about it start as returning visitors.
SKIP_TOUR = "try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (e) {}"
GALLERY = Path(__file__).resolve().parents[2] / "test-artifacts" / "gallery"


def open_app(page, url: str, query: str = "") -> None:
    """Load the app (with an optional `?query`) and wait until the overview's neurons are there (hidden while
    the query opens an elastic or formula view over them)."""
    page.goto(url + query)
    page.locator(".ov-class:visible, .el-title:visible, .fv-dialog:visible").first.wait_for()
    page.wait_for_function("() => document.readyState === 'complete'")


def focused_element(page):
    """The element with the keyboard focus, looked up through the shadow roots Panel renders components into."""
    return page.evaluate_handle(
        """() => { let active = document.activeElement;
        while (active && active.shadowRoot && active.shadowRoot.activeElement) active = active.shadowRoot.activeElement;
        return active; }"""
    ).as_element()


def gallery_shot(target, name: str, **options) -> Path:
    """Save a screenshot for people to look at under test-artifacts/gallery/ (overview, views, tour, phone)."""
    GALLERY.mkdir(parents=True, exist_ok=True)
    path = GALLERY / f"{name}.png"
    target.screenshot(path=str(path), **options)
    return path


def pixels(page) -> np.ndarray:
    """The visible page as an RGB array (what a person sees), from a screenshot."""
    import io

    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), np.int16)


def looks_like(after: np.ndarray, before: np.ndarray, tolerance: float = 12.0, share: float = 0.02) -> str:
    """'' when `after` matches `before` (at most `share` of the pixels differ by more than `tolerance` on average
    over their channels); else a sentence saying how they differ (e.g. the page is dimmed)."""
    if after.shape != before.shape:
        return f"the screenshots differ in size: {after.shape} vs {before.shape}"
    difference = np.abs(after - before).mean(axis=-1)
    changed = float((difference > tolerance).mean())
    brightness = float(after.mean() - before.mean())
    if changed <= share:
        return ""
    return f"{100 * changed:.1f} % of the pixels changed (mean brightness {brightness:+.1f} of 255)"


# Every piece of text on the page (through shadow roots), with the box it takes and the boxes that may clip it.
# Texts in one block container are laid out by the browser and cannot collide, so only texts of different
# containers are compared; inert subtrees are under a view drawn over them and are skipped.
TEXT_BOXES_JS = (Path(__file__).parent / "text_boxes.js").read_text()
CONTROLS_AT_EDGE_JS = (Path(__file__).parent / "controls_at_edge.js").read_text()


def _overlap(a: dict, b: dict) -> tuple[float, float]:
    width = min(a["right"], b["right"]) - max(a["left"], b["left"])
    return width, min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])


POPUPS = ".el-tooltip, .tour-card, [role='tooltip']"  # what must be seen whole, and may cover other text


def text_problems(page, within: str | None = None, popups: str = POPUPS) -> list[str]:
    """Overlapping, touching or clipped text in the page (or in the element `within` selects), as sentences.

    - two texts of different containers overlap, or sit on one line less than about half a letter apart;
    - a text extends past a container that hides its overflow (or is cut with an ellipsis), past its canvas or
      the shape drawn around it on a canvas, or past the window's left or right edge (scrollable areas may
      hide text off to the side: it is reachable; popups such as tooltips must be seen whole).
    """
    found = page.evaluate(TEXT_BOXES_JS, [within, popups])
    assert "error" not in found, found.get("error")
    texts, viewport = found["texts"], found["viewport"]
    problems = []
    for text in texts:
        if text["cut"]:
            problems.append(f"“{text['text']}” ({text['where']}) is cut off by its container")
            continue
        for box in text["boxes"]:
            for clip in text["clips"]:
                horizontal = box["left"] < clip["left"] - 1 or box["right"] > clip["right"] + 1
                vertical = box["top"] < clip["top"] - 1.5 or box["bottom"] > clip["bottom"] + 1.5
                if (clip["axis"] in ("x", "xy") and horizontal) or (clip["axis"] in ("y", "xy") and vertical):
                    problems.append(f"“{text['text']}” ({text['where']}) is clipped by {clip['name']}")
                    break
            outside = box["left"] < viewport["left"] + 1 or box["right"] > viewport["right"] - 1
            if outside and (not text["scrolled"] or text["popup"]):
                problems.append(f"“{text['text']}” ({text['where']}) runs into the window's edge")
    pieces = [(text, box) for text in texts for box in text["boxes"]]
    for index, (first, a) in enumerate(pieces):
        for second, b in pieces[index + 1 :]:
            if first["container"] == second["container"] or first["popup"] != second["popup"]:
                continue
            width, height = _overlap(a, b)
            smaller = min(a["bottom"] - a["top"], b["bottom"] - b["top"])
            same_line = height > 0.5 * smaller  # side by side, they must be at least about half a letter apart
            if (width > 1 and height > max(3.0, 0.25 * smaller)) or (same_line and width > -0.4 * smaller):
                problems.append(
                    f"“{first['text']}” ({first['where']}) and “{second['text']}” ({second['where']}) "
                    + ("overlap" if width > 1 else "touch")
                )
    return sorted(set(problems))


def edge_problems(page, selector: str = "button", margin: float = 2.0) -> list[str]:
    """Visible controls matching `selector` (searched through shadow roots) that touch the window's left or right
    edge, outside a scrolling area."""
    found = page.evaluate(CONTROLS_AT_EDGE_JS, [selector, margin])
    return sorted({f"“{control['text']}” touches the window's edge" for control in found})
