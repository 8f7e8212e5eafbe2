"""Dataset preparation from a folder, a zip and a URL, and every malformed-source error."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnviz.data import (
    CLASS_NAMES,
    CLASS_WNIDS,
    DataError,
    load_gallery,
    load_prepared,
    prepare_dataset,
)

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "tiny-imagenet-10"


@pytest.fixture(scope="module")
def shared_data() -> Path:
    if not (SHARED_DATA / "wnids.txt").is_file():
        pytest.skip(f"Tiny ImageNet subset not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def val_annotations(shared_data: Path) -> dict[str, str]:
    lines = (shared_data / "val" / "val_annotations.txt").read_text().splitlines()
    return {fields[0]: fields[1] for fields in (line.split("\t") for line in lines)}


@pytest.fixture(scope="module")
def prepared_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full preparation is the slow step, so it runs once for the module."""
    out_dir = tmp_path_factory.mktemp("prepared")
    prepare_dataset(shared_data, out_dir, progress=False)
    return out_dir


def write_small_layout(
    shared_data: Path,
    root: Path,
    *,
    wnids: tuple[str, ...] = CLASS_WNIDS,
    train_per_class: int = 2,
    val_per_class: int = 2,
) -> Path:
    """Copy a few images per class into ``root`` in the official layout."""
    (root / "val" / "images").mkdir(parents=True)
    shutil.copy(shared_data / "wnids.txt", root / "wnids.txt")
    shutil.copy(shared_data / "words.txt", root / "words.txt")
    for wnid in wnids:
        (root / "train" / wnid / "images").mkdir(parents=True)
        for index in range(train_per_class):
            name = f"{wnid}_{index}.JPEG"
            relative = Path("train", wnid, "images", name)
            shutil.copy(shared_data / relative, root / relative)
    kept_lines, kept_per_class = [], Counter()
    for line in (shared_data / "val" / "val_annotations.txt").read_text().splitlines():
        name, wnid = line.split("\t")[:2]
        if wnid in wnids and kept_per_class[wnid] < val_per_class:
            kept_per_class[wnid] += 1
            kept_lines.append(line)
            shutil.copy(shared_data / "val" / "images" / name, root / "val" / "images" / name)
    (root / "val" / "val_annotations.txt").write_text("\n".join(kept_lines) + "\n")
    return root


def zip_folder(folder: Path, zip_path: Path, top_folder: str = "tiny-imagenet-200") -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            archive.write(path, f"{top_folder}/{relative}" if top_folder else relative)
    return zip_path


def add_unused_class(layout: Path) -> None:
    """Add a class cnnviz does not use, to check it is skipped in train and val."""
    some_image = next((layout / "val" / "images").iterdir())
    (layout / "train" / "n99999999" / "images").mkdir(parents=True)
    shutil.copy(some_image, layout / "train" / "n99999999" / "images" / "n99999999_0.JPEG")
    shutil.copy(some_image, layout / "val" / "images" / "val_99999.JPEG")
    with (layout / "val" / "val_annotations.txt").open("a") as annotations:
        annotations.write("val_99999.JPEG\tn99999999\t0\t0\t63\t63\n")


@pytest.fixture
def small_layout(shared_data: Path, tmp_path: Path) -> Path:
    return write_small_layout(shared_data, tmp_path / "small")


# --- full preparation from the shared folder ------------------------------------------------------


def test_directory_source_has_every_image_with_balanced_labels(prepared_dir: Path) -> None:
    data = load_prepared(prepared_dir)
    assert data.train.images.shape == (5000, 64, 64, 3)
    assert data.val.images.shape == (500, 64, 64, 3)
    assert data.train.images.dtype == np.uint8 and data.train.labels.dtype == np.int64
    assert np.bincount(data.train.labels).tolist() == [500] * 10
    assert np.bincount(data.val.labels).tolist() == [50] * 10
    assert len(data.train.files) == 5000 and len(set(data.val.files)) == 500


def test_class_order_is_the_reference_order(prepared_dir: Path) -> None:
    assert load_prepared(prepared_dir).class_names == CLASS_NAMES
    with np.load(prepared_dir / "tiny_imagenet_10.npz") as arrays:
        assert tuple(arrays["class_wnids"]) == CLASS_WNIDS
        assert set(arrays.files) == {
            f"{split}_{part}" for split in ("train", "val") for part in ("images", "labels", "files")
        } | {"class_names", "class_wnids"}


def test_labels_match_the_source(prepared_dir: Path, val_annotations: dict[str, str]) -> None:
    data = load_prepared(prepared_dir)
    assert data.val.files[0] == "val_8.JPEG"  # numeric order, not "val_1..." string order
    assert CLASS_WNIDS[data.val.labels[0]] == val_annotations["val_8.JPEG"] == "n04146614"
    for name, label in zip(data.val.files, data.val.labels, strict=True):
        assert CLASS_WNIDS[label] == val_annotations[name]
    for name, label in zip(data.train.files, data.train.labels, strict=True):
        assert name.startswith(CLASS_WNIDS[label] + "_")


