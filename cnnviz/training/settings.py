"""What `cnnviz train` trains and how: the recipe, the target files and the defaults, without TensorFlow.

Kept apart from `train.py` so the command can check its options and the image folder before TensorFlow loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnnviz.errors import CnnvizError
from cnnviz.training.architecture import Architecture

DEFAULT_WEIGHTS_DIR = Path("weights")
DEFAULT_PLOT = Path("docs") / "training_curves.png"
WEIGHTS_NAME = "tiny_vgg.npz"
CARD_NAME = "tiny_vgg.json"
CHECKPOINT_DIR_NAME = "checkpoints"
NORMALISATION = "pixel / 255"
IMAGE_SHAPE = (64, 64, 3)


@dataclass(frozen=True)
class TrainingSettings:
    """The recipe; every field is also a `cnnviz train --option`, and all of them go into the model card."""

    seed: int = field(default=0, metadata={"help": "seeds the holdout split, initialisation and augmentation"})
    epochs: int = field(default=120, metadata={"help": "passes over the training images"})
    batch_size: int = field(default=64, metadata={"help": "images per gradient step"})
    learning_rate: float = field(default=3e-3, metadata={"help": "AdamW peak learning rate"})
    warmup_epochs: int = field(default=3, metadata={"help": "linear warm-up before the cosine decay to 0"})
    weight_decay: float = field(default=5e-3, metadata={"help": "AdamW decoupled weight decay (kernels only)"})
    label_smoothing: float = field(default=0.1, metadata={"help": "share of the target spread over all classes"})
    holdout_fraction: float = field(default=0.1, metadata={"help": "share of each class held out for selection"})
    crop_padding: int = field(
        default=6, metadata={"help": "reflect-pad by this many pixels, then crop a random input-sized square"}
    )
    colour_jitter: float = field(
        default=0.2, metadata={"help": "max relative change of brightness/contrast/saturation"}
    )

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.warmup_epochs < 0 or self.crop_padding < 0:
            raise CnnvizError("epochs and batch size must be at least 1; warm-up and crop padding at least 0.")
        if not 0 < self.holdout_fraction < 1:
            raise CnnvizError("the holdout fraction must be between 0 and 1: model selection needs a holdout.")


@dataclass(frozen=True)
class Target:
    """What is trained on which images, and the file names it is written under (`<name>.npz`, `<name>.json`)."""

    name: str = "tiny_vgg"
    model: str = "Tiny VGG (CNN Explainer architecture)"
    test_data: str = "validation images of the 10 classes"
    architecture: Architecture = field(default_factory=Architecture)

    @property
    def weights_name(self) -> str:
        return f"{self.name}.npz"

    @property
    def card_name(self) -> str:
        return f"{self.name}.json"


# Recipes per image source; any `--option` given on the command line overrides its field.
SHAPES_RECIPE = TrainingSettings(epochs=8, warmup_epochs=1, crop_padding=0, colour_jitter=0.0)
FOLDER_RECIPE = TrainingSettings(epochs=40, warmup_epochs=2, crop_padding=4)
SHAPES_TRAIN_IMAGES, SHAPES_TEST_IMAGES = 4000, 1000
