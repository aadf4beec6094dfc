"""LLARVA text formats: structured joint-control prompt, answers, strict parser.

Contract (docs/formats.md "LLARVA"): byte for byte as Dantong88/LLARVA (commit 6d41f57)
writes them. The user text is `<image>\\n` + one of PROMPTS, by prompt variant:

- "train" (the default; sim/data/generate_vision-action-tuning_anns.py:19, the RLBench
  training annotations): `You are a Franka robot using the joint control. The task is "...",
  and the previous five (including current) steps are [[...], ...]. Can you predict action of
  the next 1 step?`
- "eval" (sim/agents/llarva_bc/llarva_agent.py:98, what the released agent sends): `... steps
  is [[...], ...], can you predict action of the next 1 step?`
- "trace" (the pre-release builder Dantong88/LLaRVA_new process_dataset/large_scale_training/
  new_action_version/rtx_with_trace.py:68): the "eval" text with its final "?" replaced by
  ` and the trajectories of the end effector?`
- "trace_agent" (llarva_agent.py:95, a branch the release never runs): `You are a Franka using
  the joint control. ... steps are [[...], ...]. Can you predict the 2D visual trace of the end
  effector and the action of the next 1 step?`

The history is Python's `str()` of a list of lists: integer zero rows (`[0, 0, ...]`, written
"0"), then each pushed pose as `np.round(pose, 4).tolist()` (Python float repr: "0.0123",
"-0.5", "-0.0"; never an exponent below 1e6), the current pose last. Answer (training
annotations line 20): `The next action step: [v1, ..., vn, gripper]` with the values written
the same way; the trace variants add `. The trajectory: [[x, y], ...]` after it (rtx_with_trace
.py:71; integer pixels, `thin_trace` = that builder's find_tj stride). The number of joints is a
parameter (LLARVA: 7, Franka; the simulator's arm: 5).
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

_EVAL = ('You are a {robot} robot using the {control}. The task is "{task}", and the previous '
         "{count} (including current) steps is {history}, can you predict action of the next "
         "{steps} step")
PROMPTS: dict[str, str] = {
    "train": 'You are a {robot} robot using the {control}. The task is "{task}", and the '
    "previous {count} (including current) steps are {history}. Can you predict action of the "
    "next 1 step?",
    "eval": _EVAL + "?",
    "trace": _EVAL + " and the trajectories of the end effector?",
    "trace_agent": 'You are a {robot} using the {control}. The task is "{task}", and the '
    "previous {count} (including current) steps are {history}. Can you predict the 2D visual "
    "trace of the end effector and the action of the next 1 step?",
}
DEFAULT_VARIANT = "train"  # what the released RLBench checkpoint was trained on
TRACE_VARIANTS = frozenset({"trace", "trace_agent"})  # the answer carries the trajectory
_COUNT_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

ACTION_PREFIX = "The next action step: "  # generate_vision-action-tuning_anns.py:20
TRAJECTORY_SEP = ". The trajectory: "  # LLaRVA_new rtx_with_trace.py:71
DECIMALS = 4
MAX_ABS_VALUE = 1e6  # keeps Python's float repr in plain decimals (no "1e+16")
TRACE_TARGET_POINTS = 30  # find_tj: dp_ratio = 30 / len(trajectory)


def _rounded(values: Sequence[float], what: str) -> list[float]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{what} must be numbers, got {values!r}") from err
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(np.abs(arr) >= MAX_ABS_VALUE):
        raise ConfigError(f"{what} must be a flat list of finite numbers below 1e6: {values!r}")
    return np.round(arr, DECIMALS).tolist()  # exactly LLARVA's np.round(x, 4).tolist()


class ProprioHistory:
    """The agent's `prev_actions_buffer`: the last `length` poses, oldest first.

    Starts as `length` rows of integer zeros (written "0", not "0.0", as in LLARVA).
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
        """Python's str() of the list of rows, as LLARVA formats it into the prompt."""
        return str(self.rows)


