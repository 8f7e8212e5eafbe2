"""Bytes on the wire for one student: a first page load, then example switches, in headless Chromium through a
byte-counting TCP proxy in front of `panel serve apps/explainer.py` on loopback.

Chromium reports websocket messages uncompressed, so only a proxy sees what compression saves: the servers
compress websocket messages (`cnnviz.serve.compress_websocket_messages`), `panel serve` does not gzip HTTP.

Run: python benchmarks/bench_wire.py [--switches 5] [--chromium /usr/bin/chromium]
Prints figures only; tests never assert on them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading

from bench_load import free_port, start_server
from playwright.sync_api import sync_playwright


class CountingProxy:
    """Forwards loopback connections to `target_port` and counts the bytes the server sends back."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port, self.received = target_port, free_port(), 0
        loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.start_server(self._connect, "127.0.0.1", self.port))
        threading.Thread(target=loop.run_forever, daemon=True).start()

    async def _connect(self, browser_in: asyncio.StreamReader, browser_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(browser_in, server_out, False), self._pipe(server_in, browser_out, True))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, counted: bool) -> None:
        try:
            while data := await source.read(65536):
                self.received += len(data) if counted else 0
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    port = free_port()
    proxy = CountingProxy(port)
    server = start_server(port, {}, proxy_port=proxy.port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"http://127.0.0.1:{proxy.port}/explainer")
            page.locator(".image-caption").wait_for(timeout=60_000)
            page.wait_for_timeout(3000)  # what the page asks for once drawn
            first_load, switches = proxy.received, []
            thumbs = page.locator(".thumb")
            for index in range(args.switches):
                caption = page.locator(".image-caption").inner_text()
                before = proxy.received
                thumbs.nth((4 + 5 * index) % thumbs.count()).click()
                page.wait_for_function(
                    f"document.querySelector('.image-caption')?.innerText !== {caption!r}", timeout=30_000
                )
                page.wait_for_timeout(1500)
                switches.append(proxy.received - before)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"first load: {first_load / 1e6:.2f} MB on the wire")
    print(f"example switch: median {statistics.median(switches) / 1e3:.0f} KB over {args.switches} switches")


if __name__ == "__main__":
    main()
