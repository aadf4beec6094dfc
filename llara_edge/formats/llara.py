"""LLaRA text formats: prompts and answers of the VIMA-style pick-and-place policies.

Contract (FORMATS.md §2): every string here is what LLaRA's own code writes, byte for byte.
Coordinates are normalised image coordinates written with 3 decimals, rotations integer
degrees (clockwise, -359..359). A user prompt is, lines joined by "\\n":

    <image>                                  (LLaRA's own code writes <image0>)
    <task>{instruction with <p>name</p>[ at <b>(cx, cy), {w, h}</b>] inlined}</task>
    {one of the 15 paraphrases}              (optional)
    {the fixed "Every action you take must include ..." text, suction or spatula}

plus, after steps already done, "\\nYou have finished: " + "\\n".join("Step i: ...") with
object names written as "object". An answer is one step per line, "Step k: Pick up the
<p>name</p> at <b>(x, y)</b>, rotate <r>[r]</r> degrees, and drop it at <b>(x, y)</b>."
(spatula: "Sweep the ... and stop at ..."); after k finished steps the answer starts at
"Step k+1". Released checkpoints write two spaces after the comma of the first point:
`first_point_spaces=2` reproduces that.

The user prompt itself (instruction, object mentions, VIMA placeholders, scene blocks) is
built by formats.prompt.LlaraPrompt from these pieces; PROMPT_VARIANTS are the two ways
LLaRA's released prompts close a scene block. ANSWER_FORMS / `answer_form(text)` /
`check_answer_forms(forms)`: an answer
step with or without its "Step k: " header; `prompt_object_names(user_text)`: the names a
prompt mentions; NAME_FLOOR_BYTES: the longest VIMA object name (49 bytes).

Sources (LostXine/LLaRA): `datasets/convert_vima.ipynb` (bbox_format, obj_format,
get_action_prompt, get_action_info, get_scene_desc, get_obj_loc_desc,
prepare_behavior_cloning_dataset) and `eval/vima_utils.py` + `eval/eval-llara.py`
(prepare_prompt, action_to_text, query_bc).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.formats.paraphrases import DETECTION_PROMPTS, LOCALIZATION_PROMPTS
from llara_edge.formats.templates import IMAGE_TOKEN, check_image_tag
from llara_edge.names import did_you_mean

# (cx, cy, w, h): box centre and size, normalised to [0, 1] by image width / height.
BBox = tuple[float, float, float, float]

# convert_vima.ipynb get_action_prompt / eval/vima_utils.py prepare_prompt `format_prompt`.
# The missing space after "place the object." (suction) is in the original and must stay.
_FORMAT_HEAD = (
    "Every action you take must include two locations in the format of <b>(x, y)</b> and one "
    "clockwise rotation angle in the format of <r>[r]</r>. "
)
FORMAT_PROMPTS: dict[str, str] = {
    "suction": _FORMAT_HEAD
    + "The first location is the image coordinate where you use a suction cup to pick up the "
    "object, and the second location is where you place the object."
    "The image coordinate ranges from 0 to 1. The rotation angle indicates how many degrees "
    "you rotate the object clockwise, and it ranges from -359 to 359.",
    "spatula": _FORMAT_HEAD
    + "The first location is the image coordinate where you start to sweep the object using a "
    "spatula, and the second location is where you stop sweeping. "
    "The image coordinate ranges from 0 to 1. The rotation angle indicates how many degrees "
    "you rotate the spatula clockwise, and it ranges from -359 to 359.",
}

# convert_vima.ipynb get_action_info: (opening verb, closing verb) per end effector.
VERBS: dict[str, tuple[str, str]] = {
    "suction": ("Pick up", "drop it"),
    "spatula": ("Sweep", "stop"),
}

# How a prompt closes a scene block (its objects as `<p>name</p> at <b>...</b>` lines):
# "standard" ends every line with "." (`...</b>.</scene>`: the notebook's get_scene_desc and
# eval/vima_utils.py prepare_prompt today); "scene_no_final_period" drops the LAST line's "."
# (`...</b></scene>`), as the prompts of LLaRA's released eval run [hso]D-inBC-VIMA-80k are
# written (its 1,080 prompts with a scene block; the other released runs write "standard").
PROMPT_VARIANTS = ("standard", "scene_no_final_period")

# The two forms of an answer's step: "Step k: Pick up ..." and "Pick up ..." (the AuxD
# checkpoints also answer behaviour-cloning prompts in the action-prediction form).
ANSWER_FORMS = ("numbered", "unnumbered")

# eval/eval-llara.py query_bc and the notebook's history: names become this word.
ANONYMOUS_OBJECT = "object"
HISTORY_HEADER = "\nYou have finished: "

# Object names: no tag or bracket characters (they would break LLaRA's own eval regexes),
# no control characters, no surrounding whitespace. The parser uses the same rule.
NAME_PATTERN = r"[^\s<>()\[\]{}](?:[^<>()\[\]{}\x00-\x1f\x7f]*[^\s<>()\[\]{}])?"
_NAME_RE = re.compile(NAME_PATTERN)


# The longest object name VIMA writes (texture + shape): the runtime bounds the names an
# answer may write at no fewer bytes than this, or than the longest name the prompt mentions.
LONGEST_VIMA_NAME = "yellow and purple polka dot three-sided rectangle"
NAME_FLOOR_BYTES = len(LONGEST_VIMA_NAME.encode())  # 49
_MENTION_RE = re.compile(f"<p>({NAME_PATTERN})</p>")


def check_name(name: object) -> str:
    """Return `name` if it can be written inside `<p>...</p>`, else raise ConfigError."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigError(f"object name {name!r} is empty or holds <>()[]{{}}, control chars "
                          "or surrounding whitespace")
    return name


