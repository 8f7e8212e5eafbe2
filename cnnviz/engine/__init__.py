"""Pure NumPy engine: the forward pass of a sequential CNN and the arithmetic behind each of its numbers.

No UI and no TensorFlow import here: the same code runs on a server, in a notebook and under Pyodide.
"""

from .explain import (
    ConvStep,
    ConvSweep,
    DenseStep,
    ElementStep,
    PoolStep,
    SoftmaxTerms,
    conv_channel_results,
    conv_step,
    conv_sweep,
    dense_step,
    flatten_index,
    flatten_position,
    flatten_source_shape,
    pool_step,
    relu_step,
    softmax_terms,
)
from .keras_format import layers_from_keras, load_tfjs_layers_model
from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Softmax, layer_from_config
from .network import INPUT_NAME, LayerInfo, Network, Trace, WeightsError
from .tiny_vgg import TINY_VGG_CLASSES, tiny_vgg

__all__ = [
    "INPUT_NAME",
    "TINY_VGG_CLASSES",
    "Conv2D",
    "ConvStep",
    "ConvSweep",
    "Dense",
    "DenseStep",
    "ElementStep",
    "Flatten",
    "Layer",
    "LayerInfo",
    "MaxPool2D",
    "Network",
    "PoolStep",
    "ReLU",
    "Softmax",
    "SoftmaxTerms",
    "Trace",
    "WeightsError",
    "conv_channel_results",
    "conv_step",
    "conv_sweep",
    "dense_step",
    "flatten_index",
    "flatten_position",
    "flatten_source_shape",
    "layer_from_config",
    "layers_from_keras",
    "load_tfjs_layers_model",
    "pool_step",
    "relu_step",
    "softmax_terms",
    "tiny_vgg",
]
