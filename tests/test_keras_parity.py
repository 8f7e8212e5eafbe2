"""The engine against Keras: same weights, same outputs, layer by layer (needs the `train` extra)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="Keras parity needs the `train` extra (TensorFlow)")
keras = tf.keras

from cnnviz.engine import Network, layers_from_keras  # noqa: E402
from cnnviz.training.export import export_keras  # noqa: E402

pytestmark = pytest.mark.train


def tiny_vgg_keras(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((64, 64, 3))]
    for block in (1, 2):
        for position in (1, 2):
            layers += [
                keras.layers.Conv2D(10, 3, name=f"conv_{block}_{position}", bias_initializer="random_normal"),
                keras.layers.Activation("relu", name=f"relu_{block}_{position}"),
            ]
        layers.append(keras.layers.MaxPooling2D(2, name=f"max_pool_{block}"))
    layers += [keras.layers.Flatten(name="flatten"), keras.layers.Dense(10, activation="softmax", name="output")]
    return keras.Sequential(layers)


def odd_keras(seed: int, padding: str, stride: int, kernel: int, input_shape: tuple[int, int, int]) -> keras.Model:
    """Shapes, strides and paddings the Tiny VGG never uses, plus fused activations and inference no-ops."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(
                6,
                kernel,
                strides=stride,
                padding=padding,
                activation="relu",
                name="a",
                bias_initializer="random_normal",
            ),
            keras.layers.Dropout(0.5, name="drop"),
            keras.layers.Conv2D(5, (2, 3), strides=(1, 2), padding=padding, name="b", bias_initializer="random_normal"),
            keras.layers.ReLU(name="b_relu"),
            keras.layers.MaxPooling2D(pool_size=3, strides=2, padding=padding, name="pool"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(7, name="logits", bias_initializer="random_normal"),
            keras.layers.Softmax(name="probs"),
        ]
    )


MODELS = {
    "tiny_vgg": lambda: tiny_vgg_keras(1),
    "valid-k3-s1": lambda: odd_keras(2, "valid", 1, 3, (20, 17, 3)),
    "same-k3-s2": lambda: odd_keras(3, "same", 2, 3, (21, 18, 2)),
    "same-k5-s1": lambda: odd_keras(4, "same", 1, 5, (16, 16, 4)),
    "valid-k4-s3": lambda: odd_keras(5, "valid", 3, 4, (31, 29, 1)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_trace_matches_keras_layer_by_layer(tmp_path, name):
    model = MODELS[name]()
    network = Network.load(export_keras(model, tmp_path / f"{name}.npz"))
    probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
    images = np.random.default_rng(0).random((3, *model.input_shape[1:]), np.float32)
    keras_outputs = [np.asarray(out) for out in probe([images])]
    for image_index, image in enumerate(images):
        trace = network.trace(image)
        engine_name = "input"  # a Keras layer that is a no-op at inference keeps the previous output
        for keras_layer, expected in zip(model.layers, keras_outputs, strict=True):
            ours = layers_from_keras(type(keras_layer).__name__, keras_layer.get_config(), keras_layer.get_weights())
            engine_name = ours[-1].name if ours else engine_name
            diff = np.abs(trace[engine_name] - expected[image_index]).max()
            assert diff <= 1e-4, f"{name}: {keras_layer.name} differs from engine {engine_name} by {diff}"
    np.testing.assert_allclose(network.predict(images), keras_outputs[-1], atol=1e-5)
