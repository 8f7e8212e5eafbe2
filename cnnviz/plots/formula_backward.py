"""The backward formula views drawn: how the loss's gradient passes through one layer, as maps and HTML tables.

The backward twin of `plots.formula`: `explain_backward` asks the engine (`engine.explain_backward`) once per
opened neuron, `maps_element` / `window_marks` (shared with the forward views) draw the layer's two sides and the
window, and `backward_numbers_html` writes out the arithmetic at one position. The window position means what it
means forward (output row, col of the layer), so the state's `row` / `col` link both directions.

Gradients get their own colour map, the one every backward view uses (`colors.GRADIENT`: purple negative, white
zero, green positive), so a learner never mistakes a gradient for an activation and reads the same colours at every
level.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnnviz.engine import Trace
from cnnviz.engine.explain import flatten_position
from cnnviz.engine.explain_backward import (
    dense_gradient,
    dense_input_terms,
    input_gradient_step,
    kernel_gradient_sweep,
    output_gradient,
    pool_routing,
    relu_gate,
    unflatten_gradient,
    weight_update,
)
from cnnviz.engine.gradients import Backward
from cnnviz.plots.formula import (
    MapsLayout,
    Shade,
    _chip_style,
    _figure,
    _grid,
    _half_range,
    _input_name,
    _map_shade,
    _op,
    _status,
    _value,
    format_number,
    operation_title,
)
from cnnviz.quiz import significant

BACKWARD_KINDS = ("conv2d", "relu", "maxpool2d", "flatten", "dense", "softmax")
"""Layer kinds whose backward step has a formula view."""

BACKWARD_MAP_KINDS = ("conv2d", "relu", "maxpool2d")
"""Backward views that slide a window over maps (the others explain one entry of a vector)."""

TEX = {
    "conv2d": (
        r"\frac{\partial L}{\partial w_{u,v}} = \sum_{i,j} x_{i+u,\,j+v}\,\frac{\partial L}{\partial y_{i,j}}",
        r"\frac{\partial L}{\partial b} = \sum_{i,j} \frac{\partial L}{\partial y_{i,j}}",
        r"w \leftarrow w - \eta\,\frac{\partial L}{\partial w}",
    ),
    "relu": (
        r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\cdot\frac{dy}{dx}",
        r"\frac{dy}{dx} = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}",
    ),
    "maxpool2d": (
        r"\frac{\partial L}{\partial x_{m}} = \begin{cases} \frac{\partial L}{\partial y} & x_m \text{ was kept} \\ "
        r"0 & \text{otherwise} \end{cases}",
    ),
    "flatten": (
        r"\frac{\partial L}{\partial x_{r,c,k}} = \frac{\partial L}{\partial v_{n}}",
        r"n = (r\,C + c)\,K + k",
    ),
    "dense": (
        r"\frac{\partial L}{\partial w_{n,j}} = x_n\,\frac{\partial L}{\partial z_j}",
        r"\frac{\partial L}{\partial b_j} = \frac{\partial L}{\partial z_j}",
        r"w \leftarrow w - \eta\,\frac{\partial L}{\partial w}",
    ),
    "softmax": (r"L = -\ln p_{t}", r"\frac{\partial L}{\partial z_j} = p_j - y_j"),
}
"""Each kind's backward rule in TeX, in parts that wrap onto lines of their own on a narrow screen."""

TOP_WEIGHTS = 6
"""How many of a dense unit's weights are written out (those with the largest gradients)."""


def gradient_text(value: float, digits: int = 3) -> str:
    """A gradient as people read it: significant digits, since gradients are often tiny."""
    return significant(float(value), digits)


@dataclass(frozen=True)
class BackwardExplained:
    """One opened backward view: what it explains, its maps and colours, and the backward pass it reads."""

    kind: str
    layer: str
    neuron: int  # conv: the neuron (kernel); relu / pool: the channel; flatten: the entry; dense / softmax: the class
    channel: int  # conv: the input channel of the kernel slice explained
    title: str
    input_name: str  # the left map's caption
    output_name: str  # the right map's caption
    layout: MapsLayout
    input_map: np.ndarray
    input_shade: Shade
    output_map: np.ndarray
    output_shade: Shade
    backward: Backward
    sweep: object | None = None  # conv: the engine's KernelGradientSweep of this kernel slice

    @property
    def has_maps(self) -> bool:
        return self.kind in BACKWARD_MAP_KINDS