def test_pixels_are_the_decoded_jpegs(prepared_dir: Path, shared_data: Path) -> None:
    data = load_prepared(prepared_dir)
    row = data.val.files.index("val_18.JPEG")
    expected = np.asarray(Image.open(shared_data / "val" / "images" / "val_18.JPEG").convert("RGB"))
    np.testing.assert_array_equal(data.val.images[row], expected)


def test_greyscale_images_become_three_equal_channels(prepared_dir: Path, shared_data: Path) -> None:
    data = load_prepared(prepared_dir)
    greyscale = {p.name for p in shared_data.rglob("*.JPEG") if Image.open(p).mode == "L"}
    assert greyscale, "the shared subset is known to contain greyscale JPEGs"
    for split in (data.train, data.val):
        for row, name in enumerate(split.files):
            if name in greyscale:
                image = split.images[row]
                assert image.shape == (64, 64, 3)
                assert np.array_equal(image[..., 0], image[..., 1])
                assert np.array_equal(image[..., 0], image[..., 2])
                greyscale.remove(name)
    assert not greyscale


def test_gallery_is_consistent_with_its_index(
    prepared_dir: Path, shared_data: Path, val_annotations: dict[str, str]
) -> None:
    gallery = load_gallery(prepared_dir)
    assert Counter(image.class_index for image in gallery) == dict.fromkeys(range(10), 3)
    index = json.loads((prepared_dir / "gallery" / "index.json").read_text())
    assert [entry["file"] for entry in index] == [image.path.name for image in gallery]
    gallery_files = {path.name for path in (prepared_dir / "gallery").iterdir()}
    assert gallery_files == {entry["file"] for entry in index} | {"index.json"}
    for image in gallery:
        assert image.label == CLASS_NAMES[image.class_index]
        assert image.path.name.startswith(image.label.replace(" ", "_") + "_")
        assert val_annotations[image.source] == CLASS_WNIDS[image.class_index]
        assert image.path.read_bytes() == (shared_data / "val" / "images" / image.source).read_bytes()
    data = load_prepared(prepared_dir)
    lifeboat_sources = [image.source for image in gallery if image.class_index == 0]
    assert lifeboat_sources == np.array(data.val.files)[data.val.labels == 0][:3].tolist()


# --- zip and URL sources --------------------------------------------------------------------------


@pytest.mark.parametrize("top_folder", ["tiny-imagenet-200", ""])
def test_zip_source(small_layout: Path, tmp_path: Path, top_folder: str) -> None:
    add_unused_class(small_layout)  # as in the 200-class archive
    archive = zip_folder(small_layout, tmp_path / "tiny-imagenet-200.zip", top_folder)
    npz_path = prepare_dataset(archive, tmp_path / "out", progress=False)
    assert npz_path == tmp_path / "out" / "tiny_imagenet_10.npz"
    data = load_prepared(tmp_path / "out")
    assert data.train.images.shape == (20, 64, 64, 3)
    assert np.bincount(data.val.labels).tolist() == [2] * 10
    assert "val_99999.JPEG" not in data.val.files
    assert len(load_gallery(tmp_path / "out")) == 20


