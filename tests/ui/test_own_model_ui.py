"""Your own model in the browser: the bundled shapes model (48×48, 5 classes) draws, with its own gallery.

Only what issue 16's model side promises: the page is not blank, the gallery and the classes are the model's,
and a gallery made for other classes is explained in a sentence. Every view naming the real sizes is the views'
own tests' job.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


def test_a_small_network_comes_back_from_a_view_drawn_as_before(serve, new_page, wait_until):
    """Taken out of the flow behind an open view, the overview of a network smaller than the page shrank to its
    minimum width, and came back drawn at the wrong scale over its own tile frames."""
    from test_architecture_matrix import Architecture, classes

    one_block = Architecture(conv_blocks=1, convs_per_block=1, filters=4, kernel_size=5, padding="same")
    network = one_block.engine_network((28, 28, 1), classes(2), seed=1)  # 5 columns: narrower than the page
    explainers = []

    def page_factory():
        explainers.append(Explainer(network=network))
        return explainers[-1].page()

    page = new_page(1440, 900)
    page.goto(serve(page_factory))
    page.locator(".ov-class").first.wait_for(timeout=60_000)
    canvas = page.locator(".ov-plot canvas").first

    def drawn() -> np.ndarray:
        page.mouse.move(0, 0)  # no hover edges over the picture
        return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"), dtype=float)

    before = drawn()
    conv = next(info.name for info in network.infos if info.kind == "conv2d")
    page.locator(f".ov-tile[data-layer='{conv}'][data-index='0']").click(force=True)  # through to the plot
    page.locator(".el-title").wait_for()
    page.keyboard.press("Escape")
    wait_until(lambda: explainers[-1].state.level == "overview")
    page.locator(".el-title").wait_for(state="hidden")
    wait_until(lambda: (after := drawn()).shape == before.shape and np.abs(after - before).mean() < 2)
