"""LLARVA prompt / answer formats and the strict parser.

The expected prompts are built with the format strings copied verbatim from Dantong88/LLARVA
sim/agents/llarva_bc/llarva_agent.py (LLaRVAAgent.act) applied to the agent's own buffer
(a Python list started as [[0]*7]*5), so any drift in our text shows up byte for byte.
"""

import ast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llara_edge.actions import JointStepAction
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import (
    LlarvaPrompt,
    ProprioHistory,
    format_llarva_answer,
    parse_llarva_answer,
    parse_llarva_like_source,
)
from llara_edge.formats.llarva import ACTION_PREFIX, TRACE_PREFIX

# llarva_agent.py, verbatim (including the unused fifth argument of the trace variant).
AGENT_ACTION = ('You are a {} robot using the {}. The task is \"{}\", and the previous five '
                '(including current) steps is {}, can you predict action of the next {} step?')
AGENT_TRACE = ('You are a {} using the {}. The task is \"{}\", and the previous five (including '
               'current) steps are {}. Can you predict the 2D visual trace of the end effector '
               'and the action of the next 1 step?')
POSE = [0.01234, -0.5, 1.23456, 0.0, 0.1, -0.00001, 2.5]


def _agent_buffer(poses):
    buffer = [[0, 0, 0, 0, 0, 0, 0]] * 5
    for pose in poses:
        buffer.append(np.round(np.asarray(pose), 4).tolist())
        buffer = buffer[1:]
    return buffer


def test_prompt_matches_the_agent_byte_for_byte():
    history = ProprioHistory(n_joints=7)
    history.push(POSE)
    task = "sweep dirt to the dustpan"
    got = LlarvaPrompt(task).render(history)
    want = "<image>\n" + AGENT_ACTION.format("Franka", "joint control", task,
                                             _agent_buffer([POSE]), 1)
    assert got == want
    assert "[0, 0, 0, 0, 0, 0, 0], [0.0123, -0.5, 1.2346, 0.0, 0.1, -0.0, 2.5]]" in got
    got = LlarvaPrompt(task, variant="trace").render(history)
    assert got == "<image>\n" + AGENT_TRACE.format("Franka", "joint control", task,
                                                   _agent_buffer([POSE]), 1)


def test_formats_md_wording_of_both_variants():
    history = ProprioHistory(n_joints=5)
    plain = LlarvaPrompt("stack", robot="SO-100").render(history)
    assert plain == (
        '<image>\nYou are a SO-100 robot using the joint control. The task is "stack", and the '
        "previous five (including current) steps is [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], "
        "[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], can you predict action of the "
        "next 1 step?"
    )
    trace = LlarvaPrompt("stack", robot="SO-100", variant="trace").render(history)
    assert "steps are [[0, 0, 0, 0, 0], " in trace
    assert trace.endswith("]]. Can you predict the 2D visual trace of the end effector and the "
                          "action of the next 1 step?")


