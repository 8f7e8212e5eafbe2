"""A tab floods the server with clicks: how much server CPU do N image choices sent as fast as possible cost?

One Bokeh protocol client (bench_load.Student: the websocket messages a browser sends) picks gallery images
one after another without waiting for any answer, as a stuck key, a script or an impatient student would.
Every choice but the last is moot once a newer one has arrived. The figures: seconds to send them, seconds
until the server showed the last choice, how many choices it showed on the way (each one computed and
pushed to the page), and the server CPU seconds the flood cost, counted until the server is idle again.

Run: python benchmarks/bench_flood.py [--clicks 2000]
Prints figures only; tests never assert on time. Run it on a quiet machine (it prints the load average).
"""

from __future__ import annotations

import argparse
import os
import time

from bench_load import TIMEOUT, Student, classroom, cpu_seconds, patient_websockets

from cnnviz.resources import shared_catalog


def idle_cpu(student: Student, pids: list[int], quiet_for: float = 1.5) -> float:
    """The server's CPU seconds once it has used less than 2 % of a core for `quiet_for` seconds.

    The student reads meanwhile, as a browser does: a client that stops reading makes the server wait to send.
    """
    deadline = time.monotonic() + 10 * TIMEOUT
    last = cpu_seconds(pids)
    while time.monotonic() < deadline:
        student.wait_for(lambda: False, quiet_for)
        now = cpu_seconds(pids)
        if now - last < 0.02 * quiet_for:
            return now
        last = now
    raise TimeoutError("the server never went quiet")


def flood(student: Student, keys: list[str], clicks: int) -> tuple[float, float, int]:
    """Send `clicks` choices without waiting; return seconds to send, seconds to the last answer, choices shown."""
    connection = student.session._connection
    shown = 0

    def count(event) -> None:
        nonlocal shown
        if getattr(event, "model", None) is student.gallery and event.attr == "shown":  # set once a choice is shown
            shown += 1

    student.session.document.on_change(count)
    # never the image already shown; the last choice is one that comes only last, so that showing it means the
    # server has come to the end of the flood
    choices = [keys[1 + i % (len(keys) - 2)] for i in range(clicks - 1)] + [keys[-1]]
    start = time.perf_counter()
    for key in choices:
        student.gallery.value = key
        connection._loop_until(lambda: True)  # let the client's loop put the message on the wire
    sent = time.perf_counter() - start
    if not student.wait_for(lambda: student.gallery.shown == choices[-1], 10 * TIMEOUT):
        raise TimeoutError("the server never showed the last choice")
    return sent, time.perf_counter() - start, shown


def main() -> None:
    patient_websockets()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=2000)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    keys = [example.key for example in shared_catalog().examples]
    with classroom() as (url, pids):
        student = Student(url)
        student.switch_image(keys[1])
        student.switch_image(keys[0])  # warm: every image path has run once
        before = idle_cpu(student, pids)
        sent, answered, shown = flood(student, keys, args.clicks)
        spent = idle_cpu(student, pids) - before
        student.close()
    print(f"{args.clicks} image choices sent in {sent:.1f} s; the last one shown after {answered:.1f} s")
    print(f"choices shown on the way: {shown}; server CPU for the flood: {spent:.1f} s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
