"""Grids of numbers for the hyperparameter playground: padded input, kernel and output as HoloViews elements.

Every grid is one `Rectangles` element (one cell per row, fill colour precomputed) with its numbers as
`Labels`, plus an outline element. Rows grow downwards, as in a matrix. All three grids share one frame size
and show `extent` cells across it (the padded input's width), so a kernel cell, an input cell and an output
cell are drawn the same size, and the window outline matches the kernel. The overlays keep the same layers for
every setting, so a DynamicMap updates them in place.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np

WINDOW_COLOR = "#e8710a"  # the sliding window and the output cell it produces share one colour
PADDING_COLOR = "#f3ead2"
UNCOVERED_COLOR = "#f6c6c6"
PENDING_COLOR = "#ffffff"
GRID_LINE_COLOR = "#9a9a9a"
WEIGHT_NEGATIVE = np.array([0xA6, 0x61, 0x1A])  # BrBG ends: the house colours of weights
WEIGHT_POSITIVE = np.array([0x01, 0x85, 0x71])
ACTIVATION_NEGATIVE = np.array([0xD7, 0x30, 0x27])  # activations: red below zero, blue above, as in the overview
ACTIVATION_POSITIVE = np.array([0x45, 0x75, 0xB4])
WHITE = np.array([0xFF, 0xFF, 0xFF])


def _hex(rgb: np.ndarray) -> str:
    red, green, blue = np.clip(np.rint(rgb), 0, 255).astype(int)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _grey(value: float, largest: float) -> str:
    """White for 0 to mid-grey for the largest value: dark digits stay readable on every cell."""
    share = 0.0 if largest == 0 else float(value) / largest
    return _hex(WHITE - share * (WHITE - np.array([0x9E, 0x9E, 0x9E])))


def _diverging(value: float, largest: float, negative: np.ndarray, positive: np.ndarray) -> str:
    """Blend from white towards `negative` or `positive`, at most 60 % so the digit on top stays readable."""
    share = 0.0 if largest == 0 else 0.6 * min(abs(float(value)) / largest, 1.0)
    return _hex(WHITE + share * ((positive if value > 0 else negative) - WHITE))


FRAME_PX = 250


def _grid(
    values: np.ndarray, colors: list[str], texts: list[str], outline: tuple, extent: int, title: str
) -> hv.Overlay:
    """One square matrix drawn centred in an `extent`-cell frame: cells, digits and an outline (x0, y0, x1, y1)."""
    size = values.shape[0]
    row_index, col_index = np.indices(values.shape).reshape(2, -1)
    # framewise on every layer, not only on the overlay: otherwise a new size keeps the first frame's xlim/ylim
    cells = hv.Rectangles((col_index, row_index, col_index + 1, row_index + 1, colors), vdims=["fill"]).opts(
        color="fill", line_color=GRID_LINE_COLOR, line_width=1, framewise=True
    )
    font_px = max(8, min(18, int(FRAME_PX / extent * 0.42)))
    labels = hv.Labels((col_index + 0.5, row_index + 0.5, texts), vdims=["text"]).opts(
        text_font_size=f"{font_px}px", text_color="#202020", framewise=True
    )
    window = hv.Rectangles([outline]).opts(fill_alpha=0, line_color=WINDOW_COLOR, line_width=4, framewise=True)
    margin = (extent - size) / 2
    return (cells * labels * window).opts(
        title=title,
        frame_width=FRAME_PX,
        frame_height=FRAME_PX,
        xlim=(-margin - 0.05, size + margin + 0.05),
        ylim=(-margin - 0.05, size + margin + 0.05),
        invert_yaxis=True,
        xaxis=None,
        yaxis=None,
        toolbar=None,
        default_tools=[],
        show_frame=False,
        framewise=True,
        hooks=[_centre_title],
    )


def _centre_title(plot, element) -> None:
    """Centre the caption over its grid in one size (HoloViews would shrink long titles)."""
    plot.state.title.align = "center"
    plot.state.title.text_font_size = "13px"


def padded_input_grid(
    padded: np.ndarray, padding: int, window: tuple[int, int], kernel_size: int, covered: np.ndarray
) -> hv.Overlay:
    """The padded input: padding cells in beige, cells no window reaches in pink, the current window outlined.

    `covered` is a boolean mask of the padded grid: which cells at least one window position reaches.
    """
    size = padded.shape[0]
    inside = np.zeros(padded.shape, bool)
    inside[padding : size - padding, padding : size - padding] = True
    largest = float(padded.max())
    colors = [
        UNCOVERED_COLOR if not reached else _grey(value, largest) if real else PADDING_COLOR
        for value, real, reached in zip(padded.ravel(), inside.ravel(), covered.ravel(), strict=True)
    ]
    row, col = window
    outline = (col, row, col + kernel_size, row + kernel_size)
    inner = size - 2 * padding
    title = f"Input {inner}×{inner}, padded to {size}×{size}" if padding else f"Input {size}×{size}, no padding"
    return _grid(padded, colors, [str(v) for v in padded.ravel()], outline, size, title)


def kernel_grid(kernel: np.ndarray, extent: int) -> hv.Overlay:
    """The kernel's weights, brown for negative and teal for positive, outlined like the window it multiplies."""
    largest = float(np.abs(kernel).max())
    colors = [_diverging(value, largest, WEIGHT_NEGATIVE, WEIGHT_POSITIVE) for value in kernel.ravel()]
    size = kernel.shape[0]
    title = f"Kernel {size}×{size}"
    return _grid(kernel, colors, [str(v) for v in kernel.ravel()], (0, 0, size, size), extent, title)


def output_grid(output: np.ndarray, step: int, extent: int) -> hv.Overlay:
    """The output filling in as the kernel slides: cells up to `step` show their value, later ones stay blank."""
    done = np.arange(output.size) <= step
    largest = float(np.abs(output).max())
    colors = [
        _diverging(value, largest, ACTIVATION_NEGATIVE, ACTIVATION_POSITIVE) if finished else PENDING_COLOR
        for value, finished in zip(output.ravel(), done, strict=True)
    ]
    texts = [str(value) if finished else "" for value, finished in zip(output.ravel(), done, strict=True)]
    row, col = divmod(step, output.shape[1])
    title = f"Output {output.shape[0]}×{output.shape[1]}"
    return _grid(output, colors, texts, (col, row, col + 1, row + 1), extent, title)