def test_rerunning_overwrites_cleanly(small_layout: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    prepare_dataset(small_layout, out_dir, per_class_gallery=2, progress=False)
    (out_dir / "gallery" / "stale.jpg").write_bytes(b"left over")
    prepare_dataset(small_layout, out_dir, per_class_gallery=1, progress=False)
    assert len(load_gallery(out_dir)) == 10
    assert sorted(p.name for p in out_dir.iterdir()) == ["gallery", "tiny_imagenet_10.npz"]
    assert len(list((out_dir / "gallery").iterdir())) == 11


def test_progress_goes_to_stderr_only_when_asked(
    small_layout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_dataset(small_layout, tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""
    prepare_dataset(small_layout, tmp_path / "loud", progress=True)
    captured = capsys.readouterr()
    assert "Decoding images: 100%" in captured.err and "40/40" in captured.err and captured.out == ""


@pytest.fixture
def served_zip(small_layout: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Serve a small archive over HTTP on localhost; yields (url, md5)."""
    served = tmp_path / "served"
    served.mkdir()
    archive = zip_folder(small_layout, served / "tiny-imagenet-200.zip")
    handler = functools.partial(QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}/tiny-imagenet-200.zip"
        yield url, hashlib.md5(archive.read_bytes()).hexdigest()
        server.shutdown()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_url_source_downloads_and_checks_the_md5(served_zip: tuple[str, str], tmp_path: Path) -> None:
    url, md5 = served_zip
    out_dir = tmp_path / "out"
    prepare_dataset(url, out_dir, expected_md5=md5, progress=False)
    assert (out_dir / "downloads" / "tiny-imagenet-200.zip").is_file()
    assert load_prepared(out_dir).val.images.shape == (20, 64, 64, 3)


def test_url_source_with_wrong_md5_fails(served_zip: tuple[str, str], tmp_path: Path) -> None:
    url, _ = served_zip
    with pytest.raises(DataError, match="Checksum mismatch"):
        prepare_dataset(url, tmp_path / "out", expected_md5="0" * 32, progress=False)
    assert list((tmp_path / "out" / "downloads").iterdir()) == []
    assert not (tmp_path / "out" / "tiny_imagenet_10.npz").exists()


def test_unreachable_url_suggests_downloading_elsewhere(tmp_path: Path) -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        free_port = probe_socket.getsockname()[1]
    with pytest.raises(DataError, match=r"Could not download.*download tiny-imagenet-200\.zip elsewhere"):
        prepare_dataset(f"http://127.0.0.1:{free_port}/tiny-imagenet-200.zip", tmp_path, progress=False)


def test_missing_file_on_server_is_a_data_error(served_zip: tuple[str, str], tmp_path: Path) -> None:
    url, _ = served_zip
    with pytest.raises(DataError, match=r"Could not download .*other\.zip \(HTTP Error 404"):
        prepare_dataset(url.replace("tiny-imagenet-200", "other"), tmp_path, progress=False)


# --- malformed sources ----------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset(tmp_path / "nowhere", tmp_path / "out", progress=False)


def test_folder_without_the_layout(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match=r"not in the Tiny ImageNet layout: missing wnids\.txt, val/"):
        prepare_dataset(tmp_path, tmp_path / "out", progress=False)


def test_missing_class(shared_data: Path, tmp_path: Path) -> None:
    source = write_small_layout(shared_data, tmp_path / "src", wnids=CLASS_WNIDS[:-1], train_per_class=1)
    with pytest.raises(DataError, match=r"no training images for: n04285008 \(sport car\)"):
        prepare_dataset(source, tmp_path / "out", progress=False)


def test_class_missing_from_validation(small_layout: Path, tmp_path: Path) -> None:
    annotations = small_layout / "val" / "val_annotations.txt"
    kept = [line for line in annotations.read_text().splitlines() if "\tn01882714\t" not in line]
    annotations.write_text("\n".join(kept) + "\n")
    with pytest.raises(DataError, match=r"lists no images for: n01882714 \(koala\)"):
        prepare_dataset(small_layout, tmp_path / "out", progress=False)


def test_missing_val_annotations(small_layout: Path, tmp_path: Path) -> None:
    (small_layout / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataError, match=r"lacks val/val_annotations\.txt"):
        prepare_dataset(small_layout, tmp_path / "out", progress=False)


def test_corrupt_image(small_layout: Path, tmp_path: Path) -> None:
    (small_layout / "train" / "n03662601" / "images" / "n03662601_0.JPEG").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"Cannot read image train/n03662601/images/n03662601_0\.JPEG"):
        prepare_dataset(small_layout, tmp_path / "out", progress=False)


def test_file_that_is_not_a_zip(tmp_path: Path) -> None:
    not_a_zip = tmp_path / "tiny-imagenet-200.zip"
    not_a_zip.write_text("<html>proxy login</html>")
    with pytest.raises(DataError, match="is not a zip archive"):
        prepare_dataset(not_a_zip, tmp_path / "out", progress=False)


def test_zip_without_the_layout(tmp_path: Path) -> None:
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("holiday/beach.jpg", b"...")
    with pytest.raises(DataError, match=r"missing wnids\.txt, train/, val/"):
        prepare_dataset(archive, tmp_path / "out", progress=False)


# --- loading ----------------------------------------------------------------------------------------


def test_load_prepared_when_missing_explains_how_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"run `cnnviz data --source"):
        load_prepared(tmp_path)


def test_load_gallery_when_missing_is_empty(tmp_path: Path) -> None:
    assert load_gallery(tmp_path) == []


def test_default_data_dir_is_the_checkouts_unless_overridden(tmp_path: Path) -> None:
    code = "from cnnviz.data import default_data_dir; print(default_data_dir())"
    env = {k: v for k, v in os.environ.items() if k != "CNNVIZ_DATA_DIR"}

    def default_dir(extra_env: dict[str, str]) -> str:
        command = [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=tmp_path, env=env | extra_env, capture_output=True, text=True)
        return result.stdout.strip()

    assert default_dir({}) == str(Path(__file__).resolve().parents[1] / "data")
    assert default_dir({"CNNVIZ_DATA_DIR": "/elsewhere/data"}) == "/elsewhere/data"
