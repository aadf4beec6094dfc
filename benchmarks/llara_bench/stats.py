"""Summary statistics of benchmark samples: percentiles after warm-up, ratios, peak memory.

Contract:
    s = summarize(samples_s, warmup=1) -> Summary(n, p50, p95, p99, mean, min, max)   # seconds
    s.to_dict() -> {"n", "p50", "p95", "p99", "mean", "min", "max"}
    stage_summaries(steps, warmup) -> {stage: Summary}   # steps: list of {stage: seconds}
    ratio(numerator, denominator) -> float | None        # None when either side is missing/0
    speedup(baseline, candidate) -> float | None         # baseline / candidate (> 1: faster)
    peak_rss_mb() -> float                               # this process, high-water mark

Percentiles use linear interpolation between order statistics (NumPy's default), so with
few samples p99 is close to the maximum; `n` is always reported next to them. Warm-up
samples (the first `warmup`) are dropped: they include lazy compilation, page faults and
first-touch allocations, which a control loop pays once, not per step (cold start is
measured separately, in a fresh process).
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from llara_bench.runners import in_stage_order
from llara_edge.errors import ConfigError


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(samples: Sequence[float], warmup: int = 0) -> Summary:
    """Percentiles of samples[warmup:]; ConfigError when nothing is left to summarise."""
    if warmup < 0:
        raise ConfigError(f"warmup must be >= 0, got {warmup}")
    kept = np.asarray(list(samples)[warmup:], dtype=np.float64)
    if kept.size == 0:
        raise ConfigError(f"no samples left after {warmup} warm-up samples of {len(samples)}")
    p50, p95, p99 = np.percentile(kept, [50, 95, 99])
    return Summary(int(kept.size), float(p50), float(p95), float(p99), float(kept.mean()),
                   float(kept.min()), float(kept.max()))


def stage_summaries(steps: Sequence[Mapping[str, float]], warmup: int = 0
                    ) -> dict[str, Summary]:
    """Per-stage summaries over steps (a stage missing from some steps uses those it has)."""
    stages: dict[str, list[float]] = {}
    for step in steps[warmup:]:
        for stage, seconds in step.items():
            stages.setdefault(stage, []).append(float(seconds))
    return {stage: summarize(values) for stage, values in stages.items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator)


def speedup(baseline: float | None, candidate: float | None) -> float | None:
    """How many times faster the candidate is than the baseline (baseline / candidate)."""
    return ratio(baseline, candidate)


def peak_rss_mb() -> float:
    """High-water resident set size of this process in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this process's own address
    space. Not ru_maxrss: exec keeps the larger of the old and new marks there, and a child
    spawned with vfork (Python's subprocess) would report its parent's peak (measured: every
    benchmark child reported the parent's 930 MiB). Elsewhere ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def median(values: Iterable[float]) -> float:
    """Median of a non-empty iterable (ConfigError when empty)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ConfigError("median of no values")
    return float(np.median(arr))


def runner_summary(records: Sequence) -> dict:
    """Statistics of one runner's measured steps (runners.StepRecord, seconds): per-stage
    summaries, the whole step, TTFT, tokens, passes, decode rate, control Hz, parse failures;
    the single-token extend and the steps that wrote their teacher's target, when known."""
    stages = stage_summaries([r.stages for r in records])
    step = summarize([r.total_s for r in records])
    decode = [r.stages.get("decode", 0.0) for r in records]
    ttft = [r.ttft_s for r in records if r.ttft_s is not None]
    tokens = [r.n_tokens for r in records]
    passes = [r.forward_passes for r in records]
    rates = [n / d for n, d in zip(tokens, decode, strict=True) if d > 0]
    ordered = list(in_stage_order(stages))
    median_step = sorted(records, key=lambda r: r.total_s)[len(records) // 2]
    extend1 = [r.extend1_s for r in records if getattr(r, "extend1_s", None) is not None]
    taught = [r for r in records if getattr(r, "target", None) is not None]
    return {
        "stages": {k: stages[k].to_dict() for k in ordered},
        "stage_samples": {k: [r.stages[k] for r in records if k in r.stages] for k in ordered},
        "median_step_stages": {k: median_step.stages[k] for k in ordered
                               if k in median_step.stages},
        "step": step.to_dict(),
        "ttft": summarize(ttft).to_dict() if ttft else None,
        "n_tokens_mean": sum(tokens) / len(tokens),
        "forward_passes_mean": sum(passes) / len(passes),
        "decode_tokens_per_s": summarize(rates).p50 if rates else None,
        "control_hz": 1.0 / step.p50 if step.p50 > 0 else None,
        "parse_failures": sum(r.action is None for r in records),
        "texts": [r.text for r in records],
        "extend1": summarize(extend1).to_dict() if extend1 else None,
        "on_target": (sum(r.text.strip() == r.target.strip() for r in taught)
                      if taught else None),
    }
