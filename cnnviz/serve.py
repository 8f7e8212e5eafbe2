"""`cnnviz serve`: the same app as `panel serve apps/explainer.py`, with the weights checked before it starts."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cnnviz.cli import bounded_int
from cnnviz.errors import CnnvizError

if TYPE_CHECKING:
    from bokeh.document import Document

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
    documents for overriding; these keep any value the server was given and add ours otherwise. Under Pyodide
    (the static export) there is no server and no Tornado.
    """
    if sys.platform == "emscripten":
        return
    from bokeh.server.views.ws import WSHandler

    WSHandler.ping_interval = property(
        lambda handler: handler.settings.get("websocket_ping_interval", PING_INTERVAL_SECONDS)
    )
    WSHandler.ping_timeout = property(
        lambda handler: handler.settings.get("websocket_ping_timeout", PING_TIMEOUT_SECONDS)
    )


WEBSOCKET_COMPRESSION_LEVEL = 1
"""zlib level of the websocket messages when the server was given none: the first page's messages shrink from
~780 KB to ~180 KB (the overview's picture is mostly the white between its tiles) for ~6 ms of the server; higher
levels save little more for twice the time."""


def compress_websocket_messages() -> None:
    """Compressed websocket messages under `panel serve` and `cnnviz serve` alike, unless the server was given a
    level (`--websocket-compression-level`).

    Neither compresses them by default, and nginx passes them through as they are, so every student's page and
    every image switch crossed the classroom's network at full size. Tornado documents the handler's
    `get_compression_options` for overriding; Bokeh's answers None when no level was given.
    """
    if sys.platform == "emscripten":
        return
    from bokeh.server.views.ws import WSHandler

    given = WSHandler.get_compression_options  # a second call wraps this wrapper: the same answers

    def get_compression_options(handler: WSHandler) -> dict[str, object]:
        return given(handler) or {"compression_level": WEBSOCKET_COMPRESSION_LEVEL}

    WSHandler.get_compression_options = get_compression_options


def skip_document_validation() -> None:
    """Bokeh checks every new session's document for layout mistakes, only to log warnings (a tenth of a page
    build here): the tests and a notebook keep the check, a serving process skips it."""
    from bokeh.settings import settings

    settings.perform_document_validation.set_value(False)


@contextlib.contextmanager
def one_model_walk(document: Document | None) -> Iterator[None]:
    """Walk the page's models at most once for everything done inside, and not at all if no model came or went.

    HoloViews freezes the document around each plot update, and Bokeh re-collects every model of the page when
    the freeze ends (25-60 ms for the served page), although moving a window or switching an image only changes
    data sources and texts. Bokeh reports every change of a model reference through `models.invalidate()`; if
    none came (and no root was added or removed), the collection it would make is the one it has. Unlike Bokeh's
    own `models.freeze()`, the freeze ends even when the work raises (left open, the page would never again take
    a new model).
    """
    if document is None or "invalidate" in vars(document.models):  # none, or inside a walk that covers this one
        yield
        return
    models, roots = document.models, list(document.roots)
    changed: list[bool] = []
    models.invalidate = lambda: changed.append(True)  # frozen below: Bokeh's own invalidate would do nothing now
    freeze = models.freeze()
    freeze.__enter__()
    try:
        yield
    finally:
        if not changed and list(document.roots) == roots:
            models.recompute = lambda: None  # only for the freeze's end, just below
        try:
            freeze.__exit__(None, None, None)
        finally:
            for name in ("invalidate", "recompute"):
                models.__dict__.pop(name, None)


def later_under_lock(document: Document, work: Callable[[], None], delay: float):
    """Run `work` on the event loop after `delay` seconds, holding the session's document lock, as a Bokeh
    callback of that session would; returns the timer (cancellable), or None when it ran at once (no server).

    Not a Bokeh session callback: adding one is announced as a document event, which an active `pn.io.hold()`
    (a pointer move, a tap handled by HoloViews) swallows, and the work would never run."""
    import asyncio

    from panel.io.state import set_curdoc

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if document is None or document.session_context is None or loop is None:
        work()
        return None

    def run(_document: Document) -> None:
        with set_curdoc(document):
            work()

    def locked() -> None:
        task = asyncio.ensure_future(document.session_context.with_locked_document(run))
        _running.add(task)  # kept until done: the loop holds tasks only weakly
        task.add_done_callback(_running.discard)

    return loop.call_later(delay, locked)


_running: set = set()


