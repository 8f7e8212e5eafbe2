"""The conv elastic view's Python cost per click, per pointer move and per sweep tick, on a rendered session.

A session's Explainer is rendered into a Bokeh document (as a served page is); then, for one neuron of each conv
layer, prints the median milliseconds of Python from the click (`state.select`) until the elastic view's
HoloViews plot holds the new picture (the browser's transition excluded), of one pointer move (`PointerXY`
event → marker and readout redrawn), and of one sweep tick.

Run: python benchmarks/bench_elastic.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bokeh.document import Document

from cnnviz.app import Explainer
from cnnviz.plots.elastic import cell_box


def median_ms(action, runs: int) -> float:
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        durations.append(1000 * (time.perf_counter() - started))
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    explainer = Explainer()
    explainer.__panel__().get_root(Document())
    state = explainer.state
    layers = [info.name for info in state.network.infos if info.kind == "conv2d"]
    state.select(layers[0], 0)  # the first open builds the pane (once per session)
    state.clear_selection()
    for layer in layers:
        neurons = iter(range(1000))

        def click(layer=layer, neurons=neurons) -> None:  # a different neuron each time: nothing is cached
            state.clear_selection()
            state.select(layer, next(neurons) % state.network.info(layer).shape[2])

        opened = median_ms(click, runs)
        view = explainer.elastic.pane
        layout = view.explained.layout
        rows, cols = layout.output_size
        positions = iter([(r % rows, (3 * r) % cols) for r in range(1, 1000)])

        def point(view=view, layout=layout, positions=positions) -> None:
            box = cell_box(layout.output_box(), layout.output_size, *next(positions))
            view.pointer.event(x=(box[0] + box[2]) / 2, y=(box[1] + box[3]) / 2)

        pointed = median_ms(point, 3 * runs)
        view.replay()
        ticked = median_ms(view.step, 3 * runs)
        view.stop_sweep()
        print(
            f"{layer:10s} click → elastic view drawn {opened:6.0f} ms · pointer move {pointed:5.0f} ms · "
            f"sweep tick {ticked:5.0f} ms (the sweep: {view.positions_per_tick} positions a tick)"
        )


if __name__ == "__main__":
    main()
