"""Helpers for driving the served app in a page (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The guided tour opens on a first visit; tests that are not about it start as returning visitors.
SKIP_TOUR = "try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (e) {}"
GALLERY = Path(__file__).resolve().parents[2] / "test-artifacts" / "gallery"


def open_app(page, url: str, query: str = "") -> None:
    """Load the app (with an optional `?query`) and wait until the overview's neurons are there."""
    page.goto(url + query)
    page.locator(".ov-class").first.wait_for()
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
# Canvas text is included where the canvas records what it draws (`canvas.textBoxes`, see views/elastic.js).
# Texts in one block container are laid out by the browser and cannot collide, so only texts of different
# containers are compared; inert subtrees are under a view drawn over them and are skipped.
TEXT_BOXES_JS = """
([rootSelector, popupSelector]) => {
  const deepQuery = (node, selector) => {
    const found = node.querySelector(selector);
    if (found) return found;
    for (const element of node.querySelectorAll("*")) {
      if (element.shadowRoot) { const inner = deepQuery(element.shadowRoot, selector); if (inner) return inner; }
    }
    return null;
  };
  const root = rootSelector ? deepQuery(document, rootSelector) : document.body;
  if (!root) return { error: `nothing matches ${rootSelector}` };
  const parentOf = (node) => node.parentNode instanceof ShadowRoot ? node.parentNode.host : node.parentElement;
  const rect = (r) => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom });
  const viewport = { left: 0, top: 0, right: document.documentElement.clientWidth, bottom: window.innerHeight };
  let containerIds = new Map();
  const containerOf = (element) => {
    let node = element;
    const MATHML = "http://www.w3.org/1998/Math/MathML";  // a formula is laid out as one piece of text
    const inline = (n) => n.namespaceURI === MATHML || /^inline( flow| math)?$/.test(getComputedStyle(n).display);
    while (node && inline(node)) node = parentOf(node);
    node = node || element;
    if (!containerIds.has(node)) containerIds.set(node, containerIds.size);
    return containerIds.get(node);
  };
  const describe = (element) => {
    const name = element.tagName.toLowerCase() + (element.className && typeof element.className === "string" ? "." + element.className.trim().split(/\\s+/).join(".") : "");
    return name;
  };
  // the clipping boxes of an element: ancestors that hide overflow, up to the first one that scrolls on that axis
  // (what lies beyond is reachable); popups (tooltips, cards) must be seen whole, so for them scrollers clip too
  const clipsOf = (element, popup) => {
    const clips = [];
    const scrolled = { x: false, y: false };
    for (let node = parentOf(element); node; node = parentOf(node)) {
      const style = getComputedStyle(node);
      for (const axis of ["x", "y"]) {
        const overflow = style[axis === "x" ? "overflowX" : "overflowY"];
        if (overflow === "visible" || (scrolled[axis] && !popup)) continue;
        if ((overflow === "auto" || overflow === "scroll") && !popup) { scrolled[axis] = true; continue; }
        const box = node.getBoundingClientRect();
        const left = box.left + node.clientLeft, top = box.top + node.clientTop;
        clips.push({ axis, name: describe(node), left, top, right: left + node.clientWidth, bottom: top + node.clientHeight });
      }
    }
    return clips;
  };
  const inScroller = (element) => {
    for (let node = parentOf(element); node; node = parentOf(node)) {
      const style = getComputedStyle(node);
      if (["auto", "scroll"].includes(style.overflowX) && node.scrollWidth > node.clientWidth) return true;
    }
    return false;
  };
  const texts = [];
  const visit = (node, popup) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const value = node.textContent.trim();
      const element = node.parentElement ?? parentOf(node);
      if (!value || !element) return;
      if (!element.checkVisibility({ opacityProperty: true, visibilityProperty: true })) return;
      const range = document.createRange();
      range.selectNodeContents(node);
      const boxes = [...range.getClientRects()].filter((r) => r.width > 0.5 && r.height > 0.5).map(rect);
      if (!boxes.length) return;
      const overflowHidden = getComputedStyle(element).overflowX !== "visible";
      texts.push({
        text: value.slice(0, 60), where: describe(element), container: containerOf(element), boxes,
        clips: clipsOf(node.parentElement ?? element, popup), popup, scrolled: inScroller(element),
        cut: overflowHidden && element.scrollWidth > element.clientWidth + 1,
      });
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE && !(node instanceof ShadowRoot)) return;
    if (node.nodeType === Node.ELEMENT_NODE) {
      if (["STYLE", "SCRIPT", "TEMPLATE", "NOSCRIPT", "TITLE"].includes(node.tagName)) return;
      if (node.inert || node.hidden) return;
      if (!node.checkVisibility({ opacityProperty: true, visibilityProperty: true }) && getComputedStyle(node).display !== "contents") return;
      popup = popup || (popupSelector && node.matches(popupSelector));
      if (node.tagName === "CANVAS" && Array.isArray(node.textBoxes)) {
        const box = node.getBoundingClientRect();
        const sx = box.width / (node.textBoxesWidth || box.width), sy = box.height / (node.textBoxesHeight || box.height);
        const at = (r) => ({ left: box.left + r.x * sx, top: box.top + r.y * sy, right: box.left + (r.x + r.w) * sx, bottom: box.top + (r.y + r.h) * sy });
        const canvasClips = clipsOf(node, popup).concat([{ axis: "xy", name: "canvas", ...rect(box) }]);
        for (const drawn of node.textBoxes) {
          const clips = drawn.within ? canvasClips.concat([{ axis: "xy", name: drawn.within.name, ...at(drawn.within) }]) : canvasClips;
          texts.push({ text: drawn.text, where: "canvas text", container: containerIds.size + texts.length + 1e6, boxes: [at(drawn)], clips, popup, scrolled: inScroller(node), cut: false });
        }
      }
      if (node.shadowRoot) visit(node.shadowRoot, popup);
    }
    for (const child of node.childNodes) visit(child, popup);
  };
  visit(root, popupSelector ? root.matches?.(popupSelector) ?? false : false);
  return { texts, viewport };
}
"""


