"""The tutorial article's text: one Markdown file per section, in reading order, with stable anchor ids.

No UI import, so the state and the tests can name sections without loading Panel. Each file starts with its
`## Title` line; the rest is Markdown with `$$…$$` (display) and `$…$` (inline) formulas.
"""

from __future__ import annotations

from importlib.resources import files

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


def read_section(key: str) -> tuple[str, str]:
    """(title, Markdown body) of one section; the title is the file's leading `## ` line."""
    if key not in SECTION_ANCHORS:
        raise KeyError(f"no article section {key!r}; sections are {', '.join(SECTION_ANCHORS)}")
    heading, _, body = files(__name__).joinpath(f"{key}.md").read_text(encoding="utf-8").partition("\n")
    if not heading.startswith("## "):
        raise ValueError(f"article section {key!r} must start with a '## ' title line, not {heading!r}")
    return heading.removeprefix("## ").strip(), body.strip()
