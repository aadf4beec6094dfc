"""Strict parsers for LLaRA answers, plus LLaRA's own lenient eval parsing for comparison.

Contract: `parse_llara_answer` / `parse_llara_first_step` / `parse_detection` /
`parse_localization` either return exactly what the text says or raise
`llara_edge.errors.ParseError` with a reason tag; they raise nothing else, whatever the
input. Accepted text is the language `llara.format_answer` writes (so formatting a parsed
answer gives the text back), widened only where real checkpoints differ:
- one or two spaces after the comma of a step's FIRST point (released models write two);
- the "Step k: " prefix may be absent on any line (the AuxD checkpoints drop it); where
  present, numbers count up by one per line from some k >= 1;
- "the object" (no tags, object_name None), as in LLaRA's history lines;
- surrounding whitespace is stripped (LLaRA strips the decoded text too).

Reason tags: empty, too_long, malformed, truncated, bad_name, bad_number, bad_spacing,
out_of_range, tool_mismatch, step_order.

`parse_llara_like_eval` applies LLaRA's eval regexes (`\\(.+?,.+?\\)`, `\\[(-*\\d*)\\]`;
LostXine/LLaRA eval/eval-llara.py query_bc + parse_bc, eval/vima_utils.py parse_coordinate)
so that tests can check that whatever we accept parses the same way there.
"""

from __future__ import annotations

import re

from llara_edge.actions import ROTATION_LIMIT_DEG, PickPlaceAction
from llara_edge.errors import ParseError
from llara_edge.formats.llara import ANONYMOUS_OBJECT, NAME_PATTERN, VERBS, BBox

# Longest answer we look at: 256 new tokens of LLaRA are ~1 KiB; anything far beyond is junk.
MAX_TEXT_CHARS = 65536

_TOOL_BY_OPENING = {opening: tool for tool, (opening, _) in VERBS.items()}
_OPENINGS = "|".join(map(re.escape, _TOOL_BY_OPENING))
_CLOSINGS = "|".join(re.escape(closing) for _, closing in VERBS.values())

# Skeleton of one step with loosely captured fields; each field is then checked strictly.
_STEP_RE = re.compile(
    r"(?:Step (?P<num>\d+): )?"
    rf"(?P<opening>{_OPENINGS}) the (?:<p>(?P<name>[^<>\n]*)</p>|(?P<anon>{ANONYMOUS_OBJECT}))"
    r" at <b>\((?P<p1>[^()<>\n]*)\)</b>, rotate <r>\[(?P<rot>[^\[\]<>\n]*)\]</r> degrees,"
    rf" and (?P<closing>{_CLOSINGS}) at <b>\((?P<p2>[^()<>\n]*)\)</b>\."
)
_NAME_RE = re.compile(NAME_PATTERN)
_COORD_RE = re.compile(r"\d\.\d{3}")  # what "{:.3f}" writes for a value in [0, 1]
_COORD_LIKE_RE = re.compile(r"-?\d{1,6}\.\d{3}")  # right shape, maybe out of range
_POINT_RE = re.compile(r"([^,]*),( *)([^,]*)")
_INT_RE = re.compile(r"0|-?[1-9]\d{0,5}")  # what "{int}" writes (no "-0", no leading zeros)
_STEP_NUM_RE = re.compile(r"[1-9]\d{0,5}")


def _fail(reason: str, message: str, text: str) -> ParseError:
    return ParseError(reason, message, text)


def _prepare(text: object) -> str:
    if not isinstance(text, str):
        raise _fail("malformed", f"expected str, got {type(text).__name__}", repr(text))
    if len(text) > MAX_TEXT_CHARS:
        raise _fail("too_long", f"{len(text)} chars > {MAX_TEXT_CHARS}", text)
    text = text.strip()
    if not text:
        raise _fail("empty", "no text", text)
    return text


def parse_coordinate(field: str, text: str) -> float:
    """One normalised coordinate written as "{:.3f}" (0.000 .. 1.000)."""
    if _COORD_RE.fullmatch(field):
        value = float(field)
        if value <= 1.0:
            return value
    if _COORD_LIKE_RE.fullmatch(field) and field != "-0.000":
        raise _fail("out_of_range", f"coordinate {field!r} outside [0, 1]", text)
    raise _fail("bad_number", f"coordinate {field!r} is not written as 0.000 .. 1.000", text)


def _parse_point(field: str, spaces: tuple[int, ...], text: str) -> tuple[float, float]:
    m = _POINT_RE.fullmatch(field)
    if not m:
        raise _fail("bad_number", f"point {field!r} is not 'x, y'", text)
    if len(m.group(2)) not in spaces:
        raise _fail("bad_spacing", f"point {field!r}: {len(m.group(2))} spaces after ','", text)
    return parse_coordinate(m.group(1), text), parse_coordinate(m.group(3), text)


def parse_int(field: str, text: str) -> int:
    """A plain decimal int as Python writes it; at most 6 digits (no int() of huge strings)."""
    if not _INT_RE.fullmatch(field):
        raise _fail("bad_number", f"{field!r} is not a plain integer", text)
    return int(field)


def _parse_rotation(field: str, text: str) -> int:
    value = parse_int(field, text)
    if abs(value) > ROTATION_LIMIT_DEG:
        raise _fail("out_of_range", f"rotation {value} outside -359..359", text)
    return value


