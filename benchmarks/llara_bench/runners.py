"""Step runners: anything that turns (frame, LLaRA prompt) into a timed, parsed step.

Contract:
    StepRunner protocol: .name, .step(rgb, user_text) -> StepRecord, .close()
    StepRecord(text, action, parse_error, stages {stage: s}, total_s, ttft_s, n_tokens,
               forward_passes, extend1_s=None, target=None)
    parse_step(text, stages, t0, **fields) -> StepRecord   # times the parse, closes the step
    policy_prompt(user_text) -> str       # the vicuna_v1 prompt, "<image>\\n" put in front
    PolicyRunner(artifact_dir, RuntimeConfig, name)   # llara_edge.runtime.policy.Policy
    DelayRunner(inner, delay_s, stage="decode")        # a deliberately slowed variant
    same_action(a, b) -> bool

Stages are wall seconds in control-step order (preprocess, vision, projector, prefill,
decode, parse); a runner that cannot split two stages reports them joined
("vision+prefill"). total_s is the whole step from the frame handed over to the typed
action (or the parse error), ttft_s the time to the first answer token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ParseError
from llara_edge.formats import parse_llara_first_step
from llara_edge.formats.templates import IMAGE_TAG_RE, IMAGE_TOKEN, build_prompt

STAGE_ORDER = ("capture", "state", "prompt", "preprocess", "vision", "projector",
               "vision+prefill", "prefill", "decode", "policy", "parse", "geometry", "safety",
               "plan", "drive", "settle", "step")


def in_stage_order(stages: dict) -> dict:
    """`stages` re-keyed in control-step order (STAGE_ORDER), unknown stages last."""
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    return dict(sorted(stages.items(), key=lambda kv: order.get(kv[0], len(order))))


@dataclass
class StepRecord:
    text: str
    action: PickPlaceAction | None
    parse_error: str | None
    stages: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0
    ttft_s: float | None = None
    n_tokens: int = 0
    forward_passes: int = 0
    extend1_s: float | None = None  # median single-token extend of the step (taught Policy)
    target: str | None = None  # the answer a teacher drove the runner to (teacher.py)


class StepRunner(Protocol):
    name: str

    def step(self, rgb: np.ndarray, user_text: str) -> StepRecord: ...

    def close(self) -> None: ...


def policy_prompt(user_text: str, template: str = "vicuna_v1") -> str:
    """The reference's prompt rule (TorchPolicy.prompt): one image tag, in front if absent."""
    if not IMAGE_TAG_RE.search(user_text):
        user_text = IMAGE_TOKEN + "\n" + user_text
    return build_prompt(template, user_text)


def parse_step(text: str, stages: dict[str, float], t0: float, **fields) -> StepRecord:
    """Parse the first LLaRA step of `text` (timed as stage "parse") and close the step."""
    t = time.perf_counter()
    action, error = None, None
    try:
        action = parse_llara_first_step(text)
    except ParseError as err:
        error = f"{err.reason}: {err}"
    end = time.perf_counter()
    stages = {**stages, "parse": end - t}
    return StepRecord(text, action, error, stages, total_s=end - t0, **fields)


def same_action(a: PickPlaceAction | None, b: PickPlaceAction | None) -> bool:
    """Equal typed actions (both None also counts: the same failure)."""
    if a is None or b is None:
        return a is b
    return (a.pick, a.place, a.rotation_deg, a.tool) == (b.pick, b.place, b.rotation_deg,
                                                         b.tool)


class PolicyRunner:
    """The product path: llara_edge.runtime.policy.Policy over an artifact directory."""

    def __init__(self, artifact: str | Path, config, name: str):
        from llara_edge.runtime.policy import Policy

        self.name = name
        self.policy = Policy.load(artifact, config)

    def close(self) -> None:
        close = getattr(self.policy, "close", None)
        if close:
            close()

    def step(self, rgb: np.ndarray, user_text: str) -> StepRecord:
        t0 = time.perf_counter()
        try:
            out = self.policy.act(rgb, user_text)
        except ParseError as err:  # a policy that refuses an unparsable answer
            return StepRecord(err.text or "", None, f"{err.reason}: {err}",
                              total_s=time.perf_counter() - t0)
        total = time.perf_counter() - t0
        stages = {k: float(v) for k, v in out.timings.items()}
        return StepRecord(out.text, out.action, None, stages, total_s=total,
                          ttft_s=getattr(out, "ttft_s", None),
                          n_tokens=int(getattr(out, "n_tokens", 0) or 0),
                          forward_passes=int(getattr(out, "forward_passes", 0) or 0))


class DelayRunner:
    """Wraps a runner and sleeps `delay_s` inside one stage: a deliberately slow variant."""

    def __init__(self, inner: StepRunner, delay_s: float, stage: str = "decode"):
        self.inner, self.delay_s, self.stage = inner, delay_s, stage
        self.name = f"{inner.name}+delay{delay_s * 1e3:.0f}ms"

    def close(self) -> None:
        self.inner.close()

    def step(self, rgb: np.ndarray, user_text: str) -> StepRecord:
        rec = self.inner.step(rgb, user_text)
        time.sleep(self.delay_s)
        rec.stages[self.stage] = rec.stages.get(self.stage, 0.0) + self.delay_s
        rec.total_s += self.delay_s
        return rec
