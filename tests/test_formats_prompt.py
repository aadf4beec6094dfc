"""LlaraPrompt against LLaRA's own prompt code, for every VIMA-style task family.

The oracle below restates what LostXine/LLaRA eval/vima_utils.py `prepare_prompt` does in its
oracle mode 'o' (D-inBC) and its plain mode (inBC), on VIMA's own data shapes: a prompt
template with `{key}` placeholders and prompt assets whose `obj_info` is one object dict
(`obj_color` or `texture_name` + `obj_name`) or a list of them (a scene image), each with a
box. It is written from the code's behaviour, not copied: per placeholder in order of
`re.findall(r'\\{.+?\\}')`, an object becomes "<p>name</p> at <b>(cx, cy), {w, h}</b>" (its
trailing "." cut), a scene "<scene>" + lines "... at <b>...</b>." joined by "\\n" +
"</scene>", every occurrence replaced with str.replace; then "<image0>", "<task>...</task>",
the paraphrase (prompt id) and the format text, joined by "\\n". The history is
eval-llara.py's "\\nYou have finished: " + the steps with names as "object".
Prompt variant "scene_no_final_period" is the one of LLaRA's released eval run
[hso]D-inBC-VIMA-80k (results/ in that repository, 1,080 prompts with a scene block): there a
scene's description had its trailing "." cut BEFORE the scene tags wrapped it, so the last
object line ends `...}</b></scene>` and every other line keeps its ".".
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.formats import (
    ACTION_PROMPTS,
    FORMAT_PROMPTS,
    LlaraPrompt,
    ObjectRef,
    SceneRef,
    format_answer,
    format_history,
    next_step_number,
    parse_llara_first_step,
)

# VIMA-Bench prompt templates, one per task family (partition-independent wording)
FAMILIES = {
    "visual_manipulation": "Put the {dragged_obj_1} into the {base_obj}.",
    "scene_understanding": "Put the {dragged_texture} object in {scene} into the "
                           "{base_texture} object.",
    "rotate": "Rotate the {dragged_obj_1} 120 degrees.",
    "rearrange": "Rearrange to this {scene}.",
    "rearrange_then_restore": "Rearrange objects to this setup {scene} and then restore.",
    "novel_adj": "{demo_blicker_obj_1} is kobar than {demo_blicker_obj_2}. "
                 "{demo_blicker_obj_3} is kobar than {demo_blicker_obj_4}. "
                 "Put the kobar {dragged_obj} into the {base_obj}.",
    "novel_noun": "This is a dax {dragged_obj}. This is a blicket {base_obj}. "
                  "Put a dax into a blicket.",
    "twist": "'Twist' is defined as rotating object a specific angle. For examples: From "
             "{before_twist_1} to {after_twist_1}. Now twist all yellow objects.",
    "follow_order": "Stack objects in this order {frame_0} {frame_1} {frame_2}.",
    "sweep_without_exceeding": "Sweep any {dragged_obj} into {bounds} without exceeding "
                               "{constraint}.",
    "same_shape": "Put all objects with the same profile as {base_obj} into it.",
    "manipulate_old_neighbor": "First put {object1} into {object2} then put the object that "
                               "was previously at its south into the same {object2}.",
    "pick_in_order_then_restore": "Put {object1} into {object2}. Finally restore it into "
                                  "its original container.",
}
SCENE_KEYS = ("scene", "before_twist_1", "after_twist_1", "frame_0", "frame_1", "frame_2")
COLORS = ("red", "green", "blue", "yellow", "purple", "red and purple stripe")
SHAPES = ("block", "bowl", "pan", "heart", "paisley object", "L-shaped block")


# --- the oracle (LLaRA's behaviour on VIMA's data) ---------------------------------------
def _oracle_name(info: dict) -> str:
    return "<p>" + (info["obj_color"] if "obj_color" in info else info["texture_name"]) + \
        " " + info["obj_name"] + "</p>"


def _oracle_box(box) -> str:
    cx, cy, w, h = box
    return "<b>(" + f"{cx:.3f}, {cy:.3f}), " + "{" + f"{w:.3f}, {h:.3f}" + "}</b>"


def oracle_task(template: str, assets: dict, describe: bool, variant: str = "standard") -> str:
    p = template
    for ref in re.findall(r"\{.+?\}", template):
        info = assets[ref[1:-1]]
        if isinstance(info, list):
            desc = ref[1:-1]
            if describe:
                desc = "\n".join(_oracle_name(o) + " at " + _oracle_box(o["box"]) + "."
                                 for o in info)
            if variant == "scene_no_final_period" and desc.endswith("."):
                desc = desc[:-1]  # the released run's order: cut the ".", then wrap
            desc = "<scene>" + re.sub("<.*?scene>", "", desc) + "</scene>"
        else:
            desc = _oracle_name(info)
            if describe:
                desc = desc + " at " + _oracle_box(info["box"]) + "."
        if desc.endswith("."):
            desc = desc[:-1]
        p = p.replace(ref, desc)
    return "<task>" + p + "</task>"


def oracle_prompt(template, assets, describe, prompt_id, spatula, history, variant="standard"):
    parts = ["<image0>", oracle_task(template, assets, describe, variant)]
    if 0 <= prompt_id < len(ACTION_PROMPTS):
        parts.append(ACTION_PROMPTS[prompt_id])
    parts.append(FORMAT_PROMPTS["spatula" if spatula else "suction"])
    text = "\n".join(parts)
    if history:
        text += "\nYou have finished: " + "\n".join(
            f"Step {i + 1}: " + re.sub(r"<p>.*?</p>", "object", format_answer([a], 1)[8:])
            for i, a in enumerate(history))
    return text


# --- random VIMA-shaped episodes ---------------------------------------------------------
def _box(rng):
    return tuple(round(float(v), 3) for v in rng.uniform(0.0, 1.0, 4))


def _info(rng, repeat=None):
    name = repeat or (str(rng.choice(COLORS)), str(rng.choice(SHAPES)))
    key = "obj_color" if rng.random() < 0.5 else "texture_name"
    return {key: name[0], "obj_name": name[1], "box": _box(rng)}


def _episode(rng, template, repeat_names):
    keys = list(dict.fromkeys(k[1:-1] for k in re.findall(r"\{.+?\}", template)))
    first = (str(rng.choice(COLORS)), str(rng.choice(SHAPES)))
    assets = {}
    for key in keys:
        if key in SCENE_KEYS:
            assets[key] = [_info(rng) for _ in range(int(rng.integers(1, 5)))]
        else:  # the same name with another box where repeat_names
            assets[key] = _info(rng, first if repeat_names else None)
    return assets


def _ours(assets):
    def name(info):
        return (info["obj_color"] if "obj_color" in info else info["texture_name"]) + " " + \
            info["obj_name"]

    return {k: SceneRef(tuple((name(o), o["box"]) for o in v)) if isinstance(v, list)
            else ObjectRef(name(v), v["box"]) for k, v in assets.items()}


def _action(rng, tool):
    r = lambda: round(float(rng.random()), 3)  # noqa: E731
    return PickPlaceAction((r(), r()), (r(), r()), int(rng.integers(-359, 360)), tool=tool,
                           object_name=str(rng.choice(COLORS)) + " block")


CASES = [(fam, describe, hist, repeat) for fam in FAMILIES for describe in (True, False)
         for hist in range(5) for repeat in (False, True)]
VARIANTS = ("standard", "scene_no_final_period")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("family", "describe", "n_history", "repeat"), CASES)
def test_prompt_reproduces_llara_prepare_prompt(family, describe, n_history, repeat, variant):
    rng = np.random.default_rng(zlib.crc32(repr((family, describe, n_history, repeat)).encode()))
    template = FAMILIES[family]
    assets = _episode(rng, template, repeat)
    spatula = family.startswith("sweep")
    tool = "spatula" if spatula else "suction"
    history = [_action(rng, tool) for _ in range(n_history)]
    prompt_id = int(rng.integers(0, len(ACTION_PROMPTS) + 1))  # == len: no paraphrase line
    ours = LlaraPrompt(template, describe=describe, tool=tool, image_tag="<image0>",
                       paraphrase=prompt_id if prompt_id < len(ACTION_PROMPTS) else None,
                       assets=_ours(assets), variant=variant)
    want = oracle_prompt(template, assets, describe, prompt_id, spatula, history, variant)
    assert ours.render(history) == want
    if variant != "standard" and describe and "<scene>" in want:
        assert "}</b></scene>" in want and "}</b>.</scene>" not in want
    assert next_step_number(want) == n_history + 1


def test_repeated_names_keep_their_own_boxes_in_order():
    a, b = (0.1, 0.2, 0.05, 0.05), (0.7, 0.8, 0.06, 0.04)
    p = LlaraPrompt("The red block is kobar than the red block. Put the red block away.",
                    [("red block", a), ("red block", b), ("red block", a)])
    assert p.task_text() == (
        "The <p>red block</p> at <b>(0.100, 0.200), {0.050, 0.050}</b> is kobar than the "
        "<p>red block</p> at <b>(0.700, 0.800), {0.060, 0.040}</b>. Put the <p>red block</p>"
        " at <b>(0.100, 0.200), {0.050, 0.050}</b> away.")
    one = LlaraPrompt("Put the red block by the red block.", {"red block": a})
    assert one.task_text().count("(0.100, 0.200)") == 2  # one mention fills every occurrence
    with pytest.raises(ConfigError, match="2 mentions but occurs 3"):
        LlaraPrompt("red block, red block, red block", [("red block", a), ("red block", b)])


def test_scene_block_variants_byte_for_byte():
    """Both endings of a scene block, spelled out: a scene_understanding prompt as LLaRA's
    current prepare_prompt writes it ("standard") and as the prompts of the released
    [hso]D-inBC-VIMA-80k run are written (the last object line without its ".")."""
    scene = SceneRef((("green paisley letter G", (0.742, 0.758, 0.105, 0.188)),
                      ("olive letter V", (0.266, 0.516, 0.098, 0.148))))
    head = ("<image0>\n<task>Put the green paisley object in <scene><p>green paisley letter "
            "G</p> at <b>(0.742, 0.758), {0.105, 0.188}</b>.\n<p>olive letter V</p> at "
            "<b>(0.266, 0.516), {0.098, 0.148}</b>")
    tail = (" into the red and purple stripe object.</task>\n" + ACTION_PROMPTS[6] + "\n"
            + FORMAT_PROMPTS["suction"])
    for variant, end in (("standard", ".</scene>"), ("scene_no_final_period", "</scene>")):
        prompt = LlaraPrompt("Put the green paisley object in {scene} into the red and purple "
                             "stripe object.", assets={"scene": scene}, image_tag="<image0>",
                             paraphrase=6, variant=variant)
        assert prompt.render() == head + end + tail, variant
    with pytest.raises(ConfigError, match="unknown LLaRA prompt variant"):
        LlaraPrompt("Put it away.", variant="no_period")


def test_written_scene_blocks_are_kept_and_checked():
    scene = ("<scene><p>green paisley object</p> at <b>(0.312, 0.617), {0.061, 0.094}</b>.\n"
             "<p>red block</p> at <b>(0.742, 0.547), {0.050, 0.050}</b>.</scene>")
    text = f"Put the green paisley object in {scene} into the red and purple stripe object."
    p = LlaraPrompt(text, [("green paisley object", (0.5, 0.5, 0.1, 0.1)),
                           ("red and purple stripe object", (0.2, 0.3, 0.1, 0.1))])
    task = p.task_text()
    assert scene in task and task.count("<p>green paisley object</p>") == 2
    assert task.startswith("Put the <p>green paisley object</p> at <b>(0.500, 0.500)")
    for bad in (text.replace("0.617", "0.6170"), "Put the <p>red block</p> away.",
                "two\nlines", text.replace("</b>.\n", "</b>\n")):
        with pytest.raises(ConfigError):
            LlaraPrompt(bad)
    bare = text.replace("</b>.</scene>", "</b></scene>")  # the other prompt variant's block
    with pytest.raises(ConfigError, match="written as prompt variant 'scene_no_final_period'"):
        LlaraPrompt(bare)
    with pytest.raises(ConfigError, match="malformed scene block for prompt variant"):
        LlaraPrompt(text, variant="scene_no_final_period")
    kept = LlaraPrompt(bare, [("green paisley object", (0.5, 0.5, 0.1, 0.1))],
                       variant="scene_no_final_period").task_text()
    assert scene.replace("</b>.</scene>", "</b></scene>") in kept


def test_placeholder_errors_are_clear():
    with pytest.raises(ConfigError, match="no asset"):
        LlaraPrompt("Put the {dragged_obj} into the {base_obj}.",
                    assets={"dragged_obj": ObjectRef("red block", (0.1, 0.1, 0.1, 0.1))})
    with pytest.raises(ConfigError, match="not in the instruction"):
        LlaraPrompt("Rearrange.", assets={"scene": SceneRef((("red block",
                                                                (0.1, 0.1, 0.1, 0.1)),))})
    with pytest.raises(ConfigError, match="needs a bbox"):
        LlaraPrompt("Put the {a} away.", assets={"a": ObjectRef("red block")})
    with pytest.raises(ConfigError):
        SceneRef(())
    assert LlaraPrompt("Put the {a} away.", describe=False,
                       assets={"a": ObjectRef("red block")}).task_text() == \
        "Put the <p>red block</p> away."


def test_next_step_number_follows_the_history():
    rng = np.random.default_rng(0)
    acts = [_action(rng, "suction") for _ in range(12)]
    p = LlaraPrompt("Put the red block into the green pan.")
    for k in (0, 1, 4, 11):
        user = p.render(acts[:k])
        assert next_step_number(user) == k + 1
        answer = format_answer(acts[k:k + 1], first_step=k + 1)
        assert answer.startswith(f"Step {k + 1}: ")
        assert parse_llara_first_step(answer) == parse_llara_first_step(
            format_answer(acts[k:k + 1], numbered=False))
    assert next_step_number("no history here; Step 7: is just words") == 1
    assert format_history([]) == ""
