"""Your own model in the browser: the bundled shapes model (48×48, 5 classes) draws, with its own gallery.

Only what issue 16's model side promises: the page is not blank, the gallery and the classes are the model's,
and a gallery made for other classes is explained in a sentence. Every view naming the real sizes is the views'
own tests' job.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnviz.app import Explainer
from cnnviz.datasets.shapes import SHAPE_CLASSES

pytestmark = pytest.mark.ui

SHAPES_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "shapes" / "shapes.npz"


def test_the_shapes_model_draws_with_its_own_gallery_and_classes(serve, page, screenshot):
    page.goto(serve(lambda: Explainer(network=SHAPES_WEIGHTS).page()))
    page.locator(".ov-class").first.wait_for(timeout=60_000)
    classes = page.locator(".ov-class .ov-class-name").all_inner_texts()
    assert [name.strip().lower() for name in classes] == list(SHAPE_CLASSES)
    thumbs = page.locator(".thumb").evaluate_all("(nodes) => nodes.map((node) => node.dataset.key)")
    assert "circle-1" in thumbs and "stripes-3" in thumbs
    screenshot(page, "own-model-shapes")


def test_a_gallery_of_other_classes_is_explained_in_the_page(serve, page, prepared_data_dir):
    from cnnviz.examples import build_catalog
    from cnnviz.importers import to_network

    network = to_network(SHAPES_WEIGHTS)
    catalog = build_catalog(prepared_data_dir, network)  # Tiny ImageNet photos: not this model's classes
    page.goto(serve(lambda: Explainer(network=network, catalog=catalog).page()))
    page.locator(".ov-class").first.wait_for(timeout=60_000)
    hint = page.get_by_text("are of classes this network does not know")
    hint.wait_for(timeout=30_000)
    assert "--data-dir" in hint.inner_text()
