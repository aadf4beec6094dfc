"""The 7B-shaped report writer (benchmarks/llara_bench/report_shaped.py): the markdown comes
from the run's JSON (figures, the floor, the 32-layer extrapolation, the roofline, the command
that wrote it), and re-rendering a kept JSON gives the same file."""

from __future__ import annotations

import json

from llara_bench import roofline
from llara_bench.bench_shaped import _point_summary, extrapolate, ratios_at
from llara_bench.report_shaped import main, render_shaped, write_shaped_report

CAND, FREE, HF, STOCK = "gguf:q4_k_m", "gguf:q4_k_m+free", "hf-generate", "stock-gbnf:q4_k_m"
ANSWER = "Step 1: Pick up the <p>red block</p> at <b>(0.301,  0.412)</b>, rotate <r>[-7]</r> " \
         "degrees, and drop it at <b>(0.690, 0.561)</b>."


def _s(p50: float) -> dict:
    return {"n": 2, "p50": p50, "p95": p50, "p99": p50, "mean": p50, "min": p50, "max": p50}


def _runner(layers: int, decode: float, passes: float, extend1: float | None,
            joined: bool = False) -> dict:
    prefill = 0.5 * layers
    stages = ({"vision+prefill": _s(0.2 + prefill)} if joined else
              {"vision": _s(0.2), "prefill": _s(prefill)})
    stages |= {"decode": _s(decode * layers), "parse": _s(0.001)}
    step = sum(v["p50"] for v in stages.values())
    return {"stages": stages, "step": _s(step), "ttft": _s(0.2 + prefill),
            "n_tokens_mean": 72.0, "forward_passes_mean": passes, "decode_tokens_per_s": 1.0,
            "parse_failures": 0, "extend1": _s(extend1 * layers) if extend1 else None,
            "on_target": 2, "texts": [ANSWER, ANSWER]}


def _results() -> dict:
    points = []
    for layers in (1, 2):
        runners = {CAND: _runner(layers, 0.4, 17.0, 0.02), FREE: _runner(layers, 1.5, 72.0, 0.02),
                   HF: _runner(layers, 6.0, 72.0, None), STOCK: _runner(layers, 1.6, 72.0, None,
                                                                        joined=True)}
        comps = {CAND: {"hf_generate": {"step_p50_ratio": 0.1}}}
        machine = {"cpu": "test cpu", "cores": 2, "threads": 2, "loadavg_1_5_15": [1, 1, 1],
                   "loadavg_after": [2, 2, 2], "versions": {"numpy": "2"}}
        res = {"artifact": f"/tmp/art-L{layers}", "frames": ["vm/L1/0", "rotate/L1/1"],
               "runners": runners, "comparisons": comps, "machine": machine, "membw": {}}
        points.append(_point_summary(res, layers, 3))
    ex = extrapolate(points)
    w = roofline.Workload(passes_constrained=17.0, passes_free=72.0)
    return {"candidate": CAND, "baselines": {"hf_generate": HF, "stock_gbnf": STOCK},
            "config": {"frames": 2, "warmup": 1, "steps": 2}, "points": points,
            "extrapolation": ex, "ratios_at_32": ratios_at(ex, HF, STOCK),
            "roofline": {"model": {"vocab": 32000, "hidden": 4096, "image_tokens": 576,
                                   "vision_hidden": 1024},
                         "workload": w.__dict__, "rows": roofline.estimate_table(workload=w)},
            "command": "llara-edge bench latency --shaped a=b --shaped c=d --md x.md",
            "written": "2026-12-07"}


def test_floor_and_extrapolation_feed_the_page():
    res = _results()
    cand = res["points"][0]["runners"][CAND]
    # floor = TTFT + passes x single-token extend: 0.7 s + 17 x 20 ms
    assert abs(cand["floor"]["floor_s"] - (0.7 + 17 * 0.02)) < 1e-9
    ex = res["extrapolation"][CAND]
    assert abs(ex["ttft_at_32_s"] - (0.2 * 23 / 3 + 0.5 * 32)) < 1e-9
    assert abs(ex["floor_at_32_s"] - (ex["ttft_at_32_s"] + 17 * 0.02 * 32)) < 1e-9
    r = res["ratios_at_32"][CAND]
    assert abs(r["decode_over_hf_generate"] - 0.4 / 6.0) < 1e-9
    assert res["ratios_at_32"][HF].get("step_over_hf_generate") is None
    page = render_shaped(res)
    assert "do not edit by hand" in page and res["command"] in page
    assert "| 1 | `gguf:q4_k_m` (candidate) | 1,101 | 700 | 17.0 |" in page
    assert "| 1,040 | 1.06 |" in page  # floor 1,040 ms, step / floor 1,101 / 1,040
    assert f"| `gguf:q4_k_m` | {1e3 * ex['ttft_at_32_s']:,.0f} | 17.0 |" in page
    assert "Orin Nano 8GB" in page and "17.0 passes" in page and ANSWER in page


def test_written_atomically_and_rerendered_from_json(tmp_path):
    res = _results()
    md = write_shaped_report(res, tmp_path / "docs" / "shaped.md")
    assert md.read_text() == render_shaped(res)
    assert not list(md.parent.glob(".*.tmp"))
    (tmp_path / "run.json").write_text(json.dumps(res))
    assert main([str(tmp_path / "run.json"), "--md", str(tmp_path / "again.md")]) == 0
    assert (tmp_path / "again.md").read_text() == md.read_text()
