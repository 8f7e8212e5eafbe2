"""Hostile links: every URL parameter × wrong type, out of range, non-finite, huge, repeated — with no browser.

Each link goes through Panel's own URL parser (what `pn.state.location` hands the session) into the session's
`SharedLink`, with every view of a real Explainer attached. The session must name the parameter in one sentence,
stay consistent (a selection its layer really has), and keep working: the next image click and neuron click
update every view.
"""

from __future__ import annotations

import pytest
from panel.io.location import Location
from panel.util import parse_query

from cnnviz.app import Explainer
from cnnviz.examples import build_catalog
from cnnviz.resources import shared_network
from cnnviz.state import LEVELS, MAX_LINK_TEXT, SharedLink

HUGE = "9" * 400
LONG = "x" * (MAX_LINK_TEXT + 1)
ON_CONV = "layer=conv_1_1&view=formula&"

# (query, the parameter its message must name)
HOSTILE = [
    *[(f"image={value}", "image") for value in ("nope", "[1,2]", "nan", LONG, "%00", "{}")],
    *[(f"layer={value}", "layer") for value in ("nope", "5", "[1]", "nan", LONG, "conv_1_1%0A")],
    *[
        (f"layer=conv_1_1&view=elastic&neuron={value}", "neuron")
        for value in ("-1", "1.5", "nan", "inf", "-inf", "99999", HUGE, "abc", "true", "[1]", "1e999", "0x1")
    ],
    ("neuron=99999&view=elastic", "neuron"),  # no layer at all
    *[(f"view={value}", "view") for value in ("elastic", "formula", "nope", "3", "nan", "[]", LONG)],
    *[(f"{ON_CONV}channel={value}", "channel") for value in ("99", "3", "-1", "nan", "inf", HUGE, "2.5")],
    ("channel=99", "channel"),
    *[(f"{ON_CONV}{name}={value}", name) for name in ("row", "col") for value in ("62", "999", "-1", "inf", HUGE)],
    *[(f"details={value}", "details") for value in ("maybe", "5", "nan", "[1]", "{}")],
    *[(f"colors={value}", "colors") for value in ("rainbow", "1", "nan", "[1]", LONG)],
    *[(f"epoch={value}", "epoch") for value in ("4", "99999", "-1", "nan", "inf", "abc", "1.5", HUGE, "[]")],
    *[
        (f"whatif={value}", "whatif")
        for value in (
            "kernel:conv_1_1.0.0=nan,0,0,0,0,0,0,0,0",
            "kernel:conv_1_1.0.0=inf,0,0,0,0,0,0,0,0",
            "kernel:conv_1_1.0.0=1e300,0,0,0,0,0,0,0,0",
            "kernel:conv_1_1.99.0=0,0,0,0,0,0,0,0,0",
            "relu:nan",
            "relu:inf",
            "relu:-1",
            "pool:median",
            "off:conv_1_1.99",
            "off:nope.1",
            "garbage",
            LONG,
            "5",
        )
    ],
    ("layer=conv_1_1&neuron=3&view=elastic&neuron=99", "neuron"),  # repeated: the last one counts
    ("layer=nope&layer=conv_1_1&neuron=99&view=elastic", "neuron"),
]


@pytest.fixture(scope="module")
def explainer(tmp_path_factory):
    return Explainer(shared_network(), build_catalog(tmp_path_factory.mktemp("no-photos")))


@pytest.fixture
def link(explainer):
    state = explainer.state
    state.param.update(example=state.catalog.default.key, layer="", neuron=0, level="overview", message="")
    state.param.update(input_channel=0, row=0, col=0, epoch=None, experiment="", show_details=False)
    link = SharedLink(state)
    yield link
    state.param.unwatch(link._state_watcher)


def assert_consistent(state) -> None:
    network = state.network
    assert state.level in LEVELS
    if not state.layer:
        assert state.level == "overview" and state.neuron == 0
        return
    assert state.layer in network.layer_names
    assert 0 <= state.neuron < network.info(state.layer).shape[-1]


def assert_still_works(explainer) -> None:
    """An image click and a neuron click go through every view (they failed after a bad link before)."""
    state = explainer.state
    other = state.catalog.examples[1].key
    state.example = other
    assert state.trace.predicted_class and explainer.controls.seen.object.count(state.catalog[other].title) == 1
    state.select("conv_1_2", 4)
    assert (state.layer, state.neuron, state.level) == ("conv_1_2", 4, "elastic")
    state.select("relu_1_1", 2)
    assert state.level == "formula"
    state.back()


@pytest.mark.parametrize(("query", "name"), HOSTILE, ids=[query[:48] for query, _ in HOSTILE])
def test_a_hostile_link_names_the_parameter_and_the_session_keeps_working(explainer, link, query, name):
    state = explainer.state
    problems = link.apply(parse_query("?" + query))
    assert len(problems) == 1 and f"link's {name}" in problems[0], problems
    assert problems[0] in state.message and "\n" not in state.message and len(state.message) < 400
    assert_consistent(state)
    assert "nan" not in repr(state.trace["softmax"].tolist())
    assert_still_works(explainer)


def test_good_links_are_applied_silently(explainer, link):
    state = explainer.state
    query = "image={}&layer=conv_2_1&neuron=7&view=formula&channel=9&row=27&col=0&details=true&colors=global"
    key = state.catalog.examples[2].key
    assert link.apply(parse_query("?" + query.format(key))) == []
    assert (state.example, state.layer, state.neuron, state.level) == (key, "conv_2_1", 7, "formula")
    shown = (state.input_channel, state.row, state.col, state.show_details, state.color_mode)
    assert shown == (9, 27, 0, True, "global")
    assert state.message == ""


