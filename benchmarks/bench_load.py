"""A classroom on one `panel serve` process: N simulated students switching images and opening views at once.

Each student is a Bokeh protocol client (`bokeh.client.pull_session`, the same websocket messages a browser
sends, without drawing): it picks a gallery image, waits until the server has pushed the new overview, then
clicks a neuron (a tap on the overview's plot) and waits until the overview outlines it, the selection that
opens its view, with a pause between actions. Every student's first switch starts in the same instant, as when
a whole class follows "now pick the cat", so it is reported on its own.
The clients behave like browsers where it matters for timing (see `Student`). Loopback only; the run is
bounded (a few actions per student, every wait has a timeout). Prints, for each N, the p50/p95 latency of an
image switch and of opening a view, the server's memory per session, and its memory after every session closed.

Run: python benchmarks/bench_load.py [--users 1 10 30 60] [--actions 4] [--think 2.5] [--system-malloc] [--processes N]
With --processes N the students go through nginx in front of N `panel serve` processes (deploy/classroom.sh).
Prints figures only; tests never assert on time. Run it on a quiet machine (it prints the load average).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bokeh.client.connection
from bokeh.client import ClientSession, pull_session
from bokeh.core.has_props import HasProps
from bokeh.core.serialization import Serializable, Serializer
from bokeh.document.events import MessageSentEvent
from bokeh.model import Model
from bokeh.models import Plot
from bokeh.models.glyphs import ImageBase
from tornado.httpclient import HTTPRequest

import cnnviz.app  # noqa: F401  (registers the app's Bokeh models, so a client can read the served document)
from cnnviz.resources import shared_catalog

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120.0
BATCH = 100  # messages the client handles before its loop unwinds (see Student.wait_for)
SESSION_LIFETIME_MS = 1000  # the server drops a closed tab's session after this (Bokeh's default is 15 s)
NEURONS = [("conv_1_1", 2), ("conv_2_2", 7), ("relu_1_2", 4), ("max_pool_2", 1), ("conv_1_2", 5)]


def _set_from_json_untraced(self: HasProps, name: str, value: object, *, setter: object = None) -> None:
    """Bokeh's own method (3.9) without its trace-log line, whose f-string formats every received array even with
    logging off (~16 ms of client CPU per image switch). A browser has no such cost, and with 60 students in one
    process it would be the client, not the server, that the benchmark measured."""
    if name in self.properties(_with_props=True):
        self.lookup(name).set_from_json(self, value, setter=setter)
    else:
        logging.getLogger("bokeh.core.has_props").warning("JSON had unknown attribute %r on %r", name, self)


websocket_headers = threading.local()  # per client thread: the cookies a browser would send (nginx stickiness)


def _websocket_request(url: str, **kwargs: object) -> HTTPRequest:
    """What Bokeh's client opens its websocket with, plus cookies, and a class-sized patience: its default 20 s
    connect timeout fails students who join while the server builds thirty pages."""
    headers = getattr(websocket_headers, "value", None)
    return HTTPRequest(url, headers=headers, connect_timeout=TIMEOUT, request_timeout=TIMEOUT, **kwargs)


def patient_websockets() -> None:
    """Use `_websocket_request` for every Bokeh client connection of this (benchmark) process."""
    bokeh.client.connection.HTTPRequest = _websocket_request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_processes(pid: int) -> list[int]:
    """The server and its forked workers (`--num-procs`), from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return [pid, *children]


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the server processes, from /proc."""
    total = 0
    for process in pids:
        status = Path(f"/proc/{process}/status").read_text()
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the server processes have used, from /proc."""
    total = 0
    for process in pids:
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"the server did not start (no answer from {url})")


# as `cnnviz serve` and deploy/classroom.sh run: the page's HTML from one kept session, each tab's built once
SESSION_ARGS = ["--reuse-sessions", "--warm", "--check-unused-sessions", "500"]
SESSION_ARGS += ["--unused-session-lifetime", str(SESSION_LIFETIME_MS)]


