"""The 7B-shaped latency mode's arithmetic (benchmarks/llara_bench/bench_shaped.py): per-layer fits
and the extrapolation to 32 layers, and its CLI errors. The measured run itself is a command
(docs/benchmarks.md), not a CI test."""

from __future__ import annotations

import pytest

from llara_bench.bench_shaped import ShapedBenchConfig, extrapolate, fit_line, format_shaped
from llara_edge.cli.main import main
from llara_edge.errors import ConfigError


def _point(layers: int, prefill: float, vision: float, clip: int = 3) -> dict:
    stages = {"vision": {"p50": vision}, "prefill": {"p50": prefill}}
    return {"layers": layers, "clip_layers": clip, "runners": {"r": {"stages": stages}}}


def test_fit_line_is_exact_on_two_points_and_least_squares_on_more():
    assert fit_line([1, 2], [3.0, 5.0]) == pytest.approx((1.0, 2.0))
    fixed, slope = fit_line([1, 2, 3], [1.0, 2.1, 2.9])
    assert slope == pytest.approx(0.95) and fixed == pytest.approx(0.1)
    assert fit_line([2], [4.0]) == (4.0, 0.0)


def test_extrapolation_scales_llm_layers_and_clip_blocks():
    ex = extrapolate([_point(1, 0.5, 0.3), _point(2, 0.8, 0.3)])["r"]
    pre, vis = ex["stages"]["prefill"], ex["stages"]["vision"]
    assert pre["per_layer_s"] == pytest.approx(0.3) and pre["fixed_s"] == pytest.approx(0.2)
    assert pre["at_32_s"] == pytest.approx(0.2 + 32 * 0.3)
    assert vis["per_layer_s"] == pytest.approx(0.0) and vis["at_32_s"] == pytest.approx(
        0.3 * 23 / 3)
    assert ex["step_at_32_s"] == pytest.approx(pre["at_32_s"] + vis["at_32_s"])


def test_points_must_share_the_clip_depth():
    with pytest.raises(ConfigError):
        extrapolate([_point(1, 0.5, 0.3, clip=3), _point(2, 0.8, 0.3, clip=2)])
    with pytest.raises(ConfigError):
        ShapedBenchConfig(points=())


def test_format_names_every_runner():
    pts = [_point(1, 0.5, 0.3), _point(2, 0.8, 0.3)]
    for p in pts:
        p["runners"]["r"].update(step={"p50": 1.0}, ttft=None, forward_passes_mean=3.0,
                                 parse_failures=0)
        p["comparisons"] = {"r": {}}
    from llara_bench import roofline

    text = format_shaped({"points": pts, "extrapolation": extrapolate(pts),
                          "roofline": {"rows": roofline.estimate_table()}})
    assert "1 LLM layers" in text and "prefill: 300.0/layer" in text and "Orin" in text


def test_config_is_json_serialisable():
    import json
    from dataclasses import asdict
    from pathlib import Path

    from llara_bench.bench_shaped import ShapedPoint, _jsonable

    cfg = ShapedBenchConfig(points=(ShapedPoint(Path("a"), Path("b")),))
    assert json.loads(json.dumps(_jsonable(asdict(cfg))))["points"][0]["artifact"] == "b"


def test_cli_rejects_bad_shaped_points(capsys):
    assert main(["bench", "latency", "--shaped", "no-equals-sign"]) == 2
    assert "CKPT=ARTIFACT" in capsys.readouterr().err
    assert main(["bench", "accuracy", "--shaped", "a=b"]) == 2
