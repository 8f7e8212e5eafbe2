"""What every browser benchmark shares: `panel serve apps/explainer.py` on loopback (or nginx in front of it, with
--nginx) and headless Chromium."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bench_load import classroom
from playwright.sync_api import Browser, sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


def run_in_browser(
    description: str, measure: Callable[[Browser, str], Any], default_runs: int = 5
) -> tuple[argparse.Namespace, list[Any]]:
    """Parse --runs/--chromium/--nginx, serve the app, and call `measure(browser, url)` once per run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=default_runs)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--nginx", action="store_true", help="through nginx (deploy/classroom.sh, one process): gzip, cached scripts"
    )
    args = parser.parse_args()
    with classroom(1 if args.nginx else 0) as (url, _pids), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        runs = [measure(browser, url) for _ in range(args.runs)]
        browser.close()
    return args, runs
