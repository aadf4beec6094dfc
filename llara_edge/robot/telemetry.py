"""Per-step, per-stage timings of the control loop, summarised and written as JSON.

    tel = Telemetry()
    rec = tel.begin_step(episode=0, step=1)
    with tel.stage("capture"):
        frame = camera.read()
    tel.add_stages(policy_step.timings)        # stages measured inside the policy
    tel.end_step("executed", success=False)
    tel.summary()       # {stage: {"n", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}}
    tel.write_json(path, extra={...})          # atomic (temporary file + rename)

Stage names used by the loop, in order: capture (frame), state (joint read), prompt, then
the policy's own stages (preprocess, vision, prefill, decode, ... or `policy` as a whole),
parse, geometry, safety, plan, drive, settle; `step` is the whole decision (capture to
settle). Times are wall-clock seconds from `time.perf_counter`; the table prints ms.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from llara_edge.robot.toml_io import write_atomic

STAGE_ORDER = ("capture", "state", "prompt", "preprocess", "vision", "projector", "prefill",
               "decode", "generate", "policy", "parse", "geometry", "safety", "plan", "drive",
               "settle", "step")


@dataclass
class StepRecord:
    """One decision of the loop: its stage times (s), outcome and details."""

    episode: int
    step: int
    stages: dict[str, float] = field(default_factory=dict)
    outcome: str = ""  # "executed" | "refused:<tag>" | "aborted:<tag>" | "stopped:<why>"
    info: dict = field(default_factory=dict)


class Telemetry:
    """Collects StepRecords; one instance per run."""

    def __init__(self):
        self.steps: list[StepRecord] = []
        self.events: list[dict] = []  # watchdog fires, stops, faults, with times
        self._current: StepRecord | None = None
        self._t0 = time.perf_counter()

    @property
    def current(self) -> StepRecord | None:
        return self._current

    def begin_step(self, episode: int, step: int) -> StepRecord:
        self._current = StepRecord(episode, step)
        self._step_start = time.perf_counter()
        return self._current

    def add(self, name: str, seconds: float) -> None:
        """Add `seconds` to stage `name` of the current step (stages may repeat)."""
        if self._current is not None:
            self._current.stages[name] = self._current.stages.get(name, 0.0) + float(seconds)

    def add_stages(self, timings: Mapping[str, float] | None) -> None:
        for name, seconds in (timings or {}).items():
            self.add(name, seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def end_step(self, outcome: str, **info) -> StepRecord:
        rec = self._current
        if rec is None:
            raise RuntimeError("end_step without begin_step")
        rec.stages["step"] = time.perf_counter() - self._step_start
        rec.outcome, rec.info = outcome, {**rec.info, **info}
        self.steps.append(rec)
        self._current = None
        return rec

    def event(self, kind: str, **info) -> None:
        self.events.append({"t_s": round(time.perf_counter() - self._t0, 4), "kind": kind,
                            **info})

    # -- reports
    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage over all steps that ran it: count and latency statistics (ms)."""
        samples: dict[str, list[float]] = {}
        for rec in self.steps:
            for name, seconds in rec.stages.items():
                samples.setdefault(name, []).append(seconds * 1000.0)
        order = {name: i for i, name in enumerate(STAGE_ORDER)}
        out = {}
        for name in sorted(samples, key=lambda n: (order.get(n, len(order) - 1.5), n)):
            ms = np.asarray(samples[name])
            out[name] = {"n": int(ms.size), "mean_ms": round(float(ms.mean()), 3),
                         "p50_ms": round(float(np.percentile(ms, 50)), 3),
                         "p95_ms": round(float(np.percentile(ms, 95)), 3),
                         "p99_ms": round(float(np.percentile(ms, 99)), 3),
                         "max_ms": round(float(ms.max()), 3)}
        return out

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rec in self.steps:
            counts[rec.outcome] = counts.get(rec.outcome, 0) + 1
        return counts

    def table(self) -> str:
        """The per-stage latency table (p50 / p95 / p99 / max in ms)."""
        lines = [f"{'stage':<12} {'n':>5} {'p50 ms':>10} {'p95 ms':>10} {'p99 ms':>10} "
                 f"{'max ms':>10}"]
        for name, s in self.summary().items():
            lines.append(f"{name:<12} {s['n']:>5} {s['p50_ms']:>10.2f} {s['p95_ms']:>10.2f} "
                         f"{s['p99_ms']:>10.2f} {s['max_ms']:>10.2f}")
        return "\n".join(lines)

    def to_dict(self, extra: Mapping | None = None) -> dict:
        return {**(extra or {}), "summary": self.summary(), "outcomes": self.outcomes(),
                "events": self.events, "steps": [asdict(r) for r in self.steps]}

    def write_json(self, path: str | Path, extra: Mapping | None = None) -> Path:
        return write_atomic(path, json.dumps(self.to_dict(extra), indent=1, default=_jsonable))


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
