"""A click on a thumbnail reaches the server as a message (handled at once, with no property debounce)."""

from __future__ import annotations

from cnnviz.views.controls import BrowserControl


def test_a_chosen_thumbnail_becomes_the_value_and_an_unknown_key_is_ignored():
    gallery = BrowserControl(items=[{"key": "cat", "title": "Cat"}, {"key": "dog", "title": "Dog"}], value="cat")
    gallery._handle_msg({"type": "choose", "key": "dog"})
    assert gallery.value == "dog"
    for message in ({"type": "choose", "key": "<script>"}, {"type": "choose"}, {"type": "start"}, "dog", None):
        gallery._handle_msg(message)
        assert gallery.value == "dog"
