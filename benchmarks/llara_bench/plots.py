"""PNG plots of benchmark results (matplotlib, Agg backend; small files for docs/).

Contract:
    write_plots(latency, accuracy, out_dir) -> list[Path]   # either result may be None
    waterfall(latency, path), stage_distributions(latency, path), comparison(latency, path),
    success(accuracy, path) -> Path

- waterfall: the stages of ONE step laid end to end (the median decision of the whole loop
  when `llara-edge run` telemetry is there, else the candidate's median policy step), ms;
- stage distributions: box plots of the candidate's per-stage samples (ms, log scale);
- comparison: step p50 of every runner (log scale) with the speedup over baseline (a);
- success: closed-loop success per family and level, candidate next to the reference.
Files are written atomically (tmp + rename).
"""

from __future__ import annotations

import os
from pathlib import Path

from llara_bench.runners import in_stage_order

DPI = 90
_LOOP_SKIP = {"step", "policy"}  # totals, not stages of the waterfall


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    os.replace(tmp, path)
    return path


def waterfall(latency: dict, path: Path) -> Path:
    loop = latency.get("control_loop", {})
    if "median_step_stages" in loop:
        stages = in_stage_order({k: v for k, v in loop["median_step_stages"].items()
                                 if k not in _LOOP_SKIP})
        title = "one control step (median decision of the closed loop, simulator)"
    else:
        stages = in_stage_order(latency["runners"][latency["candidate"]]["median_step_stages"])
        title = f"one policy step of {latency['candidate']} (median step)"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(stages) + 1.2))
    start = 0.0
    for i, sec in enumerate(stages.values()):
        ax.barh(i, sec * 1e3, left=start * 1e3, color=f"C{i % 10}")
        ax.text((start + sec) * 1e3, i, f" {sec * 1e3:.1f}", va="center", fontsize=7)
        start += sec
    ax.set_yticks(range(len(stages)), list(stages), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the step started")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def stage_distributions(latency: dict, path: Path) -> Path:
    cand = latency["runners"][latency["candidate"]]
    samples = {k: [v * 1e3 for v in vals]
               for k, vals in in_stage_order(cand["stage_samples"]).items()
               if vals and max(vals) > 0}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.boxplot(list(samples.values()), tick_labels=list(samples), showfliers=True)
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title(f"per-stage latency of {latency['candidate']} "
                 f"({cand['step']['n']} steps after warm-up)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    return _save(fig, path)


def comparison(latency: dict, path: Path) -> Path:
    runners = latency["runners"]
    base = runners[latency["baselines"]["hf_generate"]]["step"]["p50"]
    names = sorted(runners, key=lambda n: runners[n]["step"]["p50"])
    p50 = [runners[n]["step"]["p50"] * 1e3 for n in names]
    p95 = [runners[n]["step"]["p95"] * 1e3 for n in names]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    colors = ["C3" if n in latency["baselines"].values() else
              "C2" if n == latency["candidate"] else "C0" for n in names]
    ax.barh(range(len(names)), p50, color=colors)
    ax.errorbar(p50, range(len(names)), xerr=[[0] * len(names),
                [b - a for a, b in zip(p50, p95, strict=True)]], fmt="none", ecolor="k",
                capsize=2, lw=0.8)
    for i, (v, top) in enumerate(zip(p50, p95, strict=True)):
        ax.text(top, i, f"  {v:.1f} ms ({base * 1e3 / v:.1f}x)", va="center", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=max(p95) * 3)  # room for the labels
    ax.set_xlabel("step p50 ms (log; bar to p95); (Nx) = speedup over HF generate")
    ax.set_title("policy step latency, same frames, same run (red: baselines, green: "
                 "candidate)", fontsize=9)
    return _save(fig, path)


def success(accuracy: dict, path: Path) -> Path:
    loops = accuracy["closed_loop"]
    cells = sorted({(f, lv) for loop in loops.values() for f, row in loop["table"].items()
                    for lv in row})
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(cells) + 2), 3.4))
    width = 0.8 / max(1, len(loops))
    for i, (who, loop) in enumerate(loops.items()):
        vals = [loop["table"].get(f, {}).get(lv, 0.0) * 100 for f, lv in cells]
        ax.bar([j + i * width for j in range(len(cells))], vals, width,
               label=f"{who} ({accuracy['candidate'] if who == 'candidate' else 'torch'})")
    labels = [f.replace("_", "\n") + "\n" + lv for f, lv in cells]
    ax.set_xticks([j + width * (len(loops) - 1) / 2 for j in range(len(cells))], labels,
                  fontsize=6)
    ax.set_ylabel("success %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.set_title("closed-loop success per task family and level (simulator)", fontsize=9)
    return _save(fig, path)


def write_plots(latency: dict | None, accuracy: dict | None, out_dir: Path) -> list[Path]:
    paths = []
    if latency:
        paths += [waterfall(latency, out_dir / "latency_waterfall.png"),
                  stage_distributions(latency, out_dir / "stage_distributions.png"),
                  comparison(latency, out_dir / "baseline_comparison.png")]
    if accuracy and accuracy.get("closed_loop"):
        paths.append(success(accuracy, out_dir / "success_per_task.png"))
    return paths