def _gradient_shade(backward: Backward, name: str) -> Shade:
    """One range for a whole column's gradient, so its channels compare."""
    return Shade("gradient", _half_range(backward.gradients[name]))


def explain_backward(
    trace: Trace, backward: Backward, layer_name: str, neuron: int, input_channel: int, half_ranges: dict[str, float]
) -> BackwardExplained:
    """Everything the backward view of `layer_name`'s neuron needs that does not change with the window.

    `backward` is the backward pass of `trace` (the forward numbers on screen, coloured as the overview colours
    them with `half_ranges`)."""
    network = backward.network
    kind = network.info(layer_name).kind
    if kind not in BACKWARD_KINDS:
        raise ValueError(f"{layer_name!r} is a {kind} layer; backward views exist for {', '.join(BACKWARD_KINDS)}")
    names = list(backward.activations)
    previous = names[names.index(layer_name) - 1]
    upstream_shade = _gradient_shade(backward, layer_name)
    if kind not in BACKWARD_MAP_KINDS:
        layout, empty = MapsLayout((1, 1), (1, 1)), np.zeros((1, 1), np.float32)
        what = {"flatten": "entry", "dense": "unit", "softmax": "class"}[kind]
        title = f"Backward · {layer_name}, {what} {neuron if kind == 'flatten' else neuron + 1}"  # v[n] from 0
        if kind in ("dense", "softmax") and network.class_names and neuron < len(network.class_names):
            title = f"Backward · {layer_name}, class “{network.class_names[neuron]}”"
        return BackwardExplained(
            kind, layer_name, neuron, 0, title, "", "", layout, empty, upstream_shade, empty, upstream_shade, backward
        )
    layout = MapsLayout.of(network, layer_name)
    channels = backward.activations[previous].shape[2]
    channel = min(max(input_channel, 0), channels - 1) if kind == "conv2d" else neuron
    upstream = backward.upstream_of(layer_name)[:, :, neuron]
    gradient_name = f"∂L/∂({layer_name}), channel {neuron + 1}"
    if kind == "conv2d":
        source = backward.activations[previous][:, :, channel]
        return BackwardExplained(
            kind, layer_name, neuron, channel,
            f"Backward · convolution {layer_name}, neuron {neuron + 1}, input channel {channel + 1}",
            _input_name(trace, layer_name, channel), gradient_name, layout, source,
            _map_shade(trace, previous, half_ranges),
            upstream, upstream_shade, backward, kernel_gradient_sweep(backward, layer_name, neuron, channel),
        )  # fmt: skip
    layer = network.layer(layer_name)
    what = operation_title(network, layer)
    passed = backward.gradients[previous][:, :, channel]
    return BackwardExplained(
        kind, layer_name, neuron, channel, f"Backward · {what} {layer_name}, channel {neuron + 1}",
        f"∂L/∂({previous}), channel {channel + 1}: what passes back", gradient_name, layout,
        passed, _gradient_shade(backward, previous), upstream, upstream_shade, backward,
    )  # fmt: skip


# -- the arithmetic at one position, as HTML --------------------------------------------------------------------


def _colors(shade, values: np.ndarray) -> list[list[str]]:
    return [[shade.hex(float(v)) for v in line] for line in np.atleast_2d(values)]


def _gradient_cell(values: np.ndarray) -> Callable[[int, int], str]:
    return lambda r, c: gradient_text(float(values[r, c]), 2)


def _pickable_cell(values: np.ndarray, picked: tuple[int, int], label: str) -> Callable[[int, int], str]:
    """Grid cells as buttons: choosing one shows that weight's update (formula.js sends the `data-pick` index)."""
    columns = values.shape[1]

    def cell(r: int, c: int) -> str:
        current = ' aria-current="true"' if (r, c) == picked else ""
        return (
            f'<button type="button" class="fv-pick" data-pick="{r * columns + c}"{current} '
            f'aria-label="{html.escape(label)} ({r + 1}, {c + 1}): show its update">'
            f"{gradient_text(float(values[r, c]), 2)}</button>"
        )

    return cell


