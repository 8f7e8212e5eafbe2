"""Thin Panel viewers: they build their panes once and update them from the session state."""
