"""What every browser benchmark shares: `panel serve apps/explainer.py` on loopback and headless Chromium."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


STARTUP_SECONDS = 180  # a busy 2-core machine can take over a minute to import and load the app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """`panel serve apps/explainer.py` on 127.0.0.1, returned once it answers (at most STARTUP_SECONDS)."""
    command = [sys.executable, "-m", "panel", "serve", "apps/explainer.py", "--port", str(port),
               "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            # a timeout long enough for a busy machine, where one page takes 15 s: shorter probes never succeed
            urllib.request.urlopen(f"http://127.0.0.1:{port}/explainer", timeout=60).read()
            return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"panel serve did not start within {STARTUP_SECONDS} s")


def run_in_browser(
    description: str, measure: Callable[[Browser, str], Any], default_runs: int = 5
) -> tuple[argparse.Namespace, list[Any]]:
    """Parse --runs/--chromium, serve the app, and call `measure(browser, url)` once per run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=default_runs)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
            runs = [measure(browser, f"http://127.0.0.1:{port}/explainer") for _ in range(args.runs)]
            browser.close()
    finally:
        server.terminate()
    return args, runs
