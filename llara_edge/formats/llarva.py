"""LLARVA text formats: structured joint-control prompt, answers, strict parser.

Contract (FORMATS.md §3), byte for byte as LLARVA's RLBench agent writes them:

    <image>
    You are a Franka robot using the joint control. The task is "...", and the previous five
    (including current) steps is [[...], ...], can you predict action of the next 1 step?

and with the visual-trace question (note: "a Franka using", "are [...]. Can you ..."):

    ... The task is "...", and the previous five (including current) steps are [[...], ...].
    Can you predict the 2D visual trace of the end effector and the action of the next 1 step?

The history is Python's `str()` of a list of lists: it starts as integer zeros (`[0, 0, ...]`),
then each pushed pose is `np.round(pose, 4).tolist()` (Python float repr: "0.0123", "0.5",
"-0.0"). Answers: "The next action step: [a1, ..., an, gripper]" (values rounded to 4
decimals the same way) and, with a trace, "The 2-D visual trace: [[x, y], ...] " before it.
The number of joints is a parameter everywhere (5 for the sim arm, 7 for Franka).

Sources (Dantong88/LLARVA): `sim/agents/llarva_bc/llarva_agent.py` (LLaRVAAgent.reset / act:
prompts, history buffer, answer regexes, 7 values -> gripper 1.0),
`sim/data/generate_vision-action-tuning_anns.py` (training prompt variant, answer text). The
trace answer layout is not in LLARVA's code; it follows FORMATS.md §3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llara_edge.actions import JointStepAction
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats.templates import IMAGE_TOKEN, check_image_tag

# llarva_agent.py LLaRVAAgent.act: `qs = '...'.format(robot_type, control_type, instruction,
# prev_actions_buffer, pred_num_step)`; the trace text hard-codes "next 1 step" there.
PROMPTS: dict[str, str] = {
    "action": 'You are a {robot} robot using the {control}. The task is "{task}", and the '
    "previous {count} (including current) steps is {history}, can you predict action of the "
    "next {steps} step?",
    "trace": 'You are a {robot} using the {control}. The task is "{task}", and the previous '
    "{count} (including current) steps are {history}. Can you predict the 2D visual trace of "
    "the end effector and the action of the next {steps} step?",
    # generate_vision-action-tuning_anns.py get_curr_dict: the wording the RLBench training
    # annotations use (differs from the agent's "action" text above).
    "action_train": 'You are a {robot} robot using the {control}. The task is "{task}", and '
    "the previous {count} (including current) steps are {history}. Can you predict action of "
    "the next {steps} step?",
}
_COUNT_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

ACTION_PREFIX = "The next action step: "  # generate_vision-action-tuning_anns.py
TRACE_PREFIX = "The 2-D visual trace: "  # FORMATS.md §3
DECIMALS = 4
MAX_ABS_VALUE = 1e6  # keeps Python's float repr in plain decimals (no "1e+16")


def _rounded(values: Sequence[float], what: str) -> list[float]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{what} must be numbers, got {values!r}") from err
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(np.abs(arr) >= MAX_ABS_VALUE):
        raise ConfigError(f"{what} must be a flat list of finite numbers below 1e6: {values!r}")
    return np.round(arr, DECIMALS).tolist()  # exactly the agent's np.round(x, 4).tolist()


class ProprioHistory:
    """The agent's `prev_actions_buffer`: the last `length` poses, oldest first.

    Starts as `length` rows of integer zeros (written "0", not "0.0", as in the agent).
    """

    def __init__(self, n_joints: int, length: int = 5):
        if not isinstance(n_joints, int) or n_joints < 1:
            raise ConfigError(f"n_joints must be an int >= 1, got {n_joints!r}")
        if not isinstance(length, int) or not 1 <= length <= len(_COUNT_WORDS):
            raise ConfigError(f"history length must be 1..{len(_COUNT_WORDS)}, got {length!r}")
        self.n_joints = n_joints
        self.rows: list[list[float] | list[int]] = [[0] * n_joints for _ in range(length)]

    def push(self, pose: Sequence[float]) -> None:
        """Append the current joint pose (rounded to 4 decimals), dropping the oldest."""
        row = _rounded(pose, "pose")
        if len(row) != self.n_joints:
            raise ConfigError(f"pose has {len(row)} values, expected {self.n_joints}")
        self.rows = [*self.rows[1:], row]

    def text(self) -> str:
        """Python's str() of the list of rows, as the agent formats it into the prompt."""
        return str(self.rows)


