"""Median time of the engine's forward pass, and of the whole upload path (JPEG bytes → image → trace).

Run: python benchmarks/bench_engine.py [--repeats N]
Prints figures only; tests never assert on time.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from cnnviz.engine import tiny_vgg
from cnnviz.images import load_image
from cnnviz.resources import single_threaded_blas


def median_ms(action: Callable[[], object], repeats: int) -> float:
    for _ in range(min(20, repeats)):  # warm caches and lazy allocations first
        action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    network = tiny_vgg(seed=0)
    rng = np.random.default_rng(0)
    image = rng.random((64, 64, 3), np.float32)
    photo = Image.fromarray((rng.random((480, 640, 3)) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()

    default_ms = median_ms(lambda: network.trace(image), args.repeats)
    single_threaded_blas()  # as the served app runs
    trace_ms = median_ms(lambda: network.trace(image), args.repeats)
    upload_ms = median_ms(lambda: network.trace(load_image(jpeg)), args.repeats)
    print(f"Network.trace, Tiny VGG, 64x64x3, all {len(network.infos)} columns recorded: median {trace_ms:.2f} ms")
    print(f"  (one BLAS thread, as served; with NumPy's default BLAS threads: {default_ms:.2f} ms)")
    print(f"JPEG bytes (640x480, {len(jpeg) / 1024:.0f} KiB) -> load_image -> trace: median {upload_ms:.2f} ms")


if __name__ == "__main__":
    main()
