"""The maths behind the hyperparameter playground: how input size, padding, kernel size and stride decide where
a kernel can sit and how big the output of a convolution is.

No UI import: the Playground view draws `PlaygroundState`, and the tests drive it directly. The numbers are
small integers from a fixed pattern, so a student can check every output value in their head.
"""

from __future__ import annotations

import numpy as np
import param
from numpy.lib.stride_tricks import sliding_window_view

INPUT_SIZE_MAX = 7
KERNEL_SIZE_MAX = 5  # with padding up to kernel − 1 the padded grid stays at most 15 cells wide: readable
PADDED_SIZE_MAX = INPUT_SIZE_MAX + 2 * (KERNEL_SIZE_MAX - 1)


def output_size(n: int, p: int, k: int, s: int) -> int:
    """Output width of a k×k kernel sliding with stride s over an n×n input padded by p: ⌊(n + 2p − k)/s⌋ + 1."""
    if s < 1:
        raise ValueError(f"the stride must be at least 1, not {s}")
    if k > n + 2 * p:
        raise ValueError(f"a {k}×{k} kernel does not fit in a {n + 2 * p}×{n + 2 * p} padded input")
    return (n + 2 * p - k) // s + 1


def window_starts(n: int, p: int, k: int, s: int) -> list[int]:
    """Columns (and, the same, rows) of the padded input where the kernel's left (top) edge lands."""
    return list(range(0, output_size(n, p, k, s) * s, s))


