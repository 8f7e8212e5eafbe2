"""The elastic explanation views in headless Chromium: enter, read the numbers, watch the sweep, leave."""

from __future__ import annotations

import numpy as np
import pytest
from pages import canvas_texts, open_app

from cnnviz.engine.explain import conv_channel_results, dense_step, flatten_position
from cnnviz.plots.elastic import decode

pytestmark = pytest.mark.ui


def fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".replace("-", "−")


def elastic(app):
    return app.sessions[-1].elastic


def wait_for_view(page, name: str) -> None:
    page.locator(f".el-overlay[data-phase='open'][data-view='{name}']").wait_for()


def tooltip(page) -> str:
    return page.locator(".el-tooltip").inner_text()


def test_each_conv_layer_opens_with_the_engines_intermediate_results(page, app, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    for layer, neuron in [("conv_1_1", 2), ("conv_1_2", 3), ("conv_2_1", 5), ("conv_2_2", 9)]:
        page.locator(f".ov-tile[data-layer='{layer}'][data-index='{neuron}']").click(force=True)
        wait_for_view(page, f"{layer}/{neuron}")
        assert (state.layer, state.neuron, state.level) == (layer, neuron, "elastic")
        sent = elastic(app)._canvas.view  # exactly what the browser received
        rows, cols = sent["output_size"]
        results = decode(sent["intermediate_values"], np.float32).reshape(-1, rows, cols)
        assert np.array_equal(results, conv_channel_results(state.trace, layer, neuron))
        assert np.allclose(results.sum(0) + sent["bias"], state.trace[layer][..., neuron], atol=1e-5)
        assert page.locator(".el-summary").inner_text() == sent["summary"]
        assert page.locator(".el-hit[data-part='kernel']").count() == len(results)
        screenshot(page, f"elastic-{layer}")
        page.keyboard.press("Escape")
        wait_until(lambda: state.level == "overview")
        page.locator(".el-overlay").wait_for(state="hidden")
    page.locator(".ov-tile[data-layer='relu_1_1'][data-index='1']").hover(force=True)  # the overview is usable again
    assert page.locator(".ov-edge").count() == 1


def test_conv_view_hover_values_and_the_sliding_kernel(page, app, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    page.locator(".ov-tile[data-layer='conv_1_2'][data-index='3']").click(force=True)
    wait_for_view(page, "conv_1_2/3")
    overlay = page.locator(".el-overlay")
    assert overlay.get_attribute("data-sweep") == "playing"
    page.wait_for_timeout(700)
    screenshot(page, "elastic-conv-sweep")
    page.locator(".el-overlay[data-sweep='ended']").wait_for(timeout=15_000)
    stats = overlay.evaluate("node => node.sweepStats")
    assert stats["ended"] and stats["frames"] > 10 and stats["positions"] == 60 * 60

    layer = state.network.layer("conv_1_2")
    page.locator(".el-hit[data-part='kernel'][data-channel='7']").hover()
    weights = layer.kernel[:, :, 7, 3]
    assert f"[{', '.join(fmt(w, 3) for w in weights[1])}]" in tooltip(page)
    page.locator(".el-hit[data-part='bias']").hover()
    assert f"= {fmt(float(layer.bias[3]), 4)}" in tooltip(page)

    box = page.locator(".el-hit[data-part='output']").bounding_box()
    row, col = 17, 42
    page.mouse.move(box["x"] + (col + 0.5) * box["width"] / 60, box["y"] + (row + 0.5) * box["height"] / 60)
    text = tooltip(page)
    assert f"at ({row}, {col}) = {fmt(float(state.trace['conv_1_2'][row, col, 3]), 3)}" in text
    results = conv_channel_results(state.trace, "conv_1_2", 3)[:, row, col]
    assert ", ".join(fmt(v, 2) for v in results) in text
    screenshot(page, "elastic-conv-hover")

    page.get_by_role("button", name="Replay").click()
    page.locator(".el-overlay[data-sweep='playing']").wait_for()
    page.get_by_role("button", name="Pause").click()
    assert overlay.get_attribute("data-sweep") == "paused"

    page.locator(".el-hit[data-part='intermediate'][data-channel='6']").click()
    wait_until(lambda: (state.level, state.input_channel) == ("formula", 6))
    assert (state.layer, state.neuron) == ("conv_1_2", 3)


def test_flatten_view_follows_a_pixel_and_opens_softmax_mode(page, app, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    page.locator(".ov-class").nth(2).click(force=True)
    wait_for_view(page, "output/2")
    step = dense_step(state.trace, "output", 2)
    assert page.locator(".el-hit[data-part='map']").count() == 10

    index = int(np.argmax(np.abs(step.products)))  # a pixel that matters, so no value rounds to zero
    row, col, channel = flatten_position(state.trace["max_pool_2"].shape, index)
    box = page.locator(f".el-hit[data-part='map'][data-channel='{channel}']").bounding_box()
    page.mouse.move(box["x"] + (col + 0.5) * box["width"] / 13, box["y"] + (row + 0.5) * box["height"] / 13)
    expected = (
        f"pixel ({row}, {col}) → flatten element {index}: {fmt(float(step.inputs[index]), 4)} × weight "
        f"{fmt(float(step.weights[index]), 4)} = {fmt(float(step.products[index]), 4)}"
    )
    assert expected in tooltip(page)
    screenshot(page, "elastic-flatten-hover")

    strip = page.locator(".el-hit[data-part='strip']")
    strip.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("PageDown")
    assert f"flatten element {min(index + 11, 1689)}:" in tooltip(page)  # the strip goes on from the pixel

    page.get_by_role("button", name="Softmax →").click()
    wait_for_view(page, "softmax/2")
    assert (state.layer, state.level) == ("softmax", "elastic")
    classes = len(state.network.class_names)  # the logits appear one after another, then the probabilities
    wait_until(lambda: sum(text.endswith("%") for text in canvas_texts(page)) == classes)
    page.locator(".el-hit[data-part='logit'][data-index='2']").hover()
    probability = float(state.trace.probabilities[2])
    assert f"= {100 * probability:.2f}%" in tooltip(page)
    screenshot(page, "elastic-softmax")

    page.keyboard.press("Escape")
    wait_for_view(page, "output/2")
    assert (state.layer, state.level) == ("output", "elastic")
    score = page.locator(".el-hit[data-part='score']").bounding_box()
    page.mouse.click(score["x"] + score["width"] / 2, score["y"] + score["height"] + 60)  # empty space
    wait_until(lambda: state.level == "overview")


def test_keyboard_only_and_image_changes_update_the_open_view(page, app, catalog, wait_until, screenshot):
    open_app(page, app.url)
    state = app.sessions[-1].state
    page.locator(".ov-tile[data-layer='conv_2_1'][data-index='0']").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_for_view(page, "conv_2_1/1")
    assert page.locator(".el-title").evaluate("node => node.getRootNode().activeElement === node")
    page.keyboard.press("Tab")  # Replay
    page.keyboard.press("Tab")  # Pause
    page.keyboard.press("Tab")  # into the drawing: the first kernel
    assert "Kernel for relu_1_2" not in tooltip(page)  # conv_2_1 reads max_pool_1
    assert tooltip(page).startswith("Kernel for max_pool_1 neuron 1:")

    before = page.locator(".el-summary").inner_text()
    target = next(e for e in catalog.examples if e.label == "koala")
    page.locator(f".thumb[data-key='{target.key}']").click()  # the controls stay usable
    wait_until(lambda: state.example == target.key)
    wait_until(lambda: page.locator(".el-summary").inner_text() != before)
    assert page.locator(".el-summary").inner_text() == elastic(app)._canvas.view["summary"]
    assert state.level == "elastic"
    screenshot(page, "elastic-after-image-change")

    page.keyboard.press("Escape")
    wait_until(lambda: state.level == "overview")
    focused = page.locator(".ov-tile[data-layer='conv_2_1'][data-index='1']")
    focused.wait_for()
    page.wait_for_function(
        "() => { const f = (r) => { const a = r.activeElement; return a && a.shadowRoot ? f(a.shadowRoot) : a; };"
        " const a = f(document); return a && a.dataset.layer === 'conv_2_1' && a.dataset.index === '1'; }"
    )