def _update_html(backward: Backward, layer: str, key: str, index: tuple[int, ...], rate: float, what: str) -> str:
    """w ← w − η·g for one weight, with the numbers a step would use."""
    update = weight_update(backward, layer, key, index, rate)
    # enough decimals that the step shows in the new weight (a tiny η·g changes only the last digits)
    digits = min(8, max(4, 1 - math.floor(math.log10(abs(update.change))))) if update.change else 4
    move = {"down": "goes down", "up": "goes up", "stays": "stays where it is"}[update.direction]
    equation = (
        _value(update.weight, css="fv-weight", label="w", digits=digits)
        + _op("−")
        + _value(update.learning_rate, css="fv-rate", label="learning rate η", digits=4)
        + _op("×")
        + f'<span class="fv-value fv-grad" data-value="{update.gradient!r}">{gradient_text(update.gradient)}</span>'
        + _op("=")
        + _value(update.new_weight, css="fv-new-weight fv-result", label="w after the step", digits=digits)
    )
    return (
        f'<div class="fv-row fv-join fv-update"><p class="fv-join-label">One step of gradient descent moves '
        f"{html.escape(what)} against its gradient: w ← w − η·g</p>"
        f'<div class="fv-terms">{equation}</div>'
        f'<p class="fv-join-label">The gradient is {"positive" if update.gradient > 0 else "negative"} '
        f"{'' if update.gradient else '(zero) '}so the weight {move} "
        f"(by {significant(abs(update.change), 3)}); a larger η moves it further.</p></div>"
    )


def _steady(value: int, count: int) -> str:
    """`value` padded with figure spaces to the width of the largest of `count` positions, so a caption keeps its
    width while Play sweeps the window and the row under it never reflows."""
    return f"{value:>{len(str(count - 1))}}".replace(" ", "\u2007")


def conv_backward_numbers(explained: BackwardExplained, row: int, col: int, picked: int, rate: float) -> str:
    sweep, backward, channel, neuron = explained.sweep, explained.backward, explained.channel, explained.neuron
    window = sweep.windows[row, col]
    g = float(sweep.upstream[row, col])
    contribution = sweep.contributions[row, col]
    rows, cols = sweep.upstream.shape
    running = sweep.contributions.reshape(rows * cols, *window.shape)[: row * cols + col + 1].sum(axis=0)
    kr, kc = window.shape
    weight = divmod(picked, kc) if 0 <= picked < kr * kc else divmod(int(np.argmax(np.abs(sweep.gradient))), kc)
    shade = Shade("gradient", _half_range(sweep.gradient))
    part_shade = Shade("gradient", _half_range(sweep.contributions))
    g_chip = _gradient_value(g, explained.output_shade, "fv-upstream", "∂L/∂y")
    kernel_part = (
        _figure("window (input values)", _grid(window, _colors(explained.input_shade, window), "fv-window"))
        + _op("×")
        + _figure(f"∂L/∂y at ({_steady(row, rows)}, {_steady(col, cols)})", g_chip)  # a sweep moves nothing
        + _op("=")
        + _figure("this position's share", _grid(contribution, _colors(part_shade, contribution), "fv-share",
                                                   _gradient_cell(contribution)))
        + _op("→")
        + _figure("sum so far (row by row)", _grid(running, _colors(shade, running), "fv-running",
                                                    _gradient_cell(running)))
        + _op("→ all")
        + _figure(f"∂L/∂w: all {rows * cols} shares (pick a weight)", _grid(
            sweep.gradient, _colors(shade, sweep.gradient), "fv-kernel-gradient",
            _pickable_cell(sweep.gradient, weight, "weight"), marked=weight))
    )  # fmt: skip
    bias = (
        f'<div class="fv-row fv-join"><p class="fv-join-label">The bias is added at every position, so its gradient '
        f'is the sum of the whole upstream map ({rows}×{cols} values):</p><div class="fv-terms">'
        f"{_op('∂L/∂b = Σ ∂L/∂y =')}"
        f'<span class="fv-value fv-bias-gradient fv-result" data-value="{sweep.bias_gradient!r}">'
        f"{gradient_text(sweep.bias_gradient)}</span></div></div>"
    )
    update = _update_html(
        backward, explained.layer, "kernel", (*weight, channel, neuron), rate,
        f"the weight at row {weight[0]}, column {weight[1]} of this kernel slice",
    )  # fmt: skip
    return (
        f'<div class="fv-row fv-arithmetic">{kernel_part}</div>{bias}{update}'
        + passed_back_html(explained, row, col)
        + _status(
            f"Position ({row}, {col}): the window times the upstream gradient {gradient_text(g)} is this position's "
            f"share; all shares add up to the kernel's gradient, {gradient_text(float(sweep.gradient[weight]))} at "
            f"the weight at row {weight[0]}, column {weight[1]}."
        )
    )


