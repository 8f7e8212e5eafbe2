"""`cnnviz import`: Keras and ONNX (PyTorch-exported) models reproduce their framework's outputs layer by layer."""

from __future__ import annotations

import collections
import zipfile

import numpy as np
import pytest
from test_architecture_matrix import check_explanations

from cnnviz.cli import main
from cnnviz.engine import Network
from cnnviz.importers import ModelImportError, explained_model, import_model, to_network

TOLERANCE = 1e-4


def images(shape: tuple[int, ...], count: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


def engine_outputs(network: Network, batch: np.ndarray) -> dict[str, np.ndarray]:
    return {layer.name: output for layer, output in network.forward(batch)}


# -- Keras ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_model():
    keras = pytest.importorskip("keras", reason="Keras imports need the `train` extra (TensorFlow)")
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255, name="scale"),
            keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_a"),
            keras.layers.BatchNormalization(name="norm_a"),
            keras.layers.LeakyReLU(negative_slope=0.1, name="leaky_a"),
            keras.layers.MaxPooling2D(2, name="pool_a"),
            keras.layers.Conv2D(6, 5, padding="valid", activation="relu", name="conv_b"),
            keras.layers.AveragePooling2D(2, name="pool_b"),
            keras.layers.Dropout(0.3, name="drop"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(12, activation="relu", name="hidden"),
            keras.layers.Dense(4, activation="softmax", name="classes"),
        ]
    )
    norm = model.get_layer("norm_a")
    rng = np.random.default_rng(5)
    norm.set_weights([rng.uniform(0.5, 2, 8), rng.normal(0, 1, 8), rng.normal(0, 1, 8), rng.uniform(0.2, 3, 8)])
    return model


def keras_layer_outputs(model, batch: np.ndarray) -> dict[str, np.ndarray]:
    import keras

    probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
    return {layer.name: np.asarray(output) for layer, output in zip(model.layers, probe(batch), strict=True)}


@pytest.mark.train
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_file_reproduces_every_layer(keras_model, tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    keras_model.save(path)
    imported = import_model(path, class_names=("a", "b", "c", "d"))
    batch = images((32, 32, 3))
    expected = keras_layer_outputs(keras_model, batch * 255)  # the model rescales pixels itself
    ours = engine_outputs(imported.network, batch)
    assert set(imported.sources.values()) == {
        "norm_a",
        "leaky_a",
        "pool_a",
        "conv_b",
        "pool_b",
        "flat",
        "hidden",
        "classes",
    }
    for engine_name, keras_name in imported.sources.items():
        np.testing.assert_allclose(ours[engine_name], expected[keras_name], atol=TOLERANCE, err_msg=engine_name)
    check_explanations(imported.network.trace(batch[0]))
    notes = " ".join(imported.notes)
    assert "norm_a folded into conv_a" in notes and "drop" in notes and "Rescaling" in notes
    assert imported.network.class_names == ("a", "b", "c", "d")


@pytest.mark.train
def test_a_keras_model_object_becomes_a_network(keras_model):
    network = to_network(keras_model)
    assert network.input_shape == (32, 32, 3) and network.infos[-1].shape == (4,)
    assert network.class_names == ("class 0", "class 1", "class 2", "class 3")
    assert to_network(network) is network


@pytest.mark.train
def test_unsupported_keras_layers_are_named(tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="tanh", name="odd_conv"),
            keras.layers.Flatten(),
        ]
    )
    path = tmp_path / "tanh.keras"
    model.save(path)
    with pytest.raises(ModelImportError, match=r"^Layer odd_conv \(Conv2D with activation 'tanh'\) is not supp"):
        import_model(path)
    pooled = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(name="squeeze")])
    with pytest.raises(ModelImportError) as refused:
        to_network(pooled)
    assert str(refused.value).startswith("Layer squeeze (GlobalAveragePooling2D) is not supported. cnnviz can import")
    assert str(refused.value).count("squeeze") == 1 and str(refused.value).count("not supported") == 1
    after_relu = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c"),
            keras.layers.BatchNormalization(name="late_norm"),
        ]
    )
    with pytest.raises(ModelImportError, match="late_norm after c_relu"):
        to_network(after_relu)