def document_scheduler(document: Document) -> Callable[[Callable[[], None], float], None]:
    """`schedule(work, delay_seconds)` for one served session's `Coalescer` (cnnviz.offload)."""

    def schedule(work: Callable[[], None], delay: float) -> None:
        later_under_lock(document, work, delay)

    return schedule


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
    parser.add_argument(
        "--port", type=bounded_int(0, 65535), default=5006, help="port to listen on, 0 for any free one (default: 5006)"
    )
    parser.add_argument("--address", default="localhost", help="address to listen on (default: %(default)s)")
    parser.add_argument("--weights", type=Path, default=None, help="a cnnviz .npz weights file")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="a folder whose gallery/ holds the example images (`cnnviz data`)"
    )
    parser.add_argument("--show", action="store_true", help="open the app in the browser")
    parser.add_argument("--num-procs", type=bounded_int(0), default=1, help="server processes (0 = one per core)")
    classroom = parser.add_argument_group("classroom options, as for `panel serve`")
    classroom.add_argument(
        "--allow-websocket-origin",
        action="append",
        metavar="HOST[:PORT]",
        help="a host name students' browsers use to reach this server (repeat for several)",
    )
    classroom.add_argument("--prefix", default="", help="URL prefix, e.g. behind a reverse proxy at /cnnviz")
    for option, default, what in (
        ("--unused-session-lifetime", 15000, "how long a closed tab's session is kept"),
        ("--check-unused-sessions", 17000, "how often to look for closed tabs' sessions"),
    ):  # Bokeh's defaults
        classroom.add_argument(
            option, type=bounded_int(1), default=default, metavar="MS", help=f"{what}, in ms (default: {default})"
        )
    classroom.add_argument(
        "--basic-auth", default=None, metavar="PASSWORD_OR_FILE", help="a shared password, or a JSON file of users"
    )
    classroom.add_argument("--cookie-secret", default=None, help="signs the login cookie (default: a random one)")
    classroom.add_argument("--ssl-certfile", type=Path, default=None, help="certificate file, to serve over https")
    classroom.add_argument("--ssl-keyfile", type=Path, default=None, help="the certificate's private key file")


def run(args: argparse.Namespace) -> int:
    import os

    import panel as pn

    from cnnviz.app import create_app
    from cnnviz.lab_state import shared_history
    from cnnviz.resources import shared_catalog, shared_network

    if args.weights:
        os.environ["CNNVIZ_WEIGHTS"] = str(args.weights.resolve())
    if args.data_dir:
        os.environ["CNNVIZ_DATA_DIR"] = str(args.data_dir.resolve())
    # A missing, damaged or unanswering file stops here, with its message (cnnviz.cli), before serving.
    network = shared_network()
    shared_history()
    catalog = shared_catalog()  # examples at the network's size; a gallery that does not fit is said here too
    if catalog.hint:
        print(catalog.hint)
    scheme = "https" if args.ssl_certfile else "http"
    prefix = f"/{args.prefix.strip('/')}" if args.prefix else ""
    options = classroom_options(args)
    # Panel's reuse_sessions: without it, each page load builds the tab's page twice when the class joins at once:
    # once for the HTML and again when its websocket comes, because the first was dropped as unused while the server
    # was busy with the others (measured: 10 tabs at once, 14.2 s of server CPU; with it, 6.8 s). With it, every
    # tab's HTML comes from one kept session, and each tab's page is built once, when its websocket arrives.
    # Set for this server only: a test that calls run() leaves Panel's configuration as it found it.
    with pn.config.set(reuse_sessions=True):
        try:
            server = pn.serve(
                {"explainer": create_app},
                port=args.port,
                address=args.address,
                show=args.show,
                num_procs=args.num_procs,
                compress_response=True,  # gzip the page and its JavaScript: a quarter of the bytes on first load
                **CONNECTION_SETTINGS,
                title="cnnviz",
                start=False,
                verbose=False,  # the line below says where, with the app's path
                **options,
            )
        except OSError as error:  # the port is taken, or the address is not this machine's
            message = f"cannot listen on {args.address}:{args.port} ({error.strerror or error})."
            raise CnnvizError(message) from error
        url = f"{scheme}://{args.address}:{server.port}{prefix}/explainer"
        print(f"Serving cnnviz with {network.parameter_count:,} weights on {url}")
        server.start()
        server.io_loop.add_callback(build_the_kept_session, url.replace("://0.0.0.0:", "://127.0.0.1:"))
        server.io_loop.start()
    return 0


async def build_the_kept_session(url: str) -> None:
    """Ask the server for its page once, before any student does, so that the session kept for every tab's HTML
    is nobody's: Panel otherwise keeps the first student's own session for that, for as long as the server runs.
    """
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    # Behind a login, say, this fails and the first student's session is kept, as by Panel's default.
    with contextlib.suppress(OSError, HTTPClientError):
        await AsyncHTTPClient().fetch(url, validate_cert=False, request_timeout=300)


def classroom_options(args: argparse.Namespace) -> dict[str, object]:
    """`panel serve`'s classroom options as `pn.serve` keywords; files are checked first, for a clear message."""
    for option, path in (("--ssl-certfile", args.ssl_certfile), ("--ssl-keyfile", args.ssl_keyfile)):
        if path and not path.is_file():
            raise CnnvizError(f"{option} {path}: no such file.")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise CnnvizError("--ssl-certfile and --ssl-keyfile go together: give both.")
    options: dict[str, object] = {
        "websocket_origin": args.allow_websocket_origin or None,
        "prefix": args.prefix,
        "unused_session_lifetime_milliseconds": args.unused_session_lifetime,
        "check_unused_sessions_milliseconds": args.check_unused_sessions,
    }
    if args.basic_auth:
        options["basic_auth"] = args.basic_auth
        options["cookie_secret"] = args.cookie_secret or secrets.token_urlsafe(32)
    if args.ssl_certfile:
        options.update(ssl_certfile=str(args.ssl_certfile), ssl_keyfile=str(args.ssl_keyfile))
    return options