def test_history_rolls_and_checks_width():
    history = ProprioHistory(n_joints=2, length=3)
    for i in range(4):
        history.push([i, -i / 3])
    assert history.text() == "[[1.0, -0.3333], [2.0, -0.6667], [3.0, -1.0]]"
    with pytest.raises(ConfigError):
        history.push([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError):
        history.push([float("nan"), 0.0])


def test_answer_text_and_source_parse():
    action = JointStepAction(joints=(0.01234, -0.5, 1.0, 0.0, 0.2), gripper=1.0)
    text = format_llarva_answer(action, n_joints=5)
    assert text == "The next action step: [0.0123, -0.5, 1.0, 0.0, 0.2, 1.0]"
    assert parse_llarva_answer(text, 5) == JointStepAction((0.0123, -0.5, 1.0, 0.0, 0.2), 1.0)
    traced = JointStepAction(joints=(0.1,) * 7, gripper=0.0, trace=((12, 30), (40, 51)))
    text = format_llarva_answer(traced, n_joints=7)
    assert text == ("The 2-D visual trace: [[12, 30], [40, 51]] The next action step: "
                    "[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0]")
    assert parse_llarva_answer(text, 7) == traced
    assert parse_llarva_like_source(text) == [0.1] * 7 + [0.0]


def test_seven_values_mean_gripper_open():
    text = "The next action step: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]"
    assert parse_llarva_answer(text, 7).gripper == 1.0
    with pytest.raises(ParseError) as info:
        parse_llarva_answer(text, 5)
    assert info.value.reason == "wrong_count"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("The next action step: [0.1, 0.2, nan, 1.0]", "bad_number"),
        ("The next action step: [0.1, 0.2, inf, 1.0]", "bad_number"),
        ("The next action step: [0.1, 0.2, 0.3, 1.5]", "out_of_range"),
        ("The next action step: [0.1, 0.2, " + "9" * 400 + ", 1.0]", "bad_number"),
        ("The next action step: [0.1,0.2, 0.3, 1.0]", "bad_number"),
        ("The next action step: [0.1, 0.2, 0.3, 1.0, 1.0]", "wrong_count"),
        ("The next action step: [0.1, 0.2", "truncated"),
        ("The 2-D visual trace: [[1, 2], [3]] The next action step: [0.1, 0.2, 0.3, 1.0]",
         "bad_trace"),
        ("The 2-D visual trace: [[-1, 2]] The next action step: [0.1, 0.2, 0.3, 1.0]",
         "bad_trace"),
        ("The next action step: [0.1, 0.2, 0.3, 1.0] extra]", "malformed"),
        ("", "empty"),
    ],
)
def test_strict_rejections(text, reason):
    with pytest.raises(ParseError) as info:
        parse_llarva_answer(text, 3)
    assert info.value.reason == reason


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
joint = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


@st.composite
def joint_actions(draw):
    n = draw(st.integers(1, 9))
    trace = draw(st.none() | st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000)),
                                      max_size=8).map(tuple))
    gripper = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
    return n, JointStepAction(tuple(draw(st.lists(joint, min_size=n, max_size=n))), gripper, trace)


@SETTINGS
@given(joint_actions())
def test_round_trip(case):
    n, action = case
    text = format_llarva_answer(action, n)
    parsed = parse_llarva_answer(text, n)
    rounded = np.round(np.asarray([*action.joints, action.gripper]), 4).tolist()
    assert [*parsed.joints, parsed.gripper] == rounded
    assert parsed.trace == action.trace
    assert format_llarva_answer(parsed, n) == text


def _check_accepted(text: str, n: int, action: JointStepAction) -> None:
    values = parse_llarva_like_source(text)
    if values is not None and len(values) == n:
        values.append(1.0)
    assert values == [*action.joints, action.gripper]
    if action.trace is not None:
        body = text.strip()[len(TRACE_PREFIX):].split(" " + ACTION_PREFIX)[0]
        assert tuple(map(tuple, ast.literal_eval(body))) == action.trace


@st.composite
def mutated(draw):
    n, action = draw(joint_actions())
    text = format_llarva_answer(action, n)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from([*"0123456789.,- []\n", "", "e", "nan"]))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        tail = {"delete": text[i + 1 :], "insert": text[i:], "replace": text[i + 1 :],
                "truncate": ""}[kind]
        text = text[:i] + ("" if kind in ("delete", "truncate") else char) + tail
    return n, text


@SETTINGS
@given(mutated())
def test_mutations_parse_to_what_the_text_says_or_raise_parse_error(case):
    n, text = case
    try:
        action = parse_llarva_answer(text, n)
    except ParseError:
        return
    _check_accepted(text, n, action)


@SETTINGS
@given(st.text(max_size=200), st.integers(1, 9))
def test_random_text_only_parse_error(text, n):
    try:
        action = parse_llarva_answer(text, n)
    except ParseError:
        return
    _check_accepted(text, n, action)


def test_config_errors():
    with pytest.raises(ConfigError):
        LlarvaPrompt("t", variant="nope")
    with pytest.raises(ConfigError):
        LlarvaPrompt("two\nlines")
    with pytest.raises(ConfigError):
        ProprioHistory(n_joints=0)
    with pytest.raises(ConfigError):
        format_llarva_answer(JointStepAction((0.1, 0.2)), n_joints=7)
    with pytest.raises(ConfigError):
        format_llarva_answer(JointStepAction((0.1,), trace=((-1, 2),)), n_joints=1)