@dataclass(frozen=True)
class LlarvaPrompt:
    """LLARVA user prompt settings; `variant` is a key of PROMPTS (module docstring)."""

    task: str
    robot: str = "Franka"
    control: str = "joint control"
    pred_steps: int = 1
    variant: str = DEFAULT_VARIANT
    image_tag: str = IMAGE_TOKEN

    def __post_init__(self) -> None:
        if self.variant not in PROMPTS:
            raise ConfigError(f"LLARVA prompt variant must be one of {sorted(PROMPTS)}, got "
                              f"{self.variant!r}")
        for name in ("task", "robot", "control"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or "\n" in value:
                raise ConfigError(f"{name} must be a non-empty single line, got {value!r}")
        if not isinstance(self.pred_steps, int) or self.pred_steps < 1:
            raise ConfigError(f"pred_steps must be an int >= 1, got {self.pred_steps!r}")
        if self.pred_steps != 1 and "{steps}" not in PROMPTS[self.variant]:
            raise ConfigError(f"LLARVA's {self.variant!r} text asks for the next 1 step "
                              f"(hard-coded there), got pred_steps={self.pred_steps}")
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


def thin_trace(points: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """find_tj's thinning (rtx_with_trace.py:25-35): every point while there are fewer than
    60, else every floor(len / 30)-th from the first (30..59 points)."""
    pts = tuple(points)
    if not pts:
        return ()
    stride = math.floor(1 / (TRACE_TARGET_POINTS / len(pts)))  # the source's float steps
    return pts if stride <= 1 else pts[::stride]


def format_llarva_answer(action: JointStepAction, n_joints: int) -> str:
    """`The next action step: [j1, ..., jn, gripper][. The trajectory: [[x, y], ...]]`."""
    if not isinstance(action, JointStepAction):
        raise ConfigError(f"expected a JointStepAction, got {type(action).__name__}")
    if len(action.joints) != n_joints:
        raise ConfigError(f"action has {len(action.joints)} joints, expected {n_joints}")
    text = ACTION_PREFIX + str(_rounded([*action.joints, action.gripper], "action"))
    if action.trace is None:
        return text
    trace = [[_trace_int(x), _trace_int(y)] for x, y in action.trace]
    return f"{text}{TRAJECTORY_SEP}{trace}"


def _trace_int(v: object) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 <= v <= 999999:
        raise ConfigError(f"trace points must be ints in 0..999999, got {v!r}")
    return int(v)


_ANSWER_RE = re.compile(
    rf"{re.escape(ACTION_PREFIX)}\[(?P<values>[^\[\]\n]*)\]"
    rf"(?:{re.escape(TRAJECTORY_SEP)}\[(?P<trace>[^\n]*)\])?"
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
        values.append(1.0)  # llarva_agent.py:147-148: 7 numbers -> gripper 1.0 (open)
    if len(values) != n_joints + 1:
        raise ParseError("wrong_count", f"{len(parts)} values for {n_joints} joints", text)
    if not all(math.isfinite(v) for v in values) or not 0.0 <= values[-1] <= 1.0:
        raise ParseError("out_of_range", "non-finite value or gripper outside [0, 1]", text)
    return values[:-1], values[-1]


def _parse_trace(field: str, text: str) -> tuple[tuple[int, int], ...]:
    if not _TRACE_RE.fullmatch(field):
        raise ParseError("bad_trace", f"trajectory {field[:80]!r} is not [[x, y], ...]", text)
    points = _TRACE_POINT_RE.findall(field)
    if not all(_TRACE_INT_RE.fullmatch(v) for point in points for v in point):
        raise ParseError("bad_number", "trajectory coordinates must be plain ints < 1e6", text)
    return tuple((int(x), int(y)) for x, y in points)


def parse_llarva_answer(text: str, n_joints: int) -> JointStepAction:
    """Strict parse of an answer with or without its trajectory; ParseError (only) on
    anything else. Accepts n_joints values (gripper then 1.0, as the agent does) or
    n_joints + 1. Reason tags: empty, too_long, malformed, truncated, bad_number, bad_trace,
    wrong_count, out_of_range.
    """
    if not isinstance(n_joints, int) or n_joints < 1:
        raise ConfigError(f"n_joints must be an int >= 1, got {n_joints!r}")
    if not isinstance(text, str) or len(text) > 65536:
        raise ParseError("too_long" if isinstance(text, str) else "malformed", "bad input", "")
    text = text.strip()  # llarva_agent.py:137: batch_decode(...)[0].strip()
    if not text:
        raise ParseError("empty", "no text", text)
    m = _ANSWER_RE.fullmatch(text)
    if not m:
        reason = "truncated" if not text.endswith("]") else "malformed"
        raise ParseError(reason, f"not a LLARVA answer: {text[:80]!r}", text)
    joints, gripper = _parse_values(m.group("values"), n_joints, text)
    trace = None if m.group("trace") is None else _parse_trace(m.group("trace"), text)
    return JointStepAction(joints=tuple(joints), gripper=gripper, trace=trace)


# llarva_agent.py:142,176-179: the parser the released agent runs (with_visual_trace False).
LLARVA_FIRST_LIST_RE = re.compile(r"\[(.*?)\]")
_LLARVA_CLEAN_RE = re.compile(r"[^0-9\-.]")


def parse_llarva_like_source(text: str, n_joints: int = 7) -> list[float] | None:
    """The values LLARVA's agent reads from `text` (a test oracle): the first `[...]`
    anywhere, split on ",", every character but `0-9 - .` dropped, gripper 1.0 appended to
    exactly `n_joints` values (the agent's hard-coded 7), `float()` each. None where the agent
    finds no list or would raise. Never raises."""
    m = LLARVA_FIRST_LIST_RE.search(text)
    if not m:
        return None
    numbers: list[str | float] = [_LLARVA_CLEAN_RE.sub("", x) for x in m.group(1).split(",")]
    if len(numbers) == n_joints:
        numbers.append(1.0)
    try:
        return [float(x) for x in numbers]
    except ValueError:
        return None
