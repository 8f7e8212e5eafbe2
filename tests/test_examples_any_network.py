"""Examples, uploads and the gallery for a network that is not Tiny VGG (other size, channels, classes)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from cnnviz.data import GALLERY_DIR_NAME, GALLERY_INDEX_NAME
from cnnviz.datasets.folder import write_gallery
from cnnviz.datasets.shapes import SHAPE_CLASSES, make_shapes
from cnnviz.examples import build_catalog, gallery_folder
from cnnviz.state import ExplainerState
from cnnviz.training.architecture import Architecture


@pytest.fixture(scope="module")
def grey_network():
    return Architecture().engine_network((48, 48, 1), SHAPE_CLASSES, seed=0)


@pytest.fixture(scope="module")
def shapes_gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes-model")
    write_gallery(make_shapes(15, size=48, seed=9), SHAPE_CLASSES, folder, per_class=2)
    return folder


def tiny_imagenet_gallery(folder):
    gallery = folder / GALLERY_DIR_NAME
    gallery.mkdir(parents=True)
    Image.new("RGB", (64, 64), "orange").save(gallery / "koala_1.jpg")
    entry = {"file": "koala_1.jpg", "label": "koala", "class_index": 5, "source": "val_1.JPEG"}
    (gallery / GALLERY_INDEX_NAME).write_text(json.dumps([entry]), encoding="utf-8")
    return folder


def test_a_gallery_written_by_training_is_shown_at_the_networks_size(grey_network, shapes_gallery):
    catalog = build_catalog(shapes_gallery, grey_network)
    photos = [example for example in catalog.examples if not example.is_probe]
    assert [photo.label for photo in photos] == [name for name in SHAPE_CLASSES for _ in range(2)]
    assert all(example.image.shape == (48, 48, 1) for example in catalog.examples)
    assert catalog.hint == ""


def test_a_gallery_of_other_classes_gets_a_sentence_and_probes(grey_network, tmp_path):
    catalog = build_catalog(tiny_imagenet_gallery(tmp_path), grey_network)
    assert all(example.is_probe for example in catalog.examples)
    assert "classes this network does not know (koala)" in catalog.hint and "--data-dir" in catalog.hint


def test_the_gallery_beside_the_weights_is_found(shapes_gallery, tmp_path):
    assert gallery_folder(None, shapes_gallery / "shapes.npz") == shapes_gallery
    assert gallery_folder(tmp_path, shapes_gallery / "shapes.npz") == tmp_path


def test_a_session_of_a_grey_48_pixel_network_traces_examples_and_uploads(grey_network, shapes_gallery):
    state = ExplainerState(grey_network, build_catalog(shapes_gallery, grey_network))
    assert state.trace.image.shape == (48, 48, 1)
    buffer = io.BytesIO()
    Image.fromarray(np.full((100, 150, 3), 200, np.uint8)).save(buffer, "PNG")
    assert state.upload(buffer.getvalue()), state.message
    assert state.image.shape == (48, 48, 1) and state.trace.probabilities.shape == (5,)


def test_a_weights_file_brings_its_gallery_and_its_checkpoints(grey_network, shapes_gallery):
    from cnnviz.importers import explained_model

    weights = grey_network.save(shapes_gallery / "shapes.npz")
    card = {"checkpoints": [{"epoch": 0, "file": "shapes.npz", "test_top1": 0.2}], "training": {"epochs": 1}}
    weights.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")
    network, catalog, history = explained_model(weights)
    assert network.infos == grey_network.infos
    assert sum(not example.is_probe for example in catalog.examples) == 10
    assert history.epochs == (0,) and history.network(0, like=network).infos == network.infos
    _, own_catalog, own_history = explained_model(grey_network)
    assert all(example.image.shape == (48, 48, 1) for example in own_catalog.examples)
    assert own_history.epochs == (), "a network object has no training record: never another model's epochs"


def test_the_bundled_network_keeps_its_own_training_record():
    from cnnviz.importers import explained_model
    from cnnviz.resources import shared_network

    _, _, history = explained_model(shared_network())
    assert history is None  # ExplainerState then takes the bundled model card's timeline
