"""Latency suite: every runner side by side on the same simulator frames, in one process.

Frames: the MuJoCo simulator's (export.frames.sim_frames), or with `recording` (and `task`)
the frames of a file-camera recording prompted as `llara-edge run --task` does: a robot has
no MuJoCo (the `sim` extra), so there the bench runs on recorded frames.

    python -m llara_bench.bench_latency [--quick] [--runners SPEC ...] [--out DIR]
    (also `llara-edge bench latency`)

Contract:
    results = run_latency(LatencyConfig(...), say=print) -> dict (JSON-able; "metrics" holds
        the flat gate keys, see gates.toml)
    LatencyConfig.quick() -> the reduced CI configuration

What one run measures (tiny trained policy, exported once and cached):
- per runner (benchmarks/llara_bench/specs.py): per-stage p50/p95/p99 over `steps` steps after
  `warmup`,
  the whole step, time to first token, answer tokens, decode forward passes, decode tokens/s,
  control Hz (1 / step p50), parse failures, and the action of every step. Runners take
  turns frame by frame (round robin), so slow drifts of the machine hit all of them alike.
- ratios of the candidate against the in-run baselines (p50 over p50: < 1 is faster) and the
  identical-action check against each baseline on the same measured frames; without torch
  (a robot's set-up) the quick configuration drops the hf-generate baseline and says so in
  "skipped_baselines" (hf_baseline None; its ratios are then absent, not invented);
- the candidate against its free-greedy twin on the same engines and weights (specs.free_twin,
  added to the runners when absent): identical actions on the steps where the twin's free
  answer is well-formed, the twin's parse failures, and forward passes per action (the
  decoder's own effect, without the quantisation or the engine changing the numbers);
- cold start and peak RSS per runner in a fresh subprocess (benchmarks/llara_bench/cold_start.py);
- with answers="realistic" every runner is taught the same realistic answer per frame
  (benchmarks/llara_bench/teacher.py, vima_answers.seeded_answer): a random-weight model then
  decodes as many passes as a trained one (the 7B-shaped mode);
- the whole control loop (`llara-edge run` on the simulator, its telemetry: capture ...
  drive), the ~1B model (benchmarks/llara_bench/bench_big.py), memory bandwidth, Jetson power,
  roofline.
Prints a table, then ONE JSON line with everything (last line of stdout).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from llara_bench.runners import StepRecord, same_action
from llara_bench.specs import BenchContext, free_twin, make_runner, parse_spec
from llara_bench.stats import runner_summary
from llara_edge.errors import ConfigError
from llara_edge.runtime.config import usable_cpus

Say = Callable[[str], None]
ANSWERS = ("model", "realistic")  # the model's own answers / taught realistic ones
DEFAULT_RUNNERS = ("gguf:q4_k_m", "gguf:q4_k_m+draft=0", "gguf:q4_k_m+kv=q8_0", "gguf:q8_0",
                   "gguf:f16", "gguf:q4_k_m:onnx+fused", "onnx", "torch", "hf-generate",
                   "stock-gbnf:q4_k_m")


@dataclass(frozen=True)
class LatencyConfig:
    checkpoint: Path = Path("models/tiny-llara")
    artifact: Path | None = None  # None: export the checkpoint (cached)
    runners: tuple[str, ...] = DEFAULT_RUNNERS
    candidate: str = "gguf:q4_k_m"
    hf_baseline: str | None = "hf-generate"  # None: no HF baseline (a robot without torch)
    stock_baseline: str = "stock-gbnf:q4_k_m"
    frames: int = 8
    warmup: int = 2
    steps: int = 24
    frame_size: tuple[int, int] = (320, 240)
    recording: Path | None = None  # file-camera recording instead of simulator frames
    task: str = ""  # the instruction prompted with recorded frames
    threads: int = 0  # 0: every CPU this process may run on (as RuntimeConfig)
    max_new_tokens: int = 256  # LLaRA's evaluation budget, for every runner
    cold_start: bool = True
    cold_start_steps: int = 3
    loop_episodes: int = 5  # `llara-edge run` episodes; 0 skips the whole-loop telemetry
    big_model: bool = True
    big_steps: int = 2
    membw_mib: int = 256
    cache_dir: Path = Path("cache/bench")
    quick: bool = False
    settle_s: float = 0.1  # idle pause before each runner's step (spin-waiting pools expire)
    answers: str = "model"  # "realistic": every runner taught vima_answers' answer (teacher.py)

    def __post_init__(self) -> None:
        for spec in self.runners:
            parse_spec(spec)
        for name in ("candidate", "hf_baseline", "stock_baseline"):
            if name == "hf_baseline" and self.hf_baseline is None:
                continue
            if getattr(self, name) not in self.runners:
                raise ConfigError(f"{name} {getattr(self, name)!r} is not among the runners")
        if self.frames < 1 or self.steps < 1 or self.warmup < 0:
            raise ConfigError("frames and steps must be >= 1, warmup >= 0")
        if self.answers not in ANSWERS:
            raise ConfigError(f"answers must be one of {ANSWERS}, got {self.answers!r}")
        if (self.recording is not None) != bool(self.task.strip()):
            raise ConfigError("recorded frames need both a recording and the task text")
        twin = self.free_twin
        if twin is not None and twin not in self.runners:
            object.__setattr__(self, "runners", (*self.runners, twin))

    @property
    def free_twin(self) -> str | None:
        """The candidate's free-greedy twin runner (specs.free_twin)."""
        return free_twin(self.candidate)

    @property
    def n_threads(self) -> int:
        return self.threads or usable_cpus()  # RuntimeConfig's meaning of 0

    @classmethod
    def quick_config(cls, **overrides) -> LatencyConfig:
        # one engine thread: shared CI runners make multi-threaded llama.cpp spin and stall
        base = {"runners": ("gguf:q4_k_m", "hf-generate", "stock-gbnf:q4_k_m"),
                "frames": 2, "warmup": 1, "steps": 4, "cold_start": False, "loop_episodes": 0,
                "big_model": False, "membw_mib": 32, "quick": True, "threads": 1}
        if torch_missing() and "hf_baseline" not in overrides:
            base["runners"] = tuple(r for r in base["runners"] if r != cls.hf_baseline)
            base["hf_baseline"] = None
        base.update(overrides)
        runners = base["runners"]
        if base.get("candidate", cls.candidate) not in runners:
            base["runners"] = (base.get("candidate", cls.candidate), *runners)
        return cls(**base)


