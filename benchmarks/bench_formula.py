"""Formula views' speed in headless Chromium against `panel serve apps/explainer.py` on loopback.

Prints, over N runs:
- hover → numbers updated, per view (conv, ReLU, max-pool): from the pointer event's own timestamp to the frame
  after the new window's numbers are on the page (the acceptance figure: PointerXY → server → DynamicMap +
  HTML pane → browser), with its median and 95th percentile;
- the server's CPU time per hover, and per second of the sweep at its default speed;
- click on a ReLU / pool neuron in the overview → formula view drawn.

Run: python benchmarks/bench_formula.py [--runs 3] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

from served import run_in_browser

from cnnviz.plots.formula import PLOT_RANGE, MapsLayout
from cnnviz.resources import shared_network

SKIP_TOUR = "try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (error) {}"

# Resolves with the time from the next pointer event to the frame after the numbers of window `expected` showed.
# The numbers' pane (its shadow root, which outlives each update of its HTML) is found once, before the move: a
# search through every shadow root on each frame took the page's main thread ~4 ms a frame, inside the figure.
ARM_HOVER = """(expected) => { window.__hover = new Promise((resolve) => {
  const find = (root) => { for (const node of root.querySelectorAll('*')) {
      if (node.classList && node.classList.contains('fv-numbers')) return node;
      if (node.shadowRoot) { const found = find(node.shadowRoot); if (found) return found; } } return null; };
  const pane = find(document).getRootNode();
  window.addEventListener('pointermove', (event) => {
    const start = event.timeStamp;
    const poll = () => {
      const numbers = pane.querySelector('.fv-numbers');
      if (numbers && numbers.dataset.position === expected) {
        requestAnimationFrame(() => resolve(performance.now() - start));
      } else if (performance.now() - start > 5000) {
        resolve(null);
      } else {
        requestAnimationFrame(poll);
      }
    };
    poll();
  }, { capture: true, once: true });
}); }"""

# (view, layer, cells on its output map): distinct cells, so every hover moves the window.
HOVERS = {
    "conv": ("conv_1_2", [(3, 4), (20, 40), (59, 0), (31, 31), (45, 12), (8, 55), (50, 50), (12, 30)]),
    "relu": ("relu_1_1", [(2, 2), (30, 40), (61, 61), (14, 50), (47, 9), (25, 25), (5, 60), (40, 3)]),
    "pool": ("max_pool_1", [(1, 1), (15, 20), (29, 3), (7, 27), (22, 11), (12, 12), (0, 29), (25, 5)]),
}


def server_pid(url: str) -> int:
    """The `panel serve` process listening on the URL's port (run_in_browser started it)."""
    port = str(urlparse(url).port)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"panel" in command and port.encode() in command:
                return int(entry.name)
    raise SystemExit(f"no server process for {url}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def to_pixels(page, box) -> tuple[float, float]:
    canvas = page.locator(".fv-dialog .bk-Canvas").first.bounding_box()
    (x0, x1), (y0, y1) = PLOT_RANGE["x"], PLOT_RANGE["y"]
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return canvas["x"] + (x - x0) / (x1 - x0) * canvas["width"], canvas["y"] + (y1 - y) / (y1 - y0) * canvas["height"]


def hover_cells(page, layer: str, cells) -> list[float]:
    layout = MapsLayout.of(shared_network(), layer)
    times = []
    for row, col in cells:
        page.evaluate(ARM_HOVER, f"{row},{col}")
        page.mouse.move(*to_pixels(page, layout.output_box(row, col)))
        elapsed = page.evaluate("() => window.__hover")
        assert elapsed is not None, f"hovering ({row}, {col}) did not move the window within 5 s"
        times.append(elapsed)
    return times


def open_from_overview(page, layer: str, neuron: int, kind: str) -> float:
    page.evaluate("document.addEventListener('click', (event) => { window.__clickedAt = event.timeStamp; }, true)")
    # the plot under the neuron's button takes the click (a Tap stream)
    page.locator(f".ov-tile[data-layer='{layer}'][data-index='{neuron}']").click(force=True)
    page.locator(f".fv-dialog[data-kind='{kind}']").wait_for()
    page.locator(".fv-numbers").wait_for()
    page.wait_for_function("() => new Promise((resolve) => requestAnimationFrame(() => resolve(true)))")
    return page.evaluate("performance.now() - window.__clickedAt")


def measure(browser, url: str) -> dict[str, list[float]]:
    pid = server_pid(url)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(SKIP_TOUR)
    page = context.new_page()
    figures: dict[str, list[float]] = defaultdict(list)
    for view, (layer, cells) in HOVERS.items():
        kind = {"conv": "conv2d", "relu": "relu", "pool": "maxpool2d"}[view]
        page.goto(url + f"?layer={layer}&neuron=3&view=formula&channel=4")
        page.locator(f".fv-dialog[data-kind='{kind}']").wait_for()
        page.locator(".fv-numbers").wait_for()
        page.wait_for_timeout(1500)  # the page builds more after its first draw (e.g. the article's playground)
        before = cpu_seconds(pid)
        figures[f"hover {view}"] = hover_cells(page, layer, cells)
        figures["server CPU ms per hover"].append(1000 * (cpu_seconds(pid) - before) / len(cells))
    page.mouse.move(5, 890)
    page.locator(".fv-play").click()
    page.wait_for_timeout(1000)
    before, started = cpu_seconds(pid), time.perf_counter()
    page.wait_for_timeout(4000)
    figures["server CPU share while the sweep plays (default speed)"].append(
        (cpu_seconds(pid) - before) / (time.perf_counter() - started)
    )
    page.locator(".fv-play").click()
    for view, layer, kind in [("relu", "relu_1_1", "relu"), ("pool", "max_pool_1", "maxpool2d")]:
        page.goto(url)
        page.locator(".ov-class").first.wait_for()
        page.wait_for_timeout(3000)
        figures[f"open {view} from the overview (ms)"].append(open_from_overview(page, layer, 2, kind))
    context.close()
    return figures


def main() -> None:
    args, runs = run_in_browser(__doc__.splitlines()[0], measure, default_runs=3)
    hovers = []
    for name in runs[0]:
        values = [value for run in runs for value in run[name]]
        if name.startswith("hover"):
            hovers += values
        print(f"{name}: median {statistics.median(values):.2f} (max {max(values):.2f}) over {len(values)} samples")
    print(
        f"hover → numbers updated, every view: median {statistics.median(hovers):.1f} ms, "
        f"95th percentile {statistics.quantiles(hovers, n=20)[-1]:.1f} ms over {len(hovers)} hovers "
        f"({args.runs} runs)"
    )


if __name__ == "__main__":
    main()
