"""A click on a thumbnail reaches the server as a message (handled at once, with no property debounce)."""

from __future__ import annotations

from cnnviz.views.controls import GALLERY_HEIGHT, THUMB_GAP, THUMB_SIZE, BrowserControl, gallery_height


def test_a_chosen_thumbnail_becomes_the_value_and_an_unknown_key_is_ignored():
    gallery = BrowserControl(items=[{"key": "cat", "title": "Cat"}, {"key": "dog", "title": "Dog"}], value="cat")
    gallery._handle_msg({"type": "choose", "key": "dog"})
    assert gallery.value == "dog"
    for message in ({"type": "choose", "key": "<script>"}, {"type": "choose"}, {"type": "start"}, "dog", None):
        gallery._handle_msg(message)
        assert gallery.value == "dog"


def test_a_short_gallery_is_as_tall_as_its_rows_and_a_long_one_scrolls():
    """Eight probe images (before `cnnviz data`) fill two rows of six: no empty band under them."""
    row = THUMB_SIZE + THUMB_GAP
    assert gallery_height(6) + row == gallery_height(8) == gallery_height(12) < GALLERY_HEIGHT
    assert gallery_height(30) == GALLERY_HEIGHT
