"""The tutorial article's text: one Markdown file per section, in reading order, with stable anchor ids.

No UI import, so the state and the tests can name sections without loading Panel. Each file starts with its
`## Title` line; the rest is Markdown with `$$…$$` (display) and `$…$` (inline) formulas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib.resources import files

import numpy as np

from cnnviz.engine import Network

SECTION_ANCHORS: dict[str, str] = {
    key: f"article-{key}"
    for key in (
        "intro",
        "input",
        "convolution",
        "hyperparameters",
        "relu",
        "max-pooling",
        "flatten",
        "output",
        "softmax",
        "loss",
        "gradients",
        "backpropagation",
        "learning-rate",
        "how-to-use",
        "limits",
    )
}
"""Section key -> DOM id of its heading, in reading order. Other views link here; the ids never change."""

LAYER_KIND_SECTIONS: dict[str, str] = {
    "input": "input",
    "conv2d": "convolution",
    "relu": "relu",
    "maxpool2d": "max-pooling",
    "flatten": "flatten",
    "dense": "output",
    "softmax": "softmax",
}
"""Engine layer kind (`Layer.kind`, or "input") -> the SECTION_ANCHORS key that explains it."""
BACKWARD_SECTIONS: dict[str, str] = {"softmax": "loss"}
"""Layer kind -> the section explaining its backward step, where it is not "backpropagation"."""


def section_for(kind: str, backward: bool) -> str:
    """The article anchor a view of a layer of `kind` links to, forward or backward."""
    return SECTION_ANCHORS[BACKWARD_SECTIONS.get(kind, "backpropagation") if backward else LAYER_KIND_SECTIONS[kind]]


def read_section(key: str, facts: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(title, Markdown body) of one section; the title is the file's leading `## ` line.

    `{{name}}` in the text stands for a fact about the explained network (`network_facts`); without `facts`
    they are those of the bundled network.
    """
    if key not in SECTION_ANCHORS:
        raise KeyError(f"no article section {key!r}; sections are {', '.join(SECTION_ANCHORS)}")
    text = files(__name__).joinpath(f"{key}.md").read_text(encoding="utf-8")
    if facts is None and "{{" in text:
        from cnnviz.resources import shared_network  # the weights load once per process, shared

        facts = network_facts(shared_network())
    if facts is not None:
        text = re.sub(r"\{\{(\w+)\}\}", lambda match: facts[match[1]], text)
    heading, _, body = text.partition("\n")
    if not heading.startswith("## "):
        raise ValueError(f"article section {key!r} must start with a '## ' title line, not {heading!r}")
    return heading.removeprefix("## ").strip(), body.strip()


