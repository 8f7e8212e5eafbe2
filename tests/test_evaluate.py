"""`cnnviz.evaluate`: the accuracy maths on cases with known answers, and the reference's 68.8 % (NumPy engine)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnviz.cli import main
from cnnviz.data import load_prepared
from cnnviz.engine import TINY_VGG_CLASSES, Dense, Flatten, Network, Softmax, load_tfjs_layers_model
from cnnviz.evaluate import confusion_matrix, evaluate_network, evaluate_predictions, format_evaluation

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def test_confusion_and_accuracies_of_a_known_case():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 1, 0, 2, 2])
    evaluation = evaluate_predictions(labels, predictions, ("a", "b", "c"))
    np.testing.assert_array_equal(evaluation.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert evaluation.count == 7
    assert evaluation.accuracy == pytest.approx(5 / 7)
    np.testing.assert_allclose(evaluation.per_class_accuracy, [0.5, 1.0, 2 / 3])
    summary = evaluation.to_dict()
    assert summary["per_class"] == {"a": 0.5, "b": 1.0, "c": 0.6667}
    assert summary["confusion_matrix"][2] == [1, 0, 2]


def test_a_class_without_images_has_no_accuracy_rather_than_zero():
    evaluation = evaluate_predictions(np.array([0, 0]), np.array([0, 1]), ("a", "b"))
    assert evaluation.accuracy == 0.5
    assert np.isnan(evaluation.per_class_accuracy[1])


def test_confusion_matrix_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([0]), 2)


def brightest_channel_network() -> Network:
    """A 1×1×3-input network whose class is the brightest colour channel: the right answers are known."""
    return Network(
        [Flatten("flatten"), Dense("output", 10 * np.eye(3, dtype=np.float32), np.zeros(3, np.float32)), Softmax("p")],
        (1, 1, 3),
        ("red", "green", "blue"),
    )


def test_evaluate_network_normalises_uint8_pixels_and_scores_them():
    images = np.array([[200, 0, 0], [0, 255, 10], [0, 30, 90], [255, 0, 0]], np.uint8).reshape(4, 1, 1, 3)
    labels = np.array([0, 1, 2, 2])  # the last one is labelled blue but is red
    evaluation = evaluate_network(brightest_channel_network(), images, labels)
    assert evaluation.accuracy == 0.75
    np.testing.assert_array_equal(evaluation.confusion, [[1, 0, 0], [0, 1, 0], [1, 0, 1]])
    report = format_evaluation("toy", evaluation)
    assert report.startswith("toy: top-1 75.0% on 4 images")
    assert "blue" in report


def test_evaluate_command_reports_a_missing_weights_file(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    assert "Weights file not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def validation(prepared_data_dir):
    return load_prepared(prepared_data_dir).val


def test_reference_weights_score_68_8_percent(reference_weights_dir, validation):
    network = load_tfjs_layers_model(reference_weights_dir, TINY_VGG_CLASSES)
    evaluation = evaluate_network(network, validation.images, validation.labels)
    assert evaluation.count == 500
    assert evaluation.accuracy == pytest.approx(0.688, abs=0.001)


def test_evaluate_command_compares_weights_with_the_reference(
    reference_weights_dir, prepared_data_dir, tmp_path, capsys
):
    converted = load_tfjs_layers_model(reference_weights_dir, TINY_VGG_CLASSES).save(tmp_path / "reference.npz")
    command = [
        "evaluate",
        str(converted),
        "--reference",
        str(reference_weights_dir),
        "--data-dir",
        str(prepared_data_dir),
    ]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert out.count("top-1 68.8% on 500 images") == 2  # the same weights through .npz and through TF.js
    assert "summary" in out


def test_shipped_weights_beat_the_reference_as_the_model_card_says(validation):
    card = json.loads((WEIGHTS_DIR / "tiny_vgg.json").read_text())
    evaluation = evaluate_network(Network.load(WEIGHTS_DIR / "tiny_vgg.npz"), validation.images, validation.labels)
    assert evaluation.accuracy >= 0.75
    assert evaluation.accuracy == pytest.approx(card["test"]["top1"], abs=1e-9)