def start_server(port: int, env: dict[str, str], processes: int = 1, proxy_port: int | None = None) -> subprocess.Popen:
    """`panel serve` on loopback; `proxy_port`: pages may also come through a proxy on that port."""
    command = [sys.executable, "-m", "panel", "serve", "apps/explainer.py", "--port", str(port)]
    command += ["--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
    if proxy_port is not None:
        command += ["--allow-websocket-origin", f"127.0.0.1:{proxy_port}"]
    command += [*SESSION_ARGS, "--num-procs", str(processes)]
    server = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until_up(f"http://127.0.0.1:{port}/liveness", server)
    return server


@contextlib.contextmanager
def classroom(
    behind_nginx: int = 0, env: dict[str, str] | None = None, num_procs: int = 1
) -> Iterator[tuple[str, list[int]]]:
    """Serve the app on loopback; yield its URL and the server's process ids (the panel processes, not nginx).

    `behind_nginx=0`: one `panel serve` (with `num_procs` forked workers); N > 0: deploy/classroom.sh, nginx in
    front of N `panel serve` processes.
    """
    port = free_port()
    env = {**os.environ, **(env or {})}
    if not behind_nginx:
        server = start_server(port, env, num_procs)
        try:
            yield f"http://127.0.0.1:{port}/explainer", server_processes(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        return
    with tempfile.TemporaryDirectory(prefix="cnnviz-bench-") as run_dir:
        # classroom.sh takes backend-port, +1, …: a clash with a busy port shows up as a start error
        command = ["bash", str(REPO / "deploy" / "classroom.sh"), "--processes", str(behind_nginx),
                   "--port", str(port), "--backend-port", str(free_port()), "--run-dir", run_dir,
                   "--", *SESSION_ARGS]  # fmt: skip
        script = subprocess.Popen(command, cwd=REPO, env={**env, "PYTHON": sys.executable}, stdout=subprocess.DEVNULL)
        try:
            wait_until_up(f"http://127.0.0.1:{port}/liveness", script)
            pids = [int(path.read_text()) for path in sorted(Path(run_dir).glob("panel-*.pid"))]
            yield f"http://127.0.0.1:{port}/explainer", pids
        finally:
            script.send_signal(signal.SIGTERM)
            script.wait(timeout=30)


class BrowserEvent(Serializable):
    """A UI event (a tap, "document ready") in the form BokehJS sends it over the websocket.

    Bokeh's Python event classes serialize only their model (`Tap.event_values()` drops x and y, which the
    server side never needs), so a client standing in for a browser writes the values itself.
    """

    def __init__(self, name: str, **values: object) -> None:
        self.name = name
        self.values = values

    def to_serializable(self, serializer: Serializer) -> dict[str, object]:
        values = {key: serializer.encode(value) for key, value in self.values.items()}
        return {"type": "event", "name": self.name, "values": values}


def send_browser_event(session: ClientSession, name: str, **values: object) -> None:
    """Send a UI event as a browser does: a PATCH-DOC message carrying it (Bokeh 3.9's client has no public call
    for this; `_send_patch_document` is what its own document-change handler uses)."""
    message = MessageSentEvent(session.document, "bokeh_event", BrowserEvent(name, **values))
    session._connection._send_patch_document(session.id, message)


class Student:
    """One browser tab, reduced to its websocket: does what a click would do and waits for the server's answer.

    The overview is a HoloViews plot inside `OverviewKeys`, the keyboard layer that carries every neuron's box
    and texts. An image switch is answered when the plot's heatmaps (its first image glyph's data) and the
    neurons' readouts have arrived; a click on a neuron is a Bokeh `tap` on the plot, answered when the
    selection's outline (`OverviewKeys.outline`, drawn by the browser layer) has moved.
    """

    def __init__(self, url: str) -> None:
        self.session: ClientSession = pull_session(url=url)
        # Browsers send with TCP_NODELAY; Tornado's client does not, so Nagle's algorithm would hold back each
        # message's second frame until the server's delayed ACK (~40 ms) and the benchmark would measure that.
        # (Private attributes of Bokeh 3.9's client connection and Tornado's websocket.)
        self.session._connection._socket._socket.protocol.set_nodelay(True)
        # what a browser says once it has drawn the page: Panel holds back updates of a session until then
        send_browser_event(self.session, "document_ready")
        models = list(self.session.document.models)
        self.gallery = next(m for m in models if getattr(m, "kind", None) == "gallery" and hasattr(m, "items"))
        self.keys = next(m for m in models if hasattr(m, "readouts") and hasattr(m, "geometry"))
        self.plot = next(m for m in self.keys.plot.references() if isinstance(m, Plot))
        renderers = self.plot.renderers
        self.heatmaps = next(r.data_source for r in renderers if isinstance(r.glyph, ImageBase))
        self.selected: tuple[str, int] | None = None
        self._changed: set[tuple[str, str]] = set()
        self.session.document.on_change(self._record)

    def _record(self, event) -> None:
        model = getattr(event, "model", None)
        if model is not None:
            self._changed.add((model.id, event.attr))

    def wait_for(self, done: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
        """Apply what the server pushes until `done()` or `timeout` seconds; return `done()`.

        Bokeh's client applies pushed patches only while its loop runs (`force_roundtrip` would drop them while it
        waits for its reply), and it handles each message one coroutine deeper (`_handle_messages` awaits `_next`)
        until the loop stops. Hundreds of queued messages, such as a flood's replies, would pass Python's recursion
        limit and kill the reader without a word, so the loop stops every BATCH messages to unwind. It stops only
        between messages: at the timeout a request whose reply wakes the reader, never a stop in mid-read (a
        reader left waiting would compete with the next one for the frames of a message).
        """
        connection = self.session._connection
        calls, expired = 0, False

        def pause() -> bool:  # called before each message is read
            nonlocal calls
            calls += 1
            return done() or expired or calls % BATCH == 0

        def expire() -> None:
            nonlocal expired
            expired = True
            connection.io_loop.add_callback(connection.send_message, connection._protocol.create("SERVER-INFO-REQ"))

        timer = connection.io_loop.call_later(timeout, expire)
        unanswered = connection.io_loop.call_later(timeout + TIMEOUT, connection.io_loop.stop)  # server gone
        try:
            while not (done() or expired):
                connection._loop_until(pause)
        finally:
            connection.io_loop.remove_timeout(timer)
            connection.io_loop.remove_timeout(unanswered)
        return done()

    def _timed(self, change: Callable[[], None], answers: list[tuple[Model, str]]) -> float:
        """Seconds from the change leaving this client until the server has changed every (model, property) in
        `answers` here."""
        wanted = {(model.id, attr) for model, attr in answers}
        self._changed.clear()
        start = time.perf_counter()
        change()
        if not self.wait_for(lambda: wanted <= self._changed):
            raise TimeoutError(f"no answer within {TIMEOUT} s (missing: {sorted(wanted - self._changed)})")
        return time.perf_counter() - start

    def switch_image(self, key: str) -> float:
        answers = [(self.heatmaps, "data"), (self.keys, "readouts")]
        return self._timed(lambda: setattr(self.gallery, "value", key), answers)

    def open_view(self, layer: str, neuron: int) -> float:
        """Click the neuron's tile: a tap at its centre, in the plot's data coordinates (y grows upwards)."""
        geometry = self.keys.geometry
        tile = next(n for n in geometry["neurons"] if n["layer"] == layer and n["index"] == neuron)
        left, top, width, height = tile["box"]
        x, y = left + width / 2, geometry["height"] - (top + height / 2)
        modifiers = {"shift": False, "ctrl": False, "alt": False}
        self.selected = (layer, neuron)
        return self._timed(
            lambda: send_browser_event(self.session, "tap", model=self.plot, x=x, y=y, sx=0, sy=0, modifiers=modifiers),
            [(self.keys, "outline")],  # the selection's outline, drawn by the overview's browser layer
        )

    def close(self) -> None:
        self.session.close()


def run_class(url: str, users: int, actions: int, think: float, server_pids: list[int]) -> dict[str, float]:
    keys = [example.key for example in shared_catalog().examples]
    before = rss_mb(server_pids)
    with ThreadPoolExecutor(users) as pool:
        students = list(pool.map(lambda _: Student(url), range(users)))
        connected = rss_mb(server_pids)
        start_line = threading.Barrier(users)

        def lesson(student: Student) -> tuple[float, list[float], list[float]]:
            rng = random.Random(id(student))
            switches, views = [], []
            start_line.wait()
            # everyone's first switch at once: the queue a whole class clicking on the same command makes
            first = student.switch_image(rng.choice(keys[1:]))
            for _ in range(actions):
                time.sleep(rng.uniform(0, 2 * think))
                current = student.gallery.value
                switches.append(student.switch_image(rng.choice([k for k in keys if k != current])))
                time.sleep(rng.uniform(0, 2 * think))
                views.append(student.open_view(*rng.choice([n for n in NEURONS if n != student.selected])))
            return first, switches, views

        cpu_before, started = cpu_seconds(server_pids), time.perf_counter()
        results = list(pool.map(lesson, students))
        server_busy = (cpu_seconds(server_pids) - cpu_before) / (time.perf_counter() - started)
        busy = rss_mb(server_pids)
        for student in students:
            student.close()
    firsts = sorted(first for first, _, _ in results)
    switches = sorted(t for _, switch, _ in results for t in switch)
    views = sorted(t for _, _, view in results for t in view)
    return {
        "users": users,
        "first_p95": percentile(firsts, 95),
        "switch_p50": percentile(switches, 50),
        "switch_p95": percentile(switches, 95),
        "view_p50": percentile(views, 50),
        "view_p95": percentile(views, 95),
        "mb_per_session": (max(connected, busy) - before) / users,
        "rss_busy": busy,
        "server_cpu": server_busy,
    }


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def settled_rss(pids: list[int], wait: float) -> float:
    """RSS once the server has destroyed the closed sessions (they linger SESSION_LIFETIME_MS, checked every 0.5 s)."""
    time.sleep(wait)
    return rss_mb(pids)


def main() -> None:
    HasProps.set_from_json = _set_from_json_untraced  # in this client process only, for the reason it gives
    patient_websockets()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 30, 60])
    parser.add_argument("--actions", type=int, default=4, help="image switches (and views opened) per student")
    parser.add_argument("--think", type=float, default=2.5, help="mean pause between a student's actions, s")
    parser.add_argument("--num-procs", type=int, default=1, help="forked server processes (panel serve --num-procs)")
    parser.add_argument("--processes", type=int, default=0, help="go through nginx to N panel serve processes")
    parser.add_argument(
        "--system-malloc", action="store_true", help="serve with PYTHONMALLOC=malloc, so freed memory can go back"
    )
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    env = {"PYTHONMALLOC": "malloc"} if args.system_malloc else {}
    with classroom(args.processes, env, args.num_procs) as (url, pids):
        print(
            f"{args.actions} image switches and views per student, {args.think} s mean pause, system malloc: "
            f"{args.system_malloc}, server processes: {len(pids)}"
            + (" behind nginx (deploy/classroom.sh)" if args.processes else "")
        )
        # loads the weights and examples in every process, as the first students of the day would (through nginx a
        # websocket without a cookie lands on a random process, hence a few per process)
        for _ in range(1 if len(pids) == 1 else 3 * len(pids)):
            warm_up = Student(url)
            warm_up.switch_image(shared_catalog().examples[1].key)
            warm_up.close()
        baseline = settled_rss(pids, 3)
        print(f"server memory after the warm-up sessions came and went (baseline): {baseline:.0f} MB")
        print(
            "users | switch p50 / p95 (s) | open view p50 / p95 (s) | first switch p95 | server CPU | MB per session"
            " | RSS busy | RSS after close"
        )
        first_slow = None
        for users in args.users:
            figures = run_class(url, users, args.actions, args.think, pids)
            after = settled_rss(pids, 10)
            print(
                f"{users:5d} | {figures['switch_p50']:.3f} / {figures['switch_p95']:.3f}"
                f"        | {figures['view_p50']:.3f} / {figures['view_p95']:.3f}"
                f"           | {figures['first_p95']:6.2f}           | {100 * figures['server_cpu']:5.0f} %    |"
                f" {figures['mb_per_session']:6.1f}"
                f"         | {figures['rss_busy']:5.0f} MB"
                f" | {after:.0f} MB ({100 * (after - baseline) / baseline:+.0f} % of baseline)"
            )
            if first_slow is None and figures["switch_p95"] > 1.0:
                first_slow = users
        print(
            "image-switch p95 first exceeds 1 s at "
            + (f"{first_slow} users" if first_slow else f"none of these (up to {max(args.users)} users)")
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
