"""Overview speed in headless Chromium against `panel serve apps/explainer.py` on loopback.

Prints the median of N runs of: navigation → overview fully drawn; example switch → overview redrawn; and the
bytes transferred on a first load (HTTP bodies + websocket frames, as Chromium counts them).

Run: python benchmarks/bench_overview.py [--runs 7] [--chromium /usr/bin/chromium] [--nginx]
(--nginx: through deploy/classroom.sh, which gzips; plain `panel serve` sends everything uncompressed.)
"""

from __future__ import annotations

import os
import statistics

from served import run_in_browser

# Every Bokeh view has finished rendering. (Data views and the toolbar tools of figures in closed panels never
# report "finished", so they are left out.)
VIEWS_DRAWN = """() => {
  const views = window.Bokeh && window.Bokeh.index
    ? [...window.Bokeh.index.all_views()]
        .filter((view) => view.model.type !== "CDSView" && !view.model.type.endsWith("Tool"))
    : [];
  return views.length > 0 && views.every((view) => view.has_finished());
}"""

# Fully drawn: every Bokeh view has finished rendering and the overlay shows all neurons.
DRAWN = f"""() => {{
  const overlay = [];
  const walk = (root) => {{ for (const node of root.querySelectorAll('*')) {{
      if (node.classList && node.classList.contains('ov-tile')) overlay.push(node);
      if (node.shadowRoot) walk(node.shadowRoot); }} }};
  walk(document);
  return ({VIEWS_DRAWN})() && overlay.length === 113;
}}"""

# Resolves (ms since navigation) two frames after the class probabilities change, i.e. once the new
# heatmaps (sent in the same batch) have been painted.
WATCH_SWITCH = """() => { window.__switchDone = new Promise((resolve) => {
  const find = (root) => { for (const node of root.querySelectorAll('*')) {
      if (node.classList && node.classList.contains('ov-grid')) return node;
      if (node.shadowRoot) { const found = find(node.shadowRoot); if (found) return found; } } return null; };
  const grid = find(document);
  const before = [...grid.querySelectorAll('.ov-class-value')].map((n) => n.textContent).join();
  const observer = new MutationObserver(() => {
    const now = [...grid.querySelectorAll('.ov-class-value')].map((n) => n.textContent).join();
    if (now !== before) {
      observer.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
    }
  });
  observer.observe(grid, { subtree: true, characterData: true, childList: true });
}); }"""


def frame_bytes(frame: dict) -> int:
    """Size on the wire of a websocket frame's payload: Chromium reports binary payloads base64-encoded."""
    data = frame["payloadData"]
    return len(data) * 3 // 4 - data.count("=", -2) if frame["opcode"] == 2 else len(data.encode())


def measure(browser, url: str) -> tuple[float, float, int]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    received = {"bytes": 0}
    cdp.on(
        "Network.loadingFinished", lambda e: received.__setitem__("bytes", received["bytes"] + e["encodedDataLength"])
    )
    cdp.on(
        "Network.webSocketFrameReceived",
        lambda e: received.__setitem__("bytes", received["bytes"] + frame_bytes(e["response"])),
    )
    page.goto(url)
    page.wait_for_function(DRAWN, polling="raf", timeout=30_000)
    first_draw = page.evaluate("performance.now()")
    page.wait_for_timeout(500)
    first_load_bytes = received["bytes"]
    switches = []
    thumbs = page.locator(".thumb")
    page.evaluate("document.addEventListener('click', (event) => { window.__clickedAt = event.timeStamp; }, true)")
    for index in (4, 9, 14, 19, 24):
        page.evaluate(WATCH_SWITCH)
        thumbs.nth(index % thumbs.count()).click()
        switches.append(page.evaluate("() => window.__switchDone") - page.evaluate("window.__clickedAt"))
    context.close()
    return first_draw, statistics.median(switches), first_load_bytes


def main() -> None:
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    args, runs = run_in_browser(__doc__.splitlines()[0], measure, default_runs=7)
    print("served by " + ("nginx (gzip) in front of panel serve" if args.nginx else "panel serve (no compression)"))
    first, switch, size = (statistics.median(values) for values in zip(*runs, strict=True))
    print(f"navigation → overview fully drawn: median {first:.0f} ms over {args.runs} runs")
    print(f"example switch → overview redrawn: median {switch:.0f} ms over {args.runs} runs × 5 switches")
    print(f"bytes transferred on first load: median {size / 1e6:.2f} MB")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
