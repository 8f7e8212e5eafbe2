"""The playground's maths against brute force, its explanations, and its bounds under random changes."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from cnnviz.playground import (
    INPUT_SIZE_MAX,
    KERNEL_SIZE_MAX,
    PlaygroundState,
    convolve,
    covered_cells,
    output_size,
    padded_input,
    validity,
    window_starts,
)

SETTINGS = ("input_size", "padding", "kernel_size", "stride")


def allowed_combinations():
    """Every (n, p, k, s) the playground's bounds allow, enumerated from the bounds' definition."""
    for k in range(1, KERNEL_SIZE_MAX + 1):
        for p in range(k):
            for n in range(max(1, k - 2 * p), INPUT_SIZE_MAX + 1):
                for s in range(1, max(n + 2 * p - k + 1, 2) + 1):
                    yield n, p, k, s


COMBINATIONS = list(allowed_combinations())


def brute_force_positions(n: int, p: int, k: int, s: int) -> int:
    """Slide a k-wide window along n + 2p cells in steps of s and count where it still fits."""
    count, start = 0, 0
    while start + k <= n + 2 * p:
        count += 1
        start += s
    return count


def test_every_allowed_combination_is_enumerated():
    assert len(COMBINATIONS) > 300
    assert (5, 1, 3, 2) in COMBINATIONS


@pytest.mark.parametrize(("n", "p", "k", "s"), COMBINATIONS)
def test_output_size_matches_brute_force(n, p, k, s):
    assert output_size(n, p, k, s) == brute_force_positions(n, p, k, s)
    out = convolve(padded_input(n, p), np.ones((k, k), int), s)
    assert out.shape == (output_size(n, p, k, s),) * 2


def test_network_sizes_follow_the_formula():
    sizes = [64]
    for k, s in [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2)]:
        sizes.append(output_size(sizes[-1], 0, k, s))
    assert sizes == [64, 62, 60, 30, 28, 26, 13]


@pytest.mark.parametrize(("n", "p", "k", "s"), COMBINATIONS)
def test_validity_explains_with_the_numbers(n, p, k, s):
    ok, why = validity(n, p, k, s)
    span = n + 2 * p - k
    assert ok == (span % s == 0)
    assert f"{n} + 2×{p} − {k} = {span}" in why
    assert f"stride {s}" in why
    if not ok:
        last_start = window_starts(n, p, k, s)[-1]
        assert f"{span} ÷ {s} leaves {span % s} over" in why
        assert f"{last_start}–{last_start + k - 1}" in why or f"column {last_start}" in why
        assert "never covered" in why
        assert not covered_cells(n, p, k, s).all()
    skips = s > k and output_size(n, p, k, s) > 1
    assert ("jumps over" in why) == skips
    if ok:
        assert covered_cells(n, p, k, s).all() != skips


def test_invalid_example_reads_like_the_brief():
    ok, why = validity(6, 0, 3, 2)
    assert not ok
    assert "starts at columns 0 and 2" in why
    assert "column 5 is never covered" in why
    assert "Strides that fit here: 1 and 3" in why


def test_a_kernel_wider_than_the_padded_input_is_explained():
    ok, why = validity(2, 0, 3, 1)
    assert not ok and "wider than the padded input" in why
    with pytest.raises(ValueError, match="does not fit"):
        output_size(2, 0, 3, 1)


def test_numbers_are_real_and_the_output_is_their_weighted_sum():
    state = PlaygroundState(input_size=5, padding=1, kernel_size=3, stride=2)
    inner = state.padded[1:-1, 1:-1]
    assert len(np.unique(inner)) > 5, "the input should be varied numbers, not zeros"
    assert (state.padded[0] == 0).all() and (state.padded[:, -1] == 0).all()
    assert (state.kernel < 0).any() and (state.kernel > 0).any()
    for step in range(state.out_size**2):
        state.step = step
        top, left = state.window_origin
        window = state.padded[top : top + 3, left : left + 3]
        assert state.output[state.output_cell] == (window * state.kernel).sum()


def assert_consistent(state: PlaygroundState) -> None:
    n, p, k, s = (getattr(state, name) for name in SETTINGS)
    for name in (*SETTINGS, "step"):
        low, high = state.param[name].bounds
        assert low <= getattr(state, name) <= high, (name, getattr(state, name), (low, high))
    assert state.param.input_size.bounds == (max(1, k - 2 * p), INPUT_SIZE_MAX)
    assert state.param.padding.bounds == (max(0, math.ceil((k - n) / 2)), k - 1)
    assert state.param.kernel_size.bounds == (p + 1, min(n + 2 * p, KERNEL_SIZE_MAX))
    assert state.param.stride.bounds == (1, max(n + 2 * p - k + 1, 2))
    assert state.param.step.bounds == (0, output_size(n, p, k, s) ** 2 - 1)
    assert k <= n + 2 * p and p <= k - 1


def test_bounds_stay_consistent_under_random_updates():
    rng = random.Random(7)
    state = PlaygroundState()
    assert_consistent(state)
    for _ in range(2000):
        name = rng.choice((*SETTINGS, "step"))
        low, high = state.param[name].bounds
        setattr(state, name, rng.randint(low, high))
        assert_consistent(state)


def test_stride_and_step_are_clamped_when_the_input_shrinks():
    state = PlaygroundState(input_size=7, padding=0, kernel_size=3, stride=4)
    state.step = 3
    state.input_size = 3
    assert state.stride == 2 and state.step == 0
    assert_consistent(state)


def test_impossible_start_values_are_refused():
    with pytest.raises(ValueError, match="padding"):
        PlaygroundState(input_size=5, padding=3, kernel_size=3)


@pytest.mark.parametrize(("n", "p", "k", "s"), [(5, 1, 3, 2), (7, 0, 2, 3), (6, 2, 5, 1), (7, 3, 4, 4)])
def test_step_positions_follow_the_stride(n, p, k, s):
    state = PlaygroundState(input_size=n, padding=p, kernel_size=k, stride=s)
    size = output_size(n, p, k, s)
    origins = []
    for step in range(size * size):
        state.step = step
        origins.append(state.window_origin)
    assert origins == [(row * s, col * s) for row in range(size) for col in range(size)]
    starts = window_starts(n, p, k, s)
    assert sorted({col for _, col in origins}) == starts
    assert starts[-1] + k <= n + 2 * p


def test_the_drawn_grid_grows_with_the_padding():
    """Each new size gets its own frame: the padded 9×9 input is drawn whole, not cut to the first 7×7 frame."""
    import holoviews as hv

    from cnnviz.plots.playground import padded_input_grid

    hv.extension("bokeh")
    state = PlaygroundState(input_size=7, padding=0)

    def grid(**_):
        return padded_input_grid(state.padded, state.padding, state.window_origin, state.kernel_size, state.covered)

    plot = hv.renderer("bokeh").get_plot(hv.DynamicMap(grid, streams=[hv.streams.Params(state, list(SETTINGS))]))
    for padding in (1, 2, 0):
        state.padding = padding
        size = state.padded.shape[0]
        assert plot.state.x_range.end == pytest.approx(size + 0.05)
        assert max(plot.state.y_range.start, plot.state.y_range.end) == pytest.approx(size + 0.05)
