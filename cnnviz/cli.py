"""`cnnviz serve | data | train | evaluate | export | app-path`: one entry point, each command importing only what
it needs.

TensorFlow is imported by `train` alone, so the other commands work on a machine without it. Every mistake a
user can make (a bad argument, a missing extra, a busy port, a file where a folder belongs) ends in one sentence
and exit code 2, never a traceback: commands raise `CnnvizError`, and `main` turns it, and a missing optional
package, into that sentence for every command, including ones added later.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from cnnviz import __version__
from cnnviz.errors import CnnvizError

# command -> (module, help); the module provides add_arguments(parser) and run(args) -> int
COMMANDS = {
    "serve": ("cnnviz.serve", "open the explainer in the browser (panel serve)"),
    "data": ("cnnviz.data", "prepare the 10-class Tiny ImageNet data and the example gallery"),
    "train": ("cnnviz.training.command", "train Tiny VGG, or a CNN on your own images, with TensorFlow/Keras"),
    "import": ("cnnviz.importers.command", "import a Keras (.keras, .h5) or ONNX (PyTorch) model to explain it"),
    "evaluate": ("cnnviz.evaluate", "accuracy of a weights file on the validation images (NumPy engine)"),
    "export": ("cnnviz.export", "build the static, Pyodide-powered site"),
    "app-path": ("cnnviz.cli", "print the path of the app script, for `panel serve $(cnnviz app-path)`"),
}
# optional packages -> the extra that brings them, for the sentence a user sees when one is missing
EXTRAS = {"tensorflow": "train", "keras": "train", "matplotlib": "train"}
USER_ERROR_EXIT = 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ start-up log (CPU features, oneDNN, CUDA probing) says nothing a learner can act on
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="cnnviz", description="cnnviz: see every number a small CNN computes.")
    parser.add_argument("--version", action="version", version=f"cnnviz {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    requested = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        for name, (module_name, help_text) in COMMANDS.items():
            sub = commands.add_parser(name, help=help_text, description=help_text)
            if name == requested:  # import only the module of the command that runs
                module = importlib.import_module(module_name)
                getattr(module, "add_arguments", lambda _parser: None)(sub)
                sub.set_defaults(run=getattr(module, "run", print_app_path))
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    except CnnvizError as error:
        return _user_error(requested, str(error))
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in EXTRAS:
            raise
        extra = EXTRAS[error.name.partition(".")[0]]
        return _user_error(
            requested, f"needs {error.name}, which comes with the {extra} extra: pip install 'cnnviz[{extra}]'."
        )
    except KeyboardInterrupt:
        return 130


def _user_error(command: str | None, message: str) -> int:
    print(f"cnnviz {command}: {message}" if command else f"cnnviz: {message}", file=sys.stderr)
    return USER_ERROR_EXIT


def print_app_path(_args: argparse.Namespace) -> int:
    """For installed users: `panel serve $(cnnviz app-path)` is `panel serve apps/explainer.py` of a checkout."""
    from cnnviz.resources import app_entry_point

    print(app_entry_point())
    return 0


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], else argparse's one-line usage error (exit code 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{value} is out of range: give a number {bounds}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


if __name__ == "__main__":
    sys.exit(main())
