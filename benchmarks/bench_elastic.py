"""Elastic views in headless Chromium against `panel serve apps/explainer.py` on loopback.

Prints the median time from a click on a neuron to its elastic view fully shown (transition ended and the
server's numbers drawn), for one neuron of each conv layer and one output class; the frame rate of the
sliding-kernel sweep measured with requestAnimationFrame timestamps; and the per-click server work.

Run: python benchmarks/bench_elastic.py [--runs 5] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import json
import statistics
import time

from bench_overview import DRAWN
from served import run_in_browser

from cnnviz.colors import color_ranges
from cnnviz.plots.elastic import view_data
from cnnviz.resources import shared_catalog, shared_network

TARGETS = [("conv_1_1", 2), ("conv_1_2", 3), ("conv_2_1", 5), ("conv_2_2", 7), ("output", 0)]

FIND = """const find = (root, selector) => { const hit = root.querySelector(selector); if (hit) return hit;
  for (const node of root.querySelectorAll('*')) { if (node.shadowRoot) { const found = find(node.shadowRoot, selector);
  if (found) return found; } } return null; };"""

# Click a neuron inside the page and resolve with the ms until its view reports itself open and drawn.
CLICK_TO_SHOWN = (
    """([layer, index]) => new Promise((resolve) => { """
    + FIND
    + """
  const tile = find(document, `.ov-tile[data-layer="${layer}"][data-index="${index}"]`);
  const started = performance.now();
  tile.click();
  const poll = () => { const overlay = find(document, '.el-overlay');
    if (overlay && overlay.dataset.phase === 'open' && overlay.dataset.view === `${layer}/${index}`) {
      requestAnimationFrame(() => resolve(performance.now() - started)); } else requestAnimationFrame(poll); };
  poll(); })"""
)
SWEEP_STATS = "() => { " + FIND + " const overlay = find(document, '.el-overlay'); return overlay.sweepStats; }"
CLOSED = (
    "() => { " + FIND + " const overlay = find(document, '.el-overlay'); return overlay.dataset.phase === 'closed'; }"
)


def measure(browser, url: str) -> tuple[dict[str, float], dict, dict[str, float]]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script("try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (e) {}")
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(DRAWN, polling="raf", timeout=30_000)
    page.wait_for_timeout(500)
    times, sweep, answers = {}, {}, {}
    for layer, neuron in TARGETS:
        times[layer] = page.evaluate(CLICK_TO_SHOWN, [layer, neuron])
        timings = page.evaluate(SWEEP_STATS.replace("overlay.sweepStats", "overlay.timings"))
        answers[layer] = timings["received"] - timings["opened"]
        if layer == "conv_1_1":  # the longest sweep: 62 × 62 positions
            page.wait_for_function(SWEEP_STATS.replace("return overlay.sweepStats", "return overlay.sweepStats.ended"))
            sweep = page.evaluate(SWEEP_STATS)
        page.keyboard.press("Escape")
        page.wait_for_function(CLOSED, polling="raf")
    context.close()
    return times, sweep, answers


def server_work() -> dict[str, tuple[float, int]]:
    """Median ms of computing each view's data, and its JSON size in bytes."""
    network = shared_network()
    trace = network.trace(shared_catalog().default.image)
    ranges = color_ranges(trace, "unit")
    results = {}
    for layer, neuron in TARGETS:
        durations = []
        for _ in range(15):
            started = time.perf_counter()
            data = view_data(trace, layer, neuron, ranges)
            durations.append(1000 * (time.perf_counter() - started))
        results[layer] = (statistics.median(durations), len(json.dumps(data)))
    return results


def main() -> None:
    _args, runs = run_in_browser(__doc__.splitlines()[0], measure, default_runs=5)
    everything = [ms for times, _, _ in runs for ms in times.values()]
    print(f"click → elastic view fully shown (incl. 480 ms transition): median {statistics.median(everything):.0f} ms")
    for layer, _ in TARGETS:
        values = [times[layer] for times, _, _ in runs]
        answer = statistics.median(answers[layer] for _, _, answers in runs)
        print(
            f"  {layer:9s} median {statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f});"
            f" server's numbers arrived after {answer:.0f} ms"
        )
    fps = [(s["frames"] - 1) / ((s["last"] - s["first"]) / 1000) for _, s, _ in runs]
    longest = statistics.median(s["longest"] for _, s, _ in runs)
    positions = runs[0][1]["positions"]
    print(f"sliding-kernel sweep (conv_1_1, {positions} positions): median {statistics.median(fps):.1f} fps,", end=" ")
    print(f"longest frame median {longest:.0f} ms")
    for layer, (ms, size) in server_work().items():
        print(f"server work {layer:9s}: {ms:.1f} ms, {size / 1000:.0f} kB JSON")


if __name__ == "__main__":
    main()
