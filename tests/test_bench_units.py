"""Benchmark building blocks: statistics, gates, roofline arithmetic, Jetson parsers, memory
bandwidth, the GBNF baseline grammar and the plots (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llara_bench import jetson, membw, roofline
from llara_bench.gates import Gate, check_gates, format_gate_report, load_gates
from llara_bench.stats import ratio, stage_summaries, summarize
from llara_edge.errors import ConfigError


def test_summarize_drops_warmup_and_matches_numpy():
    samples = [10.0, 1.0, 2.0, 3.0, 4.0, 100.0]
    s = summarize(samples, warmup=1)
    kept = np.array(samples[1:])
    assert s.n == 5 and s.max == 100.0 and s.min == 1.0
    assert s.p50 == pytest.approx(np.percentile(kept, 50))
    assert s.p99 == pytest.approx(np.percentile(kept, 99))
    with pytest.raises(ConfigError):
        summarize([1.0], warmup=1)


def test_stage_summaries_and_ratio():
    steps = [{"vision": 9.0}, {"vision": 1.0, "decode": 2.0}, {"vision": 3.0, "decode": 4.0}]
    out = stage_summaries(steps, warmup=1)
    assert out["vision"].n == 2 and out["vision"].p50 == 2.0 and out["decode"].max == 4.0
    assert ratio(1.0, 4.0) == 0.25 and ratio(1.0, 0.0) is None and ratio(None, 1.0) is None


def _gates(tmp_path: Path, text: str):
    path = tmp_path / "g.toml"
    path.write_text(text)
    return load_gates(path)


def test_gate_breach_says_which_and_by_how_much(tmp_path):
    gates = _gates(tmp_path, '[[gate]]\nmetric = "latency.candidate.step_p50_over_hf"\n'
                             'max = 0.1\nquick_max = 0.5\n')
    metrics = {"latency.candidate.step_p50_over_hf": 0.3}
    [full] = check_gates(metrics, gates)
    assert not full.passed and "BREACH by +0.2" in full.describe()
    assert "200%" in full.describe()
    [quick] = check_gates(metrics, gates, quick=True)
    assert quick.passed and quick.limit == 0.5
    assert "FAILED" in format_gate_report([full]).splitlines()[1]


def test_gate_patterns_missing_metrics_and_skipped_suites(tmp_path):
    gates = _gates(tmp_path, '[[gate]]\nmetric = "accuracy.parity.*.agree"\nmin = 0.5\n'
                             '[[gate]]\nmetric = "latency.x.y"\nmax = 1\n'
                             '[[gate]]\nmetric = "accuracy.only_full"\nmin = 1\nquick = false\n')
    metrics = {"accuracy.parity.f16.agree": 1.0, "accuracy.parity.q2_k.agree": 0.0}
    res = check_gates(metrics, gates, quick=True)  # latency did not run: its gate is skipped
    assert [(r.key, r.passed) for r in res] == [("accuracy.parity.f16.agree", True),
                                                ("accuracy.parity.q2_k.agree", False)]
    missing = check_gates({"accuracy.parity.f16.agree": 1.0}, gates, suites={"accuracy"})
    assert any(r.bound == "missing" and not r.passed for r in missing)
    nan = check_gates({"accuracy.parity.f16.agree": float("nan")}, gates[:1])
    assert not nan[0].passed


def test_gate_file_validation(tmp_path):
    with pytest.raises(ConfigError):
        _gates(tmp_path, '[[gate]]\nmetric = "latency.a"\n')  # no bound
    with pytest.raises(ConfigError):
        _gates(tmp_path, '[[gate]]\nmetric = "latency.a"\nmax = 1\nmaxx = 2\n')
    with pytest.raises(ConfigError):
        Gate(metric="nodots", max=1)
    assert all(g.why for g in load_gates())  # the checked-in file loads, every gate explained


def test_roofline_arithmetic_and_labels():
    w = roofline.Workload(passes_constrained=20, eta_memory=1.0, eta_compute=1.0)
    dev = roofline.DEVICES["agx-orin-64gb"]
    est = roofline.estimate(roofline.LLARA_7B, dev, "q4_k_m", w)
    m = roofline.LLARA_7B
    weights = m.llm_params() * 4.84 / 8
    kv = 2 * m.layers * m.hidden * w.context_tokens * 2
    per_pass_ms = (weights + kv) / (dev.bandwidth_gbps * 1e9) * 1e3
    assert est.ideal_ms["per_pass"] == pytest.approx(per_pass_ms)
    assert est.ideal_ms["decode"] == pytest.approx(20 * per_pass_ms)
    assert 6.5e9 < m.llm_params() < 6.8e9  # LLaMA-2 7B without the input embedding
    assert est.weights_gb == pytest.approx(4.0, abs=0.1)  # ~3.8 GiB, llama.cpp's table
    rows = roofline.estimate_table()
    by = {(r["device"], r["quant"]): r for r in rows}
    assert not by[("Orin Nano 8GB", "f16")]["fits"] and by[("Orin Nano 8GB", "q4_k_m")]["fits"]
    agx, nano = by[("AGX Orin 64GB", "q4_k_m")], by[("Orin Nano 8GB", "q4_k_m")]
    assert agx["expected_ms"]["step"] < nano["expected_ms"]["step"]
    assert agx["expected_ms"]["step"] > agx["ideal_ms"]["step"]
    assert "ESTIMATE" in roofline.format_table(rows) and all("ESTIMATE" in r["label"] for r in rows)
    with pytest.raises(ConfigError):
        roofline.estimate(quant="q3_x")


def test_tegrastats_lines_and_rails():
    nano = ("RAM 2881/7620MB (lfb 2x4MB) CPU [3%@1510,2%@1510] GR3D_FREQ 0% cpu@47.2C "
            "VDD_IN 4851mW/4851mW VDD_CPU_GPU_CV 487mW/487mW VDD_SOC 1336mW/1336mW")
    agx = "GR3D_FREQ 0%@[305,305] VDD_GPU_SOC 2000mW/2100mW VDD_CPU_CV 400mW/400mW"
    assert jetson.parse_tegrastats_line(nano) == {"VDD_IN": 4851, "VDD_CPU_GPU_CV": 487,
                                                  "VDD_SOC": 1336}
    res = jetson.summarize_rails([jetson.parse_tegrastats_line(nano)] * 2)
    assert res["total_mean_mw"] == 4851 and res["total_source"] == "VDD_IN"
    res = jetson.summarize_rails([jetson.parse_tegrastats_line(agx)])
    assert res["total_mean_mw"] == 2400 and res["total_source"] == "sum of rails"


def test_off_jetson_power_is_skipped_with_reason(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert jetson.power_mode() == {"available": False,
                                   "reason": "nvpmodel not found (not a Jetson)"}
    with jetson.TegraStats() as ts:
        pass
    assert ts.result() == {"available": False, "reason": "tegrastats not found (not a Jetson)"}


def test_memory_bandwidth_is_measured():
    res = membw.measure_bandwidth(membw.BandwidthConfig(mib=16, repeats=2, threads=(1, 2)))
    assert set(res["by_threads"]) == {"1", "2"} and res["copy_gbps"] > 0.1
    assert set(res["read_by_threads"]) == {"1", "2"} and res["read_gbps"] > 0.1
    assert res["read_gbps"] == max(res["read_by_threads"].values())
    assert membw.decode_bandwidth_fraction(2e9, 5.0, 20.0) == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        membw.BandwidthConfig(mib=1)


def test_gbnf_grammar_compiles_and_names_come_from_the_prompt():
    llama_cpp = pytest.importorskip("llama_cpp")
    from llara_bench.gbnf import llara_step_gbnf, prompt_names

    text = "<task>Put the <p>red block</p> at x into the <p>green pan</p>. <p>red block</p>"
    assert prompt_names(text) == ("red block", "green pan")
    for names in (prompt_names(text), None):
        gbnf = llara_step_gbnf(names)
        assert gbnf.startswith("root ::=") and "drop it at " in gbnf and "stop at " in gbnf
        assert llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False) is not None
    with pytest.raises(ConfigError):
        llara_step_gbnf(("bad <name>",))


def test_vicuna_chat_format_renders_the_policy_prompt():
    pytest.importorskip("jinja2")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from llara_bench.baselines import vicuna_chat_format
    from llara_bench.runners import policy_prompt
    from llara_edge.formats.templates import VICUNA_V1

    task = "<task>Put the <p>red block</p> into the pan.</task>\nDescribe it."
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    rendered = env.from_string(vicuna_chat_format()).render(messages=[
        {"role": "system", "content": VICUNA_V1.system},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "<image>"}},
                                     {"type": "text", "text": task}]}])
    assert rendered == policy_prompt(task) == policy_prompt("<image>\n" + task)


def test_plots_are_small_pngs(tmp_path):
    from llara_bench.plots import write_plots

    stages = {"preprocess": 0.001, "vision": 0.004, "prefill": 0.006, "decode": 0.01,
              "parse": 0.0001}
    summary = {"stages": {}, "stage_samples": {k: [v, v * 1.1] for k, v in stages.items()},
               "median_step_stages": stages, "step": {"p50": 0.02, "p95": 0.03, "n": 2}}
    base = {**summary, "step": {"p50": 0.5, "p95": 0.6, "n": 2}}
    lat = {"candidate": "gguf:q4_k_m", "runners": {"gguf:q4_k_m": summary, "hf-generate": base},
           "baselines": {"hf_generate": "hf-generate", "stock_gbnf": "hf-generate"},
           "control_loop": {"skipped": "x"}}
    acc = {"candidate": "gguf:q4_k_m", "closed_loop": {
        "candidate": {"table": {"visual_manipulation": {"L1": 0.5, "L2": 1.0}}},
        "reference": {"table": {"visual_manipulation": {"L1": 0.5, "L2": 0.0}}}}}
    paths = write_plots(lat, acc, tmp_path)
    assert len(paths) == 4
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size < 150_000


def test_child_peak_rss_is_its_own_not_the_parents():
    import subprocess
    import sys

    from llara_bench.stats import peak_rss_mb

    ballast = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB resident in this process
    ballast[::512] = 2.0
    parent = peak_rss_mb()
    out = subprocess.run([sys.executable, "-c", "from llara_bench.stats import "
                          "peak_rss_mb; print(peak_rss_mb())"], capture_output=True,
                         text=True, check=True).stdout
    assert parent > 64 and float(out) < parent - 32, (parent, out)


def test_free_twin_specs_and_the_twin_comparison():
    from llara_bench.bench_latency import LatencyConfig, _twin_comparison
    from llara_bench.runners import StepRecord
    from llara_bench.specs import free_twin, parse_spec
    from llara_edge.actions import PickPlaceAction

    assert parse_spec("gguf:q4_k_m:onnx+fused+free").free
    assert parse_spec("gguf:q4_k_m:onnx+fused").vision == "onnx+fused"
    assert free_twin("gguf:q4_k_m+delay=0.2") == "gguf:q4_k_m+free"
    assert free_twin("onnx:-:torch") == "onnx:-:torch+free"
    assert free_twin("hf-generate") is None and free_twin("gguf:f16+free") is None
    kv = parse_spec("gguf:q4_k_m:onnx+fused+kv=f16+draft=0")
    assert (kv.cache_type_k, kv.vision, kv.draft) == ("f16", "onnx+fused", 0)
    assert parse_spec("gguf:q4_k_m").cache_type_k is None
    assert free_twin("gguf:q4_k_m+kv=f16") == "gguf:q4_k_m+kv=f16+free"
    for bad in ("hf-generate+free", "gguf:q4_k_m+free+draft=0", "onnx+kv=f16",
                "stock-gbnf:q4_k_m+kv=q8_0"):
        with pytest.raises(ConfigError):
            parse_spec(bad)
    cfg = LatencyConfig(runners=("gguf:q8_0", "hf-generate", "stock-gbnf:q4_k_m"),
                        candidate="gguf:q8_0")
    assert cfg.runners[-1] == "gguf:q8_0+free"

    a = PickPlaceAction(pick=(0.1, 0.2), place=(0.3, 0.4), rotation_deg=0)
    b = PickPlaceAction(pick=(0.1, 0.2), place=(0.3, 0.5), rotation_deg=0)

    def rec(action, passes):
        return StepRecord("", action, None if action else "bad", forward_passes=passes)

    # the twin's malformed answer (None) is left out; a differing action counts against
    out = _twin_comparison([rec(a, 4), rec(a, 5), rec(a, 6)], [rec(a, 40), rec(None, 9),
                                                                 rec(b, 20)])
    assert out == {"identical_actions": 1, "compared": 2, "twin_parse_failures": 1,
                   "forward_passes_ratio": (4 + 6) / (40 + 20)}


def test_big_steps_use_the_candidate_only_where_the_1b_export_has_it():
    from llara_bench.bench_big import steps_spec

    variants = {"f16": {}, "q8_0": {}, "q4_k_m": {}}
    assert steps_spec("gguf:q8_0", variants) == "gguf:q8_0"
    assert steps_spec("gguf:q8_0:onnx+fused", variants) == "gguf:q8_0:onnx+fused"
    assert steps_spec("gguf:f32", variants) == "gguf:q4_k_m"  # a tiny-only variant
    assert steps_spec("onnx", variants) == "gguf:q4_k_m"


def test_multistep_header_counts():
    from llara_bench.bench_multistep import header_counts

    pairs = [(1, "Step 1: Pick"), (2, "Step 2: Pick"), (3, "Step 1: Pick"), (4, "Step 3: x"),
             (2, "Pick up the"), (5, " Step 5: Sweep")]
    assert header_counts(pairs) == {"later_answers": 5, "history_plus_1": 2, "step_1": 1,
                                    "other": 1, "unnumbered": 1}
