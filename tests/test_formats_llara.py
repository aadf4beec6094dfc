"""LLaRA prompts, answers and parsers against literal strings from the real project.

Literal prompts and answers are copied from LostXine/LLaRA: FORMATS.md's D-inBC example,
and `results/[hso00]D-inBC-AuxB-VIMA-80k.json` / `results/[hso_no]D-inBC-AuxD-VIMA-80k.json`
(`lm_prompt_hist` / `lm_answer_hist`: what LLaRA's eval sent and what the released
checkpoints answered).
"""

import hashlib

import pytest

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import (
    ACTION_PROMPTS,
    DETECTION_PROMPTS,
    LOCALIZATION_PROMPTS,
    LlaraPrompt,
    build_prompt,
    detection_answer,
    detection_prompt,
    format_answer,
    format_bbox,
    localization_answer,
    localization_prompt,
    parse_detection,
    parse_llara_answer,
    parse_llara_first_step,
    parse_llara_like_eval,
    parse_localization,
)

SUCTION_SPEC = (
    "Every action you take must include two locations in the format of <b>(x, y)</b> and one "
    "clockwise rotation angle in the format of <r>[r]</r>. The first location is the image "
    "coordinate where you use a suction cup to pick up the object, and the second location is "
    "where you place the object.The image coordinate ranges from 0 to 1. The rotation angle "
    "indicates how many degrees you rotate the object clockwise, and it ranges from -359 to 359."
)
SPATULA_SPEC = (
    "Every action you take must include two locations in the format of <b>(x, y)</b> and one "
    "clockwise rotation angle in the format of <r>[r]</r>. The first location is the image "
    "coordinate where you start to sweep the object using a spatula, and the second location "
    "is where you stop sweeping. The image coordinate ranges from 0 to 1. The rotation angle "
    "indicates how many degrees you rotate the spatula clockwise, and it ranges from -359 to 359."
)
RED_GREEN = {"red block": (0.312, 0.617, 0.070, 0.094), "green pan": (0.742, 0.547, 0.195, 0.203)}


def test_formats_md_dinbc_prompt_literal():
    expected = (
        "<image>\n"
        "<task>Put the <p>red block</p> at <b>(0.312, 0.617), {0.070, 0.094}</b> into the "
        "<p>green pan</p> at <b>(0.742, 0.547), {0.195, 0.203}</b>.</task>\n"
        "Describe what actions are needed on this scene to complete the task.\n" + SUCTION_SPEC
    )
    prompt = LlaraPrompt("Put the red block into the green pan.", RED_GREEN, paraphrase=7)
    assert prompt.render() == expected


def test_inbc_prompt_has_names_only_and_no_instruction_line():
    prompt = LlaraPrompt("Put the red block into the green pan.", RED_GREEN, describe=False)
    assert prompt.render() == (
        "<image>\n<task>Put the <p>red block</p> into the <p>green pan</p>.</task>\n" + SUCTION_SPEC
    )


def test_real_prompt_with_history_suction():
    # [hso00]D-inBC-AuxB-VIMA-80k.json, placement_generalization/visual_manipulation/200017.
    expected = (
        "<image0>\n<task>Put the <p>tiger letter A</p> at <b>(0.500, 0.594), {0.086, 0.180}</b> "
        "into the <p>yellow and blue stripe bowl</p> at <b>(0.457, 0.531), {0.195, 0.328}</b>."
        "</task>\nCould you write down what needs to be done to complete the task on this scene?"
        "\n" + SUCTION_SPEC + "\nYou have finished: Step 1: Pick up the object at "
        "<b>(0.422,  0.461)</b>, rotate <r>[163]</r> degrees, and drop it at <b>(0.305, 0.688)</b>."
    )
    prompt = LlaraPrompt(
        "Put the tiger letter A into the yellow and blue stripe bowl.",
        {"tiger letter A": (0.5, 0.594, 0.086, 0.18),
         "yellow and blue stripe bowl": (0.457, 0.531, 0.195, 0.328)},
        paraphrase=0,
        image_tag="<image0>",
        history_first_point_spaces=2,
    )
    done = PickPlaceAction((0.422, 0.461), (0.305, 0.688), 163, "suction", "tiger letter A")
    assert prompt.render([done]) == expected


