"""`cnnviz train`: options, image source and output folder are checked here, then TensorFlow trains (train.py)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cnnviz.data import PreparedData, load_prepared
from cnnviz.datasets.folder import COLOUR_CHOICES, INPUT_SIZES, write_gallery
from cnnviz.errors import CnnvizError
from cnnviz.training.architecture import Architecture
from cnnviz.training.settings import (
    DEFAULT_PLOT,
    DEFAULT_WEIGHTS_DIR,
    FOLDER_RECIPE,
    IMAGE_SHAPE,
    SHAPES_RECIPE,
    SHAPES_TEST_IMAGES,
    SHAPES_TRAIN_IMAGES,
    Target,
    TrainingSettings,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", type=Path, default=None, help="train on your own images: a folder with one sub-folder per class"
    )
    source.add_argument("--shapes", action="store_true", help="train on shapes cnnviz draws itself (no download)")
    source.add_argument(
        "--data-dir", type=Path, default=None, help="prepared Tiny ImageNet data (default: `cnnviz data`'s)"
    )
    parser.add_argument(
        "--weights-dir",
        "--out",
        dest="weights_dir",
        type=Path,
        default=None,
        help="where the weights, card, checkpoints and gallery go (default: weights/, weights/shapes/ for --shapes, "
        "<folder>-model/ for --data)",
    )
    parser.add_argument("--input-size", type=int, default=None, help="input pixels per side, 32–128 (default: 64)")
    parser.add_argument(
        "--colour", choices=COLOUR_CHOICES, default="auto", help="grey (1 channel) or colour (3); auto: as the images"
    )
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of each class kept for the test")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the training curves (needs matplotlib)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw --plot from the card in --weights-dir, without training"
    )
    architecture = parser.add_argument_group("architecture (default: Tiny VGG)")
    for option in fields(Architecture):
        architecture.add_argument(
            f"--{option.name.replace('_', '-')}",
            type=type(option.default),
            default=option.default,
            choices=option.metadata.get("choices"),
            help=f"{option.metadata['help']} (default: {option.default})",
        )
    recipe = parser.add_argument_group("training recipe (defaults: Tiny ImageNet's; shorter for --shapes and --data)")
    for setting in fields(TrainingSettings):
        recipe.add_argument(
            f"--{setting.name.replace('_', '-')}",
            type=type(setting.default),
            default=None,
            help=f"{setting.metadata['help']} (default: {_recipe_defaults(setting.name)})",
        )


def _recipe_defaults(name: str) -> str:
    """'6; 4 for --data, 0 for --shapes': the default of each image source's recipe, where it differs."""
    default = getattr(TrainingSettings(), name)
    others = [
        f"{getattr(recipe, name)} for {option}"
        for option, recipe in (("--data", FOLDER_RECIPE), ("--shapes", SHAPES_RECIPE))
        if getattr(recipe, name) != default
    ]
    return "; ".join([str(default), ", ".join(others)] if others else [str(default)])


@dataclass(frozen=True, eq=False)
class Job:
    """One `cnnviz train` run: the images, the recipe, what is built and where it goes."""

    data: PreparedData | None  # None: only --replot
    settings: TrainingSettings
    target: Target
    out: Path
    plot: Path
    gallery: bool  # write the test images' gallery beside the weights (own data and shapes)