# -- ONNX from PyTorch (channels-first) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_model():
    torch = pytest.importorskip("torch", reason="PyTorch tests need the `import` extra (torch, onnx)")
    pytest.importorskip("onnx", reason="ONNX tests need the `import` extra (onnx)")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        collections.OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1),
            bn1=nn.BatchNorm2d(8),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(8, 6, 5),
            leaky2=nn.LeakyReLU(0.1),
            pool2=nn.AvgPool2d(2),
            flatten=nn.Flatten(),
            drop=nn.Dropout(0.5),
            fc1=nn.Linear(6 * 6 * 6, 12),
            relu3=nn.ReLU(),
            fc2=nn.Linear(12, 5),
        )
    )
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-1, 1)
        model.bn1.running_var.uniform_(0.3, 2)
        model.bn1.weight.uniform_(0.5, 1.5)
        model.bn1.bias.uniform_(-0.5, 0.5)
    return model.eval()


def torch_layer_outputs(model, batch_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    """Each module's output, channels-last (as the engine holds it) for images, by module name."""
    import torch

    outputs = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach().numpy()))
        for name, module in model.named_children()
    ]
    with torch.no_grad():
        model(torch.from_numpy(batch_nhwc.transpose(0, 3, 1, 2).copy()))
    for hook in hooks:
        hook.remove()
    return {name: value.transpose(0, 2, 3, 1) if value.ndim == 4 else value for name, value in outputs.items()}


def export_onnx(model, path, fold_constants: bool) -> None:
    import torch

    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, do_constant_folding=fold_constants)


@pytest.mark.onnx
@pytest.mark.parametrize("fold_constants", [True, False], ids=["bn-folded-by-torch", "bn-in-the-file"])
def test_pytorch_onnx_reproduces_every_layer(torch_model, tmp_path, fold_constants):
    import onnx

    path = tmp_path / "net.onnx"
    export_onnx(torch_model, path, fold_constants)
    imported = import_model(path)
    network = imported.network
    assert network.input_shape == (32, 32, 3)
    batch = images((32, 32, 3))
    ours = engine_outputs(network, batch)
    expected = torch_layer_outputs(torch_model, batch)
    node_of = {output: node.name for node in onnx.load(str(path)).graph.node for output in node.output}
    compared = set()
    for engine_name, tensor in imported.sources.items():
        module = node_of[tensor].split("/")[1] if tensor in node_of else None
        if module is None or module == "flatten":
            continue  # the flatten order differs by design; the dense layer after it checks the reordering
        if fold_constants and module == "conv1":
            module = "bn1"  # torch's exporter folded the batch norm into the convolution already
        np.testing.assert_allclose(ours[engine_name], expected[module], atol=TOLERANCE, err_msg=engine_name)
        compared.add(module)
    assert {"relu1", "pool1", "conv2", "leaky2", "pool2", "fc1", "relu3", "fc2"} <= compared
    check_explanations(network.trace(batch[0]))
    assert "bn1" in compared
    notes = " ".join(imported.notes)
    assert "channels-first" in notes and "flatten" in notes
    assert ("folded into conv1" in notes) != fold_constants
    assert network.layers[-1].kind == "softmax" and "added a softmax" in notes


