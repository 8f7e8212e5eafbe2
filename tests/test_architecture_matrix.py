"""Any small sequential CNN, not only Tiny VGG: the engine's explanations and the examples fit every network.

Networks of the matrix: grey 28×28, 32×32 colour with 20 classes, 96×96, 'same' padding with stride 2, PyTorch's
explicit padding with stride 2, 5×5 kernels, three conv blocks, average pooling, 2 classes. For each, every number
an explanation shows (the window × kernel sum, the pooled value, the ReLU, the flatten position, the dense sum, the
softmax) must equal the traced value, and the example images must come at the network's own size and channel
count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnviz.engine import (
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    Network,
    ReLU,
    Softmax,
    Trace,
    conv_step,
    dense_step,
    flatten_index,
    flatten_position,
    flatten_source_shape,
    pool_step,
    relu_step,
    softmax_terms,
)
from cnnviz.examples import build_catalog
from cnnviz.training.architecture import Architecture, ArchitectureError

SHAPES_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "shapes" / "shapes.npz"


def classes(count: int) -> tuple[str, ...]:
    return tuple(f"class {index}" for index in range(count))


def strided_same() -> Network:
    """'same' padding with stride 2 (Keras' convention: the extra padding pixel at the end)."""
    rng = np.random.default_rng(7)
    layers = [
        Conv2D("conv_a", rng.normal(0, 0.3, (3, 3, 3, 8)), rng.normal(0, 0.1, 8), stride=2, padding="same"),
        ReLU("relu_a"),
        Conv2D("conv_b", rng.normal(0, 0.3, (4, 4, 8, 6)), rng.normal(0, 0.1, 6), stride=2, padding="same"),
        ReLU("relu_b", negative_slope=0.1),
        MaxPool2D("max_pool", 3, 2, padding="same"),
        Flatten("flatten"),
        Dense("output", rng.normal(0, 0.1, (4 * 4 * 6, 5)), np.zeros(5)),
        Softmax("softmax"),
    ]
    return Network(layers, (31, 31, 3), classes(5))


def pytorch_padding() -> Network:
    """PyTorch's padding=k // 2 with stride 2 on an even size: zeros on both sides, not Keras' 'same'."""
    rng = np.random.default_rng(8)
    layers = [
        Conv2D("conv_a", rng.normal(0, 0.3, (3, 3, 3, 6)), rng.normal(0, 0.1, 6), 2, ((1, 1), (1, 1))),
        ReLU("relu_a"),
        Conv2D("conv_b", rng.normal(0, 0.3, (5, 5, 6, 4)), rng.normal(0, 0.1, 4), 2, ((2, 2), (2, 2))),
        ReLU("relu_b"),
        MaxPool2D("max_pool", 3, 2, padding=((1, 1), (1, 1))),
        Flatten("flatten"),
        Dense("output", rng.normal(0, 0.1, (4 * 4 * 4, 3)), np.zeros(3)),
        Softmax("softmax"),
    ]
    return Network(layers, (32, 32, 3), classes(3))


MATRIX = {
    "28x28x1, 2 classes": lambda: Architecture().engine_network((28, 28, 1), classes(2), seed=1),
    "32x32x3, 20 classes, 3 blocks same": lambda: Architecture(conv_blocks=3, padding="same").engine_network(
        (32, 32, 3), classes(20), seed=2
    ),
    "96x96x3": lambda: Architecture(convs_per_block=1, filters=6).engine_network((96, 96, 3), classes(10), seed=3),
    "same + stride 2": strided_same,
    "PyTorch padding + stride 2": pytorch_padding,
    "5x5 kernels": lambda: Architecture(kernel_size=5).engine_network((64, 64, 3), classes(10), seed=4),
    "average pooling": lambda: Architecture(pooling="average").engine_network((48, 48, 3), classes(4), seed=5),
    "bundled shapes model (trained)": lambda: Network.load(SHAPES_WEIGHTS),
    "16 filters, one 7x7 block": lambda: Architecture(
        conv_blocks=1, convs_per_block=1, filters=16, kernel_size=7
    ).engine_network((40, 40, 1), classes(3), seed=6),
}


@pytest.fixture(scope="module", params=list(MATRIX))
def network(request) -> Network:
    return MATRIX[request.param]()


@pytest.fixture(scope="module")
def catalog(network, tmp_path_factory):
    return build_catalog(tmp_path_factory.mktemp("no-gallery"), network)


def sample_positions(shape: tuple[int, ...], rng: np.random.Generator, count: int = 4) -> list[tuple[int, int, int]]:
    """Corners (where padding shows) and a few random positions of a (rows, cols, channels) map."""
    rows, cols, channels = shape
    corners = [(0, 0, 0), (rows - 1, cols - 1, channels - 1)]
    return corners + [tuple(int(rng.integers(0, n)) for n in shape) for _ in range(count)]


def test_examples_come_at_the_networks_size_and_channels(network, catalog):
    assert catalog.examples and all(example.image.shape == network.input_shape for example in catalog.examples)
    assert all(example.image.min() >= 0.0 and example.image.max() <= 1.0 for example in catalog.examples)
    assert all(example.thumbnail.startswith("data:image/jpeg;base64,") for example in catalog.examples)


def test_every_explained_number_equals_the_trace(network, catalog):
    check_explanations(network.trace(catalog.examples[1].image))


def check_explanations(trace: Trace) -> None:
    """Every number an explanation shows equals the traced value (shared with the import tests)."""
    network, rng = trace.network, np.random.default_rng(0)
    assert [output.shape for output in trace.outputs.values()] == [info.shape for info in network.infos]
    for layer in network.layers:
        name = layer.name
        if layer.kind == "conv2d":
            for row, col, neuron in sample_positions(trace[name].shape, rng):
                step = conv_step(trace, name, row, col, neuron)
                assert step.total + step.bias == pytest.approx(step.result, abs=1e-4)
                assert step.window.shape == step.kernel.shape == (*layer.window, trace.input_of(name).shape[2])
        elif layer.kind == "maxpool2d":
            for row, col, channel in sample_positions(trace[name].shape, rng):
                step = pool_step(trace, name, row, col, channel)
                finite = step.window[np.isfinite(step.window)]
                expected = finite.mean() if layer.mode == "average" else finite.max()
                assert expected == pytest.approx(step.result, abs=1e-5)
        elif layer.kind == "relu" and trace[name].ndim == 3:
            for row, col, channel in sample_positions(trace[name].shape, rng):
                step = relu_step(trace, name, row, col, channel)
                assert step.y == pytest.approx(max(step.x, layer.negative_slope * step.x), abs=1e-6)
        elif layer.kind == "flatten":
            source = flatten_source_shape(trace, name)
            for row, col, channel in sample_positions(source, rng):
                index = flatten_index(source, row, col, channel)
                assert flatten_position(source, index) == (row, col, channel)
                assert trace[name][index] == trace.input_of(name)[row, col, channel]
        elif layer.kind == "dense":
            for unit in range(trace[name].shape[0]):
                step = dense_step(trace, name, unit)
                assert step.total + step.bias == pytest.approx(trace[name][unit], abs=1e-4)
    terms = softmax_terms(trace.logits)
    np.testing.assert_allclose(terms.probabilities, trace.probabilities, atol=1e-6)
    assert trace.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_an_architecture_that_shrinks_the_image_to_nothing_is_refused():
    with pytest.raises(ArchitectureError, match=r"shrinks to nothing in block 3.*--padding same"):
        Architecture(conv_blocks=3, kernel_size=5).engine_network((32, 32, 3), classes(2))
    with pytest.raises(ArchitectureError, match="--kernel-size must be between 1 and 7"):
        Architecture(kernel_size=9)
