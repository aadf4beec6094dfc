"""Latency parts beyond the per-step comparison: the whole control loop and the ~1B model.

Contract:
    control_loop(artifact, candidate_spec, episodes, threads, say) -> dict
        per-stage summaries of the closed loop of `llara-edge run` on the simulator
        (capture, prompt, preprocess ... decode, parse, geometry, safety, plan, drive,
        settle, step), control Hz
    decode_rate(gguf, threads, n_prompt=64, n_decode=64) -> {"s_per_token", "tokens_per_s"}
    run_big(cfg, machine_gbps, say) -> dict   # the ~1B model: per-variant decode rate and
        achieved bandwidth fraction, per-stage steps of the candidate's variant
    metrics(big) -> {gate key: value}

The loop is `llara-edge run`'s simulator loop (llara_edge.robot: SimRobot with the real
Feetech driver on a pty virtual bus, RobotLoop, SimPrompter) built in this process, so that
its policy gets the suite's thread count (the command itself uses all cores); same
artifact and GGUF variant as the candidate, visual_manipulation L1, seeds 0..episodes-1;
the first decision is dropped as warm-up. In the simulator "drive" and "settle" advance the
physics of the simulated arm, so they measure simulation speed, not a servo bus.
Decode rate: the runtime's gguf engine (GgufBackend.extend: one llama_decode per token after a
64-token prompt, median per-token wall time) on each GGUF variant; the bytes a pass reads are the
GGUF's tensors except the token embedding (bench_models.gguf_weight_bytes), so achieved
bandwidth = bytes x tokens/s and its fraction of this machine's NumPy read-stream bandwidth
(benchmarks/llara_bench/membw.py: decoding reads weights and writes almost nothing; measured in the
same run, so about 1.0 means memory-bound, within the noise of a shared machine).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from llara_bench.stats import stage_summaries, summarize


def _loop_telemetry(artifact: Path, variant: str, threads: int, episodes: int):
    """Run `episodes` simulator episodes of the closed loop; its Telemetry and successes."""
    from llara_edge.robot.config import RobotConfig
    from llara_edge.robot.loop import LoopConfig, RobotLoop
    from llara_edge.robot.policy_io import RuntimeTextPolicy
    from llara_edge.robot.telemetry import Telemetry
    from llara_edge.runtime.config import RuntimeConfig
    from llara_edge.runtime.policy import Policy
    from llara_edge.sim.prompter import SimPrompter
    from llara_edge.sim.robot import SimRobot

    cfg, tel, successes = RobotConfig.default(), Telemetry(), 0
    policy = Policy.load(artifact, RuntimeConfig(llm="gguf", vision="onnx", variant=variant,
                                                 threads=threads))
    try:
        with SimRobot(cfg) as robot:
            loop = RobotLoop(robot.io, RuntimeTextPolicy(policy, variant),
                             SimPrompter(robot.env), cfg, robot.kin, tel,
                             loop_cfg=LoopConfig(record=False))
            try:
                for seed in range(episodes):
                    task = robot.reset("visual_manipulation", "L1", seed)
                    successes += loop.run_episode(seed, task.max_steps, robot.evaluate).success
            finally:
                loop.close()
    finally:
        policy.close()
    return tel, successes


def control_loop(artifact: Path, candidate: str, episodes: int, threads: int, say) -> dict:
    """Per-stage telemetry of the closed loop (see the module docstring)."""
    from llara_bench.specs import parse_spec

    if episodes < 1:
        return {"skipped": "disabled (loop_episodes 0)"}
    spec = parse_spec(candidate)
    if spec.kind != "gguf" or spec.delay_s or spec.vision not in (None, "onnx"):
        return {"skipped": f"the loop runs gguf + onnx vision policies; candidate {candidate}"}
    say(f"control loop: {episodes} visual_manipulation L1 episode(s), {spec.variant}")
    tel, successes = _loop_telemetry(artifact, spec.variant or "q4_k_m", threads, episodes)
    steps = [rec.stages for rec in tel.steps]
    warm = 1 if len(steps) > 1 else 0
    stages = stage_summaries(steps, warm)
    step = stages.get("step")
    kept = sorted(steps[warm:], key=lambda st: st.get("step", 0.0))
    return {"decisions": len(steps) - warm, "median_step_stages": kept[len(kept) // 2],
            "outcomes": tel.outcomes(), "episodes": episodes,
            "success_rate": successes / episodes,
            "stages": {k: v.to_dict() for k, v in stages.items()},
            "control_hz": 1.0 / step.p50 if step and step.p50 > 0 else None}


def decode_rate(gguf: Path, threads: int, n_prompt: int = 64, n_decode: int = 64,
                vocab_low: int = 3, vocab_high: int = 1000) -> dict:
    """Per-token llama.cpp decode time of a GGUF (module docstring)."""
    from llara_edge.backends.gguf import GgufBackend

    rng = np.random.default_rng(0)
    ids = rng.integers(vocab_low, vocab_high, n_prompt + n_decode).tolist()
    with GgufBackend(gguf, n_ctx=n_prompt + n_decode + 8, threads=threads) as llm:
        llm.prefill([ids[:n_prompt]])
        times = []
        for tok in ids[n_prompt:]:
            t0 = time.perf_counter()
            llm.extend([tok])  # one llama_decode, the token's logits copied out
            times.append(time.perf_counter() - t0)
    per = summarize(times, warmup=2)
    return {"s_per_token": per.p50, "tokens_per_s": 1.0 / per.p50, "n": per.n}


def _big_steps(artifact: Path, spec: str, cfg, say) -> dict:
    """Per-stage steps of the runtime Policy on the 1B artifact (few: each is seconds)."""
    from llara_bench.specs import BenchContext, make_runner
    from llara_bench.stats import runner_summary
    from llara_edge.cases import sim_frames

    ctx = BenchContext(artifact, None, cfg.n_threads, cfg.max_new_tokens)
    frames = sim_frames(1, *cfg.frame_size)
    runner = make_runner(spec, ctx)
    try:
        records = []
        for i in range(1 + cfg.big_steps):
            say(f"  1B step {i + 1}/{1 + cfg.big_steps} ({spec})")
            rec = runner.step(frames[0].rgb, frames[0].user_text)
            if i:
                records.append(rec)
    finally:
        runner.close()
    out = runner_summary(records)
    for key in ("texts", "stage_samples"):
        out.pop(key)
    return out


def run_big(cfg, machine_gbps: float, say) -> dict:
    """The ~1B model's decode bandwidth and steps (module docstring)."""
    from llara_bench.bench_models import gguf_weight_bytes, llava_1b_artifact
    from llara_bench.bench_models import llava_1b_config as shape
    from llara_bench.membw import decode_bandwidth_fraction
    from llara_edge.runtime import manifest as mf

    artifact = llava_1b_artifact(cfg.checkpoint, cfg.cache_dir, say)
    manifest = mf.load_manifest(artifact)
    variants = {}
    for variant, entry in manifest["llm"].items():
        say(f"1B decode rate: {variant}")
        path = artifact / entry["file"]
        rate = decode_rate(path, cfg.n_threads)
        nbytes = gguf_weight_bytes(path)
        variants[variant] = {
            **rate, "weight_bytes": nbytes, "achieved_gbps": nbytes * rate["tokens_per_s"] / 1e9,
            "fraction_of_machine": decode_bandwidth_fraction(nbytes, rate["tokens_per_s"],
                                                             machine_gbps)}
    s = shape()
    out = {"artifact": str(artifact), "machine_read_gbps": machine_gbps, "decode": variants,
           "shape": {"llm_hidden": s.hidden, "llm_layers": s.layers, "llm_vocab": s.vocab_size,
                     "vision": f"CLIP ViT {s.vision_layers}x{s.vision_hidden} @ {s.image_size}"}}
    spec = steps_spec(cfg.candidate, manifest["llm"])
    if spec != cfg.candidate:
        say(f"1B steps: {spec} ({cfg.candidate} has no 1B counterpart)")
    out["steps"] = {spec: _big_steps(artifact, spec, cfg, say)}
    return out


def steps_spec(candidate: str, variants) -> str:
    """The runner the 1B stage table uses: the candidate where it is a gguf runner of a
    variant the 1B export has (an f32-only tiny export, say, has none), else gguf:q4_k_m."""
    from llara_bench.specs import parse_spec

    spec = parse_spec(candidate)
    return candidate if spec.kind == "gguf" and spec.variant in variants else "gguf:q4_k_m"


def metrics(big: dict) -> dict[str, float]:
    if "decode" not in big:
        return {}
    return {f"latency.big.{v}.decode_bandwidth_fraction": d["fraction_of_machine"]
            for v, d in big["decode"].items()}