def passed_back_html(explained: BackwardExplained, row: int, col: int) -> str:
    """∂L/∂x of the input cell under the window's centre: the "full" convolution with the flipped kernels."""
    layout, backward = explained.layout, explained.backward
    top, left = layout.window_origin(row, col)
    rows, cols = layout.input_size
    cell = (min(max(top + layout.window[0] // 2, 0), rows - 1), min(max(left + layout.window[1] // 2, 0), cols - 1))
    step = input_gradient_step(backward, explained.layer, *cell, explained.channel)
    k = explained.neuron
    shade = explained.output_shade
    upstream = step.upstream_windows[k]
    flipped = step.flipped_kernels[k]
    products = step.products[k]
    part_shade = Shade("gradient", _half_range(step.products))
    weight_shade = Shade("weights", _half_range(backward.network.layer(explained.layer).kernel))
    arithmetic = (
        _figure("∂L/∂y under the flipped kernel", _grid(upstream, _colors(shade, upstream), "fv-upstream-window",
                                                         _gradient_cell(upstream)))
        + _op("⊙")
        + _figure("kernel turned by 180°", _grid(flipped, _colors(weight_shade, flipped), "fv-flipped"))
        + _op("=")
        + _figure("products", _grid(products, _colors(part_shade, products), "fv-back-products",
                                     _gradient_cell(products)))
        + _op("→ Σ =")
        + _figure(f"neuron {k + 1}'s part", _gradient_value(float(step.neuron_sums[k]), part_shade, "fv-total",
                                                             "sum of the products"))
    )  # fmt: skip
    chips = _op("+").join(
        f'<span class="fv-chip fv-sum{" fv-current" if j == k else ""}" data-neuron="{j}">'
        f"{_gradient_value(float(s), part_shade, 'fv-neuron-part', f'neuron {j + 1}', 2)}"
        f"<small>neuron {j + 1}</small></span>"
        for j, s in enumerate(step.neuron_sums)
    )
    r, c = cell
    previous = list(backward.activations)[list(backward.activations).index(explained.layer) - 1]
    return (
        f'<div class="fv-row fv-join fv-passed"><p class="fv-join-label">What passes back to {html.escape(previous)}, '
        f"channel {explained.channel + 1}, row {r}, column {c} (the cell under the window's centre): every neuron "
        "whose window covered it sends its gradient times the weight that touched it — a convolution of the "
        "upstream maps with the kernels turned by 180°, zeros where no window started.</p>"
        f'<div class="fv-row fv-arithmetic">{arithmetic}</div>'
        f'<div class="fv-terms">{chips}{_op("=")}'
        f'<span class="fv-value fv-passed-gradient fv-result" data-value="{step.gradient!r}">'
        f"{gradient_text(step.gradient)}</span></div></div>"
    )


def relu_backward_numbers(explained: BackwardExplained, row: int, col: int) -> str:
    step = relu_gate(explained.backward, explained.layer, row, col, explained.neuron)
    gate = "open: the gradient passes" if step.slope == 1 else (
        "shut: nothing passes" if step.slope == 0 else f"leaky: {step.slope:g} of it passes"
    )  # fmt: skip
    g = _gradient_value(step.upstream, explained.output_shade, "fv-upstream", "∂L/∂y")
    out = _gradient_value(step.gradient, explained.input_shade, "fv-passed-gradient fv-result", "∂L/∂x")
    equation = g + _op("×") + _value(step.slope, css="fv-slope", label="dy/dx") + _op("=") + out
    arithmetic = _figure(
        f"x = {format_number(step.x)} in the forward pass, so the gate is {gate}",
        f'<div class="fv-equation">{equation}</div>',
    )
    return (
        f'<div class="fv-row fv-arithmetic">{arithmetic}</div>{_no_weights(explained.layer)}'
        + _status(f"Row {row}, column {col}: {gradient_text(step.upstream)} × {step.slope:g} = "
                  f"{gradient_text(step.gradient)}.")
    )  # fmt: skip


def _gradient_value(value: float, shade: Shade, css: str, label: str, digits: int = 3) -> str:
    """A gradient in a chip of its colour, in ink that reads on it; `data-value` keeps full precision for tests and
    titles."""
    color = shade.hex(float(value))
    return (
        f'<span class="fv-value {css}" data-value="{float(value)!r}" title="{html.escape(label)}" '
        f'style="{_chip_style(color)}">{gradient_text(float(value), digits)}</span>'
    )


def _no_weights(layer: str) -> str:
    return (
        f'<p class="fv-join-label fv-no-weights">{html.escape(layer)} has no weights: a step changes nothing here, '
        "it only passes the gradient on.</p>"
    )


def pool_backward_numbers(explained: BackwardExplained, row: int, col: int) -> str:
    routing = pool_routing(explained.backward, explained.layer, row, col, explained.neuron)
    forward_shade = Shade("diverging", _half_range(routing.window[np.isfinite(routing.window)]))
    g = _gradient_value(routing.upstream, explained.output_shade, "fv-upstream", "∂L/∂y")
    rule = "shared equally by every cell" if routing.kept is None else "all of it goes to the kept cell"
    arithmetic = (
        _figure("window in the forward pass", _grid(routing.window, _colors(forward_shade, routing.window),
                                                     "fv-window", marked=routing.kept))
        + _op("with")
        + _figure(f"∂L/∂y at ({row}, {col})", g)
        + _op("→")
        + _figure(f"what each cell receives: {rule}", _grid(
            routing.routed, _colors(explained.input_shade, routing.routed), "fv-routed",
            _gradient_cell(routing.routed), marked=routing.kept))
    )  # fmt: skip
    return f'<div class="fv-row fv-arithmetic">{arithmetic}</div>{_no_weights(explained.layer)}' + _status(
        f"Window at row {row}, column {col}: the gradient {gradient_text(routing.upstream)} arriving here is "
        + ("shared equally by every cell." if routing.kept is None else "passed whole to the kept cell.")
    )


def flatten_backward_numbers(explained: BackwardExplained) -> str:
    backward, index = explained.backward, explained.neuron
    step = unflatten_gradient(backward, explained.layer, index)
    names = list(backward.activations)
    previous, after = names[names.index(explained.layer) - 1], names[names.index(explained.layer) + 1]
    r, c, k = step.position
    sum_html = ""
    if backward.network.info(after).kind == "dense":
        terms = dense_input_terms(backward, after, index)
        labels = backward.network.class_names or tuple(f"unit {j + 1}" for j in range(len(terms.upstream)))
        if len(labels) != len(terms.upstream):
            labels = tuple(f"unit {j + 1}" for j in range(len(terms.upstream)))
        rows = "".join(
            f"<tr><td>{html.escape(label)}</td><td class='number' data-value='{float(w)!r}'>{format_number(float(w))}"
            f"</td><td class='number' data-value='{float(u)!r}'>{gradient_text(float(u))}</td>"
            f"<td class='number fv-term' data-value='{float(p)!r}'>{gradient_text(float(p))}</td></tr>"
            for label, w, u, p in zip(labels, terms.factors, terms.upstream, terms.products, strict=True)
        )
        sum_html = _figure(
            f"∂L/∂v at entry {index}: Σ over {after}'s units of weight × the unit's gradient",
            f'<table class="fv-table fv-dense-terms"><tr><th>unit</th><th>w</th><th>∂L/∂z</th><th>product</th></tr>'
            f"{rows}</table>",
        )
    chip = _gradient_value(step.gradient, explained.output_shade, "fv-passed-gradient fv-result", "∂L/∂v")
    _rows, cols, channels = backward.input_of(explained.layer).shape
    move = _figure(  # the formula counts the channel k from 0, as the rows and columns; the views say channel k + 1
        f"back to {previous}: row {r}, column {c}, channel {k + 1} (n = (r·C + c)·K + k = ({r}·{cols} + {c})·"
        f"{channels} + {k} = {index})",
        f'<div class="fv-equation">{_op(f"∂L/∂v[{index}] =")}{chip}{_op("→ unchanged")}</div>',
    )
    return (
        f'<div class="fv-row fv-arithmetic">{sum_html}{move}</div>{_no_weights(explained.layer)}'
        + _status(f"Flatten only reshapes: entry {index}'s gradient {gradient_text(step.gradient)} goes back unchanged "
                  f"to row {r}, column {c}, channel {k + 1} of {previous}.")
    )  # fmt: skip


def dense_backward_numbers(explained: BackwardExplained, picked: int, rate: float) -> str:
    backward, unit = explained.backward, explained.neuron
    result = dense_gradient(backward, explained.layer, unit)
    names = list(backward.activations)
    previous = names[names.index(explained.layer) - 1]
    source_shape = backward.activations[names[names.index(previous) - 1]].shape
    unflattened = backward.network.info(previous).kind == "flatten" and len(source_shape) == 3
    strongest = [int(n) for n in np.argsort(-np.abs(result.kernel_gradient), kind="stable")[:TOP_WEIGHTS]]
    weight = picked if 0 <= picked < len(result.inputs) else strongest[0]
    shown = strongest if weight in strongest else [*strongest[:-1], weight]

    def where(n: int) -> str:
        if not unflattened:
            return f"input {n}"
        r, c, k = flatten_position(source_shape, n)
        return f"{n} (row {r}, col {c}, ch {k + 1})"

    rows = "".join(
        f"<tr{' class=fv-current' if n == weight else ''}><td><button type='button' class='fv-pick' data-pick='{n}'"
        f" aria-label='weight from input {n}: show its update'>{html.escape(where(n))}</button></td>"
        f"<td class='number' data-value='{float(result.inputs[n])!r}'>{format_number(float(result.inputs[n]))}</td>"
        f"<td class='number' data-value='{result.upstream!r}'>{gradient_text(result.upstream)}</td>"
        f"<td class='number fv-weight-gradient' data-value='{float(result.kernel_gradient[n])!r}'>"
        f"{gradient_text(float(result.kernel_gradient[n]))}</td></tr>"
        for n in shown
    )
    table = _figure(
        f"its {len(result.inputs)} weights' gradients, the {len(shown)} largest (pick one)",
        f'<table class="fv-table fv-dense-weights"><tr><th>input x</th><th>x</th><th>∂L/∂z</th><th>x × ∂L/∂z</th></tr>'
        f"{rows}</table>",
    )
    upstream = _gradient_value(result.upstream, explained.output_shade, "fv-upstream", "∂L/∂z")
    source = "p − y" if explained.layer == backward.logits_name else "the gradient from the right"
    head = _figure(f"∂L/∂z of this unit ({source}); it is also the bias's gradient",
                   f'<div class="fv-equation">{upstream}</div>')  # fmt: skip
    update = _update_html(backward, explained.layer, "kernel", (weight, unit), rate, f"the weight from input {weight}")
    return (
        f'<div class="fv-row fv-arithmetic">{head}{table}</div>{update}'
        + _status(f"Unit {unit + 1}: ∂L/∂z = {gradient_text(result.upstream)}; each weight's gradient is its input "
                  f"times that, e.g. {gradient_text(float(result.kernel_gradient[weight]))} for input {weight}.")
    )  # fmt: skip


def softmax_backward_numbers(explained: BackwardExplained) -> str:
    result = output_gradient(explained.backward)
    network = explained.backward.network
    names = network.class_names or tuple(f"class {j + 1}" for j in range(len(result.gradient)))
    k, t = explained.neuron, result.true_class
    rows = "".join(
        f"<tr class='{'fv-current ' if j == k else ''}{'fv-true' if j == t else ''}'>"
        f"<td><button type='button' class='fv-pick' data-pick='{j}' aria-label='{html.escape(name)}: explain'>"
        f"{html.escape(name)}</button></td>"
        f"<td class='number' data-value='{float(z)!r}'>{format_number(float(z))}</td>"
        f"<td class='number' data-value='{float(p)!r}'>{format_number(float(p), 4)}</td>"
        f"<td class='number' data-value='{float(y)!r}'>{int(y)}</td>"
        f"<td class='number fv-p-minus-y' data-value='{float(g)!r}' "
        f"style='{_chip_style(explained.output_shade.hex(g))}'>{gradient_text(float(g))}</td></tr>"
        for j, (name, z, p, y, g) in enumerate(
            zip(names, result.logits, result.probabilities, result.target, result.gradient, strict=True)
        )
    )
    p_true = float(result.probabilities[t])
    loss = (
        f'<div class="fv-equation">{_op(f"L = −ln p({names[t]}) = −ln")}{_value(p_true, digits=4, css="fv-p-true")}'
        f'{_op("=")}<span class="fv-value fv-loss fv-result" data-value="{result.loss!r}">'
        f"{significant(result.loss, 4)}</span></div>"
    )
    g = float(result.gradient[k])
    return (
        f'<div class="fv-row fv-arithmetic">{_figure("the loss (cross-entropy)", loss)}</div>'
        + '<div class="fv-row fv-arithmetic">'
        + _figure(
            "softmax and cross-entropy together: ∂L/∂z = p − y (pick a class)",
            f'<table class="fv-table fv-output-gradient"><tr><th>class</th><th>z</th><th>p</th><th>y</th>'
            f"<th>p − y</th></tr>{rows}</table>",
        )
        + "</div>"
        + _status(f"{names[k]}: p − y = {format_number(float(result.probabilities[k]), 4)} − "
                  f"{int(result.target[k])} = {gradient_text(g)}; "
                  + ("raising its logit would lower the loss." if g < 0 else "lowering its logit would lower the loss."
                     if g > 0 else "its logit does not move the loss."))
    )  # fmt: skip


def backward_numbers_html(explained: BackwardExplained, row: int, col: int, picked: int, rate: float) -> str:
    """The arithmetic of the backward step at output (row, col) (maps kinds) or of the opened entry, as HTML;
    `picked` chooses the weight whose update is written out (−1: the one with the largest gradient)."""
    kind = explained.kind
    if kind == "softmax":
        body = softmax_backward_numbers(explained)
    elif kind == "dense":
        body = dense_backward_numbers(explained, picked, rate)
    elif kind == "flatten":
        body = flatten_backward_numbers(explained)
    else:
        row, col = explained.layout.clamp(row, col)
        if kind == "conv2d":
            body = conv_backward_numbers(explained, row, col, picked, rate)
        elif kind == "relu":
            body = relu_backward_numbers(explained, row, col)
        else:
            body = pool_backward_numbers(explained, row, col)
    return f'<div class="fv-numbers fv-backward" data-position="{row},{col}">{body}</div>'


def backward_captions_html(explained: BackwardExplained) -> str:
    """Captions above the two maps: the gradient arrives on the right and flows left."""
    rows, cols = explained.layout.input_size
    out_rows, out_cols = explained.layout.output_size
    return (
        f'<div class="fv-captions" style="grid-template-columns:{explained.layout.caption_columns()}"><span></span>'
        f"<span>{html.escape(explained.input_name)} ({rows}×{cols})</span>"
        '<span class="fv-arrow" aria-hidden="true">←</span>'
        f"<span>Upstream: {html.escape(explained.output_name)} ({out_rows}×{out_cols})</span></div>"
    )