def plan(args: argparse.Namespace) -> Job:
    """Read the options into a Job; bad folders and options fail here, before TensorFlow does any work."""
    architecture = Architecture(**{option.name: getattr(args, option.name) for option in fields(Architecture)})
    given = {s.name: getattr(args, s.name) for s in fields(TrainingSettings) if getattr(args, s.name) is not None}
    if args.shapes:
        from cnnviz.datasets.shapes import DEFAULT_SIZE, shapes_dataset

        size = args.input_size or DEFAULT_SIZE
        out = args.weights_dir or DEFAULT_WEIGHTS_DIR / "shapes"
        settings = replace(SHAPES_RECIPE, **given)
        target = Target("shapes", f"cnnviz CNN ({architecture.describe()})", "generated shapes", architecture)
        data = None
        if not args.replot:
            _check_size(size, architecture)
            grey = args.colour == "grey"
            data = shapes_dataset(SHAPES_TRAIN_IMAGES, SHAPES_TEST_IMAGES, size, settings.seed, grey)
        return Job(data, settings, target, out, args.plot or out / "training_curves.png", gallery=True)
    if args.data:
        from cnnviz.datasets.folder import load_folder

        size = args.input_size or IMAGE_SHAPE[0]
        out = args.weights_dir or Path(f"{args.data.resolve().name}-model")
        settings = replace(FOLDER_RECIPE, **given)
        target = Target("model", f"cnnviz CNN ({architecture.describe()})", f"test images of {args.data}", architecture)
        data = None
        if not args.replot:
            _check_size(size, architecture)
            data = load_folder(
                args.data, size, args.colour, args.test_fraction, settings.seed, progress=_tqdm, say=print
            )
        return Job(data, settings, target, out, args.plot or out / "training_curves.png", gallery=True)
    if args.input_size not in (None, IMAGE_SHAPE[0]) or architecture != Architecture():
        raise CnnvizError("Tiny ImageNet trains the Tiny VGG at 64 px; use --data or --shapes for other models.")
    out, settings = args.weights_dir or DEFAULT_WEIGHTS_DIR, replace(TrainingSettings(), **given)
    data = None if args.replot else load_prepared(args.data_dir)
    return Job(data, settings, Target(), out, args.plot or DEFAULT_PLOT, gallery=False)


def _check_size(size: int, architecture: Architecture) -> None:
    """Refuse an input size out of range, or one the architecture shrinks to nothing, before reading images."""
    if not INPUT_SIZES[0] <= size <= INPUT_SIZES[1]:
        raise CnnvizError(f"--input-size must be between {INPUT_SIZES[0]} and {INPUT_SIZES[1]} pixels, not {size}.")
    architecture.final_size(size)


def _tqdm(items: Iterable[Any], total: int, label: str) -> Iterator[Any]:
    from tqdm.auto import tqdm

    return iter(tqdm(items, total=total, desc=label, unit="image", disable=None))


def run(args: argparse.Namespace) -> int:
    if not args.replot and importlib.util.find_spec("keras") is None:
        # before any data is read: the missing extra is the first thing to fix (`cnnviz.cli` names it)
        raise ModuleNotFoundError("No module named 'keras'", name="keras")
    job = plan(args)
    card_path = job.out / job.target.card_name
    if job.data is None:
        if not card_path.is_file():
            raise CnnvizError(f"No model card at {card_path}: train first, or point --weights-dir to one.")
        card = json.loads(card_path.read_text(encoding="utf-8"))
    else:
        from cnnviz.training.train import train_and_export  # TensorFlow loads only now

        card = train_and_export(job.data, job.settings, job.out, target=job.target).card
        if job.gallery:
            write_gallery(job.data.val, job.data.class_names, job.out)
        test = card["test"]
        print(
            f"test top-1 {test['top1']:.1%} on {test['images']} images (NumPy engine); "
            f"Keras and engine agree on {test['keras_engine_same_argmax']}/{test['images']}; "
            f"selected epoch {card['training']['selected_epoch']}; {card['training']['wall_time_seconds']:.0f} s; "
            f"wrote {job.out / job.target.weights_name} and {card_path}"
        )
        if job.gallery:
            print(f"explain it: cnnviz serve --weights {job.out / job.target.weights_name}")
    if not args.no_plot:
        from cnnviz.training.report import plot_training_curves  # matplotlib only when a plot is wanted

        print(f"wrote {plot_training_curves(card, job.plot)}")
    return 0
