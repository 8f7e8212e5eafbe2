"""Slow work off the server's event loop, bounded: one worker thread per process, a time limit, newest wins;
and a session's clicks coalesced, so that only the newest of a burst does its work (`Coalescer`).

A served page answers every session's clicks from one event loop, so decoding an upload there (seconds for a
40-megapixel file) would freeze the whole class. `LatestOnly.run` awaits the work in a shared worker thread
instead. Pillow and NumPy release the GIL while they decode and scale, so the loop keeps answering. The work is
bounded three ways:

- per process, one worker: uploads from a whole class queue up instead of taking both cores from the loop;
- per session (one `LatestOnly` each), one job: a newer request supersedes an older one, whose queued work is
  cancelled and whose result, if it was already running, is dropped;
- in time: after `time_limit` seconds the session stops waiting and says so (a running decode cannot be
  interrupted, but the pixel cap bounds how long it can take, and the single worker bounds how many run).

Under Pyodide there are no threads: the work runs inline. No Panel import: any asyncio loop will do.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import TypeVar

Result = TypeVar("Result")
TIME_LIMIT_SECONDS = 30.0
# A request waits at least this long before its work runs: enough for messages that arrive together to be read
# first. What keeps a flood in check is the wait after a flush (as long as the flush took), not this one; at
# 20 ms, every image switch waited 20 ms for nothing (2,000 clicks cost the same CPU either way, bench_flood).
COALESCE_SECONDS = 0.005
Scheduler = Callable[[Callable[[], None], float], None]


class Superseded(Exception):
    """A newer request from the same session replaced this one before it finished."""


class TooSlow(TimeoutError):
    """The work did not finish within the time limit."""


@cache
def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnviz-offload")


def threads_available() -> bool:
    return sys.platform != "emscripten"


class LatestOnly:
    """One session's slow jobs: at most one at a time, the newest wins (see the module docstring)."""

    def __init__(self, time_limit: float = TIME_LIMIT_SECONDS) -> None:
        self.time_limit = time_limit
        self._latest = 0
        self._pending: asyncio.Future | None = None

    async def run(self, function: Callable[..., Result], *args: object) -> Result:
        """`function(*args)` off the event loop; raises Superseded or TooSlow, or whatever `function` raises."""
        self._latest += 1
        ticket = self._latest
        if self._pending is not None:
            self._pending.cancel()  # still queued: it never starts; already running: its result is dropped
        if not threads_available():
            return function(*args)
        pending = asyncio.get_running_loop().run_in_executor(_worker(), function, *args)
        self._pending = pending
        try:
            result = await asyncio.wait_for(pending, self.time_limit)  # on time-out it cancels `pending`
        except asyncio.CancelledError:
            raise Superseded from None
        except TimeoutError:
            raise TooSlow from None
        finally:
            if self._pending is pending:
                self._pending = None
        if ticket != self._latest:
            raise Superseded
        return result


class Coalescer:
    """One session's requests, latest only: of the requests of one kind that arrive before their work runs, only
    the newest runs.

    A server reads a tab's messages one after another and, uncoalesced, works through each: 2,000 clicks sent in
    a few seconds would keep it busy for minutes doing work that a newer click already made moot. With a
    `schedule` (`schedule(flush, delay_seconds)` calls `flush` on the event loop after the delay), `submit`
    only notes the request; the flush runs the newest of each kind, in the order the kinds first arrived. The
    delay is COALESCE_SECONDS, or until as long as the previous flush took has passed since it ended, whichever
    is later: while the loop is busy working, the messages that arrive meanwhile are read before the next flush,
    so however fast a tab sends, its work takes at most about half of the loop's time; a click after a pause
    does not wait for the previous one's cost. Requests a flush makes run at once.

    Without a schedule (notebooks, scripts, tests) every request runs at once, so a caller sees its result.
    """

    def __init__(self, schedule: Scheduler | None = None) -> None:
        self.schedule = schedule
        self.batch: Callable[[], AbstractContextManager] = nullcontext
        """Around each flush: on a served page, one walk of the page's models for all the plots it redraws."""
        self._pending: dict[str, Callable[[], None]] = {}
        self._scheduled = False
        self._flushing = False
        self._last_flush_seconds = 0.0
        self._last_flush_end = 0.0

    def submit(self, kind: str, work: Callable[[], None]) -> None:
        """Run `work` at the next flush, unless a newer request of the same `kind` replaces it first."""
        if self.schedule is None or self._flushing:
            work()
            return
        self._pending[kind] = work  # replaces an older request of this kind, keeping the kind's place
        if not self._scheduled:
            self._scheduled = True
            since = time.perf_counter() - self._last_flush_end
            self.schedule(self.flush, max(COALESCE_SECONDS, self._last_flush_seconds - since))

    def run_pending(self, kind: str) -> None:
        """Run the pending request of `kind` now (for a request that builds on its result, such as 'back')."""
        work = self._pending.pop(kind, None)
        if work is not None:
            self._run(work)

    def flush(self) -> None:
        """Run the newest request of every kind (the scheduled call; harmless when nothing is pending)."""
        self._scheduled = False
        started = time.perf_counter()
        try:
            with self.batch():
                while self._pending:
                    kind = next(iter(self._pending))
                    self._run(self._pending.pop(kind))
        finally:  # a request that raised leaves the others for the next flush
            self._last_flush_end = time.perf_counter()
            self._last_flush_seconds = self._last_flush_end - started
            if self._pending and not self._scheduled and self.schedule is not None:
                self._scheduled = True
                self.schedule(self.flush, COALESCE_SECONDS)

    def _run(self, work: Callable[[], None]) -> None:
        self._flushing = True
        try:
            work()
        finally:
            self._flushing = False
