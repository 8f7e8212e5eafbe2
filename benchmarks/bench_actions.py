"""Server CPU per learner action, in-process: the real page built into a Bokeh Document, the session's state driven
as the served page's handlers drive it (each action inside `one_model_walk`, as a flush or a pointer handler runs).

No browser and no network: this isolates the Python each click, image switch or pointer move costs the server,
the figure that bounds how many students one process can answer. `--unbatched` runs the actions bare, as the
page did before its handlers walked the page's models once per change.

Run: python benchmarks/bench_actions.py [--runs 4] [--unbatched] [--calls]
Prints figures only; tests never assert on time. Run it on a quiet machine (it prints the load average). On a
busy one, `--calls` counts the Python function calls of each action instead (cProfile): slower, but the same on
any machine, so two versions can be compared while other jobs run.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import time
from collections.abc import Callable
from functools import partial

from bokeh.document import Document
from panel.io.state import set_curdoc

from cnnviz.app import Explainer
from cnnviz.resources import shared_catalog, shared_network
from cnnviz.serve import one_model_walk


def measure(label: str, action: Callable[[int], object], runs: int, calls: bool = False) -> None:
    """Server CPU seconds of each run of `action`, or with `calls` its Python function calls (in thousands)."""
    figures = []
    for run in range(runs):
        if calls:
            profile = cProfile.Profile()
            profile.runcall(action, run)
            figures.append(pstats.Stats(profile).total_calls / 1000)
        else:
            started = time.process_time()
            action(run)
            figures.append(time.process_time() - started)
    unit, digits = ("k calls", 0) if calls else ("s", 3)
    print(f"{label:44s} " + "  ".join(f"{value:.{digits}f}" for value in figures) + f" {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--unbatched", action="store_true", help="no one_model_walk around each action")
    parser.add_argument("--calls", action="store_true", help="count Python calls instead of timing")
    args = parser.parse_args()
    print("load average before:", " ".join(f"{value:.2f}" for value in os.getloadavg()))
    catalog = shared_catalog()
    Explainer(network=shared_network(), catalog=catalog).page().server_doc(Document())  # warm the caches
    doc = Document()
    built: list[Explainer] = []
    measure("page build", lambda _run: built.append(_built_page(catalog, doc)), 1, args.calls)
    explainer = built[0]
    batch = contextlib.nullcontext if args.unbatched else (lambda: one_model_walk(doc))
    state, runs = explainer.state, args.runs
    keys = [example.key for example in catalog.examples]
    convs = [info.name for info in state.network.infos if info.kind == "conv2d"]
    relus = [info.name for info in state.network.infos if info.kind == "relu"]
    actions: list[tuple[str, Callable[[int], object]]] = [
        ("image switch, overview only", lambda i: setattr(state, "example", keys[(1 + i) % len(keys)])),
        ("click a conv neuron (opens its elastic view)", lambda i: state.select(convs[i % len(convs)], i)),
        ("click another neuron of the same layer", lambda i: state.select(convs[(runs - 1) % len(convs)], i + 1)),
        ("image switch with the elastic view open", lambda i: setattr(state, "example", keys[(5 + i) % len(keys)])),
        ("pointer move in the elastic view", lambda i: state.param.update(row=i + 3, col=i + 5)),
        ("pointer move in a formula view", lambda i: state.param.update(row=i + 7, col=i + 2)),
        ("pointer event on a formula view's maps, as served", lambda i: _point_at_formula(explainer, i)),
        ("click a ReLU neuron (opens its formula view)", lambda i: state.select(relus[i % len(relus)], i)),
        ("back", lambda _i: (state.back(), state.select(convs[0], 1))),
    ]
    with set_curdoc(doc):
        for label, action in actions:
            if label == "pointer move in a formula view":
                state.select(convs[0], 1, level="formula")  # built the first time one opens: not a move's cost
            if label.startswith("pointer event"):
                state.echo_later = lambda _show: None  # served, the other panes follow once the pointer rests
            measure(label, partial(_batched, batch, action), runs, args.calls)


def _built_page(catalog, doc: Document) -> Explainer:
    """One session's explainer, its page built into `doc` (what a page load costs besides sending it)."""
    explainer = Explainer(network=shared_network(), catalog=catalog)
    explainer.page().server_doc(doc)
    return explainer


def _point_at_formula(explainer: Explainer, run: int) -> None:
    """A pointer event over a new cell of the open formula view's output map, as Bokeh sends it: the stream's
    subscriber moves the window (numbers first, then the state and the outline)."""
    formula = explainer.formula
    x0, y0, x1, y1 = formula.explained.layout.output_box(9 + run, 4 + 2 * run)
    formula.pointer.event(x=(x0 + x1) / 2, y=(y0 + y1) / 2)


def _batched(batch, action: Callable[[int], object], run: int) -> None:
    with batch():
        action(run)


if __name__ == "__main__":
    main()
