"""Python cost of opening the flatten and softmax elastic views (HoloViews panes).

Prints, per view, the median and worst of N opens on the bundled network, each on a session whose panes are
rendered into a Bokeh document (so the DynamicMaps really re-render, as when served):
- open: `state.select(...)` → FlattenElastic / SoftmaxElastic updated (engine numbers, picture, edges, labels,
  outlines, HTML panes, Bokeh models);
- hover: one pointer event on the flatten view → outlines and numbers updated;
- for scale on a busy machine, the same figures of the formula view (the design's reference pattern) in the
  same run: opening a ReLU formula view and one pointer move in it.

Run: python benchmarks/bench_elastic_dense.py [--runs 9]
"""

from __future__ import annotations

import argparse
import statistics
import time

import panel as pn
from bokeh.document import Document

from cnnviz.examples import build_catalog
from cnnviz.resources import shared_network
from cnnviz.state import ExplainerState
from cnnviz.views.elastic_dense import FlattenElastic, SoftmaxElastic
from cnnviz.views.formula import FormulaView


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def report(name: str, seconds: list[float]) -> None:
    print(f"{name:<44} median {1000 * statistics.median(seconds):7.1f} ms   worst {1000 * max(seconds):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    network = shared_network()
    state = ExplainerState(network, build_catalog())
    dense, softmax = network.infos[-2].name, network.infos[-1].name
    classes = int(network.infos[-1].shape[-1])

    flatten_view, softmax_view, formula_view = FlattenElastic(state), SoftmaxElastic(state), FormulaView(state)
    document = Document()
    document.add_root(pn.Column(flatten_view, softmax_view, formula_view).get_root(document))
    image = state.image
    opens, hovers, softmax_opens = [], [], []
    for run in range(runs):
        state.select(network.infos[0].name, 0, level="overview")
        opens.append(timed(lambda run=run: state.select(dense, run % classes, level="elastic")))
        layout = flatten_view.layout
        x0, y0, x1, y1 = layout.cell_box(run % layout.shape[0], 0, run % layout.shape[2])
        hovers.append(timed(lambda x=(x0 + x1) / 2, y=(y0 + y1) / 2: flatten_view.pointer.event(x=x, y=y)))
        state.select(network.infos[0].name, 0, level="overview")
        state.use_array(image * (1 - run / 100))  # a new image each time: softmax mode redraws
        softmax_opens.append(timed(lambda run=run: state.select(softmax, run % classes, level="elastic")))
    relu = next(info.name for info in network.infos if info.kind == "relu")
    formula_opens, formula_hovers = [], []
    for run in range(runs):
        state.select(network.infos[0].name, 0, level="overview")
        formula_opens.append(timed(lambda run=run: state.select(relu, run % 2, level="formula")))
        x0, y0, x1, y1 = formula_view.explained.layout.output_box(run + 3, 2 * run + 1)
        formula_hovers.append(timed(lambda x=(x0 + x1) / 2, y=(y0 + y1) / 2: formula_view.pointer.event(x=x, y=y)))
    report("reference: open a ReLU formula view", formula_opens)
    report("reference: hover in the formula view", formula_hovers)
    report("open the flatten view (HoloViews)", opens)
    report("hover a pooled pixel (flatten)", hovers)
    report("open softmax mode, new image (HoloViews)", softmax_opens)


if __name__ == "__main__":
    main()
