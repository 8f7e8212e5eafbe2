"""A class joins at once: N browsers open the page in the same second; when does each one have its overview?

Each student does on the wire what a browser does on a first visit: GET the page, GET the scripts and style
sheets it names (no cache, gzip accepted), open the websocket with the page's session token, and pull the
document, which carries the overview's heatmaps and numbers; then it says "document ready", as a browser
does once it has drawn. The time to that moment is "showing the overview" minus the browser's own drawing
(about 0.3 s in headless Chromium here, see bench_overview.py). Loopback only; every wait has a timeout.

It prints, first, the server CPU time one page load costs (pages opened one after another, after a warm-up:
the page build, the HTML and the document sent), then, for each N, the p50 / p95 / slowest time to the
overview with all N starting together.

Run: python benchmarks/bench_join.py [--students 1 10 30] [--loads 10] [--processes N]
With --processes N the class goes through nginx in front of N `panel serve` processes (deploy/classroom.sh).
Prints figures only; tests never assert on time. Run it on a quiet machine (it prints the load average).
"""

from __future__ import annotations

import argparse
import gzip
import http.cookiejar
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench_load import (
    TIMEOUT,
    classroom,
    cpu_seconds,
    patient_websockets,
    percentile,
    send_browser_event,
    websocket_headers,
)
from bokeh.client import pull_session
from bokeh.util.token import get_session_id

ASSET = re.compile(r"""(?:src|href)=["']([^"']*static/[^"']+)["']""")
TOKEN = re.compile(r'"token"\s*:\s*"([^"]+)"')


class Browser:
    """One first visit: its own cookie jar, the page, its assets, then the websocket."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.bytes = 0

    def get(self, url: str) -> bytes:
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", "User-Agent": "bench_join"})
        with self.opener.open(request, timeout=TIMEOUT) as response:
            body = response.read()
            self.bytes += len(body)
            return gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body

    def open_page(self, url: str) -> float:
        """Seconds from the first request until the server has sent this browser its overview."""
        start = time.perf_counter()
        page = self.get(url).decode()
        for asset in dict.fromkeys(ASSET.findall(page)):
            self.get(urllib.parse.urljoin(url, asset))
        token = TOKEN.search(page)
        if token is None:
            raise RuntimeError("the page has no session token")
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.cookies)
        websocket_headers.value = {"Cookie": cookies} if cookies else None
        session = pull_session(session_id=get_session_id(token.group(1)), url=url)
        elapsed = time.perf_counter() - start
        send_browser_event(session, "document_ready")
        session.close()
        return elapsed


def cpu_per_page_load(url: str, pids: list[int], loads: int) -> float:
    """Server CPU seconds per page load, pages opened one after another (after two warm-up loads)."""
    for _ in range(2):
        Browser().open_page(url)
    before = cpu_seconds(pids)
    for _ in range(loads):
        Browser().open_page(url)
    time.sleep(0.5)  # the server finishes what the last "document ready" started
    return (cpu_seconds(pids) - before) / loads


def join_at_once(url: str, students: int) -> list[float]:
    start_line = threading.Barrier(students)

    def student(_: int) -> float:
        browser = Browser()
        start_line.wait()
        return browser.open_page(url)

    with ThreadPoolExecutor(students) as pool:
        return sorted(pool.map(student, range(students)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--loads", type=int, default=10, help="page loads one after another for the CPU figure")
    parser.add_argument("--processes", type=int, default=0, help="serve through nginx with N panel processes")
    args = parser.parse_args()
    patient_websockets()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with classroom(args.processes) as (url, pids):
        print(f"serving {url} with {len(pids)} process(es)")
        cpu = cpu_per_page_load(url, pids, args.loads)
        print(f"server CPU per page load: {cpu:.3f} s (mean of {args.loads} loads one after another)")
        print("students at once | to overview p50 / p95 / slowest (s) | server CPU for the class (s)")
        for students in args.students:
            before = cpu_seconds(pids)
            times = join_at_once(url, students)
            time.sleep(0.5)
            print(
                f"{students:16d} | {percentile(times, 50):5.2f} / {percentile(times, 95):5.2f} / {times[-1]:5.2f}"
                f"                 | {cpu_seconds(pids) - before:.1f}"
            )
            time.sleep(3)  # let the closed sessions go before the next class
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
