"""Per-LLM-layer export costs from two or more exports of one shape at different depths.

    python tools/export_extrapolate.py 1=export-L1.log 2=export-L2.log [--target 32]
        [--clip-layers 4]

Each LOG is the stdout of `llara-edge export` (its last line is the JSON with "stages").
Per stage, wall seconds and peak RSS are fitted as fixed + L x per_layer over the depths
(least squares, benchmarks/bench_shaped.fit_line) and evaluated at --target layers, and so
is the anonymous (not file-backed) peak where the log has it (export/llara_export/resources.py). The
checkpoints share their CLIP depth (--clip-layers); the model-resident stages of the full
model hold (24 - clip_layers) more CLIP ViT-L layers (12.6 M parameters each, fp32 while the
torch model is loaded): that term is ADDED from the parameter count, not measured, and
printed apart. Prints the table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CLIP_LAYER_PARAMS = 4 * 1024 * 1024 + 2 * 1024 * 4096 + 6 * 1024 + 4096  # ViT-L block


def _stages(log: Path) -> list[dict]:
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"{log}: no JSON line (not the stdout of llara-edge export?)")
    return json.loads(lines[-1])["stages"]


def _key(stage: str) -> str:
    return stage.split(" /")[0] if stage.startswith("loading") else stage


def main(argv: list[str] | None = None) -> int:
    from llara_bench.bench_shaped import fit_line

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", nargs="+", help="LAYERS=LOG, e.g. 1=/tmp/exp-L1.log")
    parser.add_argument("--target", type=int, default=32)
    parser.add_argument("--clip-layers", type=int, default=4)
    args = parser.parse_args(argv)
    runs = {int(p.split("=", 1)[0]): _stages(Path(p.split("=", 1)[1])) for p in args.points}
    depths = sorted(runs)
    clip_mb = (24 - args.clip_layers) * CLIP_LAYER_PARAMS * 4 / 2**20
    rows = []
    for i, stage in enumerate(runs[depths[0]]):
        secs = [runs[d][i]["seconds"] for d in depths]
        peaks = [runs[d][i]["peak_rss_mb"] for d in depths]
        s0, s1 = fit_line([float(d) for d in depths], secs)
        p0, p1 = fit_line([float(d) for d in depths], peaks)
        anon = [runs[d][i].get("peak_anon_mb") for d in depths]
        a0, a1 = fit_line([float(d) for d in depths], anon) if None not in anon else (0, 0)
        rows.append({"stage": _key(stage["stage"]), "seconds": secs, "peak_mb": peaks,
                     "s_per_layer": s1, "mb_per_layer": p1,
                     "seconds_at_target": s0 + s1 * args.target,
                     "peak_mb_at_target": p0 + p1 * args.target, "anon_mb": anon,
                     "anon_mb_at_target": a0 + a1 * args.target if None not in anon else None})
    head = "| stage | " + " | ".join(f"s @{d}L" for d in depths) + " | s/layer | " + \
        f"s @{args.target}L | " + " | ".join(f"peak MiB @{d}L" for d in depths) + \
        f" | MiB/layer | peak MiB @{args.target}L | anon MiB @{args.target}L |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(f"| {r['stage'][:60]} | " + " | ".join(f"{s:.1f}" for s in r["seconds"]) +
              f" | {r['s_per_layer']:.1f} | {r['seconds_at_target']:.0f} | " +
              " | ".join(f"{p:.0f}" for p in r["peak_mb"]) +
              f" | {r['mb_per_layer']:.0f} | {r['peak_mb_at_target']:.0f} | " +
              (f"{r['anon_mb_at_target']:.0f} |" if r["anon_mb_at_target"] is not None
               else "- |"))
    worst = max(rows, key=lambda r: r["peak_mb_at_target"])
    anon_rows = [r for r in rows if r["anon_mb_at_target"] is not None]
    worst_anon = max(anon_rows, key=lambda r: r["anon_mb_at_target"]) if anon_rows else None
    total = sum(r["seconds_at_target"] for r in rows)
    print(f"\nprojected at {args.target} layers: total {total:.0f} s; largest peak "
          f"{worst['peak_mb_at_target']:.0f} MiB in '{worst['stage']}' "
          f"(+{clip_mb:.0f} MiB for the {24 - args.clip_layers} CLIP layers not in these "
          "checkpoints, computed, where the torch model is resident)")
    if worst_anon:
        print(f"largest anonymous (unreclaimable) peak {worst_anon['anon_mb_at_target']:.0f} "
              f"MiB in '{worst_anon['stage']}'")
    print(json.dumps({"depths": depths, "target": args.target, "rows": rows,
                      "clip_extra_mb": clip_mb, "total_s_at_target": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