@pytest.mark.onnx
def test_pytorch_padding_of_half_the_kernel_with_stride_two_is_reproduced(tmp_path):
    """`padding=k // 2` with stride 2 on an even size pads both sides, where Keras' 'same' pads only the end: the
    engine takes PyTorch's own amounts, and every layer equals PyTorch's."""
    torch = pytest.importorskip("torch", reason="PyTorch tests need the `import` extra (torch, onnx)")
    onnx = pytest.importorskip("onnx", reason="ONNX tests need the `import` extra (onnx)")
    nn = torch.nn
    torch.manual_seed(1)
    model = nn.Sequential(
        collections.OrderedDict(
            conv1=nn.Conv2d(3, 4, 3, stride=2, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(4, 5, 5, stride=2, padding=2),
            pool=nn.MaxPool2d(3, stride=2, padding=1),
            flatten=nn.Flatten(),
            fc=nn.Linear(5 * 4 * 4, 3),
        )
    ).eval()
    path = tmp_path / "strided.onnx"
    export_onnx(model, path, fold_constants=True)
    imported = import_model(path)
    paddings = [layer.padding for layer in imported.network.layers if hasattr(layer, "padding")]
    assert paddings == [((1, 1), (1, 1)), ((2, 2), (2, 2)), ((1, 1), (1, 1))]
    batch = images((32, 32, 3), seed=4)
    ours, expected = engine_outputs(imported.network, batch), torch_layer_outputs(model, batch)
    module_of = {output: node.name.split("/")[1] for node in onnx.load(str(path)).graph.node for output in node.output}
    compared = {module_of[tensor]: engine_name for engine_name, tensor in imported.sources.items()}
    for name in ("conv1", "relu1", "conv2", "pool", "fc"):
        np.testing.assert_allclose(ours[compared[name]], expected[name], atol=TOLERANCE, err_msg=name)
    check_explanations(imported.network.trace(batch[0]))
    loaded = Network.load(imported.network.save(tmp_path / "strided.npz"))
    np.testing.assert_array_equal(loaded.predict(batch), imported.network.predict(batch))


@pytest.mark.onnx
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_onnx_auto_padding_is_reproduced(tmp_path, auto_pad):
    onnx = pytest.importorskip("onnx", reason="ONNX tests need the `import` extra (onnx)")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(2)
    weight, bias = rng.normal(size=(4, 3, 3, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    dense = rng.normal(size=(4 * 5 * 5, 2)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", strides=[2, 2], auto_pad=auto_pad),
        helper.make_node("Flatten", ["c"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "d"], ["y"], name="dense"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(array, name) for array, name in ((weight, "w"), (bias, "b"), (dense, "d"))],
    )
    path, model = tmp_path / "auto.onnx", helper.make_model(graph)
    onnx.save(model, str(path))
    network = import_model(path).network
    assert network.layers[0].padding == ("same" if auto_pad == "SAME_UPPER" else ((1, 0), (1, 0)))  # extra pixel first
    batch = images((10, 10, 3), count=1)
    (logits,) = ReferenceEvaluator(model).run(None, {"x": batch.transpose(0, 3, 1, 2)})
    np.testing.assert_allclose(engine_outputs(network, batch)[network.layers[-2].name], logits, atol=TOLERANCE)


def export_with_dynamo(model, path) -> None:
    """PyTorch's default exporter since 2.9 (torch.export based; needs onnxscript)."""
    import torch

    pytest.importorskip("onnxscript", reason="PyTorch's default ONNX exporter needs onnxscript")
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), verbose=False)


def export_by(exporter: str, model, path) -> None:
    """PyTorch's torch.export-based exporter ("dynamo") or its older TorchScript one, constants left as they are."""
    if exporter == "dynamo":
        export_with_dynamo(model, path)
    else:
        export_onnx(model, path, fold_constants=False)


@pytest.mark.onnx
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_onnx_reference_evaluator_agrees_layer_by_layer(torch_model, tmp_path, exporter):
    """The same check against onnx's own reference evaluator, reading every intermediate tensor, for both of
    PyTorch's exporters; the final probabilities are also PyTorch's own."""
    import onnx
    import torch
    from onnx.reference import ReferenceEvaluator

    path = tmp_path / "net.onnx"
    export_by(exporter, torch_model, path)
    imported = import_model(path)
    model = onnx.load(str(path))
    wanted = [tensor for tensor in imported.sources.values() if tensor not in {o.name for o in model.graph.output}]
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in wanted)
    batch = images((32, 32, 3), count=1 if exporter == "dynamo" else 2, seed=3)  # dynamo fixes the batch size
    names = [output.name for output in model.graph.output]
    feed = {model.graph.input[0].name: batch.transpose(0, 3, 1, 2)}
    values = dict(zip(names, ReferenceEvaluator(model).run(None, feed), strict=True))
    ours = engine_outputs(imported.network, batch)
    for engine_name, tensor in imported.sources.items():
        reference = values[tensor]
        if reference.ndim == 4:
            reference = reference.transpose(0, 2, 3, 1)
        elif imported.network.layer(engine_name).kind == "flatten":
            reference = ours[engine_name]  # compared through the dense layer that follows
        np.testing.assert_allclose(ours[engine_name], reference, atol=TOLERANCE, err_msg=engine_name)
    with torch.no_grad():
        expected = torch.softmax(torch_model(torch.from_numpy(feed[model.graph.input[0].name])), dim=1).numpy()
    np.testing.assert_allclose(imported.network.predict(batch), expected, atol=TOLERANCE)


@pytest.mark.onnx
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_numbered_pytorch_modules_get_names_by_kind_and_order(tmp_path, exporter):
    """nn.Sequential numbers its modules ("0", "features.3"); the columns of the views need names people read."""
    torch = pytest.importorskip("torch", reason="PyTorch tests need the `import` extra (torch, onnx)")
    pytest.importorskip("onnx", reason="ONNX tests need the `import` extra (onnx)")
    nn = torch.nn
    features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
    model = nn.Sequential(
        collections.OrderedDict(
            features=features,
            leaky=nn.LeakyReLU(),
            pool=nn.AvgPool2d(2),
            head=nn.Sequential(nn.Flatten(), nn.Dropout(), nn.Linear(4 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, 3)),
        )
    ).eval()
    path = tmp_path / "numbered.onnx"
    export_by(exporter, model, path)
    imported = import_model(path)
    assert imported.network.layer_names == (
        "conv_1", "relu_1", "max_pool_1", "conv_2", "leaky" if exporter == "torchscript" else "leaky_relu_1",
        "pool" if exporter == "torchscript" else "avg_pool_1", "flatten", "dense_1", "relu_2", "dense_2", "softmax",
    )  # fmt: skip
    if exporter == "torchscript":
        assert "batch normalisation batch_norm_1 folded into conv_1" in " ".join(imported.notes)


