"""Benchmark gates: checked-in bounds on the metrics a benchmark run produced.

Contract:
    gates = load_gates(path=None) -> list[Gate]       # benchmarks/llara_bench/gates.toml by default
    breaches = check_gates(metrics, gates, quick=False, suites=None) -> list[GateResult]
    format_gate_report(results) -> str

`metrics` is the flat {dotted key: number} table every suite writes under "metrics" in its
JSON (e.g. "latency.candidate.step_p50_over_hf_generate"). A gate names a key or an fnmatch
pattern ("accuracy.parity.*.answer_agreement": every variant), a `min` and/or `max`, and
optionally `quick_min` / `quick_max` used instead in --quick runs and `quick = false` to skip
it there. A gate whose key matches no metric of a suite that ran is a breach ("missing"):
a gate cannot pass by not being measured; gates of suites that did not run are skipped.
"""

from __future__ import annotations

import fnmatch
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import ConfigError

GATES_FILE = Path(__file__).with_name("gates.toml")
_KEYS = {"metric", "min", "max", "quick_min", "quick_max", "quick", "why"}


@dataclass(frozen=True)
class Gate:
    metric: str
    min: float | None = None
    max: float | None = None
    quick_min: float | None = None
    quick_max: float | None = None
    quick: bool = True
    why: str = ""

    def __post_init__(self) -> None:
        if not self.metric or "." not in self.metric:
            raise ConfigError(f"gate metric must be a dotted key, got {self.metric!r}")
        if self.min is None and self.max is None:
            raise ConfigError(f"gate {self.metric!r} has neither min nor max")

    @property
    def suite(self) -> str:
        return self.metric.split(".", 1)[0]

    def bounds(self, quick: bool) -> tuple[float | None, float | None]:
        if quick:
            return (self.quick_min if self.quick_min is not None else self.min,
                    self.quick_max if self.quick_max is not None else self.max)
        return self.min, self.max


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    key: str
    value: float | None
    bound: str  # "min" | "max" | "missing"
    limit: float | None
    passed: bool

    def describe(self) -> str:
        if self.bound == "missing":
            return f"{self.key}: not measured (gate {self.gate.metric})"
        op = ">=" if self.bound == "min" else "<="
        line = f"{self.key} = {self.value:.4g}, gate {op} {self.limit:.4g}"
        if self.passed:
            return line
        by = self.value - self.limit
        rel = f", {abs(by) / abs(self.limit):.0%}" if self.limit else ""
        return f"{line}: BREACH by {by:+.4g}{rel}"


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib


def load_gates(path: str | Path | None = None) -> list[Gate]:
    """The [[gate]] tables of a gates file; ConfigError on unknown keys or bad bounds."""
    path = Path(path) if path else GATES_FILE
    try:
        data = _toml().loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"unreadable gates file {path}: {err}") from err
    gates = []
    for i, entry in enumerate(data.get("gate", [])):
        unknown = set(entry) - _KEYS
        if unknown:
            raise ConfigError(f"gate #{i + 1} in {path}: unknown keys {sorted(unknown)}")
        gates.append(Gate(**entry))
    if not gates:
        raise ConfigError(f"no [[gate]] tables in {path}")
    return gates


def _check_one(gate: Gate, key: str, value: float, quick: bool) -> list[GateResult]:
    lo, hi = gate.bounds(quick)
    out = []
    for bound, limit in (("min", lo), ("max", hi)):
        if limit is None:
            continue
        ok = not math.isnan(value) and (value >= limit if bound == "min" else value <= limit)
        out.append(GateResult(gate, key, value, bound, limit, ok))
    return out


def check_gates(metrics: dict[str, float], gates: list[Gate], quick: bool = False,
                suites: set[str] | None = None) -> list[GateResult]:
    """Every (gate, matching metric, bound) with its outcome; see the module docstring."""
    ran = suites if suites is not None else {k.split(".", 1)[0] for k in metrics}
    results = []
    for gate in gates:
        if gate.suite not in ran or (quick and not gate.quick):
            continue
        keys = sorted(k for k in metrics if fnmatch.fnmatchcase(k, gate.metric))
        if not keys:
            results.append(GateResult(gate, gate.metric, None, "missing", None, False))
        for key in keys:
            value = metrics[key]
            value = float("nan") if value is None else float(value)
            results.extend(_check_one(gate, key, value, quick))
    return results


def format_gate_report(results: list[GateResult]) -> str:
    """One line per checked bound, breaches first."""
    lines = [f"gates: {sum(r.passed for r in results)}/{len(results)} passed"]
    for r in sorted(results, key=lambda r: r.passed):
        lines.append(f"  {'ok    ' if r.passed else 'FAILED'} {r.describe()}")
    return "\n".join(lines)
