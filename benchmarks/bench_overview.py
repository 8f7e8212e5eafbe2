"""Overview speed in headless Chromium against `panel serve apps/explainer.py` on loopback.

Prints the median of N runs of: navigation → overview fully drawn; example switch → overview redrawn; and the
bytes transferred on a first load (HTTP bodies + websocket frames, as Chromium counts them).

Run: python benchmarks/bench_overview.py [--runs 7] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Fully drawn: every Bokeh view reports it has finished rendering and the overlay shows all neurons.
DRAWN = """() => {
  const views = window.Bokeh && window.Bokeh.index
    ? [...window.Bokeh.index.all_views()].filter((view) => view.model.type !== "CDSView") : [];
  const overlay = [];
  const walk = (root) => { for (const node of root.querySelectorAll('*')) {
      if (node.classList && node.classList.contains('ov-tile')) overlay.push(node);
      if (node.shadowRoot) walk(node.shadowRoot); } };
  walk(document);
  return views.length > 0 && views.every((view) => view.has_finished()) && overlay.length === 113;
}"""

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panel",
            "serve",
            "apps/explainer.py",
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--allow-websocket-origin",
            f"127.0.0.1:{port}",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/explainer", timeout=2).read()
            return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("panel serve did not start within 60 s")


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
        lambda e: received.__setitem__("bytes", received["bytes"] + len(e["response"]["payloadData"])),
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
            runs = [measure(browser, f"http://127.0.0.1:{port}/explainer") for _ in range(args.runs)]
            browser.close()
    finally:
        server.terminate()
    first, switch, size = (statistics.median(values) for values in zip(*runs, strict=True))
    print(f"navigation → overview fully drawn: median {first:.0f} ms over {args.runs} runs")
    print(f"example switch → overview redrawn: median {switch:.0f} ms over {args.runs} runs × 5 switches")
    print(f"bytes transferred on first load: median {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