def _overlap(a: dict, b: dict) -> tuple[float, float]:
    return min(a["right"], b["right"]) - max(a["left"], b["left"]), min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])


def text_problems(page, within: str | None = None, popups: str = ".el-tooltip, .tour-card, [role='tooltip']") -> list[str]:
    """Overlapping, touching or clipped text in the page (or in the element `within` selects), as sentences.

    - two texts of different containers overlap, or sit on one line less than 2 px apart;
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
            if not text["scrolled"] or text["popup"]:
                if box["left"] < viewport["left"] + 1 or box["right"] > viewport["right"] - 1:
                    problems.append(f"“{text['text']}” ({text['where']}) runs into the window's edge")
    pieces = [(text, box) for text in texts for box in text["boxes"]]
    for index, (first, a) in enumerate(pieces):
        for second, b in pieces[index + 1 :]:
            if first["container"] == second["container"] or first["popup"] != second["popup"]:
                continue
            width, height = _overlap(a, b)
            smaller = min(a["bottom"] - a["top"], b["bottom"] - b["top"])
            same_line = height > 0.5 * smaller
            if (width > 1 and height > max(3.0, 0.25 * smaller)) or (same_line and width > -2):
                problems.append(
                    f"“{first['text']}” ({first['where']}) and “{second['text']}” ({second['where']}) "
                    + ("overlap" if width > 1 else "touch")
                )
    return sorted(set(problems))


def edge_problems(page, selector: str = "button", margin: float = 2.0) -> list[str]:
    """Visible controls matching `selector` (searched through shadow roots) that touch the window's left or right
    edge, outside a scrolling area."""
    found = page.evaluate(
        """([selector, margin]) => {
          const all = [];
          const collect = (root) => { root.querySelectorAll(selector).forEach((n) => all.push(n));
            root.querySelectorAll("*").forEach((n) => n.shadowRoot && collect(n.shadowRoot)); };
          collect(document);
          const width = document.documentElement.clientWidth;
          const parentOf = (n) => n.parentNode instanceof ShadowRoot ? n.parentNode.host : n.parentElement;
          const scrolled = (n) => { for (let p = parentOf(n); p; p = parentOf(p)) {
            if (["auto", "scroll"].includes(getComputedStyle(p).overflowX) && p.scrollWidth > p.clientWidth) return true; }
            return false; };
          const shown = (n) => n.checkVisibility() && n.textContent.trim() && !n.closest("[inert]") && !scrolled(n);
          return all.filter(shown).map((n) => {
            const r = n.getBoundingClientRect();
            return { text: n.textContent.trim().slice(0, 40), left: r.left, right: r.right, width: r.width, window: width };
          }).filter((r) => r.width > 0 && (r.left < margin || r.right > r.window - margin));
        }""",
        [selector, margin],
    )
    return sorted({f"“{control['text']}” touches the window's edge" for control in found})