def test_real_prompt_with_history_spatula():
    # [hso00]D-inBC-AuxB-VIMA-80k.json, placement_generalization/sweep_without_exceeding/200000.
    expected = (
        "<image0>\n<task>Sweep two <p>green and blue polka dot small block</p> at <b>(0.500, "
        "0.617), {0.203, 0.578}</b> into <p>olive three-sided rectangle</p> at <b>(0.500, 0.625),"
        " {0.297, 0.398}</b> without exceeding <p>red and purple stripe line</p> at <b>(0.500, "
        "0.617), {0.328, 0.047}</b>.</task>\nCould you write down what needs to be done to "
        "complete the task on this scene?\n" + SPATULA_SPEC + "\nYou have finished: Step 1: "
        "Sweep the object at <b>(0.301,  0.727)</b>, rotate <r>[0]</r> degrees, and stop at "
        "<b>(0.496, 0.609)</b>."
    )
    prompt = LlaraPrompt(
        "Sweep two green and blue polka dot small block into olive three-sided rectangle "
        "without exceeding red and purple stripe line.",
        {"green and blue polka dot small block": (0.5, 0.617, 0.203, 0.578),
         "olive three-sided rectangle": (0.5, 0.625, 0.297, 0.398),
         "red and purple stripe line": (0.5, 0.617, 0.328, 0.047)},
        paraphrase=0, tool="spatula", image_tag="<image0>", history_first_point_spaces=2,
    )
    done = PickPlaceAction((0.301, 0.727), (0.496, 0.609), 0, "spatula")
    assert prompt.render([done]) == expected


def test_real_prompt_without_instruction_line():
    # [hso_no]D-inBC-AuxD-VIMA-80k.json, placement_generalization/visual_manipulation/200000.
    expected = (
        "<image0>\n<task>Put the <p>green paisley letter G</p> at <b>(0.500, 0.594), {0.078, "
        "0.188}</b> into the <p>red and purple stripe container</p> at <b>(0.500, 0.617), "
        "{0.156, 0.266}</b>.</task>\n" + SUCTION_SPEC
    )
    prompt = LlaraPrompt(
        "Put the green paisley letter G into the red and purple stripe container.",
        {"green paisley letter G": (0.5, 0.594, 0.078, 0.188),
         "red and purple stripe container": (0.5, 0.617, 0.156, 0.266)},
        image_tag="<image0>",
    )
    assert prompt.render() == expected


def test_paraphrase_tables_are_the_originals():
    # sha256 of "\n".join(list) for eval/llara_prompts.py's three lists.
    digests = {
        ACTION_PROMPTS: "c8bfb1019f23b42a1f5a96d10bf278d615c498ed93d265ca59140c4483b75dac",
        DETECTION_PROMPTS: "7b2011db89a29c90ad3777f649d5b6b2f0acf495302a0ee5e39da8c0421f8b82",
        LOCALIZATION_PROMPTS: "2f581820bf99e941c3ab417158aba3ad2846b113eea4dd6079ca4846c03f3668",
    }
    for table, digest in digests.items():
        assert len(table) == 15
        assert hashlib.sha256("\n".join(table).encode()).hexdigest() == digest


REAL_ANSWER_2SP = (
    "Step 1: Pick up the <p>tiger letter A</p> at <b>(0.422,  0.461)</b>, rotate <r>[164]</r> "
    "degrees, and drop it at <b>(0.305, 0.695)</b>."
)


def test_answer_formatter_matches_real_answer_and_formats_md():
    a = PickPlaceAction((0.422, 0.461), (0.305, 0.695), 164, "suction", "tiger letter A")
    assert format_answer([a], first_point_spaces=2) == REAL_ANSWER_2SP
    b = PickPlaceAction((0.312, 0.617), (0.742, 0.547), 0, "suction", "red block")
    assert format_answer([b]) == (
        "Step 1: Pick up the <p>red block</p> at <b>(0.312, 0.617)</b>, rotate <r>[0]</r> "
        "degrees, and drop it at <b>(0.742, 0.547)</b>."
    )


def test_multi_step_spatula_real_answer_round_trip():
    # [hso00]D-inBC-AuxB-VIMA-80k.json, sweep_without_exceeding/200000, first answer.
    text = (
        "Step 1: Sweep the <p>green and blue polka dot small block</p> at <b>(0.301,  0.727)</b>,"
        " rotate <r>[0]</r> degrees, and stop at <b>(0.500, 0.617)</b>.\nStep 2: Sweep the <p>"
        "green and blue polka dot small block</p> at <b>(0.332,  0.945)</b>, rotate <r>[0]</r> "
        "degrees, and stop at <b>(0.500, 0.617)</b>."
    )
    steps = parse_llara_answer(text)
    name = "green and blue polka dot small block"
    assert steps == [
        PickPlaceAction((0.301, 0.727), (0.5, 0.617), 0, "spatula", name),
        PickPlaceAction((0.332, 0.945), (0.5, 0.617), 0, "spatula", name),
    ]
    assert format_answer(steps, first_point_spaces=2) == text
    assert parse_llara_first_step(text) == steps[0]
    assert parse_llara_like_eval(text) == [((0.301, 0.727), (0.5, 0.617), 0.0),
                                           ((0.332, 0.945), (0.5, 0.617), 0.0)]


