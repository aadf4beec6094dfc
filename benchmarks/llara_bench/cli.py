"""`llara-edge bench latency|accuracy|report [--gate] [--quick]`: benchmarks as gates.

- latency: every backend/variant and both baselines side by side on the same frames
  (benchmarks/bench_latency.py); accuracy: parity of every artifact variant and closed-loop
  success in the simulator (benchmarks/bench_accuracy.py); report: both, then JSON + PNG plots
  under --out (default docs/figures/bench) and docs/benchmarks.md (--md).
- --gate checks benchmarks/gates.toml (or --gates FILE) and exits 1 on a breach, printing
  which gate and by how much; --quick is the reduced CI run (tiny model, few frames/seeds).
- latency --recording FILE --task TEXT measures on a file-camera recording prompted as
  `llara-edge run --task TEXT` does, instead of simulator frames (a robot has no MuJoCo).
- --delay S slows the candidate by S seconds per step and --degrade QTYPE makes a llama.cpp
  quantisation such as q2_k the candidate: deliberately degraded runs that must trip gates.
- latency --shaped CKPT=ARTIFACT (repeat with other LLM depths): the "7B-shaped" mode on
  LLaRA-7B-width checkpoints (benchmarks/llara_bench/bench_shaped.py): per-stage times, TTFT,
  passes, ratios vs HF generate and the stock handler per depth, per-layer costs, the extrapolation
  to 32 layers, the floor and the roofline on the measured shapes, every runner taught the
  same realistic answer (--answers model: the random model's own); writes
  OUT/latency-7b-shaped.json and, with --md PATH, renders it (docs/benchmarks-7b-shaped.md).
Prints the tables, then ONE JSON line last ({"suite", "gates": {...}, "files": [...]}).
Exit codes: 0 ok, 1 a gate breached, 2 bad input (one error line from the CLI entry point).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from llara_edge.errors import ConfigError

HELP = "latency / accuracy benchmarks and their gates, report"

SUITES = ("latency", "accuracy", "report")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=SUITES)
    parser.add_argument("--gate", action="store_true", help="exit 1 when a gate is breached")
    parser.add_argument("--quick", action="store_true", help="reduced run (CI)")
    parser.add_argument("--gates", type=Path,
                        help="gates TOML (default benchmarks/llara_bench/gates.toml)")
    parser.add_argument("--checkpoint", type=Path, default=Path("models/tiny-llara"))
    parser.add_argument("--artifact", type=Path, help="artifact dir (default: export, cached)")
    parser.add_argument("--runners", nargs="+",
                        help="latency runner specs (benchmarks/llara_bench/specs.py)")
    parser.add_argument("--candidate", help="runner spec gated against the baselines")
    parser.add_argument("--no-hf", action="store_true",
                        help="latency: no HF generate baseline (automatic where torch is "
                             "not installed, e.g. on a robot)")
    parser.add_argument("--recording", type=Path,
                        help="latency: frames from this file-camera recording (.npz, PNG "
                             "directory, video) instead of the simulator's (a robot has none)")
    parser.add_argument("--task", help="latency: the instruction prompted with --recording")
    parser.add_argument("--delay", type=float, default=0.0, help="slow the candidate (s/step)")
    parser.add_argument("--degrade", help="make this llama.cpp quantisation the candidate")
    parser.add_argument("--episodes", type=int, help="closed-loop seeds per family and level")
    parser.add_argument("--steps", type=int, help="measured latency steps per runner")
    parser.add_argument("--threads", type=int,
                        help="engine threads (default: all cores; 1 with --quick)")
    parser.add_argument("--cache", type=Path, default=Path("cache/bench"))
    parser.add_argument("--out", type=Path, help="results directory (report: figures too)")
    parser.add_argument("--md", type=Path,
                        help="report: the markdown to write (default docs/benchmarks.md); "
                             "latency --shaped: also render the run as this markdown "
                             "(docs/benchmarks-7b-shaped.md)")
    parser.add_argument("--results", type=Path, help="report: reuse the JSON in this dir")
    parser.add_argument("--shaped", action="append", metavar="CKPT=ARTIFACT",
                        help="latency: 7B-shaped mode on this checkpoint and its export "
                             "(repeat for each LLM depth)")
    parser.add_argument("--answers", choices=("model", "realistic"),
                        help="latency: the model's own answers (default) or every runner "
                             "taught the same realistic answer (default with --shaped)")


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _candidate(args, default: str) -> str:
    cand = args.candidate or (f"gguf:{args.degrade}" if args.degrade else default)
    return f"{cand}+delay={args.delay:g}" if args.delay else cand


def _latency(args) -> dict:
    from llara_bench.bench_latency import LatencyConfig, run_latency, torch_missing
    from llara_bench.bench_models import tiny_artifact, with_quant_variant

    make = LatencyConfig.quick_config if args.quick else LatencyConfig
    extra = {} if args.threads is None else {"threads": args.threads}
    cfg = make(checkpoint=args.checkpoint, cache_dir=args.cache, **extra)
    missing = torch_missing()
    if args.no_hf or (missing and cfg.hf_baseline):
        if missing and not args.quick and not args.runners:
            raise ConfigError(f"{missing}; the full latency suite needs torch (hf-generate, "
                              "torch runners): use --quick, or name --runners")
        cfg = replace(cfg, runners=tuple(r for r in cfg.runners if r != cfg.hf_baseline),
                      hf_baseline=None)
    artifact = args.artifact or tiny_artifact(args.checkpoint, args.cache, _say)
    if args.degrade:
        artifact = with_quant_variant(artifact, args.degrade,
                                      args.cache / f"{artifact.name}+{args.degrade}")
    cand = _candidate(args, cfg.candidate)
    runners = tuple(args.runners or cfg.runners)
    runners = runners if cand in runners else (cand, *runners)
    cfg = replace(cfg, artifact=artifact, candidate=cand, runners=runners,
                  steps=args.steps or cfg.steps, recording=args.recording,
                  task=args.task or "", answers=args.answers or "model")
    return run_latency(cfg, _say)


def _shaped_command(args) -> str:
    """The bench command line of a 7B-shaped run (recorded in its JSON and markdown)."""
    parts = ["llara-edge bench latency", *(f"--shaped {p}" for p in args.shaped)]
    for flag, value in (("--threads", args.threads), ("--steps", args.steps),
                        ("--candidate", args.candidate), ("--answers", args.answers),
                        ("--out", args.out), ("--md", args.md)):
        if value is not None:
            parts.append(f"{flag} {value}")
    if args.runners:
        parts.append("--runners " + " ".join(args.runners))
    return " ".join(parts)


def _shaped(args) -> int:
    import time

    from llara_bench.bench_shaped import ShapedBenchConfig, ShapedPoint, format_shaped, run_shaped
    from llara_bench.report import write_json
    from llara_bench.report_shaped import write_shaped_report

    points = []
    for item in args.shaped:
        ckpt, sep, art = item.partition("=")
        if not sep or not ckpt or not art:
            raise ConfigError(f"--shaped wants CKPT=ARTIFACT, got {item!r}")
        points.append(ShapedPoint(Path(ckpt), Path(art)))
    extra = {k: v for k, v in (("threads", args.threads), ("steps", args.steps),
                               ("candidate", args.candidate), ("answers", args.answers))
             if v is not None}
    cfg = ShapedBenchConfig(points=tuple(points), **extra)
    if args.runners:
        cfg = replace(cfg, runners=tuple(args.runners))
    results = run_shaped(cfg, _say)
    results.update(command=_shaped_command(args), written=time.strftime("%Y-%m-%d %H:%M %Z"))
    print(format_shaped(results))
    files = [write_json((args.out or Path("runs/bench")) / "latency-7b-shaped.json", results)]
    if args.md:
        files.append(write_shaped_report(results, args.md))
    print(json.dumps({"suite": "latency", "mode": "7b-shaped", "files": [str(f) for f in files],
                      "extrapolation": results["extrapolation"]}))
    return 0


def _accuracy(args) -> dict:
    from llara_bench.bench_accuracy import AccuracyConfig, run_accuracy

    fields = {"checkpoint": args.checkpoint, "artifact": args.artifact,
              "cache_dir": args.cache, "degrade": args.degrade}
    if args.threads is not None:
        fields["threads"] = args.threads
    if args.candidate:
        fields["candidate"] = args.candidate
    if args.episodes is not None:
        fields["episodes"] = args.episodes
    cfg = AccuracyConfig.quick_config(**fields) if args.quick else AccuracyConfig(**fields)
    return run_accuracy(cfg, _say)


def _gate(args, results: list[dict]):
    from llara_bench.gates import check_gates, format_gate_report, load_gates

    metrics = {k: v for r in results for k, v in r["metrics"].items()}
    gate_results = check_gates(metrics, load_gates(args.gates), quick=args.quick,
                               suites={r["suite"] for r in results})
    print(format_gate_report(gate_results))
    return gate_results


def run(args: argparse.Namespace) -> int:
    from llara_bench.report import load_results, write_json, write_report
    from llara_bench.report_text import accuracy_tables, latency_tables

    if args.shaped:
        if args.suite != "latency":
            raise ConfigError("--shaped is a mode of the latency suite")
        return _shaped(args)
    lat = acc = None
    if args.suite == "report" and args.results:
        lat, acc = load_results(args.results)
    else:
        lat = _latency(args) if args.suite in ("latency", "report") else None
        acc = _accuracy(args) if args.suite in ("accuracy", "report") else None
    for result, tables in ((lat, latency_tables), (acc, accuracy_tables)):
        if result:
            print(tables(result) + "\n")
    gate_results = _gate(args, [r for r in (lat, acc) if r]) if args.gate or \
        args.suite == "report" else None
    out = args.out or Path("docs/figures/bench" if args.suite == "report" else "runs/bench")
    if args.suite == "report":
        files = write_report(lat, acc, out, args.md or Path("docs/benchmarks.md"), gate_results)
    else:
        files = [write_json(out / f"{r['suite']}.json", r) for r in (lat, acc) if r]
    breaches = [r.describe() for r in gate_results or [] if not r.passed]
    print(json.dumps({"suite": args.suite, "files": [str(f) for f in files],
                      "gates": None if gate_results is None else
                      {"checked": len(gate_results), "breaches": breaches}}))
    return 1 if args.gate and breaches else 0
