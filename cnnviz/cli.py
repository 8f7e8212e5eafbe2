"""`cnnviz serve | data | train | evaluate | export`: one entry point, each command importing only what it needs.

TensorFlow is imported by `train` alone, so the other commands work on a machine without it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cnnviz.errors import CnnvizError

# command -> (module, help); the module provides add_arguments(parser) and run(args) -> int
COMMANDS = {
    "serve": ("cnnviz.serve", "open the explainer in the browser (panel serve)"),
    "data": ("cnnviz.data", "prepare the 10-class Tiny ImageNet data and the example gallery"),
    "train": ("cnnviz.training.command", "train Tiny VGG, or a CNN on your own images, with TensorFlow/Keras"),
    "import": ("cnnviz.importers.command", "import a Keras (.keras, .h5) or ONNX (PyTorch) model to explain it"),
    "evaluate": ("cnnviz.evaluate", "accuracy of a weights file on the validation images (NumPy engine)"),
    "export": ("cnnviz.export", "build the static, Pyodide-powered site"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnnviz", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    requested = next((arg for arg in (sys.argv[1:] if argv is None else argv) if not arg.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == requested:  # import only the module of the command that runs
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CnnvizError as error:
        print(f"cnnviz {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