def test_answer_continuing_after_history_and_unnumbered_lines():
    later = "Step 3: " + REAL_ANSWER_2SP[len("Step 1: "):]
    assert parse_llara_answer(later)[0].rotation_deg == 164
    # AuxD checkpoints drop the prefix on the first line, then go on with "Step 2:".
    mixed = REAL_ANSWER_2SP[len("Step 1: "):] + "\n" + REAL_ANSWER_2SP.replace("Step 1", "Step 2")
    assert len(parse_llara_answer(mixed)) == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # Real garbage from the released checkpoints' answers (LLaRA results/*.json).
        ("Step 2: Pick up the <p>red and purple stripe]</p> at <b>(0.262,  0.719)</b>, rotate "
         "<r>[119]</r> degrees, and drop it at <b>(0.820, 0.539)</b>.", "bad_name"),
        ("Step 8: Pick up the <p>red and purple stripe letter A</p> at <b>(0.832,  0.5.5.500)</b>"
         ", rotate <r>[0]</r> degrees, and drop it at <b>(0.832, 0.844)</b>.", "bad_number"),
        ("Step 1: Pick up the <p>yellow and blue stripe <p> at <b>(0.520,  0.672)</b>, rotate "
         "<r>[-175]</r> degrees, and drop it at <b>(0.246, 0.656)</b>.", "malformed"),
        ("Step 5: Pick up the <p>yellow flower</p> at <b>(0.617,  0.58", "truncated"),
        (REAL_ANSWER_2SP + "\nStep 1: " + REAL_ANSWER_2SP[8:], "step_order"),
        (REAL_ANSWER_2SP.replace("0.461", "1.461"), "out_of_range"),
        (REAL_ANSWER_2SP.replace("[164]", "[360]"), "out_of_range"),
        (REAL_ANSWER_2SP.replace("[164]", "[-0]"), "bad_number"),
        (REAL_ANSWER_2SP.replace(",  0.461", ",   0.461"), "bad_spacing"),
        (REAL_ANSWER_2SP.replace("0.305, 0.695", "0.305,  0.695"), "bad_spacing"),
        (REAL_ANSWER_2SP.replace("drop it", "stop"), "tool_mismatch"),
        ("   \n ", "empty"),
    ],
)
def test_strict_rejections(text, reason):
    with pytest.raises(ParseError) as info:
        parse_llara_answer(text)
    assert info.value.reason == reason


def test_first_step_ignores_a_truncated_tail():
    text = REAL_ANSWER_2SP + "\nStep 2: Pick up the <p>tiger letter A</p> at <b>(0.4"
    with pytest.raises(ParseError):
        parse_llara_answer(text)
    assert parse_llara_first_step(text).pick == (0.422, 0.461)


def test_history_anonymous_line_parses_with_no_name():
    line = ("Pick up the object at <b>(0.422, 0.461)</b>, rotate <r>[163]</r> degrees, and drop "
            "it at <b>(0.305, 0.688)</b>.")
    assert parse_llara_first_step(line).object_name is None


def test_auxiliary_formats():
    assert detection_prompt(0) == "<image>\n" + DETECTION_PROMPTS[0]
    loc = localization_prompt("red block", 14)
    assert loc.startswith("<image>\nHow is the <p>red block</p> located in the image? List its")
    assert format_bbox((0.5, 0.594, 0.086, 0.18)) == "<b>(0.500, 0.594), {0.086, 0.180}</b>"
    scene = detection_answer(RED_GREEN)
    assert scene == (
        "<scene><p>red block</p> at <b>(0.312, 0.617), {0.070, 0.094}</b>.\n"
        "<p>green pan</p> at <b>(0.742, 0.547), {0.195, 0.203}</b>.</scene>"
    )
    assert parse_detection(scene) == list(RED_GREEN.items())
    answer = localization_answer("red block", RED_GREEN["red block"])
    assert answer == "<p>red block</p> at <b>(0.312, 0.617), {0.070, 0.094}</b>."
    assert parse_localization(answer) == ("red block", RED_GREEN["red block"])
    with pytest.raises(ParseError):
        parse_detection(scene[:-3])


def test_full_training_sample_in_vicuna_template():
    prompt = LlaraPrompt("Put the red block into the green pan.", RED_GREEN).render()
    answer = format_answer([PickPlaceAction((0.312, 0.617), (0.742, 0.547), 0, "suction",
                                            "red block")])
    full = build_prompt("vicuna_v1", prompt, answer)
    assert full.endswith("it ranges from -359 to 359. ASSISTANT: " + answer + "</s>")
    assert full.startswith("A chat between a curious user and an artificial intelligence "
                           "assistant. The assistant gives helpful, detailed, and polite answers "
                           "to the user's questions. USER: <image>\n<task>Put the <p>red block")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"instruction": "Put the red block into the pan.", "objects": RED_GREEN},  # name missing
        {"instruction": "Put it.", "objects": {"it": None}},  # D-inBC needs a box
        {"instruction": "Put the x.", "objects": {"x": (0.5, 0.5, 1.5, 0.1)}},  # box range
        {"instruction": "Put the a(1).", "objects": {"a(1)": None}, "describe": False},
        {"instruction": "Two\nlines", "objects": {}},
        {"instruction": "ok", "paraphrase": 15},
        {"instruction": "ok", "tool": "gripper"},
        {"instruction": "ok", "image_tag": "<img>"},
    ],
)
def test_prompt_config_errors(kwargs):
    with pytest.raises(ConfigError):
        LlaraPrompt(**kwargs)
