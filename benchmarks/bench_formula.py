"""Formula views' speed in headless Chromium against `panel serve apps/explainer.py` on loopback.

Prints, as medians over N runs:
- hover → every linked number updated and painted, per view (conv, ReLU, max-pool, softmax): from the
  pointer event's own timestamp to two animation frames after the window moved (the acceptance figure);
- click on a ReLU / pool neuron in the overview → formula view drawn (one server round trip + engine);
- websocket frames the browser sends while the sweep plays for 3 s, and how many of them carry the window
  position (should be none: the sweep is local and reports only where it stops).

Run: CNNVIZ_WEIGHTS=... python benchmarks/bench_formula.py [--runs 5] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from served import run_in_browser

SKIP_TOUR = "try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (error) {}"

# Resolves with the time from the next pointer event to two frames after it, and whether the view changed.
ARM_HOVER = """() => { window.__hover = new Promise((resolve) => {
  const find = (root) => { for (const node of root.querySelectorAll('*')) {
      if (node.classList && node.classList.contains('fv-status')) return node;
      if (node.shadowRoot) { const found = find(node.shadowRoot); if (found) return found; } } return null; };
  const status = find(document);
  const before = status.textContent;
  window.addEventListener('pointermove', (event) => {
    const start = event.timeStamp;
    requestAnimationFrame(() => requestAnimationFrame(() =>
      resolve({ ms: performance.now() - start, changed: status.textContent !== before })));
  }, { capture: true, once: true });
}); }"""

# (view, matrix to hover, its rows and columns, cells): distinct cells, so every hover moves the window.
HOVERS = {
    "conv": ("sums", 60, 60, [(3, 4), (20, 40), (59, 0), (31, 31), (45, 12), (8, 55)]),
    "relu": ("input", 62, 62, [(2, 2), (30, 40), (61, 61), (14, 50), (47, 9), (25, 25)]),
    "pool": ("results", 30, 30, [(1, 1), (15, 20), (29, 3), (7, 27), (22, 11), (12, 12)]),
}


def hover_cells(page, matrix: str, rows: int, cols: int, cells) -> list[float]:
    box = page.locator(f".fv-map-frame[data-matrix='{matrix}']").bounding_box()
    times = []
    for row, col in cells:
        page.evaluate(ARM_HOVER)
        page.mouse.move(box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows)
        result = page.evaluate("() => window.__hover")
        assert result["changed"], f"hovering ({row}, {col}) did not move the window"
        times.append(result["ms"])
    return times


def open_from_overview(page, layer: str, neuron: int, kind: str) -> float:
    page.evaluate("document.addEventListener('click', (event) => { window.__clickedAt = event.timeStamp; }, true)")
    page.locator(f".ov-tile[data-layer='{layer}'][data-index='{neuron}']").click()
    page.locator(f".fv-dialog[data-kind='{kind}']").wait_for()
    page.wait_for_function("() => new Promise((resolve) => requestAnimationFrame(() => resolve(true)))")
    return page.evaluate("performance.now() - window.__clickedAt")


def frames_sent_while_sweeping(page, cdp) -> tuple[int, int]:
    """(all frames, frames about the window position) the browser sends while the sweep plays for 3 s."""
    page.wait_for_timeout(1000)  # let the last hover's report to the server settle first
    sent: list[str] = []
    cdp.on("Network.webSocketFrameSent", lambda frame: sent.append(frame["response"]["payloadData"]))
    page.locator(".fv-play").click()
    page.wait_for_timeout(3000)
    during = list(sent)
    page.locator(".fv-play").click()
    return len(during), sum('"position"' in frame for frame in during)


def measure(browser, url: str) -> dict[str, list[float]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(SKIP_TOUR)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    figures: dict[str, list[float]] = defaultdict(list)
    page.goto(url + "?layer=conv_1_2&neuron=3&view=formula&channel=4&row=10&col=20")
    page.locator(".fv-dialog[data-kind='conv2d']").wait_for()
    figures["hover conv"] = hover_cells(page, *HOVERS["conv"])
    frames, about_position = frames_sent_while_sweeping(page, cdp)
    figures["websocket frames sent during a 3 s sweep (any view)"] = [frames]
    figures["... of which about the formula window"] = [about_position]
    page.keyboard.press("Escape")
    page.locator(".fv-backdrop").wait_for(state="hidden")
    for view, layer, kind in [("relu", "relu_1_1", "relu"), ("pool", "max_pool_1", "maxpool2d")]:
        page.goto(url)
        page.locator(".ov-class").first.wait_for()
        page.wait_for_timeout(3000)  # the page builds more after its first draw (e.g. the article's playground)
        figures[f"open {view} from the overview"].append(open_from_overview(page, layer, 2, kind))
        figures[f"hover {view}"] = hover_cells(page, *HOVERS[view])
    page.goto(url + "?layer=softmax&neuron=0&view=formula")
    page.locator(".fv-dialog[data-kind='softmax']").wait_for()
    for j in (4, 1, 8, 2, 9, 6):
        page.evaluate(ARM_HOVER)
        page.locator(f".fv-denominator .fv-exp[data-index='{j}']").hover()
        figures["hover softmax"].append(page.evaluate("() => window.__hover")["ms"])
    context.close()
    return figures


def main() -> None:
    args, runs = run_in_browser(__doc__.splitlines()[0], measure, default_runs=5)
    hovers = []
    for name in runs[0]:
        values = [value for run in runs for value in run[name]]
        if name.startswith("hover"):
            hovers += values
        print(f"{name}: median {statistics.median(values):.0f} (max {max(values):.0f}) over {len(values)} samples")
    print(
        f"hover → all linked numbers painted, every view: median {statistics.median(hovers):.1f} ms, "
        f"95th percentile {statistics.quantiles(hovers, n=20)[-1]:.1f} ms over {len(hovers)} hovers "
        f"({args.runs} runs)"
    )


if __name__ == "__main__":
    main()
