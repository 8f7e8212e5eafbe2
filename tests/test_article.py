"""The tutorial article: anchors present in the rendered HTML, every layer kind explained, no empty section."""

from __future__ import annotations

import html
import re

import panel as pn
import pytest
from panel.models.markup import HTML

from cnnviz.article import read_section
from cnnviz.engine.layers import LAYER_TYPES
from cnnviz.mathml import tex_to_mathml
from cnnviz.views.article import LAYER_KIND_SECTIONS, SECTION_ANCHORS, Article, scroll_to_section_js
from cnnviz.views.playground import PLAYGROUND_HEIGHT

EXPECTED_KEYS = [
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
]


@pytest.fixture(scope="module")
def rendered_html() -> str:
    """The HTML the browser receives: every HTML/Markdown model's text, unescaped, in order."""
    root = Article().__panel__().get_root()
    texts = [html.unescape(model.text) for model in root.select({"type": HTML})]
    pn.state.reset()
    return "\n".join(texts)


def test_section_keys_are_the_agreed_ones():
    assert list(SECTION_ANCHORS) == EXPECTED_KEYS
    assert len(set(SECTION_ANCHORS.values())) == len(SECTION_ANCHORS)
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", anchor) for anchor in SECTION_ANCHORS.values())


def test_every_anchor_is_a_heading_id_in_the_rendered_article(rendered_html):
    for anchor in SECTION_ANCHORS.values():
        assert rendered_html.count(f'id="{anchor}"') == 1, anchor


def test_every_engine_layer_kind_maps_to_a_section():
    assert set(LAYER_KIND_SECTIONS) == {"input", *LAYER_TYPES}
    assert set(LAYER_KIND_SECTIONS.values()) <= set(SECTION_ANCHORS)


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_no_section_is_empty(key):
    title, body = read_section(key)
    assert title
    assert len(body.split()) >= 60, f"{key} has only {len(body.split())} words"


def test_length_is_a_readable_article():
    words = sum(len(" ".join(read_section(key)).split()) for key in SECTION_ANCHORS)
    assert 2800 <= words <= 3600, words  # the forward pass, then how the network learns


def test_the_output_size_formula_is_written_out(rendered_html):
    assert "⌊(n + 2p − k) / s⌋ + 1" in rendered_html  # also in plain text
    assert (
        tex_to_mathml(r"\text{output size} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1", True)
        in rendered_html
    )
    assert "64 → 62 → 60 → 30 → 28 → 26 → 13" in rendered_html


def test_every_formula_becomes_mathml_untouched_by_markdown(rendered_html):
    conv = r"y_{i,j} = b + \sum_{c} \sum_{u=0}^{2} \sum_{v=0}^{2} x_{c,\,i+u,\,j+v} \; w_{c,u,v}"
    assert tex_to_mathml(conv, True) in rendered_html  # Markdown would have eaten the backslashes
    assert tex_to_mathml(r"W_2 W_1 x + (W_2 b_1 + b_2)") in rendered_html
    assert "$" not in rendered_html.replace("$$", "")  # no TeX left as source text
    assert rendered_html.count("<math") >= 15


@pytest.mark.parametrize(
    ("key", "facts"),
    [
        ("intro", ["19,920", "lifeboat", "sport car"]),
        ("input", ["64 × 64 × 3"]),
        ("convolution", ["3 × 3", "bias", "intermediate result", "10"]),
        ("relu", ["collapse", "W_2 W_1"]),
        ("max-pooling", ["minimum", "13 × 13"]),
        ("flatten", ["1690"]),
        ("output", ["1690", "bias"]),
        ("softmax", ["100 %"]),
        ("loss", ["-\\ln p_{\\text{true}}", "0.105", "2.303", "backward mode"]),
        ("gradients", ["19,920", "40,000", "sign"]),
        ("backpropagation", ["p_k - y_k", "1690", "13 × 13 × 10", "gate", "180°", "upstream"]),
        ("learning-rate", ["w - \\eta", "0.38", "over-fitting", "Reset", "Take a step"]),
        ("how-to-use", ["Esc", "Tab", "Enter", "arrow", "upload", "Unit", "Module", "Global", "gallery"]),
        ("limits", ["10 classes", "100 %", "64 × 64"]),
    ],
)
def test_sections_use_this_networks_numbers(key, facts):
    body = read_section(key)[1]
    for fact in facts:
        assert fact in body, (key, fact)


def test_the_playground_is_built_when_a_reader_comes_near_in_reserved_space():
    article = Article()
    assert not article.playground_loaded  # a visitor who never scrolls there costs nothing
    article._scroller.playground_near = True  # what the browser reports when the slot nears the screen
    assert article.playground_loaded
    assert article._playground_slot.height == article._playground_slot[0].height == PLAYGROUND_HEIGHT


def test_scroll_code_is_self_contained():
    code = scroll_to_section_js("relu")
    assert "window.cnnvizScrollToSection = window.cnnvizScrollToSection ||" in code
    assert code.endswith('window.cnnvizScrollToSection("article-relu");')
    with pytest.raises(KeyError):
        scroll_to_section_js("nonsense")
