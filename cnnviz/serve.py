"""`cnnviz serve`: the same app as `panel serve apps/explainer.py`, with the weights checked before it starts."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5006, help="port to listen on (default: %(default)s)")
    parser.add_argument("--address", default="localhost", help="address to listen on (default: %(default)s)")
    parser.add_argument("--weights", type=Path, default=None, help="a cnnviz .npz weights file")
    parser.add_argument("--show", action="store_true", help="open the app in the browser")
    parser.add_argument("--num-procs", type=int, default=1, help="server processes (0 = one per core)")


def run(args: argparse.Namespace) -> int:
    import os

    import panel as pn

    from cnnviz.app import create_app
    from cnnviz.resources import shared_network

    if args.weights:
        os.environ["CNNVIZ_WEIGHTS"] = str(args.weights.resolve())
    network = shared_network()  # a missing or damaged file stops here, with its message, before serving
    print(f"Serving cnnviz with {network.parameter_count:,} weights on http://{args.address}:{args.port}/explainer")
    pn.serve(
        {"explainer": create_app},
        port=args.port,
        address=args.address,
        show=args.show,
        num_procs=args.num_procs,
        compress_response=True,  # gzip the page and its JavaScript: a quarter of the bytes on first load
        title="cnnviz",
    )
    return 0