@pytest.mark.onnx
def test_onnx_branches_and_unknown_operators_are_refused(tmp_path):
    onnx = pytest.importorskip("onnx", reason="ONNX tests need the `import` extra (onnx)")
    helper = onnx.helper
    image = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    for nodes, message in (
        ([helper.make_node("Sigmoid", ["x"], ["y"], name="squash")], "Node squash (Sigmoid) is not supported. "),
        ([helper.make_node("Sigmoid", ["x"], ["y"])], "A Sigmoid node is not supported. "),
        (  # PyTorch's names end in the operator: said once
            [helper.make_node("Sigmoid", ["x"], ["y"], name="/features/features.3/Sigmoid")],
            "Node features/features.3 (Sigmoid) is not supported. ",
        ),
        (
            [helper.make_node("Relu", ["x"], ["r"], name="r"), helper.make_node("Add", ["r", "x"], ["y"], name="skip")],
            "Node skip (Add) reading an earlier tensor x (a branch) is not supported. ",
        ),
    ):
        path = tmp_path / "bad.onnx"
        onnx.save(helper.make_model(helper.make_graph(nodes, "g", [image], [out])), str(path))
        with pytest.raises(ModelImportError) as refused:
            import_model(path)
        assert str(refused.value).startswith(message) and "cnnviz can import: Conv2D" in str(refused.value)


# -- the command ---------------------------------------------------------------------------------------------


@pytest.mark.onnx
def test_cnnviz_import_writes_weights_the_engine_loads(torch_model, tmp_path, capsys):
    model_path, out = tmp_path / "net.onnx", tmp_path / "net.npz"
    export_onnx(torch_model, model_path, fold_constants=True)
    assert main(["import", str(model_path), "--out", str(out), "--classes", "a,b,c,d,e"]) == 0
    printed = capsys.readouterr().out
    assert "channels-first" in printed and f"cnnviz serve --weights {out}" in printed
    network = Network.load(out)
    assert network.class_names == ("a", "b", "c", "d", "e")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.onnx", None, "There is no model file at"),
        ("broken.onnx", b"not a protobuf at all", "is not a readable ONNX model"),
        ("broken.keras", b"PK\x03\x04 truncated", "broken.keras is not a readable Keras model: a .keras file is a zip"),
        ("notes.keras", b"a text file, renamed", "notes.keras is not a readable Keras model: a .keras file is a zip"),
        ("noise.h5", bytes(range(256)) * 8, "noise.h5 is not a readable Keras model: a .h5 file is an HDF5 file"),
        ("weights.txt", b"hello", "is not a model file cnnviz knows"),
        ("tiny.npz", b"PK", "is a cnnviz weights file already"),
    ],
)
def test_bad_model_files_get_one_sentence(tmp_path, capsys, name, content, message):
    if name.endswith(".onnx"):
        pytest.importorskip("onnx", reason="ONNX tests need the `import` extra (onnx)")
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["import", str(path)]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert error.count("\n") == 1


@pytest.mark.train
def test_a_zip_that_is_no_keras_model_gets_one_sentence(tmp_path, capsys):
    pytest.importorskip("keras", reason="Keras imports need the `train` extra (TensorFlow)")
    path = tmp_path / "photos.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat.txt", "not a model")
    assert main(["import", str(path)]) == 2
    error = capsys.readouterr().err
    assert "photos.keras is not a readable Keras model (" in error and error.count("\n") == 1


def test_a_renamed_file_as_the_explained_model_is_named(tmp_path):
    """The app's route (Explainer(network=path)) says the same sentence as the CLI, naming the file."""
    path = tmp_path / "mine.keras"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelImportError, match=r"^mine\.keras is not a readable Keras model: a \.keras file is a zip"):
        explained_model(path)


def test_the_app_never_imports_a_training_or_import_framework():
    """Pyodide has none of them: importers and datasets load TensorFlow, onnx and torch only when a file needs it."""
    import subprocess
    import sys

    heavy = ("tensorflow", "keras", "onnx", "onnxruntime", "torch")
    code = (
        "import sys, cnnviz.app, cnnviz.importers, cnnviz.datasets.folder, cnnviz.datasets.shapes, "
        "cnnviz.training.architecture; "
        f"print(sorted(name for name in {heavy!r} if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