def _spoken_list(numbers: list[int]) -> str:
    """`[0, 2, 4]` -> '0, 2 and 4': lists read as a sentence."""
    words = [str(number) for number in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _columns(first: int, last: int) -> str:
    return f"column {first}" if first == last else f"columns {first}–{last}"


def validity(n: int, p: int, k: int, s: int) -> tuple[bool, str]:
    """Whether the kernel slides evenly over the padded input, and why (or why not) in words, with the numbers."""
    padded = n + 2 * p
    if k > padded:
        return False, (
            f"The {k}×{k} kernel is wider than the padded input ({n} + 2×{p} = {padded} cells), "
            "so it has nowhere to sit. Make the kernel smaller or add padding."
        )
    span = padded - k
    starts = window_starts(n, p, k, s)
    where = f"the {k}×{k} kernel starts at {'column' if len(starts) == 1 else 'columns'} {_spoken_list(starts)}"
    gaps = (
        f" The stride is larger than the kernel, so the kernel jumps over {s - k} "
        f"{'column' if s - k == 1 else 'columns'} between two windows: those values never reach the output."
        if s > k and len(starts) > 1
        else ""
    )
    if span % s == 0:
        return True, (
            f"The padded input is {padded} cells wide ({n} + 2×{p}). With stride {s} {where}, and the last "
            f"window ends exactly at the edge (column {padded - 1}): {n} + 2×{p} − {k} = {span} is a multiple "
            f"of {s}, so the output is {len(starts)}×{len(starts)}.{gaps}"
        )
    last_end = starts[-1] + k - 1
    left_over = padded - 1 - last_end
    next_start = starts[-1] + s
    fitting = [stride for stride in range(1, span + 1) if span % stride == 0]
    return False, (
        f"The padded input is {padded} cells wide ({n} + 2×{p}). With stride {s} {where}. The last window "
        f"covers {_columns(starts[-1], last_end)}, so {_columns(last_end + 1, padded - 1)} "
        f"{'is' if left_over == 1 else 'are'} never covered. The next start, column {next_start}, would need "
        f"{_columns(next_start, next_start + k - 1)}, but the input ends at column {padded - 1}. "
        f"The kernel only slides evenly when n + 2p − k = {n} + 2×{p} − {k} = {span} is a multiple of the "
        f"stride, but {span} ÷ {s} leaves {span % s} over (rows behave the same way). "
        f"Strides that fit here: {_spoken_list(fitting)}; or change the padding or the input size.{gaps}"
    )


def covered_cells(n: int, p: int, k: int, s: int) -> np.ndarray:
    """Boolean mask of the padded input: True where at least one window position reaches the cell."""
    reached = np.zeros(n + 2 * p, bool)
    for start in window_starts(n, p, k, s):
        reached[start : start + k] = True
    return np.outer(reached, reached)


def input_values(n: int) -> np.ndarray:
    """A fixed n×n input of digits 0–9: real numbers, so the products can be checked by hand."""
    rows, cols = np.indices((n, n))
    return (rows * 7 + cols * 3 + 1) % 10


def kernel_values(k: int) -> np.ndarray:
    """A fixed k×k kernel of small weights −1…2: negative and positive, like a trained kernel."""
    rows, cols = np.indices((k, k))
    return (rows * 2 + cols + 1) % 4 - 1


def padded_input(n: int, p: int) -> np.ndarray:
    """The input with a border of p zeros on every side: what the kernel actually slides over."""
    return np.pad(input_values(n), p)


def convolve(padded: np.ndarray, kernel: np.ndarray, s: int) -> np.ndarray:
    """Each output value is the sum of the window × kernel products; windows move by s cells."""
    windows = sliding_window_view(padded, kernel.shape)[::s, ::s]
    return np.einsum("ijuv,uv->ij", windows, kernel)


class PlaygroundState(param.Parameterized):
    """The four hyperparameters plus which window is shown; their bounds follow one another.

    Bounds are wider than CNN Explainer's in one place: the input may be smaller than the kernel when the
    padding makes up the difference (the reference requires input ≥ kernel, which contradicts its own
    kernel ≤ input + 2·padding), so padding also has a lower bound ⌈(k − n)/2⌉ that keeps the kernel fitting.
    Input, padding and kernel limit one another through their bounds; the stride and the step are clamped
    when a change leaves them out of range.
    """

    input_size = param.Integer(default=5, bounds=(1, INPUT_SIZE_MAX), doc="Width and height n of the input.")
    padding = param.Integer(default=1, bounds=(0, KERNEL_SIZE_MAX - 1), doc="Zeros p added on every side.")
    kernel_size = param.Integer(default=3, bounds=(1, KERNEL_SIZE_MAX), doc="Width and height k of the kernel.")
    stride = param.Integer(default=2, bounds=(1, PADDED_SIZE_MAX), doc="Cells s the kernel moves between windows.")
    step = param.Integer(
        default=0, bounds=(0, PADDED_SIZE_MAX**2 - 1), doc="Which window (row-major) the kernel is on."
    )

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._follow_bounds()
        for name in ("input_size", "padding", "kernel_size"):
            low, high = self.param[name].bounds
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name}={getattr(self, name)} is outside {low}…{high} for the other settings")

    @param.depends("input_size", "padding", "kernel_size", "stride", watch=True)
    def _follow_bounds(self) -> None:
        n, p, k = self.input_size, self.padding, self.kernel_size
        self.param.input_size.bounds = (max(1, k - 2 * p), INPUT_SIZE_MAX)
        self.param.padding.bounds = (max(0, -((n - k) // 2)), k - 1)  # enough padding for the kernel to fit
        self.param.kernel_size.bounds = (p + 1, min(n + 2 * p, KERNEL_SIZE_MAX))
        stride_max = max(n + 2 * p - k + 1, 2)
        self.param.stride.bounds = (1, stride_max)
        stride = min(self.stride, stride_max)
        step_max = output_size(n, p, k, stride) ** 2 - 1
        self.param.step.bounds = (0, step_max)
        self.param.update(stride=stride, step=min(self.step, step_max))

    @property
    def out_size(self) -> int:
        return output_size(self.input_size, self.padding, self.kernel_size, self.stride)

    @property
    def validity(self) -> tuple[bool, str]:
        return validity(self.input_size, self.padding, self.kernel_size, self.stride)

    @property
    def padded(self) -> np.ndarray:
        return padded_input(self.input_size, self.padding)

    @property
    def kernel(self) -> np.ndarray:
        return kernel_values(self.kernel_size)

    @property
    def output(self) -> np.ndarray:
        return convolve(self.padded, self.kernel, self.stride)

    @property
    def covered(self) -> np.ndarray:
        return covered_cells(self.input_size, self.padding, self.kernel_size, self.stride)

    @property
    def output_cell(self) -> tuple[int, int]:
        """(row, column) of the output value the current window produces."""
        return divmod(self.step, self.out_size)

    @property
    def window_origin(self) -> tuple[int, int]:
        """(row, column) of the current window's top-left cell in the padded input."""
        row, col = self.output_cell
        return row * self.stride, col * self.stride
