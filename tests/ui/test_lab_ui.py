"""The Lab in the served page: the epoch scrubber and every what-if experiment, checked against the engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pages import open_app

from cnnviz.engine.experiments import CLASSIC_KERNELS, WhatIf, apply
from cnnviz.lab_state import model_card_path
from cnnviz.resources import default_weights_path

pytestmark = pytest.mark.ui


def open_lab(page, url: str, query: str = "") -> None:
    open_app(page, url, query)
    header = page.locator(".card-header").filter(has_text="Lab: watch it learn")
    if not page.locator(".lab-readout").first.is_visible():
        header.click()
    page.locator(".lab-readout").first.wait_for()


def shown_prediction(trace) -> str:
    return f"{trace.predicted_class} {100 * trace.probabilities.max():.1f} %"


def overview_values(page) -> list[str]:
    return page.locator(".ov-class-value").all_inner_texts()


def test_scrubbing_epochs_changes_every_view_and_shows_the_card_accuracy(app, page, wait_until, screenshot):
    open_lab(page, app.url)
    state = app.sessions[-1].state
    card = json.loads(model_card_path(default_weights_path()).read_text())
    accuracy = {entry["epoch"]: entry["test_top1"] for entry in card["checkpoints"]}
    final_values = overview_values(page)
    assert page.locator(".lab-accuracy").inner_text() == f"{100 * card['test']['top1']:.1f} %"

    player = page.locator(".pn-player-title", has_text="Epoch").locator("xpath=..")
    player.locator("input[type=range]").fill("6")  # the 7th checkpoint
    wait_until(lambda: state.epoch == card["checkpoints"][6]["epoch"])
    wait_until(lambda: page.locator(".lab-accuracy").inner_text() == f"{100 * accuracy[state.epoch]:.1f} %")
    wait_until(lambda: overview_values(page) != final_values)

    player.locator("button.first").click()
    wait_until(lambda: state.epoch == 0)
    wait_until(lambda: page.locator(".lab-accuracy").inner_text() == f"{100 * accuracy[0]:.1f} %")
    wait_until(lambda: page.locator(".lab-predicted").inner_text() == state.trace.predicted_class)
    expected = [f"{100 * p:.1f}%" for p in state.trace.probabilities]
    wait_until(lambda: overview_values(page) == expected)  # the untrained network's near-uniform guess
    assert max(state.trace.probabilities) < 0.2
    screenshot(page.locator(".card").filter(has_text="Lab: watch it learn").first, "lab-epoch-0")

    player.locator("button.play").click()
    wait_until(lambda: state.epoch not in (0, None), timeout=15)
    player.locator("button.pause").click()
    page.wait_for_url("**epoch=**")  # written once the session rests


def test_each_experiment_changes_the_prediction_as_the_engine_computes_and_resets(app, page, wait_until, screenshot):
    open_lab(page, app.url)
    state = app.sessions[-1].state
    network, image = state.network, state.image
    page.locator(".bk-tab", has_text="What if?").click()
    after = page.locator(".lab-after")

    def expect(what_if: WhatIf) -> None:
        wait_until(lambda: state.what_if == what_if)
        wait_until(lambda: after.inner_text() == shown_prediction(apply(network, what_if).trace(image)))

    page.get_by_role("button", name="identity").click()
    expect(WhatIf(activation_slope=1.0))
    page.get_by_role("button", name="leaky ReLU").click()
    expect(WhatIf(activation_slope=0.1))
    page.get_by_role("button", name="min", exact=True).click()
    expect(WhatIf(activation_slope=0.1, pooling="min"))
    page.get_by_role("button", name="average").click()
    expect(WhatIf(activation_slope=0.1, pooling="average"))
    # above the network, in words: this is not the trained network
    notice = page.locator(".changed-network[role='status']")
    expect_text = "This network is changed: leaky ReLU (slope 0.1), average pooling."
    wait_until(lambda: expect_text in notice.inner_text())
    screenshot(page, "lab-changed-network-notice")

    page.get_by_role("button", name="Undo every change").click()
    expect(WhatIf())
    notice.wait_for(state="detached")
    assert page.locator(".lab-before").inner_text() == after.inner_text()

    page.locator(".ov-tile[data-layer='conv_1_2'][data-index='4']").click(force=True)
    wait_until(lambda: state.layer == "conv_1_2")
    page.get_by_role("button", name="Switch conv_1_2 · neuron 5 off").click()  # counted from 1 on screen
    expect(WhatIf(silenced=frozenset({("conv_1_2", 4)})))
    page.get_by_text("Switched off: conv_1_2 · neuron 5").wait_for()
    page.get_by_text("Kernel of conv_1_2 · neuron 5 on input channel 1").wait_for()
    page.get_by_role("button", name="Switch conv_1_2 · neuron 5 back on").click()
    expect(WhatIf())

    page.locator(".bk-input-group").filter(has_text="Use a classic kernel").locator("select").select_option("sharpen")
    expect(WhatIf().with_kernel("conv_1_2", 4, 0, np.array(CLASSIC_KERNELS["sharpen"])))
    page.wait_for_url("**whatif=**")
    screenshot(page.locator(".card").filter(has_text="Lab: watch it learn").first, "lab-what-if")
    page.get_by_role("button", name="Undo every change").click()
    expect(WhatIf())


def test_painting_and_colour_channels_reach_the_network_and_restore(app, page, wait_until):
    open_lab(page, app.url)
    state = app.sessions[-1].state
    example = state.example
    page.locator(".bk-tab", has_text="What if?").click()
    canvas = page.locator(".lab-canvas")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + 150, steps=12)
    page.mouse.up()
    wait_until(lambda: state.image_title == "Your painting")
    assert np.isclose(state.image, 1.0).all(axis=-1).sum() > 50  # the white stroke arrived
    wait_until(lambda: page.locator(".lab-after").inner_text() == shown_prediction(state.trace))

    page.get_by_role("button", name="no green").click()
    wait_until(lambda: state.image[..., 1].max() == 0)
    wait_until(lambda: page.locator(".lab-after").inner_text() == shown_prediction(state.network.trace(state.image)))
    page.get_by_role("button", name="Restore the image").click()
    wait_until(lambda: state.example == example)


def test_saliency_overlay_follows_the_chosen_class(app, page, wait_until, screenshot):
    open_lab(page, app.url, "?epoch=89")
    state = app.sessions[-1].state
    assert state.epoch == 89
    page.locator(".bk-tab", has_text="Why this class?").click()
    note = page.locator(".lab-saliency-class")
    wait_until(lambda: note.inner_text() == state.trace.predicted_class)
    page.locator(".ov-class").nth(2).click(force=True)
    wait_until(lambda: note.inner_text() == state.network.class_names[2])
    screenshot(page.locator(".card").filter(has_text="Lab: watch it learn").first, "lab-saliency")


def test_the_what_if_tab_fits_a_phone_with_every_weight_readable(app, new_page, wait_until, screenshot):
    page = new_page(390, 844, has_touch=True, is_mobile=True)
    open_lab(page, app.url)
    state = app.sessions[-1].state
    page.locator(".bk-tab", has_text="What if?").tap()
    page.locator(".ov-tile[data-layer='conv_1_2'][data-index='1']").tap(force=True)
    wait_until(lambda: (state.layer, state.neuron) == ("conv_1_2", 1))
    use = page.get_by_role("button", name="Use these 9 weights")
    use.scroll_into_view_if_needed()
    # the three columns stack: each lies within the screen, one below the other
    parts = [use, page.locator(".lab-canvas"), page.locator(".lab-after")]
    boxes = [part.bounding_box() for part in parts]
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= 390 for box in boxes), boxes
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"], boxes
    # every weight shows all its digits: the text is no wider than its box
    inputs = page.locator(".bk-input-group input").filter(visible=True)
    shown = inputs.evaluate_all(
        "els => els.filter(e => /^-?\\d/.test(e.value)).map(e => e.scrollWidth <= e.clientWidth)"
    )
    assert len(shown) >= 9 and all(shown)
    screenshot(page, "lab-what-if-phone")
