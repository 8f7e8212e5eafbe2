"""The floor of the stack cnnviz is built on: how fast can any page of it be, on this machine?

Serves, one after another on loopback, pages that hold almost nothing (benchmarks/floor/: one Bokeh figure with
an image; one HoloViews picture in a Panel pane; the same in Panel's Bootstrap template, as cnnviz's page) and then
cnnviz itself (apps/explainer.py), and prints for each the median, over N fresh browser contexts, of navigation →
every Bokeh view drawn in headless Chromium, and the server's CPU per page load (the page built, its scripts and
document sent). Nothing a page of this stack does can be faster than the first rows: the budget of a first
overview in 1.0 s (issue 14) is under them here.

`--lesson` measures instead what HoloViews alone costs the server for bench_load.py's lesson, with none of cnnviz's
code in the loop: bare DynamicMaps of the panes' element kinds and sizes (the overview's one picture; the conv
view's picture, labels and two rectangle layers), first drawn and updated in a Panel pane. It then replays the
lesson's script (its pauses and choices, drawn the same way) on one server that spends only those figures, first
come first served, and prints the image-switch p95 such a server would give: on one process of this machine, no
server-side HoloViews version of these panes can do better.
ReLU and pooling views, the texts, the messages and the engine are counted as free, so the figure is a floor.

Run: python benchmarks/bench_floor.py [--runs 5] [--chromium /usr/bin/chromium]
     python benchmarks/bench_floor.py --lesson [--users 10 30 60] [--actions 3] [--think 2.5]
Prints figures only; tests never assert on time. Run it on a quiet machine (it prints the load average).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
from bench_load import NEURONS, REPO, classroom, cpu_seconds, free_port, percentile, wait_until_up
from bench_overview import VIEWS_DRAWN
from bokeh.document import Document
from panel.io.state import set_curdoc
from playwright.sync_api import sync_playwright
from served import ARGS

from cnnviz.colors import color_ranges
from cnnviz.plots.elastic import PIXELS_PER_UNIT, VIEW_HEIGHT, VIEW_WIDTH, conv_labels, explain_conv
from cnnviz.plots.overview import overview_element, overview_layout
from cnnviz.resources import shared_catalog, shared_network

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


def holoviews_costs(runs: int) -> dict[str, float]:
    """Median server CPU seconds of HoloViews' own work, in a Panel pane, for the panes' element kinds and sizes
    (taken from the network's real overview and conv view) filled with random pixels."""
    network = shared_network()
    trace = network.trace(shared_catalog().examples[0].image)
    ranges = color_ranges(trace, "module")
    overview_shape = overview_element(overview_layout(network), trace, ranges).dimension_values(2, flat=False).shape
    conv = next(info.name for info in network.infos if info.kind == "conv2d")
    labels = conv_labels(explain_conv(trace, conv, 0, ranges))
    rng = np.random.default_rng(0)
    conv_shape = (round(VIEW_HEIGHT * PIXELS_PER_UNIT), round(VIEW_WIDTH * PIXELS_PER_UNIT), 3)
    plain = {"responsive": True, "toolbar": None, "xaxis": None, "yaxis": None}
    # Each drawing is a clone of a blank carrying the options (clones share them), as the app's pictures are, and
    # its pixels are made beforehand: the figures hold HoloViews' work only.
    overview_blank = hv.Image(np.zeros((1, 1), np.uint8)).opts(cmap="RdBu", clim=(0, 255), **plain)
    conv_blank = hv.RGB(np.zeros((1, 1, 3), np.uint8), bounds=(0, -VIEW_HEIGHT, VIEW_WIDTH, 0)).opts(**plain)
    overview_pixels = [rng.integers(0, 255, overview_shape, np.uint8) for _ in range(2)]
    conv_pixels = [rng.integers(0, 255, conv_shape, np.uint8) for _ in range(2)]

    def overview(frame: int) -> hv.Image:
        return overview_blank.clone(overview_pixels[frame])

    def conv_picture(frame: int) -> hv.Overlay:
        return conv_blank.clone(conv_pixels[frame]) * labels.clone()

    boxes = [(x, -3.0, x + 0.5, -2.5) for x in range(10)]

    def timed(make: Callable[[hv.streams.Stream], hv.DynamicMap]) -> tuple[float, float]:
        first, updates = [], []
        for _ in range(runs):  # a new stream, pane and plot each time, as every session has its own
            stream, doc = hv.streams.Stream.define("Frame", frame=0)(), Document()
            pane = pn.pane.HoloViews(make(stream))
            with set_curdoc(doc):
                started = time.process_time()
                pane.get_root(doc)
                first.append(time.process_time() - started)
                started = time.process_time()
                stream.event(frame=1)
                updates.append(time.process_time() - started)
        return statistics.median(first), statistics.median(updates)

    _, overview_update = timed(lambda stream: hv.DynamicMap(overview, streams=[stream]))
    conv_first, conv_update = timed(
        lambda stream: (
            hv.DynamicMap(conv_picture, streams=[stream])
            * hv.DynamicMap(lambda: hv.Rectangles(boxes))
            * hv.DynamicMap(lambda: hv.Rectangles(boxes[:1]))
        )
    )
    return {"overview update": overview_update, "conv view first drawn": conv_first, "conv view update": conv_update}


def lesson_switch_p95(
    users: int, actions: int, think: float, costs: dict[str, float], seed: int
) -> tuple[float, float]:
    """bench_load.py's lesson on one server that spends only `costs`, first come first served: each student's
    first switch at the same instant, then `actions` × (pause, switch, pause, open a view), each pause starting
    when the answer arrives. Returns the p95 of the later switches and the server's busy share."""
    arrivals: list[tuple[float, int, int]] = [(0.0, student, 0) for student in range(users)]  # (time, who, step)
    rngs = [random.Random(seed * users + student) for student in range(users)]
    conv_open = [False] * users  # the view a switch also redraws
    drawn = [False] * users  # each session draws its conv view's plot once
    selected: list[tuple[str, int] | None] = [None] * users
    free, busy, switches = 0.0, 0.0, []
    while arrivals:
        arrival, student, step = heapq.heappop(arrivals)
        switching = step % 2 == 1 or step == 0  # step 0: the first switch; then each round: a switch, an open
        if switching:
            cost = costs["overview update"] + (costs["conv view update"] if conv_open[student] else 0.0)
        else:  # a click on a neuron (ReLU and pooling views count as free)
            layer, neuron = rngs[student].choice([n for n in NEURONS if n != selected[student]])
            selected[student], conv_open[student] = (layer, neuron), layer.startswith("conv")
            cost = 0.0
            if conv_open[student]:
                cost = costs["conv view update"] if drawn[student] else costs["conv view first drawn"]
                drawn[student] = True
        free = max(free, arrival) + cost
        busy += cost
        if switching and step > 0:
            switches.append(free - arrival)
        if step < 2 * actions:
            heapq.heappush(arrivals, (free + rngs[student].uniform(0, 2 * think), student, step + 1))
    return percentile(sorted(switches), 95), busy / free


LESSONS = 9
"""Lessons replayed per class size (their pauses and choices differ): one lesson's p95 varies by a factor of two."""


def lesson_floor(args: argparse.Namespace) -> None:
    costs = holoviews_costs(args.runs)
    print("HoloViews alone, per session: " + " · ".join(f"{what} {1000 * s:.0f} ms" for what, s in costs.items()))
    print(f"bench_load.py's lesson ({args.actions} switches and views per student, {args.think} s mean pause) on a "
          "server that spends only these:")  # fmt: skip
    # Drawing each conv view's plot with the page (outside the lesson, as bench_load.py joins before it) would
    # only move that work to the moment the class joins; the second figure shows the lesson without it.
    prebuilt = {**costs, "conv view first drawn": costs["conv view update"]}
    for users in args.users:
        figures = []
        for variant in (costs, prebuilt):
            lessons = [lesson_switch_p95(users, args.actions, args.think, variant, seed) for seed in range(LESSONS)]
            p95s = sorted(p95 for p95, _busy in lessons)
            busy = statistics.median(busy for _p95, busy in lessons)
            figures.append(f"p95 ≥ {statistics.median(p95s):.2f} s ({p95s[0]:.2f}–{p95s[-1]:.2f}, busy {busy:.0%})")
        print(f"{users:4d} students: image switch {figures[0]}; conv views drawn with the page: {figures[1]}")
    print(f"(median of {LESSONS} lessons, their range in brackets, and the server's busy share of the lesson)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--lesson", action="store_true", help="HoloViews' own cost of bench_load.py's lesson")
    parser.add_argument("--users", type=int, nargs="+", default=[10, 30, 60], help="class sizes (--lesson)")
    parser.add_argument("--actions", type=int, default=3, help="switches and views per student (--lesson)")
    parser.add_argument("--think", type=float, default=2.5, help="mean pause between actions, s (--lesson)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if args.lesson:
        lesson_floor(args)
        return
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
