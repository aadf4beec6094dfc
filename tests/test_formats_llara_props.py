"""Property tests of the LLaRA formatter and strict parser (hypothesis).

Oracles: re-formatting what the parser returned must give the parsed text back (up to the
first-point spacing and "Step k: " prefixes, which the parser accepts in two forms), and
LLaRA's own eval regexes must read the same numbers from any accepted text.
"""

import contextlib
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ParseError
from llara_edge.formats import (
    detection_answer,
    format_answer,
    localization_answer,
    parse_detection,
    parse_llara_answer,
    parse_llara_first_step,
    parse_llara_like_eval,
    parse_localization,
)
from llara_edge.formats.llara import NAME_PATTERN

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
names = st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 40)
actions = st.builds(
    PickPlaceAction,
    pick=st.tuples(unit, unit),
    place=st.tuples(unit, unit),
    rotation_deg=st.integers(-359, 359),
    tool=st.sampled_from(["suction", "spatula"]),
    object_name=st.none() | names,
)
answers = st.tuples(
    st.lists(actions, min_size=1, max_size=5),
    st.integers(1, 30),  # first step number
    st.sampled_from([1, 2]),  # spaces after the first point's comma
    st.booleans(),  # numbered
)


def _quantised(a: PickPlaceAction) -> PickPlaceAction:
    def q(p):
        return tuple(float(f"{v:.3f}") for v in p)

    return PickPlaceAction(q(a.pick), q(a.place), a.rotation_deg, a.tool, a.object_name)


def _canonical(text: str) -> str:
    """Drop "Step k: " prefixes and turn a first point's two spaces into one."""
    lines = [re.sub(r"^Step \d+: ", "", line) for line in text.strip().split("\n")]
    return "\n".join(re.sub(r"^(.*? at <b>\(\d\.\d{3},)  ", r"\1 ", line) for line in lines)


def _check_accepted(text: str, steps: list[PickPlaceAction]) -> None:
    """What the parser returned is exactly what `text` says."""
    assert _canonical(text) == format_answer(steps, numbered=False)
    numbers = [re.match(r"Step (\d+): ", line) for line in text.strip().split("\n")]
    bases = {int(m.group(1)) - i for i, m in enumerate(numbers) if m}
    assert len(bases) <= 1 and min(bases, default=1) >= 1
    expected = [(a.pick, a.place, float(a.rotation_deg)) for a in steps]
    assert parse_llara_like_eval(text) == expected


@SETTINGS
@given(answers)
def test_round_trip(case):
    acts, first, spaces, numbered = case
    text = format_answer(acts, first_step=first, first_point_spaces=spaces, numbered=numbered)
    parsed = parse_llara_answer(text)
    assert parsed == [_quantised(a) for a in acts]
    assert format_answer(parsed, first, spaces, numbered) == text
    assert parse_llara_first_step(text) == parsed[0]
    _check_accepted(text, parsed)


@st.composite
def mutated(draw):
    acts, first, spaces, numbered = draw(answers)
    text = format_answer(acts, first_step=first, first_point_spaces=spaces, numbered=numbered)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "repeat"]))
        char = draw(st.sampled_from([*"0123456789.,- \n<>()[]{}/bprStep:", "", "\x00"]))
        if kind == "delete":
            text = text[:i] + text[i + 1 :]
        elif kind == "insert":
            text = text[:i] + char + text[i:]
        elif kind == "replace":
            text = text[:i] + char + text[i + 1 :]
        elif kind == "truncate":
            text = text[:i]
        else:
            j = draw(st.integers(i, min(len(text), i + 12)))
            text = text[:j] + text[i:j] + text[j:]
    return text


@SETTINGS
@given(mutated())
def test_mutations_parse_to_what_the_text_says_or_raise_parse_error(text):
    try:
        steps = parse_llara_answer(text)
    except ParseError:
        steps = None
    if steps is not None:
        _check_accepted(text, steps)
    try:
        first = parse_llara_first_step(text)
    except ParseError:
        return
    line = text.strip().split("\n")[0]
    _check_accepted(line, [first])


FRAGMENTS = ["Step 1: ", "Step 2: ", "Pick up the ", "Sweep the ", "<p>", "</p>", "object",
             " at <b>(", "0.312", "1.000", "-0.5", ",", ", ", ",  ", ")</b>", ", rotate <r>[",
             "-90", "0", "]</r> degrees, and ", "drop it", "stop", ".", "\n", "red block", "9" * 50]


@SETTINGS
@given(st.text(max_size=300) | st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_random_text_never_raises_anything_but_parse_error(text):
    for parse in (parse_llara_answer, parse_llara_first_step, parse_detection,
                  parse_localization):
        try:
            result = parse(text)
        except ParseError:
            continue
        if parse is parse_llara_answer:
            _check_accepted(text, result)


def test_huge_and_odd_inputs():
    texts = ["Step " + "9" * 5000 + ": x", "(" * 100000, "[" + "9" * 5000 + "]", "\x00" * 10,
             "Pick up the object at <b>(" + "1" * 5000 + ".000, 0.5)</b>", "\n" * 70000]
    for text in texts:
        for parse in (parse_llara_answer, parse_llara_first_step):
            with contextlib.suppress(ParseError):
                parse(text)
        # LLaRA's point regex is quadratic on runs of "(": keep its oracle input short.
        parse_llara_like_eval(text[:5000])


boxes = st.tuples(unit, unit, unit, unit)


@SETTINGS
@given(st.lists(st.tuples(names, boxes), min_size=1, max_size=6))
def test_detection_and_localisation_round_trip(objects):
    def q(b):
        return tuple(float(f"{v:.3f}") for v in b)

    parsed = parse_detection(detection_answer(objects))
    assert parsed == [(n, q(b)) for n, b in objects]
    name, box = objects[0]
    assert parse_localization(localization_answer(name, box)) == (name, q(box))


@SETTINGS
@given(st.lists(actions, min_size=1, max_size=3), st.sampled_from([1, 2]))
def test_eval_regex_agrees_in_single_step_mode(acts, spaces):
    text = format_answer(acts, first_point_spaces=spaces)
    first = parse_llara_first_step(text)
    assert parse_llara_like_eval(text, single_step=True) == [
        (first.pick, first.place, float(first.rotation_deg))
    ]
