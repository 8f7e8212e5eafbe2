"""`cnnviz serve`: the same app as `panel serve apps/explainer.py`, with the weights checked before it starts."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
from pathlib import Path

TRIM_DELAY_SECONDS = 1.0
_trim_pending = False
# A tab whose network vanished (a laptop closed mid-lesson, Wi-Fi gone) leaves a half-open websocket that the
# server would keep, with its session, until TCP gives up (minutes to hours). Tornado pings every connection and
# closes one whose answer is late; Bokeh then drops the session once it has been unused for its lifetime
# (15 s: the page reloads into a new session after a drop anyway, see ReloadFromUrl).
PING_INTERVAL_SECONDS = 20
PING_TIMEOUT_SECONDS = 30
CONNECTION_SETTINGS = {
    "websocket_ping_interval": PING_INTERVAL_SECONDS,
    "websocket_ping_timeout": PING_TIMEOUT_SECONDS,
}


def close_half_open_connections() -> None:
    """Ping settings for `panel serve`, which has no option for them (`cnnviz serve` passes CONNECTION_SETTINGS).

    Tornado reads them through the websocket handler's `ping_interval` / `ping_timeout` properties, which it
    documents for overriding; these keep any value the server was given and add ours otherwise.
    """
    from bokeh.server.views.ws import WSHandler

    WSHandler.ping_interval = property(
        lambda handler: handler.settings.get("websocket_ping_interval", PING_INTERVAL_SECONDS)
    )
    WSHandler.ping_timeout = property(
        lambda handler: handler.settings.get("websocket_ping_timeout", PING_TIMEOUT_SECONDS)
    )


def return_memory_when_session_ends(_session_context: object) -> None:
    """Give a closed tab's memory back to the system (`pn.state.on_session_destroyed` hook of each session).

    Bokeh drops the session's document after this hook, and glibc keeps freed heap for reuse, so without a trim
    the server's RSS stays at its peak after a class leaves. One trim covers every session closed within a second.
    """
    global _trim_pending
    if not _trim_pending:
        from tornado.ioloop import IOLoop

        _trim_pending = True
        IOLoop.current().call_later(TRIM_DELAY_SECONDS, _trim_heap)


def _trim_heap() -> None:
    global _trim_pending
    _trim_pending = False
    gc.collect()  # the documents hold reference cycles
    with contextlib.suppress(OSError, AttributeError):  # glibc only (Linux)
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5006, help="port to listen on (default: %(default)s)")
    parser.add_argument("--address", default="localhost", help="address to listen on (default: %(default)s)")
    parser.add_argument("--weights", type=Path, default=None, help="a cnnviz .npz weights file")
    parser.add_argument("--show", action="store_true", help="open the app in the browser")
    parser.add_argument("--num-procs", type=int, default=1, help="server processes (0 = one per core)")


def run(args: argparse.Namespace) -> int:
    import os

    import panel as pn

    from cnnviz.app import create_app
    from cnnviz.lab_state import shared_history
    from cnnviz.resources import shared_catalog, shared_network

    if args.weights:
        os.environ["CNNVIZ_WEIGHTS"] = str(args.weights.resolve())
    # A missing, damaged or unanswering file stops here, with its message (cnnviz.cli), before serving.
    network = shared_network()
    shared_history()
    shared_catalog()
    print(f"Serving cnnviz with {network.parameter_count:,} weights on http://{args.address}:{args.port}/explainer")
    pn.serve(
        {"explainer": create_app},
        port=args.port,
        address=args.address,
        show=args.show,
        num_procs=args.num_procs,
        compress_response=True,  # gzip the page and its JavaScript: a quarter of the bytes on first load
        **CONNECTION_SETTINGS,
        title="cnnviz",
    )
    return 0
