"""docs/benchmarks-7b-shaped.md from a 7B-shaped latency run's JSON: generated, never edited.

Contract:
    render_shaped(results) -> str                 # the markdown
    write_shaped_report(results, md_path) -> Path # atomic (tmp + rename)
    python -m llara_bench.report_shaped RESULTS_JSON [--md docs/benchmarks-7b-shaped.md]

`results` is what bench_shaped.run_shaped returns plus "command" (the bench command line,
set by the CLI) and "written" (its date); the bench CLI renders the file itself with
`--md PATH` (tools/bench_7b_shaped.sh does the whole run: checkpoints, exports, bench, this
file, clean-up), this module's main re-renders it from a kept JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llara_bench.bench_shaped import TARGET_LAYERS, TARGET_VISION_LAYERS
from llara_edge.robot.toml_io import write_atomic

TARGET, TARGET_VISION = TARGET_LAYERS, TARGET_VISION_LAYERS


def _ms(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{1e3 * v:,.{digits}f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _p50(r: dict, stage: str) -> float | None:
    return (r["stages"].get(stage) or {}).get("p50")


def _over(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _depth_rows(results: dict) -> list[str]:
    base = results["baselines"]
    rows = ["| depth | runner | step | TTFT | passes | tokens | decode | ms / pass | "
            "step / HF | step / stock | decode / HF | decode / stock | floor | step / floor "
            "| on target |", "|" + "---|" * 15]
    for p in results["points"]:
        run = p["runners"]
        for name, r in run.items():
            hf, st = (run.get(base[k]) if base[k] != name else None
                      for k in ("hf_generate", "stock_gbnf"))
            dec = _p50(r, "decode")
            fl = r.get("floor") or {}
            n = len(r.get("texts") or []) or "?"
            cand = " (candidate)" if name == results["candidate"] else ""
            rows.append(
                f"| {p['layers']} | `{name}`{cand} | {_ms(r['step']['p50'])} | "
                f"{_ms((r['ttft'] or {}).get('p50'))} | {r['forward_passes_mean']:.1f} | "
                f"{r['n_tokens_mean']:.1f} | {_ms(dec)} | "
                f"{_ms(_over(dec, r['forward_passes_mean']), 1)} | "
                f"{_x(_over(r['step']['p50'], hf and hf['step']['p50']))} | "
                f"{_x(_over(r['step']['p50'], st and st['step']['p50']))} | "
                f"{_x(_over(dec, hf and _p50(hf, 'decode')))} | "
                f"{_x(_over(dec, st and _p50(st, 'decode')))} | {_ms(fl.get('floor_s'))} | "
                f"{_x(fl.get('step_over_floor'))} | {r.get('on_target')}/{n} |")
    return rows


def _extrapolated_rows(results: dict) -> list[str]:
    rows = [f"| runner | TTFT @{TARGET} | passes | decode @{TARGET} | step @{TARGET} | "
            "step / HF | step / stock | decode / HF | decode / stock | 1-token extend "
            f"@{TARGET} | floor @{TARGET} | step / floor |", "|" + "---|" * 12]
    for name, e in results["extrapolation"].items():
        q = results["ratios_at_32"][name]
        dec = (e["stages"].get("decode") or {}).get(f"at_{TARGET}_s")
        rows.append(
            f"| `{name}` | {_ms(e[f'ttft_at_{TARGET}_s'])} | {e['passes']:.1f} | {_ms(dec)} | "
            f"{_ms(e[f'step_at_{TARGET}_s'])} | {_x(q.get('step_over_hf_generate'))} | "
            f"{_x(q.get('step_over_stock_gbnf'))} | {_x(q.get('decode_over_hf_generate'))} | "
            f"{_x(q.get('decode_over_stock_gbnf'))} | {_ms(e[f'extend1_at_{TARGET}_s'], 1)} | "
            f"{_ms(e[f'floor_at_{TARGET}_s'])} | {_x(q.get('step_over_floor'))} |")
    return rows


def _layer_rows(results: dict) -> list[str]:
    stages = list(dict.fromkeys(s for e in results["extrapolation"].values()
                                for s in e["stages"]))
    rows = ["| runner | " + " | ".join(f"{s} fixed / per layer / @{TARGET}" for s in stages)
            + " |", "|" + "---|" * (len(stages) + 1)]
    for name, e in results["extrapolation"].items():
        cells = []
        for s in stages:
            v = e["stages"].get(s)
            cells.append("-" if v is None else
                         f"{_ms(v['fixed_s'])} / {_ms(v['per_layer_s'])} / "
                         f"{_ms(v[f'at_{TARGET}_s'])}{' (' + v['note'] + ')' if v['note'] else ''}")
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return rows


def _header(results: dict) -> list[str]:
    pts, m = results["points"], results["points"][0]["machine"]
    roof = results["roofline"]["model"]
    depths = " and ".join(str(p["layers"]) for p in pts)
    loads = "; ".join(dict.fromkeys(f"{p['machine']['loadavg_1_5_15']} -> "
                                    f"{p['machine'].get('loadavg_after')}" for p in pts))
    return [
        "# Latency, 7B-shaped mode, realistic answers (issue 27)", "",
        "<!-- generated by benchmarks/llara_bench/report_shaped.py from the run's JSON: "
        "do not edit by hand; re-render with `python -m llara_bench.report_shaped JSON --md "
        "PATH` -->", "",
        f"Written by `{results.get('command', '?')}` on {results.get('written', '?')}; "
        "the whole run (checkpoints, exports, this command, this file, clean-up) is "
        "`bash tools/bench_7b_shaped.sh DIR`.", "",
        f"LLaRA-7B widths (vocab {roof['vocab']}, hidden {roof['hidden']}, {roof['image_tokens']}"
        f" image tokens, CLIP width {roof['vision_hidden']}; random weights, "
        "tools/make_7b_shaped.py) at "
        f"{depths} LLM layers and {pts[0]['clip_layers']} computed CLIP layers. Every runner "
        "is taught the same realistic answer per frame (benchmarks/llara_bench/teacher.py: a "
        "bias ranks the answer's next token first, EOS after it; vima_answers.answer_for_prompt"
        " writes the answer from the frame's prompt, docs/formats.md \"Realistic answers\"), so "
        "pass counts are a trained model's while each pass costs what the 7B-shaped model "
        "costs. \"on target\": measured steps whose text is the taught answer.", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, threads per engine: {m['threads']}; load "
        f"average (1/5/15 min) before -> after: {loads}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ". "
        f"{results['config']['frames']} frames, {results['config']['warmup']} warm-up + "
        f"{results['config']['steps']} measured steps per runner, round robin.", ""]


FLOOR_NOTE = (
    "Ratios are runner / baseline (< 1 is faster). The floor is TTFT + passes x a single-token "
    "extend (both p50 of this run; the extend is timed inside the runtime backend): what the "
    "step would cost if every pass were one token and nothing else ran after the prefill. HF "
    "generate and the stock handler expose no extend. A constrained pass that verifies drafts "
    "or appends forced tokens feeds several tokens, which on a CPU costs more than a one-token "
    "pass (the matrix products are compute-bound there): the step over its floor is that, plus "
    "the grammar's masks; on memory-bound hardware a pass costs about the same for a few "
    "tokens (the roofline below).")
FIT_NOTE = (
    "Per runner, each LLM stage, TTFT and the single-token extend are fitted as fixed + layers x "
    "per-layer over the depths (two points: exact; on a shared machine the fixed parts are "
    f"noisy); vision is scaled to the {TARGET_VISION} CLIP layers ViT-L/14 computes; the stock "
    "handler's joined vision+prefill is fitted in the LLM depth only.")


def _roofline(results: dict) -> list[str]:
    from llara_bench import roofline

    w = results["roofline"]["workload"]
    return [
        "## Roofline fed with the measured passes (ESTIMATE, not measured on a Jetson)", "",
        f"benchmarks/llara_bench/roofline.py with the artifact's shapes at {TARGET} layers, the "
        f"candidate's {w['passes_constrained']:.1f} passes per step and free greedy's "
        f"{w['passes_free']:.1f} (HF generate's tokens, </s> included):", "", "```",
        roofline.format_table(results["roofline"]["rows"]), "```", ""]


def _headline(results: dict) -> list[str]:
    """The candidate's figures in one paragraph, from the JSON."""
    cand, base = results["candidate"], results["baselines"]
    last = results["points"][-1]
    e, q = results["extrapolation"][cand], results["ratios_at_32"][cand]
    r = last["runners"][cand]
    hf = last["runners"].get(base["hf_generate"] or "", {})
    stock = last["runners"].get(base["stock_gbnf"] or "", {})
    return [
        f"**Headline.** The candidate `{cand}` decodes {r['forward_passes_mean']:.1f} passes per "
        f"step on the taught answers (HF generate {hf.get('forward_passes_mean', 0):.1f}, the "
        f"stock handler {stock.get('forward_passes_mean', 0):.1f}). At {last['layers']} LLM "
        f"layers its step is {_ms(r['step']['p50'])} ms, "
        f"{_x(_over(r['step']['p50'], (hf.get('step') or {}).get('p50')))} of HF generate's and "
        f"{_x(_over(r['step']['p50'], (stock.get('step') or {}).get('p50')))} of the stock "
        f"handler's, {_x((r.get('floor') or {}).get('step_over_floor'))} x its floor. "
        f"Extrapolated to {TARGET} layers on this CPU: step {_ms(e[f'step_at_{TARGET}_s'])} ms, "
        f"{_x(q.get('step_over_hf_generate'))} of HF generate's and "
        f"{_x(q.get('step_over_stock_gbnf'))} of the stock handler's (decode "
        f"{_x(q.get('decode_over_hf_generate'))} / {_x(q.get('decode_over_stock_gbnf'))}), "
        f"{_x(q.get('step_over_floor'))} x its floor. A negative or inverted fit means the "
        "shared machine's load moved between the depths more than a layer costs: read the "
        "per-depth rows then.", ""]


def render_shaped(results: dict) -> str:
    """The markdown page (module docstring)."""
    frames = results["points"][0].get("frames", [])
    cand = results["points"][-1]["runners"][results["candidate"]]
    answers = sorted(set(cand.get("texts") or []))
    lines = [*_header(results), *_headline(results),
             "## Per step at each depth (p50 ms)", "", FLOOR_NOTE, "", *_depth_rows(results), "",
             f"## Extrapolated to {TARGET} LLM layers (+{TARGET_VISION} CLIP layers for "
             "vision), this CPU (ms)", "", FIT_NOTE, "", *_extrapolated_rows(results), "",
             "Per-stage fits (ms):", "", *_layer_rows(results), "",
             *_roofline(results),
             "## The taught answers", "",
             "Frames: " + ", ".join(f"`{f}`" for f in frames) + ". The candidate's answers:", "",
             *[f"- `{a}`" for a in answers], ""]
    return "\n".join(lines)


def write_shaped_report(results: dict, md_path: Path) -> Path:
    return write_atomic(md_path, render_shaped(results))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--md", type=Path, default=Path("docs/benchmarks-7b-shaped.md"))
    args = ap.parse_args(argv)
    print(write_shaped_report(json.loads(args.results.read_text()), args.md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
