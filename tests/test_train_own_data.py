"""`cnnviz train --data DIR` and `--shapes`: your own images in, weights + card + checkpoints + gallery out.

Bad folders are refused with one sentence before any training. The trainings here are tiny (seconds); the
bundled shapes model's full run is described in its model card (weights/shapes/shapes.json).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from cnnviz.cli import main
from cnnviz.datasets.folder import FolderError, is_grey, load_folder, scan_folder
from cnnviz.datasets.shapes import SHAPE_CLASSES, make_shapes, shapes_dataset
from cnnviz.engine import Network
from cnnviz.examples import build_catalog
from cnnviz.lab_state import model_card_path, read_history


def write_class_folder(root, per_class: int = 12, size: int = 40, classes=("circle", "square", "triangle"), grey=False):
    """A folder of PNG/JPEG shapes, one sub-folder per class, in mixed sizes and formats (as people have them)."""
    split = make_shapes(per_class * len(SHAPE_CLASSES), size=size, seed=2, grey=grey)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True)
        chosen = np.flatnonzero(split.labels == SHAPE_CLASSES.index(name))[:per_class]
        for number, row in enumerate(chosen):
            pixels = split.images[row][..., 0] if grey else split.images[row]
            picture = Image.fromarray(pixels).resize((size + 7 * (number % 3), size))  # not all square
            picture.save(folder / (f"{number}.png" if number % 2 else f"{number}.jpg"), quality=95)
    return root


# -- checks that need no TensorFlow ----------------------------------------------------------------------------


def test_a_good_folder_is_read_into_balanced_train_and_test_splits(tmp_path):
    data = load_folder(write_class_folder(tmp_path / "images"), size=32, test_fraction=0.25)
    assert data.class_names == ("circle", "square", "triangle")
    assert data.train.images.shape[1:] == (32, 32, 3) and data.train.images.dtype == np.uint8
    assert np.bincount(data.val.labels).tolist() == [3, 3, 3]
    assert len(data.train.labels) + len(data.val.labels) == 36
    assert not set(data.train.files) & set(data.val.files)


def test_files_that_are_not_images_are_skipped_and_said_once_counted(tmp_path):
    root = write_class_folder(tmp_path / "images")
    strays = ["circle/notes.txt", "circle/labels.csv", "square/old/readme.md", "square/scan.pdf", "triangle/a.txt",
              "triangle/b.txt", "triangle/Thumbs.db"]  # fmt: skip
    for stray in strays:
        (root / stray).parent.mkdir(exist_ok=True)
        (root / stray).write_text("not an image")
    (root / "circle" / ".DS_Store").write_bytes(b"\0")  # hidden: the system's, not the person's
    said: list[str] = []
    data = load_folder(root, size=32, say=said.append)
    assert len(data.train.labels) + len(data.val.labels) == 36
    assert said == [
        "Skipped 7 files that are not images: circle/labels.csv, circle/notes.txt, square/old/readme.md, "
        "square/scan.pdf, triangle/Thumbs.db and 2 more; cnnviz reads jpg, jpeg, png, gif, bmp, webp, tif, tiff."
    ]
    (root / "square" / "scan.pdf").unlink()
    for stray in ("circle", "triangle"):
        for path in (root / stray).iterdir():
            if path.suffix not in (".png", ".jpg"):
                path.unlink()
    said.clear()
    scan_folder(root, say=said.append)
    assert said == ["Skipped 1 file that is not an image: square/old/readme.md; cnnviz reads jpg, jpeg, png, gif, "
                    "bmp, webp, tif, tiff."]  # fmt: skip
    said.clear()
    (root / "square" / "old" / "readme.md").unlink()
    scan_folder(root, say=said.append)
    assert said == []


def test_grey_images_are_detected_and_colour_can_be_forced(tmp_path):
    root = write_class_folder(tmp_path / "grey", grey=True)
    assert load_folder(root, size=32).train.images.shape[3] == 1
    assert load_folder(root, size=32, colour="colour").train.images.shape[3] == 3
    assert is_grey(np.zeros((2, 4, 4, 3), np.uint8))


def bad_folder(kind: str, root):
    if kind == "missing":
        return root / "nowhere"
    if kind == "no classes":
        root.mkdir()
        Image.new("RGB", (8, 8)).save(root / "loose.png")
    elif kind == "one class":
        write_class_folder(root, classes=("circle",))
    elif kind == "empty class":
        write_class_folder(root)
        (root / "cross").mkdir()
        (root / "cross" / "notes.txt").write_text("no images here")
    elif kind == "too few":
        write_class_folder(root, per_class=4)
    elif kind == "unreadable":
        write_class_folder(root)
        (root / "square" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    elif kind == "too many classes":
        root.mkdir()
        for number in range(21):
            (root / f"class{number}").mkdir()
    return root


BAD_FOLDERS = {
    "missing": "is not a folder",
    "no classes": "holds 1 images but no class sub-folders",
    "one class": "has 1 class folder (circle); cnnviz trains on 2 to 20 classes",
    "empty class": "cross holds no images",
    "too few": "The class 'circle' has only 4 images; every class needs at least 10",
    "unreadable": "broken.jpg cannot be used",
    "too many classes": "has 21 class folders",
}


@pytest.mark.parametrize("kind", list(BAD_FOLDERS))
def test_bad_folders_are_refused_with_one_sentence(tmp_path, kind):
    root = bad_folder(kind, tmp_path / "images")
    with pytest.raises(FolderError, match=re.escape(BAD_FOLDERS[kind])):
        load_folder(root, size=32) if kind == "unreadable" else scan_folder(root)


def test_shapes_are_deterministic_balanced_and_disjoint_between_splits():
    data = shapes_dataset(50, 20, size=32, seed=3)
    again = shapes_dataset(50, 20, size=32, seed=3)
    np.testing.assert_array_equal(data.train.images, again.train.images)
    assert np.bincount(data.train.labels).tolist() == [10] * 5
    assert not any((image == data.train.images).all(axis=(1, 2, 3)).any() for image in data.val.images)
    assert make_shapes(5, size=32, grey=True).images.shape == (5, 32, 32, 1)


# -- training (TensorFlow) ----------------------------------------------------------------------------------------


@pytest.mark.train
@pytest.mark.parametrize("kind", list(BAD_FOLDERS))
def test_cnnviz_train_refuses_a_bad_folder_with_exit_code_2(tmp_path, capsys, kind):
    pytest.importorskip("tensorflow", reason="training needs the `train` extra (TensorFlow)")
    root = bad_folder(kind, tmp_path / "images")
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "out"), "--no-plot"]) == 2
    error = capsys.readouterr().err
    assert BAD_FOLDERS[kind] in error and "Traceback" not in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.train
def test_cnnviz_train_on_a_folder_writes_everything_the_app_needs(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="training needs the `train` extra (TensorFlow)")
    root, out = write_class_folder(tmp_path / "images"), tmp_path / "out"
    (root / "square" / "notes.txt").write_text("taken on holiday")
    arguments = ["train", "--data", str(root), "--out", str(out), "--input-size", "32", "--epochs", "2"]
    assert main([*arguments, "--filters", "4", "--padding", "same", "--kernel-size", "5", "--batch-size", "8"]) == 0
    printed = capsys.readouterr().out
    assert "cnnviz serve --weights" in printed
    assert printed.count("Skipped 1 file that is not an image: square/notes.txt;") == 1
    network = Network.load(out / "model.npz")
    assert network.input_shape == (32, 32, 3) and network.class_names == ("circle", "square", "triangle")
    assert network.layer("conv_1_1").kernel.shape == (5, 5, 3, 4)
    card = json.loads(model_card_path(out / "model.npz").read_text(encoding="utf-8"))
    assert card["input"]["shape"] == [32, 32, 3] and "5×5, 'same' padding" in card["architecture"]["summary"]
    history = read_history(model_card_path(out / "model.npz"))
    assert history.epochs == (0, 1, 2)
    assert history.network(1, like=network).infos == network.infos  # the Lab's epoch scrubber can load them
    catalog = build_catalog(out, network)
    assert sum(not example.is_probe for example in catalog.examples) == 6 and catalog.hint == ""  # 20 % of 12 per class
    assert (out / "training_curves.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.train
def test_a_small_shapes_model_learns_the_shapes(tmp_path):
    """A quick version of the bundled model (smaller images, fewer of them, fewer epochs): far above chance."""
    pytest.importorskip("tensorflow", reason="training needs the `train` extra (TensorFlow)")
    from cnnviz.training.architecture import Architecture
    from cnnviz.training.settings import SHAPES_RECIPE, Target
    from cnnviz.training.train import train_and_export

    settings = replace(SHAPES_RECIPE, epochs=6, batch_size=32)
    target = Target("shapes", "small shapes model", "generated shapes", Architecture(filters=8))
    card = train_and_export(shapes_dataset(1500, 500, size=32), settings, tmp_path, verbose=0, target=target).card
    assert card["test"]["top1"] >= 0.75  # chance is 0.2
    assert card["test"]["keras_engine_same_argmax"] == 500


def test_a_bad_folder_is_refused_before_tensorflow_loads(tmp_path):
    """As a person sees it in a terminal: one line on stderr, exit code 2, no TensorFlow start-up noise."""
    import subprocess
    import sys

    root = bad_folder("empty class", tmp_path / "images")
    command = [sys.executable, "-m", "cnnviz.cli", "train", "--data", str(root), "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cross holds no images" in result.stderr
