"""The second bundled model: Tiny VGG's architecture trained on generated shapes (`cnnviz train --shapes`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnviz.datasets.shapes import SHAPE_CLASSES, make_shapes
from cnnviz.evaluate import pixels_to_input
from cnnviz.importers import explained_model

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "shapes" / "shapes.npz"


@pytest.fixture(scope="module")
def bundled():
    return explained_model(WEIGHTS)


def test_the_model_card_reports_at_least_95_percent_on_unseen_shapes():
    card = json.loads(WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["test"]["top1"] >= 0.95 and card["test"]["images"] == 1000
    assert card["test"]["keras_engine_same_argmax"] == 1000
    assert card["class_names"] == list(SHAPE_CLASSES)


def test_it_recognises_freshly_drawn_shapes(bundled):
    network, _, _ = bundled
    assert network.input_shape == (48, 48, 3) and network.class_names == SHAPE_CLASSES
    fresh = make_shapes(200, size=48, seed=20_261_128)  # a stream no training or test image came from
    predicted = network.predict(pixels_to_input(fresh.images)).argmax(axis=1)
    assert np.mean(predicted == fresh.labels) >= 0.93


def test_its_gallery_and_checkpoints_come_with_it(bundled):
    network, catalog, history = bundled
    photos = [example for example in catalog.examples if not example.is_probe]
    assert {photo.label for photo in photos} == set(SHAPE_CLASSES) and catalog.hint == ""
    correct = sum(network.trace(photo.image).predicted_class == photo.label for photo in photos)
    assert correct >= len(photos) - 3  # the gallery is the first test images, mistakes included (13 of 15 right)
    assert history.epochs[0] == 0 and len(history.epochs) >= 4
    for epoch in history.epochs:
        assert history.network(epoch, like=network).infos == network.infos
