"""The training-curves figure of `docs/training.md`, drawn from a model card so it can be redrawn without training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt


def plot_training_curves(card: dict[str, Any], path: str | os.PathLike) -> Path:
    """Loss and accuracy per epoch (augmented training images, holdout), plus the checkpoints' test accuracy."""
    curves, training = card["curves"], card["training"]
    epochs = curves["epoch"]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    loss_axes.plot(epochs, curves["loss"], label="training (augmented)")
    loss_axes.plot(epochs, curves["holdout_loss"], label=f"holdout ({training['holdout_images']} training images)")
    loss_axes.set(title="Loss (with label smoothing)", xlabel="epoch", ylabel="cross-entropy")
    accuracy_axes.plot(epochs, curves["accuracy"], label="training (augmented)")
    accuracy_axes.plot(epochs, curves["holdout_accuracy"], label="holdout")
    checkpoints = card["checkpoints"]
    accuracy_axes.plot(
        [point["epoch"] for point in checkpoints],
        [point["test_top1"] for point in checkpoints],
        "o--",
        label=f"test, saved checkpoints ({card['test']['images']} test images)",
    )
    accuracy_axes.axvline(
        training["selected_epoch"], color="grey", linestyle=":", label=f"selected epoch ({training['selected_epoch']})"
    )
    accuracy_axes.set(title="Top-1 accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"{card['model'].split(' (')[0]}, seed {training['seed']}: test top-1 {card['test']['top1']:.1%}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
