"""Server work of learning: one backward pass, one training step, backward mode switched on, a quiz question.

Run: python benchmarks/bench_learning.py [--repeats N]
Prints CPU-time medians (what one student's click costs the server); tests never assert on time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from bench_engine import median_ms

from cnnviz.engine.gradients import backward_pass, take_step
from cnnviz.examples import build_catalog
from cnnviz.learning_state import LearningState
from cnnviz.quiz import QUESTION_KINDS
from cnnviz.resources import shared_network, single_threaded_blas
from cnnviz.state import ExplainerState


def cpu_seconds(action: Callable[[], object]) -> float:
    """CPU time of one call: what it costs the server, however busy the machine is."""
    start = time.process_time()
    action()
    return time.process_time() - start


def median_cpu_ms(action: Callable[[], object], repeats: int) -> float:
    return statistics.median(cpu_seconds(action) for _ in range(repeats)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    single_threaded_blas()  # as the served app runs
    network = shared_network()
    image = np.random.default_rng(0).random(network.input_shape).astype(np.float32)

    backward_ms = median_ms(lambda: backward_pass(network, image, 3), args.repeats)
    step_ms = median_ms(lambda: take_step(backward_pass(network, image, 3), 1e-4), args.repeats)
    print(f"backward_pass (loss, every column's and weight's gradient), float64: median {backward_ms:.1f} ms")
    print(f"one training step (backward pass + update + loss after): median {step_ms:.1f} ms")

    learning = LearningState(ExplainerState(network, build_catalog()), seed=0)
    classes = iter(np.arange(10**6) % len(network.class_names))  # a new class each time: nothing cached

    def backward_mode_on() -> None:
        learning.param.update(backward_mode=False, true_class=int(next(classes)))
        learning.backward_mode = True

    def step_and_reset() -> None:
        learning.true_class = int(next(classes))
        learning.step()
        learning.reset()

    learning.backward_mode = False
    on = median_cpu_ms(backward_mode_on, args.repeats)
    print(f"LearningState: backward mode switched on for a new class (CPU): median {on:.1f} ms")
    learning.backward_mode = False
    taken = median_cpu_ms(step_and_reset, args.repeats)
    print(f"LearningState: a step for a new class, shown, then Reset (CPU): median {taken:.1f} ms")
    for kind in QUESTION_KINDS:
        cost = median_cpu_ms(lambda kind=kind: learning.ask(kind), args.repeats)
        print(f"quiz question {kind!r} (CPU): median {cost:.1f} ms")


if __name__ == "__main__":
    main()