def _coord(v: float) -> str:
    # `+ 0.0` turns -0.0 into 0.0: Python would write "-0.000", which LLaRA never does.
    return f"{v + 0.0:.3f}"


def check_bbox(bbox: Sequence[float]) -> BBox:
    """Validate (cx, cy, w, h): four finite numbers in [0, 1]."""
    try:
        vals = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bbox must be four numbers, got {bbox!r}") from err
    if len(vals) != 4 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in vals):
        raise ConfigError(f"bbox must be (cx, cy, w, h) in [0, 1], got {bbox!r}")
    cx, cy, w, h = vals
    return cx, cy, w, h


def format_bbox(bbox: Sequence[float]) -> str:
    """`<b>(cx, cy), {w, h}</b>` with 3 decimals (notebook bbox_format)."""
    cx, cy, w, h = check_bbox(bbox)
    return f"<b>({_coord(cx)}, {_coord(cy)}), {{{_coord(w)}, {_coord(h)}}}</b>"


def format_object(name: str, bbox: Sequence[float] | None = None) -> str:
    """`<p>name</p>` (inBC) or `<p>name</p> at <b>...</b>` (D-inBC, notebook get_obj_loc_desc)."""
    text = f"<p>{check_name(name)}</p>"
    return text if bbox is None else f"{text} at {format_bbox(bbox)}"


def prompt_object_names(user_text: str) -> tuple[str, ...]:
    """The object names a user text mentions as `<p>name</p>` (its task line and scene blocks;
    history lines write "object"), each once, in order of appearance."""
    return tuple(dict.fromkeys(_MENTION_RE.findall(user_text)))


def _pairs(objects: Mapping[str, BBox] | Iterable[tuple[str, BBox]]) -> list[tuple[str, BBox]]:
    return list(objects.items()) if isinstance(objects, Mapping) else list(objects)


def check_answer_forms(forms: Sequence[str]) -> list[str]:
    """`forms` as a list in ANSWER_FORMS order (ConfigError if empty or unknown)."""
    if isinstance(forms, str) or not forms:
        raise ConfigError(f"answer_forms must be a non-empty list from {list(ANSWER_FORMS)}, "
                          f"got {forms!r}")
    for form in forms:
        if form not in ANSWER_FORMS:
            raise ConfigError(f"unknown answer form {form!r}; {did_you_mean(form, ANSWER_FORMS)}")
    return [f for f in ANSWER_FORMS if f in forms]


def check_prompt_variant(variant: object) -> str:
    if variant not in PROMPT_VARIANTS:
        raise ConfigError(f"unknown LLaRA prompt variant {variant!r}; known: "
                          f"{', '.join(PROMPT_VARIANTS)}")
    return str(variant)


def format_scene(objects: Mapping[str, BBox] | Iterable[tuple[str, BBox]],
                 variant: str = "standard") -> str:
    """`<scene><p>a</p> at <b>...</b>.\\n<p>b</p> at <b>...</b>.</scene>` (get_scene_desc);
    variant "scene_no_final_period" ends `...</b></scene>` (PROMPT_VARIANTS)."""
    lines = [f"{format_object(name, bbox)}." for name, bbox in _pairs(objects)]
    if not lines:
        raise ConfigError("a scene needs at least one object")
    if check_prompt_variant(variant) == "scene_no_final_period":
        lines[-1] = lines[-1][:-1]
    return "<scene>" + "\n".join(lines) + "</scene>"


def _check_spaces(first_point_spaces: int) -> int:
    if first_point_spaces not in (1, 2):
        raise ConfigError(f"first_point_spaces must be 1 or 2, got {first_point_spaces!r}")
    return first_point_spaces


