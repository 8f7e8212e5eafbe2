"""TeX → MathML on the server: browsers draw MathML natively, so formulas need no JavaScript, no fonts
from a CDN and no 1.8 MB MathJax bundle, and they look the same served, exported and offline."""

from __future__ import annotations

from functools import lru_cache

from latex2mathml.converter import convert


@lru_cache(maxsize=512)
def tex_to_mathml(tex: str, display: bool = False) -> str:
    """A <math> element for `tex`; `display` sets it on its own line, centred, like $$…$$."""
    return convert(tex, display="block" if display else "inline")