_NUMBER_WORDS = [
    "no",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def _words(count: int) -> str:
    return _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else f"{count:,}"


def _cross(*sizes: int) -> str:
    return " × ".join(str(size) for size in sizes)


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def network_facts(network: Network) -> dict[str, str]:
    """What the article says about the network, read off the network itself (sizes, names, counts)."""
    height, width, channels = network.input_shape
    infos = network.infos
    classes = network.class_names or tuple(f"class {i + 1}" for i in range(infos[-1].shape[-1]))
    convs = [info for info in infos if info.kind == "conv2d"]
    first = network.layer(convs[0].name)
    kernel_rows, kernel_cols = first.window
    flat = next((info for info in infos if info.kind == "flatten"), infos[-1])
    block = infos[infos.index(flat) - 1].shape
    flat_size = flat.shape[-1]
    dense = next(info for info in reversed(infos) if info.kind == "dense")
    dense_parameters = flat_size * dense.shape[-1] + dense.shape[-1]
    kinds = [info.kind for info in infos]
    pools = sum(kind in ("maxpool2d", "avgpool2d") for kind in kinds)
    grids = (
        "A colour photo is three grids of numbers stacked on top of each other: one for red, one for green and one "
        "for blue."
        if channels == 3
        else "This network reads a grey picture: one grid of numbers, one for each pixel."
        if channels == 1
        else f"This network reads {_words(channels)} grids of numbers stacked on top of each other."
    )
    (pad_top, pad_bottom), _ = first.pad_amounts(height, width)
    out_rows, out_cols, neurons = convs[0].shape
    weights = kernel_rows * kernel_cols * channels
    positions = out_rows * out_cols
    dense_equivalent = height * width * channels * positions
    pool = next((info for info in infos if info.kind in ("maxpool2d", "avgpool2d")), None)
    if pool is None:
        pool_sentence = ""
    else:
        pool_layer, pool_input = network.layer(pool.name), infos[infos.index(pool) - 1].shape[0]
        pool_sentence = (
            f"The same rule holds for pooling: {pool.name} has a {_cross(*pool_layer.window)} window and stride "
            f"{pool_layer.stride[0]}, so ⌊({pool_input} − {pool_layer.window[0]}) / {pool_layer.stride[0]}⌋ + 1 = "
            f"{pool.shape[0]}. "
        )
    pools_described = [
        f"{_cross(*infos[infos.index(info) - 1].shape[:2])} becomes {_cross(*info.shape[:2])} in {info.name}"
        for info in infos
        if info.kind in ("maxpool2d", "avgpool2d")
    ]
    activation = next((info for info in infos if info.kind == "relu"), convs[0])
    chain = [height] + [info.shape[0] for info in infos[1:] if len(info.shape) == 3]
    chain = [size for i, size in enumerate(chain) if i == 0 or size != chain[i - 1]]
    return {
        "input_size": _cross(height, width),
        "input_short_side": str(min(height, width)),
        "input_numbers": f"{_cross(height, width, channels)} = {height * width * channels:,}",
        "input_grids": grids,
        "input_grid_count": _words(channels),
        "input_channels_read": "the one input channel" if channels == 1 else f"all {_words(channels)} input channels",
        "later_convolutions_read": (
            " Every later convolution reads all the channels of the layer before it, one kernel per channel."
            if len(convs) > 1
            else ""
        ),
        "later_convolutions_count": (
            "; every later convolution counts its own the same way, with one kernel per channel it reads"
            if len(convs) > 1
            else ""
        ),
        "input_grid_noun": "square is" if channels == 1 else "squares are",
        "parameter_count": f"{network.parameter_count:,}",
        "class_count": str(len(classes)),
        "class_names": _listed(classes),
        "wrong_class_count": _words(len(classes) - 1),
        "uniform_probability": f"{1 / len(classes):.3g}",
        "uniform_loss": f"{np.log(len(classes)):.3f}",
        "layers": (
            f"an input layer, {_words(len(convs))} convolution layer{'s' * (len(convs) != 1)} (each followed by an "
            f"activation), {_words(pools)} pooling layer{'s' * (pools != 1)}, then flatten, a dense output layer "
            "and softmax"
        ),
        "first_conv": convs[0].name,
        "first_conv_neurons": str(convs[0].shape[-1]),
        "kernel_size": _cross(kernel_rows, kernel_cols),
        "kernel_values": str(kernel_rows * kernel_cols),
        "first_conv_output": _cross(*convs[0].shape[:2]),
        "kernel_rows": str(kernel_rows),
        "kernel_last_row": str(kernel_rows - 1),
        "kernel_last_col": str(kernel_cols - 1),
        "first_conv_weights": f"{_cross(kernel_rows, kernel_cols, channels)} = {weights:,}",
        "first_conv_positions": f"{positions:,}",
        "fully_connected_weights": (
            f"{height * width * channels:,} × {positions:,}, roughly {float(f'{dense_equivalent:.2g}'):,.0f}"
        ),
        "first_conv_parameters": f"{neurons} × {weights} + {neurons} = {neurons * weights + neurons:,}",
        "first_conv_padding": (
            f"The first convolution here uses no padding, which is why {height} becomes {out_rows}."
            if pad_top + pad_bottom == 0
            else f"The first convolution here pads {pad_top} ring{'s' * (pad_top != 1)} of zeros."
        ),
        "first_conv_arithmetic": (
            f"⌊({height} + {pad_top + pad_bottom} − {kernel_rows}) / {first.stride[0]}⌋ + 1 = {out_rows}"
        ),
        "pool_sentence": pool_sentence,
        "pool_sizes": f"Here {_listed(pools_described)}." if pools_described else "",
        "first_activation": activation.name,
        "first_activation_block": _cross(*activation.shape),
        "size_chain": " → ".join(map(str, chain)),
        "flatten_block": _cross(*block),
        "flatten_size": str(flat_size),
        "flatten_channels": str(block[-1]),
        "dense_parameters": f"{_cross(flat_size, dense.shape[-1])} + {dense.shape[-1]} = {dense_parameters:,}",
        "dense_share": f"{100 * dense_parameters / network.parameter_count:.0f}",
    }