def format_action(
    action: PickPlaceAction, first_point_spaces: int = 1, anonymous: bool = False
) -> str:
    """One step's text without the "Step k: " prefix (notebook get_action_info).

    `anonymous` (or no object_name) writes "object" without tags, as in the history.
    """
    if not isinstance(action, PickPlaceAction):
        raise ConfigError(f"expected a PickPlaceAction, got {type(action).__name__}")
    gap = " " * _check_spaces(first_point_spaces)
    opening, closing = VERBS[action.tool]
    name = action.object_name
    obj = ANONYMOUS_OBJECT if anonymous or name is None else format_object(name)
    (px, py), (qx, qy) = action.pick, action.place
    return (
        f"{opening} the {obj} at <b>({_coord(px)},{gap}{_coord(py)})</b>, "
        f"rotate <r>[{int(action.rotation_deg)}]</r> degrees, "
        f"and {closing} at <b>({_coord(qx)}, {_coord(qy)})</b>."
    )


def format_answer(
    actions: Sequence[PickPlaceAction],
    first_step: int = 1,
    first_point_spaces: int = 1,
    numbered: bool = True,
) -> str:
    """Answer text: one "Step k: ..." line per action, k counting from `first_step`.

    `numbered=False` drops the "Step k: " prefixes (LLaRA's action-prediction aux answers,
    which the AuxD checkpoints also emit for behaviour cloning).
    """
    if not actions:
        raise ConfigError("an answer needs at least one action")
    if not isinstance(first_step, int) or first_step < 1:
        raise ConfigError(f"first_step must be an int >= 1, got {first_step!r}")
    lines = [format_action(a, first_point_spaces) for a in actions]
    if numbered:
        lines = [f"Step {first_step + i}: {line}" for i, line in enumerate(lines)]
    return "\n".join(lines)


def format_history(actions: Sequence[PickPlaceAction], first_point_spaces: int = 1) -> str:
    """"\\nYou have finished: Step 1: ...\\nStep 2: ..." with names as "object"; "" if none."""
    if not actions:
        return ""
    steps = [
        f"Step {i + 1}: {format_action(a, first_point_spaces, anonymous=True)}"
        for i, a in enumerate(actions)
    ]
    return HISTORY_HEADER + "\n".join(steps)


_HISTORY_STEP_RE = re.compile(r"^Step (\d+): ", re.M)
_STEP_OPENING_RE = re.compile("(Step [1-9][0-9]*: )?(?:" + "|".join(
    re.escape(opening) for opening, _ in VERBS.values()) + ") the ")


def answer_form(answer: str) -> str | None:
    """"numbered" / "unnumbered" (ANSWER_FORMS) for the first line of a LLaRA action answer,
    None for any other text (detection, localisation, LLARVA answers)."""
    m = _STEP_OPENING_RE.match(answer.lstrip())
    if m is None:
        return None
    return "numbered" if m.group(1) else "unnumbered"


def next_step_number(user_text: str) -> int:
    """The step a LLaRA answer to `user_text` starts at: 1 + the last "Step i:" of its
    "You have finished: " history (1 without one), as LLaRA's training data numbers it."""
    _, sep, history = user_text.rpartition(HISTORY_HEADER)
    if not sep:
        return 1
    steps = [int(m) for m in _HISTORY_STEP_RE.findall("\n" + history)]
    return max(steps, default=0) + 1


def pick_table(table: tuple[str, ...], index: int, what: str) -> str:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(table):
        raise ConfigError(f"{what} index must be in 0..{len(table) - 1}, got {index!r}")
    return table[index]


def detection_prompt(index: int, image_tag: str = IMAGE_TOKEN) -> str:
    """Auxiliary object-detection question (notebook prepare_dt_obj_dec)."""
    text = pick_table(DETECTION_PROMPTS, index, "detection prompt")
    return f"{check_image_tag(image_tag)}\n{text}"


def detection_answer(objects: Mapping[str, BBox] | Iterable[tuple[str, BBox]]) -> str:
    """Auxiliary object-detection answer: a `<scene>` of all objects (get_scene_desc)."""
    return format_scene(objects)


def localization_prompt(name: str, index: int, image_tag: str = IMAGE_TOKEN) -> str:
    """Auxiliary localisation question with `{object}` -> `<p>name</p>` (prepare_dt_obj_loc)."""
    text = pick_table(LOCALIZATION_PROMPTS, index, "localization prompt")
    return f"{check_image_tag(image_tag)}\n" + text.replace("{object}", format_object(name))


def localization_answer(name: str, bbox: Sequence[float]) -> str:
    """Auxiliary localisation answer `<p>name</p> at <b>(cx, cy), {w, h}</b>.`."""
    return f"{format_object(name, bbox)}."
