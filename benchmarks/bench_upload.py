"""What a hostile upload costs the server, and what another session's click waits meanwhile.

    PYTHONPATH=$PWD python benchmarks/bench_upload.py            # both parts
    PYTHONPATH=$PWD python benchmarks/bench_upload.py decode     # CPU s and peak memory per file
    PYTHONPATH=$PWD python benchmarks/bench_upload.py click      # click latency in session B while A decodes

`decode` runs each file in a fresh process and prints the CPU seconds and the rise of the peak RSS over the
process's memory just before the upload (the small files below expand to 40 megapixels). `click` serves the real
app in this process, opens two sessions, hands session A the 16-bit PNG as its dropzone would, and meanwhile
times session B's neuron clicks from "scheduled on the server" to "state and views updated".
"""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import time

import numpy as np
from PIL import Image

SIDE = 6300  # 39.7 megapixels: just under the 40-megapixel cap


def sixteen_bit_png() -> bytes:
    """A smooth 16-bit grey gradient: compresses to ~100 KB, decodes to 40 megapixels."""
    values = np.broadcast_to(np.linspace(0, 65535, SIDE, dtype=np.uint16), (SIDE, SIDE))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(values)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def float_tiff() -> bytes:
    """A 32-bit float TIFF of one value, deflate-compressed: a few hundred KB for 40 megapixels."""
    buffer = io.BytesIO()
    Image.new("F", (SIDE, SIDE), 0.25).save(buffer, "TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


FILES = {"16-bit PNG": sixteen_bit_png, "float TIFF": float_tiff}


def upload_cost(name: str) -> None:
    """Child process: decode one file the way a session does and print its CPU s and peak-RSS rise."""
    content = FILES[name]()
    try:
        from cnnviz.images import prepare_upload

        def decode() -> object:
            return prepare_upload(content)
    except ImportError:  # the code before uploads were decoded at reduced size
        from cnnviz.images import read_image, to_network_input

        def decode() -> object:
            original = read_image(content)
            to_network_input(original)
            original.thumbnail((512, 512))
            return original

    before_rss = _current_rss_mb()
    before = resource.getrusage(resource.RUSAGE_SELF)
    decode()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_rise = after.ru_maxrss / 1024 - before_rss
    print(f"{name:>11}: {len(content) / 1024:6.0f} KB file, CPU {cpu:5.2f} s, peak RSS +{peak_rise:5.0f} MB")


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def decode_part() -> None:
    print("Decoding a hostile upload (fresh process each):")
    for name in FILES:
        subprocess.run([sys.executable, __file__, "_child", name], check=True)


def click_part(clicks: int = 15) -> None:
    """Session B's clicks while session A's upload is decoded, timed on the server's event loop."""
    import threading
    import urllib.request
    import uuid

    import panel as pn

    from cnnviz.app import Explainer
    from cnnviz.resources import shared_catalog, shared_network
    from cnnviz.views.controls import ReceivedFile

    sessions: list[tuple[Explainer, object]] = []

    def factory() -> object:
        explainer = Explainer(network=shared_network(), catalog=shared_catalog())
        sessions.append((explainer, pn.state.curdoc))
        return explainer.page()

    server_id = uuid.uuid4().hex
    keep_sessions = {"unused_session_lifetime_milliseconds": 10**6}
    pn.serve(factory, port=0, threaded=True, show=False, server_id=server_id, **keep_sessions)
    while server_id not in pn.state._servers:
        time.sleep(0.1)
    server = pn.state._servers[server_id][0]
    for _ in range(2):  # two page loads: two sessions
        urllib.request.urlopen(f"http://localhost:{server.port}/", timeout=120).read()
    (first, doc_a), (second, doc_b) = sessions[:2]
    loop = server.io_loop
    content = sixteen_bit_png()
    layer = second.state.network.layer_names[0]

    def on_loop(doc, function) -> threading.Event:
        done = threading.Event()

        def run() -> None:
            function()
            done.set()

        loop.add_callback(lambda: doc.add_next_tick_callback(run))
        return done

    for label, upload in (("idle", False), ("during upload", True)):
        waits = []
        if upload:
            on_loop(doc_a, lambda: setattr(first.controls.dropzone, "received", ReceivedFile("big.png", content)))
        for number in range(clicks):
            start = time.perf_counter()
            on_loop(doc_b, lambda n=number: second.state.select(layer, n % 10, "elastic")).wait(120)
            waits.append(time.perf_counter() - start)
            time.sleep(0.1)
        deadline = time.monotonic() + 120
        while upload and first.state.example and time.monotonic() < deadline:
            time.sleep(0.1)
        median, longest = np.median(waits) * 1000, max(waits) * 1000
        print(f"session B click, {label:>13}: median {median:5.0f} ms, max {longest:5.0f} ms")
    pn.state.kill_all_servers()


if __name__ == "__main__":
    part = sys.argv[1] if len(sys.argv) > 1 else "all"
    if part == "_child":
        upload_cost(sys.argv[2])
    else:
        if part in ("all", "decode"):
            decode_part()
        if part in ("all", "click"):
            click_part()
