"""Slow work runs off the event loop, one job per session, newest first, within a time limit (cnnviz.offload).

Every check asserts ordering (what had happened when), never elapsed time.
"""

from __future__ import annotations

import asyncio
import io
import threading
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from cnnviz import offload
from cnnviz.engine import tiny_vgg
from cnnviz.examples import build_catalog
from cnnviz.offload import LatestOnly, Superseded, TooSlow
from cnnviz.state import ExplainerState


@pytest.fixture
def state(tmp_path):
    return ExplainerState(tiny_vgg(seed=4), build_catalog(tmp_path))  # no gallery there: probes only


def blocking(gate: threading.Event, value: object, started: threading.Event | None = None):
    def work() -> object:
        if started is not None:
            started.set()
        assert gate.wait(30), "the test never opened the gate"
        return value

    return work


def test_the_event_loop_keeps_running_while_the_work_waits():
    gate, started = threading.Event(), threading.Event()
    seen_by_loop: list[bool] = []

    async def scenario() -> object:
        job = asyncio.ensure_future(LatestOnly().run(blocking(gate, "done", started)))
        while not started.is_set():
            await asyncio.sleep(0.01)
        seen_by_loop.append(job.done())  # the loop runs other work while the job is still busy
        gate.set()
        return await job

    assert asyncio.run(scenario()) == "done"
    assert seen_by_loop == [False]


def test_a_newer_request_supersedes_an_older_one():
    first_gate, first_started, second_gate = threading.Event(), threading.Event(), threading.Event()
    ran: list[str] = []

    def queued() -> str:
        ran.append("queued")
        return "queued"

    async def scenario() -> list[object]:
        session = LatestOnly()
        first = asyncio.ensure_future(session.run(blocking(first_gate, "first", first_started)))
        while not first_started.is_set():
            await asyncio.sleep(0.01)
        other_session = asyncio.ensure_future(LatestOnly().run(blocking(second_gate, "other session")))
        second = asyncio.ensure_future(session.run(queued))  # supersedes `first`, which is running
        third = asyncio.ensure_future(session.run(lambda: "third"))  # supersedes `second` while it waits
        await asyncio.sleep(0.05)
        first_gate.set()
        second_gate.set()
        return await asyncio.gather(first, second, third, other_session, return_exceptions=True)

    first, second, third, other = asyncio.run(scenario())
    assert isinstance(first, Superseded) and isinstance(second, Superseded)
    assert third == "third" and other == "other session"  # another session's job is not superseded
    assert ran == []  # the superseded job that had not started never ran


def test_work_past_the_time_limit_is_abandoned_with_too_slow():
    gate = threading.Event()

    async def scenario() -> None:
        await LatestOnly(time_limit=0.05).run(blocking(gate, "late"))

    try:
        with pytest.raises(TooSlow):
            asyncio.run(scenario())
    finally:
        gate.set()


def test_without_threads_the_work_runs_inline(monkeypatch):
    monkeypatch.setattr(offload, "threads_available", lambda: False)
    callers: list[str] = []

    async def scenario() -> object:
        return await LatestOnly().run(lambda: callers.append(threading.current_thread().name) or "inline")

    assert asyncio.run(scenario()) == "inline"
    assert callers == [threading.current_thread().name]


def png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 70), color).save(buffer, "PNG")
    return buffer.getvalue()


def test_state_uploads_off_the_loop_keep_only_the_newest(state):
    async def scenario() -> list[object]:
        red = asyncio.ensure_future(state.upload_off_loop(png((255, 0, 0))))
        blue = asyncio.ensure_future(state.upload_off_loop(png((0, 0, 255))))
        return await asyncio.gather(red, blue)

    assert asyncio.run(scenario()) == [False, True]
    assert state.example == "" and state.image[..., 2].min() > 0.9 and state.image[..., 0].max() < 0.1


def test_a_bad_upload_off_the_loop_says_why_and_keeps_the_image(state):
    before = state.image
    assert asyncio.run(state.upload_off_loop(b"GIF89a not really")) is False
    assert state.image is before and "not an image cnnviz can read" in state.message


def test_an_upload_past_the_time_limit_says_so_and_keeps_the_image(state, monkeypatch):
    import cnnviz.state

    gate = threading.Event()
    monkeypatch.setattr(cnnviz.state, "prepare_upload", lambda content, input_shape: gate.wait(30))
    state._decoding.time_limit = 0.05
    before = state.image
    try:
        assert asyncio.run(state.upload_off_loop(png((0, 255, 0)))) is False
    finally:
        gate.set()
    assert state.image is before and "could not read this image within 0.05 seconds" in state.message


