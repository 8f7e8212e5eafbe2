"""Starting a real server in a test: a free loopback port, and waiting until the server answers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(url: str, server: subprocess.Popen, timeout: float, what: str) -> None:
    """Return once `url` answers; fail the test (with the server's output, if piped) if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                if server.poll() is None:
                    server.kill()
                output = server.communicate(timeout=5)[0] if server.stdout is not None else ""
                pytest.fail(f"{what} did not answer{':' if output else ''}\n{output or ''}")
            time.sleep(0.5)