@dataclass(frozen=True)
class LlarvaPrompt:
    """LLARVA user prompt settings; `variant` is a key of PROMPTS ("trace" asks for one)."""

    task: str
    robot: str = "Franka"
    control: str = "joint control"
    pred_steps: int = 1
    variant: str = "action"
    image_tag: str = IMAGE_TOKEN

    def __post_init__(self) -> None:
        if self.variant not in PROMPTS:
            raise ConfigError(f"variant must be one of {sorted(PROMPTS)}, got {self.variant!r}")
        for name in ("task", "robot", "control"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or "\n" in value:
                raise ConfigError(f"{name} must be a non-empty single line, got {value!r}")
        if not isinstance(self.pred_steps, int) or self.pred_steps < 1:
            raise ConfigError(f"pred_steps must be an int >= 1, got {self.pred_steps!r}")
        check_image_tag(self.image_tag)

    def render(self, history: ProprioHistory) -> str:
        """`<image>\\n` + the question with the history buffer's current content."""
        text = PROMPTS[self.variant].format(
            robot=self.robot,
            control=self.control,
            task=self.task,
            count=_COUNT_WORDS[len(history.rows) - 1],
            history=history.text(),
            steps=self.pred_steps,
        )
        return f"{self.image_tag}\n{text}"


def format_llarva_answer(action: JointStepAction, n_joints: int) -> str:
    """`[TRACE_PREFIX [[x, y], ...] ]ACTION_PREFIX [j1, ..., jn, gripper]`."""
    if not isinstance(action, JointStepAction):
        raise ConfigError(f"expected a JointStepAction, got {type(action).__name__}")
    if len(action.joints) != n_joints:
        raise ConfigError(f"action has {len(action.joints)} joints, expected {n_joints}")
    text = ACTION_PREFIX + str(_rounded([*action.joints, action.gripper], "action"))
    if action.trace is None:
        return text
    trace = [[_trace_int(x), _trace_int(y)] for x, y in action.trace]
    return f"{TRACE_PREFIX}{trace} {text}"


def _trace_int(v: object) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 <= v <= 999999:
        raise ConfigError(f"trace points must be ints in 0..999999, got {v!r}")
    return int(v)


_ANSWER_RE = re.compile(
    rf"(?:{re.escape(TRACE_PREFIX)}\[(?P<trace>[^\n]*?)\] )?{re.escape(ACTION_PREFIX)}"
    r"\[(?P<values>[^\[\]\n]*)\]"
)
_TRACE_RE = re.compile(r"(?:\[\d+, \d+\](?:, \[\d+, \d+\])*)?")
_TRACE_POINT_RE = re.compile(r"\[(\d+), (\d+)\]")
_TRACE_INT_RE = re.compile(r"0|[1-9]\d{0,5}")
_VALUE_RE = re.compile(r"-?\d{1,32}(?:\.\d{1,32})?")


def _parse_values(field: str, n_joints: int, text: str) -> tuple[list[float], float]:
    parts = field.split(", ")
    if not all(_VALUE_RE.fullmatch(p) for p in parts):
        raise ParseError("bad_number", f"action values {field[:80]!r}", text)
    values = [float(p) for p in parts]
    if len(values) == n_joints:
        values.append(1.0)  # llarva_agent.py: 7 numbers -> gripper 1.0 (open)
    if len(values) != n_joints + 1:
        raise ParseError("wrong_count", f"{len(parts)} values for {n_joints} joints", text)
    if not all(math.isfinite(v) for v in values) or not 0.0 <= values[-1] <= 1.0:
        raise ParseError("out_of_range", "non-finite value or gripper outside [0, 1]", text)
    return values[:-1], values[-1]


def _parse_trace(field: str, text: str) -> tuple[tuple[int, int], ...]:
    if not _TRACE_RE.fullmatch(field):
        raise ParseError("bad_trace", f"trace {field[:80]!r} is not [[x, y], ...]", text)
    points = _TRACE_POINT_RE.findall(field)
    if not all(_TRACE_INT_RE.fullmatch(v) for point in points for v in point):
        raise ParseError("bad_number", "trace coordinates must be plain ints < 1e6", text)
    return tuple((int(x), int(y)) for x, y in points)


def parse_llarva_answer(text: str, n_joints: int) -> JointStepAction:
    """Strict parse of an answer with or without trace; ParseError (only) on anything else.

    Accepts n_joints values (gripper then 1.0, as the agent does) or n_joints + 1.
    Reason tags: empty, too_long, malformed, truncated, bad_number, bad_trace,
    wrong_count, out_of_range.
    """
    if not isinstance(n_joints, int) or n_joints < 1:
        raise ConfigError(f"n_joints must be an int >= 1, got {n_joints!r}")
    if not isinstance(text, str) or len(text) > 65536:
        raise ParseError("too_long" if isinstance(text, str) else "malformed", "bad input", "")
    text = text.strip()
    if not text:
        raise ParseError("empty", "no text", text)
    m = _ANSWER_RE.fullmatch(text)
    if not m:
        reason = "truncated" if not text.endswith("]") else "malformed"
        raise ParseError(reason, f"not a LLARVA answer: {text[:80]!r}", text)
    joints, gripper = _parse_values(m.group("values"), n_joints, text)
    trace = None if m.group("trace") is None else _parse_trace(m.group("trace"), text)
    return JointStepAction(joints=tuple(joints), gripper=gripper, trace=trace)


# llarva_agent.py act (trace branch): the source's own reading, used as a test oracle.
LLARVA_ACTION_RE = re.compile(r"The next action step: \[([^\]]+)\]")


def parse_llarva_like_source(text: str) -> list[float] | None:
    """Values LLARVA's agent would read (`re.search` + split(", ") + float); None where it
    finds nothing or would raise. Never raises."""
    m = LLARVA_ACTION_RE.search(text)
    if not m:
        return None
    try:
        return [float(x) for x in m.group(1).split(", ")]
    except ValueError:
        return None