def torch_missing() -> str | None:
    """Why the HF generate baseline cannot run here (None: it can). A robot set up without
    torch (tools/setup_l4t.sh) still runs the quick suite: the candidate, its free-greedy
    twin and the stock llama.cpp baseline, which need no torch."""
    from importlib.util import find_spec

    for name in ("torch", "transformers"):
        try:
            if find_spec(name) is None:
                return f"{name} is not installed: the hf-generate baseline is skipped"
        except (ImportError, ValueError):
            return f"{name} cannot be imported: the hf-generate baseline is skipped"
    return None


def _measure(runners: list, frames, cfg: LatencyConfig, say: Say) -> dict[str, list]:
    """Round robin over runners, frame by frame; the measured StepRecords per runner."""
    records: dict[str, list[StepRecord]] = {r.name: [] for r in runners}
    total = cfg.warmup + cfg.steps
    for i in range(total):
        case = frames[i % len(frames)]
        for runner in runners:
            time.sleep(cfg.settle_s)  # let the previous engine's spinning workers go idle
            rec = runner.step(case.rgb, case.user_text)
            if i >= cfg.warmup:
                records[runner.name].append(rec)
        if (i + 1) % max(1, total // 4) == 0:
            say(f"  step {i + 1}/{total}")
    return records


def _comparisons(records: dict[str, list], summary: dict, cfg: LatencyConfig) -> dict:
    """Candidate (and every runner) against both baselines: p50 ratios, identical actions."""
    out = {}
    for name, recs in records.items():
        row = {}
        for label, base in (("hf_generate", cfg.hf_baseline), ("stock_gbnf", cfg.stock_baseline)):
            if name == base or base is None:
                continue
            same = [same_action(a.action, b.action) for a, b in
                    zip(recs, records[base], strict=True)]
            row[label] = {
                "step_p50_ratio": summary[name]["step"]["p50"] / summary[base]["step"]["p50"],
                "speedup_p50": summary[base]["step"]["p50"] / summary[name]["step"]["p50"],
                "identical_actions": sum(same), "compared": len(same)}
        out[name] = row
    twin = cfg.free_twin
    if twin is not None:
        out[cfg.candidate]["free_greedy"] = _twin_comparison(records[cfg.candidate],
                                                             records[twin])
    return out


def _twin_comparison(cand: list[StepRecord], twin: list[StepRecord]) -> dict:
    """Constrained decoding vs free greedy on the same engines: the actions must be the same
    wherever the free answer is well-formed (issue 5's correctness rule)."""
    pairs = [(c, t) for c, t in zip(cand, twin, strict=True) if t.action is not None]
    twin_passes = sum(t.forward_passes for _, t in pairs)
    return {"identical_actions": sum(same_action(c.action, t.action) for c, t in pairs),
            "compared": len(pairs), "twin_parse_failures": len(twin) - len(pairs),
            "forward_passes_ratio": (sum(c.forward_passes for c, _ in pairs) / twin_passes
                                     if twin_passes else None)}


def _metrics(summary: dict, comp: dict, cfg: LatencyConfig, cold: dict) -> dict[str, float]:
    """The flat gate keys (gates.toml) of this run."""
    m: dict[str, float] = {}
    for name, s in summary.items():
        m[f"latency.runner.{name}.step_p50_s"] = s["step"]["p50"]
        m[f"latency.runner.{name}.parse_failures"] = s["parse_failures"]
    cand, c = cfg.candidate, comp[cfg.candidate]
    for label in ("hf_generate", "stock_gbnf"):
        if label not in c:  # no such baseline in this run (hf_baseline None)
            continue
        m[f"latency.candidate.step_p50_over_{label}"] = c[label]["step_p50_ratio"]
        m[f"latency.candidate.identical_actions_{label}"] = (
            c[label]["identical_actions"] / c[label]["compared"])
    m["latency.candidate.parse_failures"] = summary[cand]["parse_failures"]
    free = c.get("free_greedy")
    if free and free["compared"]:
        m["latency.candidate.identical_actions_free_greedy"] = (
            free["identical_actions"] / free["compared"])
    if free and free["forward_passes_ratio"] is not None:
        m["latency.candidate.forward_passes_over_free_greedy"] = free["forward_passes_ratio"]
    hf_passes = summary[cfg.hf_baseline]["forward_passes_mean"] if cfg.hf_baseline else None
    if hf_passes:
        m["latency.candidate.forward_passes_over_hf_generate"] = (
            summary[cand]["forward_passes_mean"] / hf_passes)
    if cand in cold and cold[cand].get("ok"):
        m["latency.candidate.cold_start_s"] = cold[cand]["cold_start_s"]
        m["latency.candidate.peak_rss_mb"] = cold[cand]["peak_rss_mb"]
    return m


def _cold_starts(cfg: LatencyConfig, ctx: BenchContext, frames, say: Say) -> dict:
    from llara_bench.cold_start import measure_cold_start

    names = cfg.runners if cfg.cold_start else ()
    out = {}
    for name in names:
        say(f"cold start: {name}")
        out[name] = measure_cold_start(name, ctx, frames[0].rgb, frames[0].user_text,
                                       cfg.cold_start_steps)
    return out


def _machine(threads: int) -> dict:
    from importlib import metadata

    versions = {}
    for dist in ("numpy", "torch", "transformers", "llama_cpp_python", "onnxruntime"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads,
            "loadavg_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "system": f"{platform.system()} {platform.release()} {platform.machine()}",
            "python": platform.python_version(), "versions": versions}


def bench_frames(cfg: LatencyConfig) -> list:
    """The measured (frame, prompt) cases: recorded when `cfg.recording`, else simulated."""
    from importlib.util import find_spec

    from llara_edge.cases import recorded_frames, sim_frames

    if cfg.recording is not None:
        return recorded_frames(cfg.recording, cfg.task, cfg.frames, *cfg.frame_size)
    if find_spec("mujoco") is None:
        raise ConfigError("the latency bench renders its frames with the MuJoCo simulator (the "
                          "`sim` extra), which is not installed here (a robot): give "
                          "--recording FILE (what the file camera reads) and --task TEXT")
    return sim_frames(cfg.frames, *cfg.frame_size)


def run_latency(cfg: LatencyConfig, say: Say = lambda m: None) -> dict:
    """The whole latency suite (module docstring); returns the results dict."""
    from llara_bench import bench_big, jetson, membw, roofline
    from llara_bench.bench_models import tiny_artifact

    frames = bench_frames(cfg)  # first: a bad recording or a missing simulator fails fast
    machine = _machine(cfg.n_threads)  # load average before the run: other processes
    artifact = cfg.artifact or tiny_artifact(cfg.checkpoint, cfg.cache_dir, say)
    ctx = BenchContext(artifact, cfg.checkpoint, cfg.n_threads, cfg.max_new_tokens)
    say(f"loading {len(cfg.runners)} runners ({cfg.n_threads} threads)")
    runners = [make_runner(spec, ctx) for spec in cfg.runners]
    if cfg.answers == "realistic":
        from llara_bench.teacher import taught
        from llara_bench.vima_answers import seeded_answer

        runners = [taught(r, seeded_answer) for r in runners]
    try:
        with jetson.TegraStats() as power:
            records = _measure(runners, frames, cfg, say)
    finally:
        for r in runners:
            r.close()
    summary = {name: runner_summary(recs) for name, recs in records.items()}
    comp = _comparisons(records, summary, cfg)
    cold = _cold_starts(cfg, ctx, frames, say)
    loop = bench_big.control_loop(artifact, cfg.candidate, cfg.loop_episodes, cfg.n_threads,
                                  say)
    bw = membw.measure_bandwidth(membw.BandwidthConfig(mib=cfg.membw_mib,
                                                       repeats=2 if cfg.quick else 10))
    big = bench_big.run_big(cfg, bw["read_gbps"], say) if cfg.big_model else \
        {"skipped": "quick run" if cfg.quick else "disabled"}
    cand = summary[cfg.candidate]
    workload = roofline.Workload(passes_constrained=max(1.0, roofline.Workload.passes_free *
                                 cand["forward_passes_mean"] / max(cand["n_tokens_mean"], 1)))
    machine["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    results = {
        "suite": "latency", "quick": cfg.quick, "machine": machine,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "artifact": str(artifact), "frames": [c.name for c in frames],
        "candidate": cfg.candidate, "baselines": {"hf_generate": cfg.hf_baseline,
                                                  "stock_gbnf": cfg.stock_baseline},
        "skipped_baselines": {} if cfg.hf_baseline else {
            "hf-generate": torch_missing() or "not requested (--no-hf)"},
        "runners": summary, "comparisons": comp, "cold_start": cold, "control_loop": loop,
        "membw": bw, "big_model": big, "jetson": {"power_mode": jetson.power_mode(),
                                                  "power": power.result()},
        "roofline": {"workload": asdict(workload),
                     "rows": roofline.estimate_table(workload=workload)},
    }
    results["metrics"] = _metrics(summary, comp, cfg, cold)
    results["metrics"].update(bench_big.metrics(big))
    return results


def main(argv: list[str] | None = None) -> int:
    """`python -m llara_bench.bench_latency ARGS` = `llara-edge bench latency ARGS`."""
    from llara_edge.cli.main import main as cli

    return cli(["bench", "latency", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
