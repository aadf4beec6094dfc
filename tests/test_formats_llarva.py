"""LLARVA prompt / answer formats against LLARVA's own code, and the strict parser.

The oracle is tests/llarva_source.py: LLARVA's training-annotation builder, its RLBench agent
(prompt and parsers), LLaVA's conversation template and the pre-release trace builder,
restated line by line and run on LLARVA's own data shapes (RLBench low_dim_obs items of a
7-joint Franka, the agent's [[0]*7]*5 buffer, the global np.random noise). Our prompt
builder, answer writer, parser and the llarva policy format must give the same bytes.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llarva_source import (
    LLAVA_V1_SYSTEM,
    VICUNA_V1_SYSTEM,
    Agent,
    Item,
    add_trace,
    conversation_prompt,
    episode,
    find_tj,
    generate_episode,
    get_curr_action,
    rtx_without_trace_prompt,
)

from llara_edge.actions import JointStepAction
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import (
    LlarvaPrompt,
    PromptInput,
    ProprioHistory,
    build_prompt,
    format_llarva_answer,
    parse_llarva_answer,
    parse_llarva_like_source,
    policy_format,
)
from llara_edge.formats.llarva import DEFAULT_VARIANT, PROMPTS, thin_trace

TASKS = ("sweep dirt to the short dustpan", "take the steak off the grill",
         'push the "red" button')


def _noisy_positions(items, seed):
    """The noisy poses generate_episode pushes, drawn again from the same global seed (the
    last item draws none: its action would be the next item's)."""
    np.random.seed(seed)
    return [it.joint_positions + np.random.normal(0, 0.01, 7) for it in items[:-1]]


@pytest.mark.parametrize("n", [2, 3, 5, 6, 11])
@pytest.mark.parametrize("task", TASKS)
def test_training_annotations_byte_for_byte(n, task):
    """generate_vision-action-tuning_anns.py: prompt ("train" variant), answer, and our
    format object (which the data generator uses) on the same noisy poses."""
    items = episode(np.random.default_rng(n), n)
    np.random.seed(n)
    records = generate_episode(items, [task, "another description"], "episode0")
    poses = _noisy_positions(items, n)
    fmt = policy_format("llarva", n_joints=7)
    history = ProprioHistory(7)
    assert len(records) == n - 1
    for t, rec in enumerate(records):
        human, gpt = (c["value"] for c in rec["conversations"])
        history.push(poses[t])
        assert LlarvaPrompt(task, variant="train").render(history) == human
        assert fmt.prompt(PromptInput(task, poses=poses[: t + 1], robot="Franka")) == human
        nxt = items[t + 1]
        action = JointStepAction(tuple(nxt.joint_velocities), nxt.gripper_open)
        assert format_llarva_answer(action, 7) == gpt
        assert fmt.answer(action, human) == gpt
        # preprocess_v1 with conv_vicuna_v1 (training --version v1): the whole sequence
        want = conversation_prompt(VICUNA_V1_SYSTEM, [("USER", human), ("ASSISTANT", gpt)])
        assert build_prompt("vicuna_v1", human, gpt) == want
    first = records[0]["conversations"][0]["value"]
    assert "steps are [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], " \
           "[0, 0, 0, 0, 0, 0, 0], [" in first  # four zero rows, then the current pose


def test_answer_number_forms():
    """str(np.round(x, 4).tolist()): exact zeros "0.0", tiny values and ties ("0.0", "-0.0",
    "-0.0001", round half to even), the gripper "1.0" / "0.0", never an exponent, 8 values."""
    vel = np.array([0.0, 3e-5, -3e-5, 0.00005, -0.00015, 1.23455, -2.5])
    for grip in (1.0, 0.0):
        want = "The next action step: " + str(get_curr_action(Item(vel * 0, vel, grip)))
        got = format_llarva_answer(JointStepAction(tuple(vel), grip), 7)
        assert got == want
        assert "e" not in got.split(": ")[1] and got.count(", ") == 7
    assert got == "The next action step: [0.0, 0.0, -0.0, 0.0, -0.0001, 1.2346, -2.5, 0.0]"


@pytest.mark.parametrize("trace", [False, True])
def test_agent_prompts_byte_for_byte(trace):
    """llarva_agent.py act(): the "eval" text (and the never-run trace text as
    "trace_agent") over the agent's buffer, and the llava_v1 conversation it sends."""
    items = episode(np.random.default_rng(7), 9)
    agent = Agent(with_visual_trace=trace)
    agent.reset()
    np.random.seed(3)
    sent = [agent.prompt(it.joint_positions, TASKS[0]) for it in items]
    np.random.seed(3)
    history = ProprioHistory(7)
    variant = "trace_agent" if trace else "eval"
    for it, want in zip(items, sent, strict=True):
        history.push(it.joint_positions + np.random.normal(0, 0.01, 7))
        assert LlarvaPrompt(TASKS[0], variant=variant).render(history) == want
        conv = conversation_prompt(LLAVA_V1_SYSTEM, [("USER", want), ("ASSISTANT", None)])
        assert build_prompt("llava_v1", want) == conv
    opening = "steps are" if trace else "steps is"
    assert f"{opening} [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], " in sent[0]


def test_train_and_eval_wordings_differ_where_llarva_differs():
    history = ProprioHistory(7)
    train = LlarvaPrompt("t").render(history)
    evaluation = LlarvaPrompt("t", variant="eval").render(history)
    assert DEFAULT_VARIANT == "train" and train != evaluation
    assert train.replace("steps are", "steps is").replace("]]. Can", "]], can") == evaluation
    with pytest.raises(ConfigError, match="hard-coded"):
        LlarvaPrompt("t", pred_steps=2)  # "train" writes a literal 1
    assert "next 3 step?" in LlarvaPrompt("t", pred_steps=3, variant="eval").render(history)
    # the pre-release OXE builder writes the eval wording with N steps
    rows = [[0.1, -0.2, 0.3], [0.0, 0.5, -1.0]]
    want = rtx_without_trace_prompt("Franka", "joint control", "t", rows, 1)
    history = ProprioHistory(3, length=2)
    for row in rows:
        history.push(row)
    assert want.replace("previous five", "previous two") == \
        LlarvaPrompt("t", variant="eval").render(history)


def _trajectory(rng, n):
    """An annotation's 'ann' list: float pixel points, [-1] where the tracker lost it."""
    return [[-1] if rng.random() < 0.1 else [float(rng.uniform(0, 640)),
                                             float(rng.uniform(0, 480))] for _ in range(n)]


@pytest.mark.parametrize("n", [0, 1, 12, 59, 60, 61, 89, 90, 91, 150, 400])
def test_thin_trace_is_find_tj(n):
    rng = np.random.default_rng(n)
    ann = {"ann": _trajectory(rng, n)}
    for idx in sorted({0, n // 3, max(n - 1, 0)}):
        points = [(round(x), round(y)) for p in ann["ann"][idx:] if p != [-1] for x, y in [p]]
        assert [list(p) for p in thin_trace(points)] == find_tj(ann, idx)


def test_trace_variant_is_the_pre_release_layout():
    """rtx_with_trace.py: question[:-1] + " and the trajectories of the end effector?",
    answer + ". The trajectory: {tj}"; action first, so the released parser still reads it."""
    rng = np.random.default_rng(1)
    items = episode(rng, 4)
    history = ProprioHistory(7)
    history.push(items[0].joint_positions)
    question = LlarvaPrompt(TASKS[1], variant="eval").render(history)
    action = JointStepAction(tuple(items[1].joint_velocities), 1.0)
    for n in (0, 5, 70):
        ann = {"ann": _trajectory(rng, n)}
        tj = find_tj(ann, 0)
        want_q, want_a = add_trace(question, format_llarva_answer(action, 7), tj)
        assert LlarvaPrompt(TASKS[1], variant="trace").render(history) == want_q
        traced = JointStepAction(action.joints, 1.0, tuple(map(tuple, tj)))
        got = format_llarva_answer(traced, 7)
        assert got == want_a
        assert parse_llarva_answer(got, 7) == JointStepAction(
            tuple(np.round(action.joints, 4).tolist()), 1.0, tuple(map(tuple, tj)))
        assert Agent().parse(got) == [*get_curr_action(items[1])[:7], 1.0]


def test_parser_reads_what_the_agent_reads():
    """Every answer LLARVA writes (8 values) and its 7-value form (the agent adds gripper
    1.0) parse to the values the agent's running parser reads, ours and the oracle's."""
    items = episode(np.random.default_rng(5), 40)
    agent = Agent()
    for it in items:
        values = get_curr_action(it)
        for text in (f"The next action step: {values}", f"The next action step: {values[:7]}",
                     f"  The next action step: {values}\n"):
            want = agent.parse(text)
            action = parse_llarva_answer(text, 7)
            assert [*action.joints, action.gripper] == want
            assert parse_llarva_like_source(text) == want


def test_agent_is_sloppier_than_our_strict_parser():
    """Texts the agent reads and we refuse (our parser stays strict) and texts both refuse."""
    agent = Agent()
    for text in ("[0.1,0.2,0.3,0.4,0.5,0.6,0.7,1.0]", "The next action step: [1, 2]",
                 "The next action step: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0].",
                 "The next action step: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 2.0]"):
        assert agent.parse(text) == parse_llarva_like_source(text)
        with pytest.raises(ParseError):
            parse_llarva_answer(text, 7)
    for text in ("The next action step: [1e-05, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0]",
                 "no list here"):
        with pytest.raises((ValueError, AttributeError)):
            agent.parse(text)
        assert parse_llarva_like_source(text) is None
        with pytest.raises(ParseError):
            parse_llarva_answer(text, 7)


def test_history_rolls_and_checks_width():
    history = ProprioHistory(n_joints=2, length=3)
    for i in range(4):
        history.push([i, -i / 3])
    assert history.text() == "[[1.0, -0.3333], [2.0, -0.6667], [3.0, -1.0]]"
    with pytest.raises(ConfigError):
        history.push([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError):
        history.push([float("nan"), 0.0])


def test_format_object_keeps_the_last_five_poses_and_the_variant():
    fmt = policy_format("llarva")  # the simulator's 5-joint arm
    poses = [np.arange(6) * 0.1 + i for i in range(7)]  # arm + jaw; only the last 5 stay
    history = ProprioHistory(5)
    for q in poses:
        history.push(q[:5])
    for variant in PROMPTS:
        got = fmt.prompt(PromptInput("reach the cube.", poses=poses, variant=variant))
        assert got == LlarvaPrompt("reach the cube", robot="SO-101",
                                   variant=variant).render(history)
    assert fmt.prompt(PromptInput("reach the cube.")) == LlarvaPrompt(
        "reach the cube", robot="SO-101").render(ProprioHistory(5))  # zeros before any pose
    with pytest.raises(ConfigError, match="variant must be one of"):
        fmt.prompt(PromptInput("reach the cube.", variant="action"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("The next action step: [0.1, 0.2, nan, 1.0]", "bad_number"),
        ("The next action step: [0.1, 0.2, inf, 1.0]", "bad_number"),
        ("The next action step: [0.1, 0.2, 0.3, 1.5]", "out_of_range"),
        ("The next action step: [0.1, 0.2, " + "9" * 400 + ", 1.0]", "bad_number"),
        ("The next action step: [0.1,0.2, 0.3, 1.0]", "bad_number"),
        ("The next action step: [0.1, 0.2, 1e-05, 1.0]", "bad_number"),
        ("The next action step: [0.1, 0.2, 0.3, 1.0, 1.0]", "wrong_count"),
        ("The next action step: [0.1, 0.2", "truncated"),
        ("The next action step: [0.1, 0.2, 0.3, 1.0]. The trajectory: [[1, 2], [3]]",
         "bad_trace"),
        ("The next action step: [0.1, 0.2, 0.3, 1.0]. The trajectory: [[-1, 2]]", "bad_trace"),
        ("The next action step: [0.1, 0.2, 0.3, 1.0]. The trajectory: [[1, 2], [3", "truncated"),
        ("The next action step: [0.1, 0.2, 0.3, 1.0]. The trajectory: [[1, 2]", "bad_trace"),
        ("The 2-D visual trace: [[1, 2]] The next action step: [0.1, 0.2, 0.3, 1.0]",
         "malformed"),
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
    assert parse_llarva_like_source(text, n) == rounded  # the agent reads the same values


def _check_accepted(text: str, n: int, action: JointStepAction) -> None:
    assert parse_llarva_like_source(text, n) == [*action.joints, action.gripper]
    if action.trace is not None:
        body = text.strip().split(". The trajectory: ")[1]
        assert body == str([list(p) for p in action.trace])


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
