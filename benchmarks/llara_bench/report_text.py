"""Benchmark results as markdown tables (printed by the commands, pasted into docs/benchmarks.md).

Contract:
    md_table(headers, rows) -> str
    latency_tables(results) -> str          # runners, comparisons, stages, loop, 1B, roofline
    accuracy_tables(results) -> str         # parity, closed-loop success, parse failures
All times in the tables are milliseconds (the JSON keeps seconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llara_bench import roofline
from llara_bench.runners import in_stage_order


def _f(value, fmt: str = "{:.1f}", scale: float = 1.0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value * scale)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _runner_order(results: dict) -> list[str]:
    """Runners in the order the run was configured (JSON readers may have sorted them)."""
    configured = list((results.get("config") or {}).get("runners") or [])
    return sorted(results["runners"], key=lambda n: (configured.index(n) if n in configured
                                                     else len(configured), n))


def runners_table(results: dict) -> str:
    rows = []
    for name in _runner_order(results):
        s = results["runners"][name]
        cold = results.get("cold_start", {}).get(name, {})
        rows.append([f"`{name}`", _f(s["step"]["p50"], scale=1e3), _f(s["step"]["p95"], scale=1e3),
                     _f(s["step"]["p99"], scale=1e3),
                     _f(s["ttft"]["p50"] if s["ttft"] else None, scale=1e3),
                     _f(s["n_tokens_mean"]), _f(s["forward_passes_mean"]),
                     _f(s["decode_tokens_per_s"], "{:.0f}"), _f(s["control_hz"], "{:.2f}"),
                     s["parse_failures"], _f(cold.get("cold_start_s"), "{:.2f}"),
                     _f(cold.get("peak_rss_mb"), "{:.0f}")])
    return md_table(["runner", "step p50", "p95", "p99", "TTFT p50", "tokens", "decode passes",
                     "decode tok/s", "Hz", "parse fail", "cold start s", "peak RSS MB"], rows)


def comparison_table(results: dict) -> str:
    rows = []
    base = results["baselines"]
    labels = [label for label in ("hf_generate", "stock_gbnf") if base.get(label)]
    for name in _runner_order(results):
        row = results["comparisons"][name]
        cells = [f"`{name}`"]
        for label in labels:
            c = row.get(label)
            cells += (["(baseline)", "-"] if c is None else
                      [f"{c['speedup_p50']:.1f}x", f"{c['identical_actions']}/{c['compared']}"])
        rows.append(cells)
    heads = [h for label in labels for h in (f"speedup vs `{base[label]}`", "identical actions")]
    return md_table(["runner", *heads], rows)


def stages_table(stages: dict, title: str = "stage") -> str:
    rows = [[s, v["n"], _f(v["p50"], "{:.2f}", 1e3), _f(v["p95"], "{:.2f}", 1e3),
             _f(v["p99"], "{:.2f}", 1e3), _f(v["max"], "{:.2f}", 1e3)]
            for s, v in in_stage_order(stages).items()]
    return md_table([title, "n", "p50", "p95", "p99", "max"], rows)


def _machine_bandwidth(big: dict) -> str:
    """The bandwidth the fractions are of (results before 2026-11-22 used the copy stream)."""
    if "machine_read_gbps" in big:
        return f"machine read-stream bandwidth {big['machine_read_gbps']:.1f} GB/s"
    return f"machine stream-copy bandwidth {big['machine_copy_gbps']:.1f} GB/s"


def big_table(big: dict) -> str:
    if "decode" not in big:
        return f"~1B model: {big.get('skipped', 'not run')}"
    rows = [[v, _f(d["tokens_per_s"], "{:.1f}"), _f(d["weight_bytes"] / 1e9, "{:.2f}"),
             _f(d["achieved_gbps"], "{:.1f}"), _f(d["fraction_of_machine"], "{:.0%}")]
            for v, d in big["decode"].items()]
    head = (f"~1B LLaVA-1.5-shaped random model ({big['shape']['llm_layers']} layers x "
            f"{big['shape']['llm_hidden']}, vocab {big['shape']['llm_vocab']}; "
            f"{big['shape']['vision']}); {_machine_bandwidth(big)}\n\n")
    return head + md_table(["variant", "decode tok/s", "GB read / token", "achieved GB/s",
                            "fraction of machine"], rows)


def latency_tables(results: dict) -> str:
    cand = results["candidate"]
    parts = ["### Runners (ms)", runners_table(results),
             "### Candidate vs baselines (same run, same frames)", comparison_table(results),
             f"### Stages of `{cand}` (ms)", stages_table(results["runners"][cand]["stages"])]
    loop = results.get("control_loop", {})
    if "stages" in loop:
        parts += [f"### Whole control loop, `llara-edge run`'s simulator loop "
                  f"({loop['decisions']} decisions after warm-up, {loop['episodes']} episodes, "
                  f"success {loop['success_rate']:.0%}; {_f(loop['control_hz'], '{:.2f}')} Hz)",
                  stages_table(loop["stages"])]
    else:
        parts.append(f"Whole control loop: {loop.get('skipped') or loop.get('error')}")
    big = results.get("big_model", {})
    parts += ["### ~1B model", big_table(big)]
    for spec, s in big.get("steps", {}).items():
        parts += [f"Stages of `{spec}` on the ~1B model (ms)", stages_table(s["stages"])]
    parts += ["### Roofline",
              "```\n" + roofline.format_table(results["roofline"]["rows"]) + "\n```"]
    return "\n\n".join(parts)


def accuracy_tables(results: dict) -> str:
    parity = results["parity"]
    rows = []
    for variant, r in parity.get("llm", {}).items():
        pol = parity.get("policy", {}).get(variant, {})
        rows.append([variant, _f(r.get("max_logit_diff"), "{:.3g}"),
                     _f(r.get("answer_agreement"), "{:.2f}"),
                     _f(r.get("max_action_px"), "{:.1f}"),
                     _f(pol.get("action_agreement"), "{:.2f}"),
                     _f(pol.get("max_action_px"), "{:.1f}"),
                     "; ".join(r.get("failures") or []) or "ok"])
    parts = [f"### Parity ({parity.get('source')}, {len(parity.get('frames', []))} frames)",
             md_table(["variant", "LLM max logit diff", "LLM answer agreement", "LLM action px",
                       "policy identical actions", "policy max px", "export gate"], rows)]
    for who, loop in results.get("closed_loop", {}).items():
        levels = sorted({lv for row in loop["table"].values() for lv in row})
        rows = [[fam, *(_f(row.get(lv), "{:.0%}") for lv in levels)]
                for fam, row in loop["table"].items()]
        parts += [f"### Closed-loop success: {who} ({loop['episodes']} episodes, overall "
                  f"{loop['success']:.0%}; parse failures {loop['parse_failures']}/"
                  f"{loop['decisions']} decisions; action error vs expert median "
                  f"{_f(loop['expert_px_median'])} px)",
                  md_table(["family", *levels], rows)]
    return "\n\n".join(parts)
