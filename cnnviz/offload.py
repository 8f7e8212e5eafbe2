"""Slow work off the server's event loop, bounded: one worker thread per process, a time limit, newest wins.

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

Result = TypeVar("Result")
TIME_LIMIT_SECONDS = 30.0


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
