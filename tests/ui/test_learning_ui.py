"""The Learn card in the served page: backward mode, a true class, five steps that lower the loss, Reset, a quiz."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pages import open_app

from cnnviz.article import SECTION_ANCHORS
from cnnviz.quiz import significant

pytestmark = pytest.mark.ui
HEADING_TOP = """(id) => {
  const find = (root) => root.getElementById(id)
    || [...root.querySelectorAll("*")].reduce((hit, el) => hit || (el.shadowRoot && find(el.shadowRoot)), null)
  const heading = find(document)
  return heading ? heading.getBoundingClientRect().top : null
}"""


def open_learn(page, url: str) -> None:
    open_app(page, url)
    page.locator(".card-header").filter(has_text="Learn: loss, gradients").click()
    page.locator(".learn-readout").first.wait_for()


def shown_loss(page) -> str:
    return page.locator(".learn-loss-value").inner_text()


def test_backward_mode_steps_reset_and_a_quiz(app, page, wait_until, screenshot):
    open_learn(page, app.url)
    explainer = app.sessions[-1]
    learning, state = explainer.learning, explainer.state
    wait_until(lambda: shown_loss(page) == significant(learning.loss))

    card = page.locator(".card").filter(has_text="Learn: loss, gradients").first
    card.locator(".bk-input-group").filter(has_text="True class").locator("select").select_option(label="koala")
    wait_until(lambda: learning.true_class == state.network.class_names.index("koala"))
    card.locator(".backward-mode input[type=checkbox]").check()
    wait_until(lambda: learning.backward is not None)
    table = card.locator(".learn-output-gradient")
    table.wait_for()
    koala_row = table.locator("tr.true-class")
    expected = learning.backward.probabilities[learning.true_class] - 1
    wait_until(lambda: koala_row.locator("td").nth(3).inner_text().replace("−", "-") == f"{expected:.4f}")

    trained = state.trace
    losses = [learning.loss]
    for count in range(1, 6):
        card.get_by_role("button", name="Take a step").click()
        wait_until(lambda count=count: learning.steps == count, timeout=20)
        losses.append(learning.loss)
        wait_until(lambda: shown_loss(page) == significant(learning.loss))
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]
    assert re.search(r"Step 5 \(η = 0\.0001\): loss", card.locator(".learn-readout").inner_text())
    screenshot(card, "learn-after-five-steps")

    card.get_by_role("button", name="Reset").click()
    wait_until(lambda: learning.steps == 0)
    for name in trained:
        np.testing.assert_array_equal(state.trace[name], trained[name])
    wait_until(lambda: shown_loss(page) == significant(losses[0]))

    card.locator(".bk-input-group").filter(has_text="Question").locator("select").select_option(
        label="What size is the output?"
    )
    card.get_by_role("button", name="New question").click()
    wait_until(lambda: learning.question is not None)
    question = learning.question
    wait_until(lambda: question.prompt in card.locator(".quiz-prompt").inner_text())
    answer_box = card.locator("input[placeholder='Type a number']")
    answer_box.fill(str(int(question.answer)))
    card.get_by_role("button", name="Check").click()
    wait_until(lambda: learning.answered == 1)
    assert learning.score == 1
    feedback = card.locator(".quiz-feedback")
    wait_until(lambda: feedback.inner_text().startswith("Right."))
    assert question.explanation in feedback.inner_text()
    assert "Score: 1 of 1" in card.locator(".quiz-score").inner_text()
    screenshot(card, "learn-quiz-answered")


def test_read_more_links_scroll_to_the_article(app, page, wait_until):
    open_learn(page, app.url)
    card = page.locator(".card").filter(has_text="Learn: loss, gradients").first
    anchor = SECTION_ANCHORS["backpropagation"]
    card.locator(".learn-links a").filter(has_text="Backpropagation").click()

    def heading_on_screen() -> bool:
        top = page.evaluate(HEADING_TOP, anchor)
        return top is not None and 0 <= top <= 200

    wait_until(heading_on_screen)
