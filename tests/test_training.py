"""`cnnviz train` in miniature: one epoch on a few generated images, exported and checked against Keras.

The real training is not run here (it takes minutes); this proves the pipeline, the export and the card.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs the `train` extra (TensorFlow)")

from cnnviz.cli import main
from cnnviz.data import PreparedData, Split
from cnnviz.engine import TINY_VGG_CLASSES, Network, tiny_vgg
from cnnviz.evaluate import pixels_to_input
from cnnviz.training.train import (
    CARD_NAME,
    WEIGHTS_NAME,
    TrainingSettings,
    augment,
    checkpoint_epochs,
    holdout_split,
    train_and_export,
)

pytestmark = pytest.mark.train


def generated_split(per_class: int, seed: int) -> Split:
    """Noisy images tinted by class, so even one epoch has something to learn."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(TINY_VGG_CLASSES)), per_class)
    tints = rng.integers(0, 256, (len(TINY_VGG_CLASSES), 1, 1, 3))
    noise = rng.integers(-60, 60, (len(labels), 64, 64, 3))
    images = np.clip(tints[labels] + noise, 0, 255).astype(np.uint8)
    return Split(images, labels.astype(np.int64), tuple(f"generated_{i}.png" for i in range(len(labels))))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = PreparedData(train=generated_split(6, 0), val=generated_split(2, 1), class_names=TINY_VGG_CLASSES)
    weights_dir = tmp_path_factory.mktemp("weights")
    settings = TrainingSettings(epochs=1, batch_size=16, warmup_epochs=0, seed=3)
    return data, weights_dir, train_and_export(data, settings, weights_dir, verbose=0)


def test_export_loads_in_the_engine_and_reproduces_keras(trained):
    data, weights_dir, result = trained
    network = Network.load(weights_dir / WEIGHTS_NAME)
    assert network.infos == tiny_vgg().infos  # the reference architecture, layer names and shapes
    assert network.parameter_count == 19920
    assert network.class_names == TINY_VGG_CLASSES
    images = pixels_to_input(data.val.images)
    expected = result.model.predict(images, verbose=0)
    np.testing.assert_allclose(network.predict(images), expected, atol=1e-5)
    assert result.card["test"]["keras_engine_same_argmax"] == len(images)


def test_card_describes_the_run_and_its_checkpoints(trained):
    data, weights_dir, result = trained
    card = json.loads((weights_dir / CARD_NAME).read_text(encoding="utf-8"))
    assert card == result.card
    assert card["class_names"] == list(TINY_VGG_CLASSES)
    assert card["input"]["normalisation"] == "pixel / 255"
    assert card["architecture"]["parameters"] == 19920
    assert card["training"]["seed"] == 3
    assert card["training"]["fit_images"] + card["training"]["holdout_images"] == len(data.train.labels)
    assert card["test"]["images"] == len(data.val.labels)
    assert np.array(card["test"]["confusion_matrix"]).sum() == len(data.val.labels)
    assert set(card["curves"]) == {"epoch", "loss", "accuracy", "holdout_loss", "holdout_accuracy"}
    assert all(len(values) == 1 for values in card["curves"].values())
    assert [point["epoch"] for point in card["checkpoints"]] == [0, 1]
    for point in card["checkpoints"]:
        checkpoint = Network.load(weights_dir / point["file"])
        assert checkpoint.infos == tiny_vgg().infos
        assert 0.0 <= point["test_top1"] <= 1.0


def test_replot_draws_the_curves_from_the_card(trained, tmp_path):
    pytest.importorskip("matplotlib")
    _, weights_dir, _ = trained
    plot = tmp_path / "curves.png"
    assert main(["train", "--replot", "--weights-dir", str(weights_dir), "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_replot_without_a_card_says_so(tmp_path, capsys):
    assert main(["train", "--replot", "--weights-dir", str(tmp_path)]) == 2
    assert "No model card" in capsys.readouterr().err


def test_checkpoint_epochs_are_dense_early_and_end_with_the_last():
    assert checkpoint_epochs(100) == [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 100]
    assert checkpoint_epochs(89) == [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
    assert checkpoint_epochs(1) == [0, 1]


def test_holdout_split_is_disjoint_and_takes_the_same_share_of_every_class():
    labels = np.repeat(np.arange(10), 50)
    fit, holdout = holdout_split(labels, 0.1, np.random.default_rng(0))
    assert len(set(fit) & set(holdout)) == 0
    assert len(fit) + len(holdout) == len(labels)
    np.testing.assert_array_equal(np.bincount(labels[holdout]), np.full(10, 5))


def test_augment_returns_model_inputs_of_the_right_shape_and_range():
    images = np.random.default_rng(0).integers(0, 256, (5, 72, 72, 3), dtype=np.uint8)
    x = augment(images, np.random.default_rng(1), jitter=0.2)
    assert x.shape == (5, 64, 64, 3) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, augment(images, np.random.default_rng(1), jitter=0.2))  # seeded


def test_settings_that_cannot_train_are_refused(tmp_path, capsys):
    assert main(["train", "--epochs", "0", "--weights-dir", str(tmp_path)]) == 2
    assert main(["train", "--holdout-fraction", "0", "--weights-dir", str(tmp_path)]) == 2
    assert "holdout" in capsys.readouterr().err
