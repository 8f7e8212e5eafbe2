"""Slow work runs off the event loop, one job per session, newest first, within a time limit (cnnviz.offload).

Every check asserts ordering (what had happened when), never elapsed time.
"""

from __future__ import annotations

import asyncio
import io
import threading

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
