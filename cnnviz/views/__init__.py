"""Thin Panel viewers: they build their panes once and update them from the session state."""

from pathlib import Path

# Browser code several components prepend to their own: finds an element through nested shadow roots.
DEEP_QUERY_JS = (Path(__file__).parent / "deep_query.js").read_text()