def _parse_step(line: str, text: str, last: bool) -> tuple[int | None, PickPlaceAction]:
    m = _STEP_RE.fullmatch(line)
    if not m:
        reason = "truncated" if last and not line.endswith("</b>.") else "malformed"
        raise _fail(reason, f"not a LLaRA step: {line[:80]!r}", text)
    num = m.group("num")
    if num is not None and not _STEP_NUM_RE.fullmatch(num):
        raise _fail("bad_number", f"step number {num!r}", text)
    name = m.group("name")
    if m.group("anon") is None and not _NAME_RE.fullmatch(name):
        raise _fail("bad_name", f"object name {name!r}", text)
    tool = _TOOL_BY_OPENING[m.group("opening")]
    if VERBS[tool][1] != m.group("closing"):
        raise _fail("tool_mismatch", f"{m.group('opening')!r} with {m.group('closing')!r}", text)
    action = PickPlaceAction(
        pick=_parse_point(m.group("p1"), (1, 2), text),
        place=_parse_point(m.group("p2"), (1,), text),
        rotation_deg=_parse_rotation(m.group("rot"), text),
        tool=tool,
        object_name=name,
    )
    return (int(num) if num is not None else None), action


def parse_llara_answer(text: str) -> list[PickPlaceAction]:
    """All steps of a LLaRA answer (one per line), or ParseError. See the module contract."""
    text = _prepare(text)
    lines = text.split("\n")
    steps = [_parse_step(line, text, i == len(lines) - 1) for i, line in enumerate(lines)]
    bases = {num - i for i, (num, _) in enumerate(steps) if num is not None}
    if len(bases) > 1 or min(bases, default=1) < 1:
        numbers = [num for num, _ in steps]
        raise _fail("step_order", f"step numbers {numbers} do not count up by one", text)
    return [action for _, action in steps]


def parse_llara_first_step(text: str) -> PickPlaceAction:
    """The first step only: the first line must be a whole valid step; later lines are not
    looked at (single-step decoding may stop anywhere after the first step)."""
    text = _prepare(text)
    first, sep, _ = text.partition("\n")
    return _parse_step(first, text, last=not sep)[1]


# LLaRA eval/eval-llara.py query_bc: points and rotations found anywhere in the answer.
LLARA_POINT_RE = re.compile(r"\(.+?,.+?\)")
LLARA_ROTATION_RE = re.compile(r"\[(-*\d*)\]")

EvalStep = tuple[tuple[float, float], tuple[float, float], float]


def _eval_point(coord_str: str) -> tuple[float, float]:
    # eval/vima_utils.py parse_coordinate, without its VIMA pixel scaling (x256, x128).
    x_str, y_str = coord_str[1:-1].split(",")
    return float(x_str), float(y_str)


def parse_llara_like_eval(text: str, single_step: bool = False) -> list[EvalStep | None]:
    """What LLaRA's eval would read from `text`: (pick, place, rotation) per step.

    Rotation is the number as written (parse_bc negates it for VIMA's frame afterwards).
    An entry is None where LLaRA's parse_bc would raise (and fall back to a random
    action). `single_step` mirrors prompt mode 's' (at most one step). Never raises; like
    LLaRA's regex it is quadratic on adversarial text (runs of "("): a test oracle, not a
    control-path parser.
    """
    points = LLARA_POINT_RE.findall(text)
    rotations = LLARA_ROTATION_RE.findall(text)
    count = min(len(points) // 2, len(rotations))
    if single_step:
        count = min(count, 1)
    result: list[EvalStep | None] = []
    for i in range(count):
        try:
            step = (_eval_point(points[2 * i]), _eval_point(points[2 * i + 1]))
            result.append((*step, float(rotations[i])))
        except ValueError:
            result.append(None)
    return result


_BBOX_RE = re.compile(r"<b>\(([^()<>\n]*)\), \{([^{}<>\n]*)\}</b>")
_LOC_RE = re.compile(r"<p>([^<>\n]*)</p> at (<b>.*?</b>)\.")


def _parse_bbox(field: str, text: str) -> BBox:
    m = _BBOX_RE.fullmatch(field)
    if not m:
        raise _fail("malformed", f"not a bbox: {field[:80]!r}", text)
    cx, cy = _parse_point(m.group(1), (1,), text)
    w, h = _parse_point(m.group(2), (1,), text)
    return cx, cy, w, h


def _parse_located(line: str, text: str) -> tuple[str, BBox]:
    m = _LOC_RE.fullmatch(line)
    if not m:
        raise _fail("malformed", f"not '<p>name</p> at <b>...</b>.': {line[:80]!r}", text)
    if not _NAME_RE.fullmatch(m.group(1)):
        raise _fail("bad_name", f"object name {m.group(1)!r}", text)
    return m.group(1), _parse_bbox(m.group(2), text)


def parse_localization(text: str) -> tuple[str, BBox]:
    """Auxiliary localisation answer `<p>name</p> at <b>(cx, cy), {w, h}</b>.`."""
    text = _prepare(text)
    return _parse_located(text, text)


def parse_detection(text: str) -> list[tuple[str, BBox]]:
    """Auxiliary detection answer `<scene>...</scene>`: (name, bbox) per line, in order."""
    text = _prepare(text)
    if not (text.startswith("<scene>") and text.endswith("</scene>")):
        reason = "truncated" if text.startswith("<scene>") else "malformed"
        raise _fail(reason, "not wrapped in <scene>...</scene>", text)
    body = text[len("<scene>") : -len("</scene>")]
    return [_parse_located(line, text) for line in body.split("\n")]
