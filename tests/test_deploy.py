"""deploy/classroom.sh: nginx in front of two `panel serve` processes serves the page and its websocket session,
keeps each browser on one process (its page and its websocket must meet the same session) and spreads browsers
over the processes."""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import bokeh.client.connection
import pytest
from bokeh.client import pull_session
from bokeh.document.events import MessageSentEvent
from bokeh.events import DocumentReady
from bokeh.util.token import get_session_id
from tornado.httpclient import HTTPRequest

import cnnviz.app  # noqa: F401  (registers the app's Bokeh models, so the client can read the served document)
from cnnviz.resources import shared_catalog

REPO = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)")
STARTUP_SECONDS = 240
TOKEN = re.compile(r'"token"\s*:\s*"([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """classroom.sh with two processes on loopback; yields (host, port, backend addresses)."""
    run_dir = tmp_path_factory.mktemp("classroom")
    port, backend = free_port(), free_port()
    command = ["bash", str(REPO / "deploy" / "classroom.sh"), "--processes", "2", "--port", str(port),
               "--backend-port", str(backend), "--run-dir", str(run_dir)]  # fmt: skip
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": python_path}
    script = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and not line.startswith("ready:"):
            line = script.stdout.readline()
            if not line and script.poll() is not None:
                pytest.fail(f"classroom.sh stopped: {script.stderr.read()}")
        assert line.startswith("ready:"), "classroom.sh did not get ready in time"
        yield "127.0.0.1", port, {f"127.0.0.1:{backend}", f"127.0.0.1:{backend + 1}"}
    finally:
        script.send_signal(signal.SIGTERM)
        script.wait(timeout=60)
    for pid_file in run_dir.glob("*.pid"):  # every process it started has stopped
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)


def request(host: str, port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(host, port, timeout=120)
    connection.request("GET", path, headers=headers)
    return connection.getresponse()


def test_the_page_comes_through_nginx_with_a_sticky_cookie_and_gzipped_scripts(classroom):
    host, port, backends = classroom
    page = request(host, port, "/explainer", {})
    assert page.status == 200
    body = page.read().decode()
    assert "cnnviz" in body and TOKEN.search(body)
    assert re.fullmatch(r"cnnviz_backend=[0-9a-f]{32}; Path=/; HttpOnly; SameSite=Lax", page.getheader("Set-Cookie"))
    assert page.getheader("X-Cnnviz-Backend") in backends
    script = re.search(r'src="([^"]*static/js/bokeh\.min\.js[^"]*)"', body).group(1)
    bokeh_js = request(host, port, "/" + script.lstrip("./"), {"Accept-Encoding": "gzip"})
    assert bokeh_js.status == 200 and bokeh_js.getheader("Content-Encoding") == "gzip"


def test_a_browser_keeps_its_process_and_gets_a_working_websocket_session(classroom, monkeypatch):
    host, port, _ = classroom
    page = request(host, port, "/explainer", {})
    body = page.read().decode()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    process = page.getheader("X-Cnnviz-Backend")
    token = TOKEN.search(body).group(1)

    # The websocket handshake of this page, as the browser sends it: it reaches the process that built the page.
    handshake = request(
        host,
        port,
        "/explainer/ws",
        {
            "Cookie": cookie,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Protocol": f"bokeh, {token}",
            "Origin": f"http://{host}:{port}",
        },
    )
    assert handshake.status == 101
    assert handshake.getheader("X-Cnnviz-Backend") == process

    # A whole session through nginx, with the browser's cookie: pull the document, switch the image, and get the
    # new overview back.
    monkeypatch.setattr(
        bokeh.client.connection, "HTTPRequest", lambda url, **kw: HTTPRequest(url, headers={"Cookie": cookie}, **kw)
    )
    session = pull_session(session_id=get_session_id(token), url=f"http://{host}:{port}/explainer")
    try:
        # what a browser says once it has drawn the page: Panel holds back a session's updates until then
        ready = MessageSentEvent(session.document, "bokeh_event", DocumentReady())
        session._connection._send_patch_document(session.id, ready)
        models = list(session.document.models)
        gallery = next(m for m in models if getattr(m, "kind", None) == "gallery" and hasattr(m, "items"))
        overview = next(m for m in models if hasattr(m, "readouts") and hasattr(m, "marked"))  # the overview's texts
        before = overview.readouts
        gallery.value = next(e.key for e in shared_catalog().examples if e.key != gallery.value)
        connection = session._connection  # Bokeh's client applies pushed changes while its loop runs
        deadline = connection.io_loop.call_later(60, connection.io_loop.stop)
        connection._loop_until(lambda: overview.readouts != before)
        connection.io_loop.remove_timeout(deadline)
        assert overview.readouts != before, "no new overview came back through nginx"
    finally:
        session.close()


def test_different_browsers_are_spread_over_the_processes(classroom):
    host, port, backends = classroom
    seen = set()
    for number in range(40):  # each cookie value always maps to one process; 40 values reach both
        answer = request(host, port, "/liveness", {"Cookie": f"cnnviz_backend={number:032x}"})
        answer.read()
        assert answer.status == 200
        seen.add(answer.getheader("X-Cnnviz-Backend"))
        again = request(host, port, "/liveness", {"Cookie": f"cnnviz_backend={number:032x}"})
        again.read()
        assert again.getheader("X-Cnnviz-Backend") == answer.getheader("X-Cnnviz-Backend")
        if seen == backends:
            break
    assert seen == backends


def test_a_forged_cookie_is_only_a_routing_key(classroom):
    host, port, backends = classroom
    answer = request(host, port, "/liveness", {"Cookie": "cnnviz_backend=../../etc/passwd"})
    answer.read()
    assert answer.status == 200 and answer.getheader("X-Cnnviz-Backend") in backends
    assert re.match(r"cnnviz_backend=[0-9a-f]{32};", answer.getheader("Set-Cookie"))  # replaced by a fresh key