def test_links_written_by_earlier_versions_still_work(explainer, link):
    assert link.apply(parse_query("?image=&layer=&neuron=0&view=overview&epoch=null&whatif=&details=false")) == []
    assert explainer.state.epoch is None and explainer.state.message == ""


def test_the_url_shows_what_is_on_screen_not_what_was_refused(link):
    location = Location(search="?layer=conv_1_1&neuron=99999&view=elastic&colors=global")
    link.sync_with(location)
    query = parse_query(location.search)
    assert "layer" not in query  # empty values leave the query
    assert (query["neuron"], query["view"], query["colors"]) == (0, "overview", "global")


def test_a_moving_window_is_written_to_the_url_once_it_rests_and_anything_else_at_once(explainer, link):
    """Served, every window move wrote the URL (a browser round trip per pointer move): the state's watcher handed
    `_write_from_state` no events, so it never saw that only the window had moved."""
    state, deferred = explainer.state, []
    link.defer_window_writes = deferred.append
    state.param.update(layer="conv_1_1", neuron=2, level="formula")
    assert (link.layer, link.view) == ("conv_1_1", "formula")
    state.param.update(row=5, col=7)
    assert (link.row, link.col) == ("0", "0") and len(deferred) == 1
    deferred.pop()()  # the window rests
    assert (link.row, link.col) == ("5", "7")
    state.param.update(row=6, neuron=3)  # not only the window: at once
    assert (link.row, link.neuron) == ("6", "3") and not deferred


def test_a_number_too_long_for_the_url_parser_gives_the_start_page_and_a_sentence(explainer, link):
    location = Location(search="?layer=conv_1_1&neuron=" + "9" * 5000)
    link.sync_with(location)
    assert "could not be read" in explainer.state.message
    assert_consistent(explainer.state)
    assert_still_works(explainer)


def test_a_damaged_checkpoint_in_a_link_says_so_and_later_image_switches_work(explainer, link, tmp_path):
    state = explainer.state
    checkpoint = state.history.checkpoint(state.history.epochs[1])
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(checkpoint.path.read_bytes()[:1000])
    original_history = state.history
    state.history = type(original_history)((type(checkpoint)(checkpoint.epoch, damaged, checkpoint.test_top1),))
    try:
        link.apply(parse_query(f"?epoch={checkpoint.epoch}"))
        assert state.epoch is None and "damaged" in state.message and str(damaged) in state.message
        assert_still_works(explainer)
    finally:
        state.history = original_history


# -- backward mode and the true class (the Learn card's state) ---------------------------------------------------
HOSTILE_LEARNING = [
    *[(f"mode={value}", "mode") for value in ("sideways", "1", "nan", "[1]", "{}", LONG)],
    *[(f"truth={value}", "truth") for value in ("10", "99999", "-1", "nan", "inf", "1.5", "abc", HUGE, "[]", LONG)],
]


@pytest.fixture
def learning_link(explainer, link):
    learning = explainer.learning
    learning.param.update(backward_mode=False)
    learning.true_class = learning._label_class()
    link = SharedLink(explainer.state, learning)
    yield link
    explainer.state.param.unwatch(link._state_watcher)
    learning.param.unwatch(link._learning_watcher)
    learning.backward_mode = False


@pytest.mark.parametrize(("query", "name"), HOSTILE_LEARNING, ids=[query[:48] for query, _ in HOSTILE_LEARNING])
def test_a_hostile_mode_or_true_class_names_the_parameter_and_changes_nothing(explainer, learning_link, query, name):
    learning = explainer.learning
    before = (learning.backward_mode, learning.true_class)
    problems = learning_link.apply(parse_query("?" + query))
    assert len(problems) == 1 and f"link's {name}" in problems[0], problems
    assert problems[0] in explainer.state.message and len(explainer.state.message) < 400
    assert (learning.backward_mode, learning.true_class) == before
    assert_still_works(explainer)


def test_backward_mode_and_the_true_class_are_restored_from_a_link(explainer, learning_link):
    state, learning = explainer.state, explainer.learning
    key = state.catalog.examples[3].key
    assert learning_link.apply(parse_query(f"?image={key}&mode=backward&truth=3&layer=conv_1_1&view=formula")) == []
    assert state.example == key  # the new image's own label would have been the true class: the link wins
    assert learning.backward_mode and learning.true_class == 3 and learning.backward.true_class == 3
    assert state.message == ""
    assert learning_link.apply(parse_query("?truth=koala")) == []  # a class's name works too
    assert learning.true_class == state.network.class_names.index("koala")
    assert learning_link.apply(parse_query("?mode=forward")) == [] and learning.backward is None


def test_the_url_carries_backward_mode_and_the_true_class_to_a_new_session(explainer, learning_link):
    learning = explainer.learning
    location = Location(search="")
    learning_link.sync_with(location)
    learning.param.update(backward_mode=True, true_class=5)
    shared = location.search
    assert (parse_query(shared)["mode"], parse_query(shared)["truth"]) == ("backward", 5)
    learning.param.update(backward_mode=False, true_class=0)  # as a new session starts
    restored = SharedLink(explainer.state, learning)
    restored.sync_with(Location(search=shared))
    assert learning.backward_mode and learning.true_class == 5
    explainer.state.param.unwatch(restored._state_watcher)
    learning.param.unwatch(restored._learning_watcher)
