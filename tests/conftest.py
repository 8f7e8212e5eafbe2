"""Shared fixtures: where the shared data lives, and skips that say exactly what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TINY_IMAGENET = SHARED / "tiny-imagenet-10"
REFERENCE_WEIGHTS = SHARED / "reference" / "cnn-explainer-tiny-vgg"


@pytest.fixture(scope="session")
def tiny_imagenet_dir() -> Path:
    if not (TINY_IMAGENET / "wnids.txt").is_file():
        pytest.skip(f"the Tiny ImageNet subset is not beside the repo at {TINY_IMAGENET}")
    return TINY_IMAGENET


@pytest.fixture(scope="session")
def reference_weights_dir() -> Path:
    if not (REFERENCE_WEIGHTS / "model.json").is_file():
        pytest.skip(f"the reference weights are not beside the repo at {REFERENCE_WEIGHTS}")
    return REFERENCE_WEIGHTS


@pytest.fixture(scope="session")
def prepared_data_dir(tmp_path_factory, tiny_imagenet_dir) -> Path:
    """`cnnviz data` run once per test session into a temporary folder (the repo's data/ is left alone)."""
    from cnnviz.data import prepare_dataset

    out = tmp_path_factory.mktemp("data")
    prepare_dataset(tiny_imagenet_dir, out, progress=False)
    return out
