"""The floor of the stack cnnviz is built on: how fast can any page of it be, on this machine?

Serves, one after another on loopback, pages that hold almost nothing (benchmarks/floor/: one Bokeh figure with
an image; one HoloViews picture in a Panel pane; the same in Panel's Bootstrap template, as cnnviz's page) and then
cnnviz itself (apps/explainer.py), and prints for each the median, over N fresh browser contexts, of navigation →
every Bokeh view drawn in headless Chromium, and the server's CPU per page load (the page built, its scripts and
document sent). Nothing a page of this stack does can be faster than the first rows: the budget of a first
overview in 1.0 s (issue 14) is under them here.

Run: python benchmarks/bench_floor.py [--runs 5] [--chromium /usr/bin/chromium]
Prints figures only; tests never assert on time. Run it on a quiet machine (it prints the load average).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from bench_load import REPO, classroom, cpu_seconds, free_port, wait_until_up
from bench_overview import VIEWS_DRAWN
from playwright.sync_api import sync_playwright
from served import ARGS

FLOOR = Path(__file__).resolve().parent / "floor"


@contextlib.contextmanager
def floor_page(server: str, app: Path) -> Iterator[tuple[str, list[int]]]:
    """`bokeh serve` or `panel serve` of one floor page on a free loopback port: its URL and the server's pid."""
    port = free_port()
    command = [sys.executable, "-m", server, "serve", str(app), "--port", str(port), "--address", "127.0.0.1"]
    command += ["--allow-websocket-origin", f"127.0.0.1:{port}", *(["--liveness"] if server == "panel" else [])]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/{app.stem}"
    try:
        wait_until_up(f"http://127.0.0.1:{port}/liveness" if server == "panel" else url, process)
        yield url, [process.pid]
    finally:
        process.terminate()
        process.wait(timeout=30)


PAGES: list[tuple[str, Callable[[], contextlib.AbstractContextManager[tuple[str, list[int]]]]]] = [
    ("Bokeh alone: one figure with an image", partial(floor_page, "bokeh", FLOOR / "bokeh_image.py")),
    ("Panel + HoloViews: one picture in a pane", partial(floor_page, "panel", FLOOR / "panel_holoviews.py")),
    ("the same in Panel's Bootstrap template", partial(floor_page, "panel", FLOOR / "panel_template.py")),
    ("cnnviz (apps/explainer.py)", classroom),  # served as every browser benchmark serves it
]


def first_draws(browser, url: str, runs: int) -> list[float]:
    """Milliseconds from navigation to every Bokeh view drawn, each in a fresh context (nothing cached)."""
    times = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(VIEWS_DRAWN, polling="raf", timeout=60_000)
        times.append(page.evaluate("performance.now()"))
        context.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        for what, serve in PAGES:
            with serve() as (url, pids):
                first_draws(browser, url, 1)  # the server's first page warms its caches
                before = cpu_seconds(pids)
                times = first_draws(browser, url, args.runs)
                cpu = (cpu_seconds(pids) - before) / args.runs
            print(f"{what:42s} navigation → drawn: median {statistics.median(times):5.0f} ms "
                  f"(min {min(times):.0f}) · server CPU per page load {cpu:.2f} s")  # fmt: skip
        browser.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
