"""Probe images: well-formed, deterministic, and each shows the structure it claims to."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnnviz.probes import probe, probe_images

EXPECTED_KEYS = {
    "vertical-stripes",
    "horizontal-stripes",
    "diagonal-stripes",
    "checkerboard",
    "colour-patches",
    "horizontal-gradient",
    "radial-gradient",
    "single-edge",
}


def grey(key: str) -> np.ndarray:
    """The single channel of a grey probe, after checking it really is grey."""
    image = probe(key).image
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    return image[..., 0]


def test_every_probe_is_a_64x64_rgb_float_image_in_unit_range() -> None:
    for candidate in probe_images():
        assert candidate.image.shape == (64, 64, 3)
        assert candidate.image.dtype == np.float32
        assert candidate.image.min() >= 0.0 and candidate.image.max() <= 1.0
        assert candidate.image.max() - candidate.image.min() == pytest.approx(1.0)  # full contrast


def test_keys_are_unique_url_safe_and_documented() -> None:
    probes = probe_images()
    assert {candidate.key for candidate in probes} == EXPECTED_KEYS
    assert len(probes) == len(EXPECTED_KEYS)
    for candidate in probes:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", candidate.key)
        assert candidate.title and candidate.description.endswith(".")


def test_probes_are_deterministic_and_protected_from_mutation() -> None:
    assert probe_images() is probe_images()
    image = probe("checkerboard").image
    with pytest.raises(ValueError, match="read-only"):
        image[0, 0, 0] = 0.5


def test_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known probes: vertical-stripes, horizontal-stripes"):
        probe("zebra")


def test_vertical_stripes_alternate_across_columns_only() -> None:
    image = grey("vertical-stripes")
    assert (image == image[:1]).all()  # every row is the same
    assert set(np.unique(image)) == {0.0, 1.0}
    assert np.count_nonzero(np.diff(image[0])) >= 8  # many left–right changes


def test_horizontal_stripes_are_the_transpose_of_vertical_stripes() -> None:
    assert np.array_equal(grey("horizontal-stripes"), grey("vertical-stripes").T)


def test_diagonal_stripes_are_constant_along_anti_diagonals() -> None:
    image = grey("diagonal-stripes")
    assert np.array_equal(image[1:, :-1], image[:-1, 1:])
    assert np.count_nonzero(np.diff(image[0])) >= 8 and np.count_nonzero(np.diff(image[:, 0])) >= 8


def test_checkerboard_squares_differ_from_their_neighbours() -> None:
    image = grey("checkerboard")
    squares = image[::8, ::8]
    assert squares.shape == (8, 8)
    assert (squares[:, 1:] != squares[:, :-1]).all() and (squares[1:] != squares[:-1]).all()
    assert np.array_equal(image, np.kron(squares, np.ones((8, 8), dtype=np.float32)))


def test_colour_patches_are_red_green_blue_yellow_quadrants() -> None:
    image = probe("colour-patches").image
    quadrants = {
        "top-left": (image[:32, :32], (1, 0, 0)),
        "top-right": (image[:32, 32:], (0, 1, 0)),
        "bottom-left": (image[32:, :32], (0, 0, 1)),
        "bottom-right": (image[32:, 32:], (1, 1, 0)),
    }
    for name, (patch, colour) in quadrants.items():
        assert (patch == np.array(colour, dtype=np.float32)).all(), name


def test_horizontal_gradient_rises_left_to_right() -> None:
    image = grey("horizontal-gradient")
    assert (image == image[:1]).all()
    assert (np.diff(image[0]) > 0).all()
    assert image[0, 0] == 0.0 and image[0, -1] == 1.0


def test_radial_gradient_is_a_bright_centre_fading_outwards() -> None:
    image = grey("radial-gradient")
    assert (image[30:34, 30:34] == 1.0).all()  # a fully bright core
    assert image[0, 0] == 0.0 and image[0, 32] < 0.1
    assert np.allclose(image, image.T) and np.allclose(image, image[::-1])  # symmetric
    centre_row = image[32]
    assert (np.diff(centre_row[:32]) >= 0).all() and (np.diff(centre_row[32:]) <= 0).all()


def test_single_edge_is_dark_left_bright_right() -> None:
    image = grey("single-edge")
    assert (image[:, :32] == 0).all() and (image[:, 32:] == 1).all()
