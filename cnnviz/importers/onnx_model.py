"""ONNX files (PyTorch's `torch.onnx.export`, tf2onnx, …) → engine networks. Imports onnx only when called.

ONNX convolutions are channels-first (N, C, H, W); the engine is channels-last. Kernels are transposed, and
the one place where the layout changes numbers is the flatten: PyTorch unrolls channel by channel (all of
channel 0's rows first), the engine position by position (all channels of pixel (0, 0) first). The dense
layer after a channels-first flatten gets its weight rows reordered, so every output stays the same.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.engine import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Softmax
from cnnviz.engine.layers import Padding, same_padding
from cnnviz.importers import Imported, LayerChain, ModelImportError, unsupported

SKIPPED = {"Dropout", "Identity"}
SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Constant", "Cast", "Slice", "ConstantOfShape"}
LEAKY_DEFAULT = 0.01  # ONNX LeakyRelu's default alpha
ONE_OF_A_KIND = {"flatten", "softmax"}  # named without a number, as in Tiny VGG (a second one gets "_2")


def import_onnx_file(
    path: str | os.PathLike, class_names: tuple[str, ...] = (), input_size: int | None = None
) -> Imported:
    try:
        import onnx
    except ImportError:
        raise ModelImportError("Reading ONNX files needs the onnx package: pip install 'cnnviz[import]'.") from None
    try:
        model = onnx.load(os.fspath(path))
        onnx.checker.check_model(model)
    except Exception as error:  # protobuf and checker errors: the file is not a valid ONNX model
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ModelImportError(f"{Path(path).name} is not a readable ONNX model: {reason}") from None
    return OnnxReader(model, input_size).read(class_names, f"imported from {Path(path).name}")


@dataclass
class OnnxReader:
    """Walks the graph's single chain of data tensors; every other input must be a constant."""

    model: Any
    input_size: int | None = None
    chain: LayerChain = field(default_factory=LayerChain)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    current: str = ""
    layout: str = "nchw"  # of the current tensor while it is 4-D
    shape: tuple[int, ...] = ()  # the current tensor's (H, W, C) or (features,), without the batch
    seen: set[str] = field(default_factory=set)  # data tensors already passed
    flatten_from: tuple[int, ...] | None = None  # (C, H, W) of a channels-first flatten awaiting its dense layer
    numbered: Counter[str] = field(default_factory=Counter)  # layers named by kind so far, per kind

    def read(self, class_names: tuple[str, ...], source: str) -> Imported:
        from onnx import numpy_helper

        graph = self.model.graph
        self.constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
        inputs = [value for value in graph.input if value.name not in self.constants]
        if len(inputs) != 1:
            raise ModelImportError(f"The model has {len(inputs)} inputs; cnnviz explains models with one image input.")
        input_shape = self._input_shape(inputs[0])
        self.current = inputs[0].name
        for node in graph.node:
            self._node(node)
        return self.chain.network(input_shape, class_names, source)

    def _input_shape(self, value: Any) -> tuple[int, int, int]:
        dims = [dim.dim_value or None for dim in value.type.tensor_type.shape.dim]
        if len(dims) != 4:
            raise ModelImportError(f"The model's input {value.name} has {len(dims)} axes; cnnviz needs N×C×H×W images.")
        nhwc = dims[3] in (1, 3) and dims[1] not in (1, 3)
        self.layout = "nhwc" if nhwc else "nchw"
        channels, height, width = (dims[3], dims[1], dims[2]) if nhwc else (dims[1], dims[2], dims[3])
        height, width = height or self.input_size, width or self.input_size
        if not (channels and height and width):
            raise ModelImportError("The model's input size is open; give it with --input-size.")
        if height != width:
            raise ModelImportError(f"The model's input is {height}×{width}; cnnviz explains square images.")
        self.shape = (height, width, channels)
        if nhwc:
            self.chain.notes.append("the model's input is channels-last already (N×H×W×C)")
        else:
            self.chain.notes.append(
                "channels-first (N×C×H×W) model converted to channels-last: kernels transposed, flatten order fixed"
            )
        return self.shape

    # -- one node ---------------------------------------------------------------------------------------
    def _node(self, node: Any) -> None:
        data = [name for name in node.input if name == self.current]
        stale = [name for name in node.input if name in self.seen and name != self.current]
        if stale:
            raise _refused(node, f"reading an earlier tensor {stale[0]} (a branch)")
        if not data:
            if node.op_type in SHAPE_OPS or node.op_type in SKIPPED:
                self._constant(node)
                return
            raise _refused(node, "off the main chain")
        if node.op_type == "Shape":
            return  # only feeds a Reshape's target shape
        if node.op_type in SKIPPED:
            if node.op_type == "Dropout":
                self.chain.notes.append(f"Dropout {self._name(node, 'dropout')} dropped (it only acts during training)")
            self.current = node.output[0]
            return
        handler = getattr(self, f"_{node.op_type.lower()}", None)
        if handler is None:
            raise _refused(node)
        handler(node, _attributes(node))
        self.seen.add(self.current)
        self.current = node.output[0]

    def _constant(self, node: Any) -> None:
        """Constants and copies of constants (PyTorch's exporter shares equal weights through Identity)."""
        if node.op_type == "Identity" and node.input[0] in self.constants:
            self.constants[node.output[0]] = self.constants[node.input[0]]
        elif node.op_type == "Constant":
            from onnx import numpy_helper

            for attribute in node.attribute:
                if attribute.name == "value":
                    self.constants[node.output[0]] = numpy_helper.to_array(attribute.t)

    def _weight(self, node: Any, index: int) -> np.ndarray | None:
        if index >= len(node.input) or not node.input[index]:
            return None
        try:
            return np.asarray(self.constants[node.input[index]], np.float32)
        except KeyError:
            raise _refused(node, f"with a computed weight {node.input[index]}") from None

    def _name(self, node: Any, kind: str) -> str:
        """The PyTorch module's own name ("/features/features.conv1/Conv" → "features_conv1"), or else the kind
        and its number ("/features/features.3/Conv" → "conv_2"): the views' column titles are for people.

        The dynamo exporter names nodes after operators ("node_linear_1"), not modules: those get kind names too.
        """
        parts = [part for part in (node.name or "").split("/") if part and part != node.op_type]
        module = "" if not parts or node.name.startswith("node_") else parts[-1]
        if module and not module.rsplit(".", 1)[-1].isdigit():
            return module.replace(".", "_")
        self.numbered[kind] += 1
        return kind if kind in ONE_OF_A_KIND else f"{kind}_{self.numbered[kind]}"

    def _need_image(self, node: Any) -> None:
        if len(self.shape) != 3:
            raise _refused(node, "after the flatten")
        if self.layout != "nchw":
            raise _refused(node, "on a channels-last tensor")

    def _padding(self, attributes: dict[str, Any], window: tuple[int, int], stride: tuple[int, int]) -> Padding:
        """'valid', 'same' (extra pixel at the end, as Keras) where the pads are those, else the pads themselves:
        PyTorch's `padding=k // 2` with stride 2 pads both sides equally, which 'same' does not on even sizes."""
        auto = attributes.get("auto_pad", "NOTSET")
        top, left, bottom, right = attributes.get("pads", [0, 0, 0, 0])
        if auto == "VALID" or (auto == "NOTSET" and not any((top, left, bottom, right))):
            return "valid"
        same = (
            same_padding(self.shape[0], window[0], stride[0]),
            same_padding(self.shape[1], window[1], stride[1]),
        )
        if auto == "SAME_UPPER" or (auto == "NOTSET" and ((top, bottom), (left, right)) == same):
            return "same"
        if auto != "NOTSET":  # SAME_LOWER: the extra pixel at the start
            return tuple((amount - amount // 2, amount // 2) for amount in map(sum, same))
        return (top, bottom), (left, right)

    def _append(self, layer: Any, node: Any) -> None:
        self.chain.add(layer, node.output[0])
        self.shape = tuple(layer.output_shape(self.shape))

    # -- operators (method name = "_" + op type in lower case) ------------------------------------------------
    def _conv(self, node: Any, attributes: dict[str, Any]) -> None:
        self._need_image(node)
        weight = self._weight(node, 1)
        if attributes.get("group", 1) != 1 or any(d != 1 for d in attributes.get("dilations", [1, 1])):
            raise _refused(node, "with groups or dilation")
        if weight is None or weight.ndim != 4:
            raise _refused(node, "that is not a 2-D convolution")
        bias = self._weight(node, 2)
        kernel = weight.transpose(2, 3, 1, 0)  # (out, in, rows, cols) → (rows, cols, in, out)
        stride = tuple(attributes.get("strides", [1, 1]))
        padding = self._padding(attributes, kernel.shape[:2], stride)
        bias = np.zeros(kernel.shape[3], np.float32) if bias is None else bias
        self._append(Conv2D(self._name(node, "conv"), kernel, bias, stride=stride, padding=padding), node)

    def _batchnormalization(self, node: Any, attributes: dict[str, Any]) -> None:
        scale, offset, mean, variance = (self._weight(node, index) for index in (1, 2, 3, 4))
        self.chain.fold_batch_norm(
            self._name(node, "batch_norm"), scale, offset, mean, variance, attributes.get("epsilon", 1e-5)
        )
        self.chain.sources[self.chain.layers[-1].name] = node.output[0]

    def _relu(self, node: Any, attributes: dict[str, Any]) -> None:
        self._append(ReLU(self._name(node, "relu")), node)

    def _leakyrelu(self, node: Any, attributes: dict[str, Any]) -> None:
        slope = float(attributes.get("alpha", LEAKY_DEFAULT))
        if not 0 <= slope <= 1:
            raise _refused(node, f"with slope {slope}, outside 0–1")
        self._append(ReLU(self._name(node, "leaky_relu"), negative_slope=slope), node)

    def _pool(self, node: Any, attributes: dict[str, Any], mode: str) -> None:
        self._need_image(node)
        window = tuple(attributes["kernel_shape"])
        stride = tuple(attributes.get("strides", [1, 1]))
        if any(d != 1 for d in attributes.get("dilations", [1, 1])) or len(node.output) > 1:
            raise _refused(node, "with dilation or indices")
        padding = self._padding(attributes, window, stride)
        if mode == "average" and padding != "valid":
            raise _refused(node, "averaging over padding")
        layer = MaxPool2D(self._name(node, "max_pool" if mode == "max" else "avg_pool"), window, stride, padding, mode)
        if attributes.get("ceil_mode", 0):
            rows, cols = map(sum, layer.pad_amounts(*self.shape[:2]))
            floor_rows = layer.output_shape(self.shape)[0]
            if (self.shape[0] + rows - window[0]) % stride[0] or (self.shape[1] + cols - window[1]) % stride[1]:
                raise _refused(node, f"in ceil_mode where it adds a row or column (floor mode gives {floor_rows})")
        self._append(layer, node)

    def _maxpool(self, node: Any, attributes: dict[str, Any]) -> None:
        self._pool(node, attributes, "max")

    def _averagepool(self, node: Any, attributes: dict[str, Any]) -> None:
        self._pool(node, attributes, "average")

    def _transpose(self, node: Any, attributes: dict[str, Any]) -> None:
        """Only layout changes of the image (tf2onnx wraps convolutions in them): they move no number here."""
        perm = list(attributes.get("perm", []))
        if len(self.shape) == 3 and perm == [0, 3, 1, 2] and self.layout == "nhwc":
            self.layout = "nchw"
        elif len(self.shape) == 3 and perm == [0, 2, 3, 1] and self.layout == "nchw":
            self.layout = "nhwc"
        else:
            raise _refused(node, f"to {perm}")

    def _flatten(self, node: Any, attributes: dict[str, Any]) -> None:
        if attributes.get("axis", 1) != 1:
            raise _refused(node, f"from axis {attributes['axis']}")
        if len(self.shape) == 3:
            name = self._name(node, "flatten")
            if self.layout == "nchw":
                height, width, channels = self.shape
                self.flatten_from = (channels, height, width)
                self.chain.notes.append(
                    f"{name}: PyTorch-style flatten (channel by channel) turned into cnnviz's "
                    "(pixel by pixel); the next dense layer's weights are reordered to match"
                )
            self._append(Flatten(name), node)

    def _reshape(self, node: Any, attributes: dict[str, Any]) -> None:
        target = self.constants.get(node.input[1]) if len(node.input) > 1 else None
        if target is not None and len(target) != 2:
            raise _refused(node, f"to {list(target)}, which is not a flatten")
        self._flatten(node, {})

    def _dense(self, node: Any, kernel: np.ndarray, bias: np.ndarray | None) -> None:
        """A dense layer with kernel (inputs, units); rows reordered after a channels-first flatten."""
        if len(self.shape) != 1 or kernel.ndim != 2 or kernel.shape[0] != self.shape[0]:
            raise _refused(node, "that is not a dense layer here")
        if self.flatten_from is not None:
            channels, height, width = self.flatten_from
            kernel = kernel.reshape(channels, height, width, -1).transpose(1, 2, 0, 3).reshape(kernel.shape)
            self.flatten_from = None
        bias = np.zeros(kernel.shape[1], np.float32) if bias is None else np.broadcast_to(bias, kernel.shape[1])
        self._append(Dense(self._name(node, "dense"), kernel, bias), node)

    def _gemm(self, node: Any, attributes: dict[str, Any]) -> None:
        if attributes.get("transA", 0):
            raise _refused(node, "with transA")
        weight, bias = self._weight(node, 1), self._weight(node, 2)
        kernel = weight.T if attributes.get("transB", 0) else weight
        bias = None if bias is None else bias * attributes.get("beta", 1.0)
        self._dense(node, kernel * attributes.get("alpha", 1.0), bias)

    def _matmul(self, node: Any, attributes: dict[str, Any]) -> None:
        self._dense(node, self._weight(node, 1), None)

    def _add(self, node: Any, attributes: dict[str, Any]) -> None:
        """The bias of a MatMul-based dense layer (the ONNX form of x @ W + b)."""
        bias = self._weight(node, 1 if node.input[0] == self.current else 0)
        previous = self.chain.layers[-1] if self.chain.layers else None
        if not isinstance(previous, Dense) or bias is None or bias.size not in (1, previous.bias.size):
            raise _refused(node, "that is not a dense layer's bias")
        previous.bias = (previous.bias + bias.reshape(-1)).astype(np.float32)
        self.chain.sources[previous.name] = node.output[0]

    def _softmax(self, node: Any, attributes: dict[str, Any]) -> None:
        if len(self.shape) != 1 or attributes.get("axis", -1) not in (-1, 1):
            raise _refused(node, "over an image")
        self._append(Softmax(self._name(node, "softmax")), node)


def _refused(node: Any, detail: str = "") -> ModelImportError:
    """ "Node features/3 (Sigmoid) …": the node's name and its operator once each (PyTorch's names end in it)."""
    name = (node.name or "").removesuffix(f"/{node.op_type}").strip("/")
    described = f"Node {name} ({node.op_type})" if name and name != node.op_type else f"A {node.op_type} node"
    return unsupported(f"{described} {detail}".rstrip())


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    values = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in values.items()}