# -- a burst of clicks: only the newest request of each kind does its work (offload.Coalescer) -------------------
class ManualLoop:
    """A scheduler whose scheduled flushes run when the test says the loop got to them."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[object, float]] = []

    def __call__(self, flush, delay: float) -> None:
        self.scheduled.append((flush, delay))

    def run(self) -> int:
        ran = 0
        while self.scheduled:
            flush, _delay = self.scheduled.pop(0)
            flush()
            ran += 1
        return ran


def test_only_the_newest_request_of_each_kind_runs_in_the_order_the_kinds_came():
    loop, done = ManualLoop(), []
    requests = offload.Coalescer(loop)
    for number in range(1000):
        requests.submit("image", lambda number=number: done.append(("image", number)))
        requests.submit("selection", lambda number=number: done.append(("selection", number)))
    assert done == [] and len(loop.scheduled) == 1  # one flush for the whole burst
    assert loop.run() == 1
    assert done == [("image", 999), ("selection", 999)]


def test_requests_made_by_running_work_run_at_once_and_without_a_schedule_everything_does():
    loop, done = ManualLoop(), []
    requests = offload.Coalescer(loop)
    requests.submit("image", lambda: requests.submit("trace", lambda: done.append("trace")) or done.append("image"))
    loop.run()
    assert done == ["trace", "image"] and loop.scheduled == []
    immediate = offload.Coalescer()
    immediate.submit("image", lambda: done.append("now"))
    assert done[-1] == "now"


def test_a_request_that_fails_leaves_the_others_for_the_next_flush():
    loop, done = ManualLoop(), []
    requests = offload.Coalescer(loop)
    requests.submit("image", lambda: 1 / 0)
    requests.submit("selection", lambda: done.append("selected"))
    flush, _ = loop.scheduled.pop(0)
    with pytest.raises(ZeroDivisionError):
        flush()
    assert loop.run() == 1 and done == ["selected"]


def test_a_flush_runs_all_its_requests_inside_one_batch():
    """A served page batches a flush (`one_model_walk`): everything a burst of clicks redraws is walked once."""
    loop, events = ManualLoop(), []
    requests = offload.Coalescer(loop)

    @contextmanager
    def batch():
        events.append("enter")
        yield
        events.append("exit")

    requests.batch = batch
    requests.submit("image", lambda: events.append("image"))
    requests.submit("selection", lambda: events.append("selection"))
    loop.run()
    assert events == ["enter", "image", "selection", "exit"]


def test_the_next_flush_waits_for_the_previous_ones_cost_only_right_after_it(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(offload.time, "perf_counter", lambda: clock[0])
    loop = ManualLoop()
    requests = offload.Coalescer(loop)

    def long_work() -> None:
        clock[0] += 0.8  # a flush that takes 0.8 s

    requests.submit("image", long_work)
    assert loop.scheduled[-1][1] == offload.COALESCE_SECONDS
    loop.run()
    clock[0] += 0.1  # a click read while the loop was busy: the loop gets as long again before the next flush
    requests.submit("image", long_work)
    assert loop.scheduled[-1][1] == pytest.approx(0.7)
    loop.run()
    clock[0] += 5.0  # a click after a pause does not wait for the previous flush's cost
    requests.submit("image", lambda: None)
    assert loop.scheduled[-1][1] == offload.COALESCE_SECONDS


@pytest.fixture
def traces(monkeypatch) -> list[int]:
    """Counts the network traces computed (the work an image, weight or what-if change costs)."""
    from cnnviz.engine import Network

    computed: list[int] = []
    trace = Network.trace

    def counted(self, image):
        computed.append(1)
        return trace(self, image)

    monkeypatch.setattr(Network, "trace", counted)
    return computed


def test_a_flood_of_clicks_on_a_served_state_does_the_work_of_the_newest_only(state, traces):
    loop = ManualLoop()
    state.requests.schedule = loop
    selections: list[tuple] = []
    state.param.watch(lambda *_: selections.append((state.layer, state.neuron, state.level)), ["layer", "neuron"])
    keys = [example.key for example in state.catalog.examples]
    layer = state.network.infos[1]
    for click in range(2000):  # what 2,000 messages read before the loop gets back to the flush ask for
        state.example = keys[click % len(keys)]
        state.select(layer.name, click % layer.shape[-1])
        state.experiment = "" if click % 2 else state.experiment
    assert traces == [] and selections == []  # nothing computed yet: the requests wait for the flush
    assert loop.run() == 1
    assert len(traces) == 1 and len(selections) == 1  # one trace and one selection for the whole burst
    assert state.example == keys[1999 % len(keys)] and state.neuron == 1999 % layer.shape[-1]
    assert np.array_equal(state.trace.image, state.catalog[state.example].image)


def test_a_steady_stream_of_clicks_costs_one_computation_per_flush(state, traces):
    loop = ManualLoop()
    state.requests.schedule = loop
    keys = [example.key for example in state.catalog.examples]
    flushes = 0
    for click in range(500):  # the loop gets to a flush after every 50 messages
        state.example = keys[click % len(keys)]
        if click % 50 == 49:
            flushes += loop.run()
    assert flushes == 10 and len(traces) == 10


def test_back_climbs_from_the_neuron_selected_last_even_before_the_flush(state):
    state.requests.schedule = ManualLoop()
    conv = next(info for info in state.network.infos if info.kind == "conv2d")
    state.select(conv.name, 0, level="formula")
    state.back()  # the selection is applied first, so 'back' leaves the formula for the elastic view
    assert (state.layer, state.level) == (conv.name, "elastic")
