"""Latency parts beyond the per-step comparison: the whole control loop and the ~1B model.

Contract:
    control_loop(artifact, candidate_spec, episodes, say) -> dict
        per-stage summaries of `llara-edge run` on the simulator (capture, prompt,
        preprocess ... decode, parse, geometry, safety, plan, drive, settle, step), control Hz
    decode_rate(gguf, threads, n_prompt=64, n_decode=64) -> {"s_per_token", "tokens_per_s"}
    run_big(cfg, machine_gbps, say) -> dict   # the ~1B model: per-variant decode rate and
        achieved bandwidth fraction, per-stage steps of the candidate's variant
    metrics(big) -> {gate key: value}

The loop runs in a subprocess (`python -m llara_edge.cli.main run --artifact ... --no-gif`)
with the same artifact and GGUF variant as the candidate and its telemetry JSON is read
back; the first decision of the run is dropped as warm-up. In the simulator "drive" and
"settle" advance the physics of the simulated arm, so they measure simulation speed, not a
servo bus.
Decode rate: llama.cpp directly (llama_decode on one token at a time after a 64-token
prompt, median per-token wall time) on each GGUF variant; the bytes a pass reads are the
GGUF's tensors except the token embedding (bench_models.gguf_weight_bytes), so achieved
bandwidth = bytes x tokens/s and its fraction of the NumPy stream-copy bandwidth of this
machine (benchmarks/membw.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from llara_edge.benchmarks.stats import stage_summaries, summarize


def control_loop(artifact: Path, candidate: str, episodes: int, say) -> dict:
    """`llara-edge run` telemetry summarised (see the module docstring)."""
    from llara_edge.benchmarks.specs import parse_spec

    if episodes < 1:
        return {"skipped": "disabled (loop_episodes 0)"}
    spec = parse_spec(candidate)
    if spec.kind != "gguf":
        return {"skipped": f"`llara-edge run` loads gguf artifacts; candidate is {candidate}"}
    say(f"control loop: llara-edge run, {episodes} episode(s), {spec.variant}")
    with tempfile.TemporaryDirectory(prefix="llara-loop-") as tmp:
        cmd = [sys.executable, "-m", "llara_edge.cli.main", "run", "--artifact", str(artifact),
               "--variant", spec.variant or "q4_k_m", "--episodes", str(episodes),
               "--out", tmp, "--no-gif"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        path = Path(tmp) / "telemetry.json"
        if not path.is_file():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            return {"error": f"llara-edge run exit {proc.returncode}: {tail}"}
        tel = json.loads(path.read_text())
    steps = [s["stages"] for s in tel["steps"]]
    warm = 1 if len(steps) > 1 else 0
    stages = stage_summaries(steps, warm)
    step = stages.get("step")
    kept = sorted(steps[warm:], key=lambda st: st.get("step", 0.0))
    return {"decisions": len(steps) - warm, "median_step_stages": kept[len(kept) // 2],
            "outcomes": tel.get("outcomes"),
            "policy": tel.get("policy"), "success_rate": tel.get("success_rate"),
            "stages": {k: v.to_dict() for k, v in stages.items()},
            "control_hz": 1.0 / step.p50 if step and step.p50 > 0 else None}


def decode_rate(gguf: Path, threads: int, n_prompt: int = 64, n_decode: int = 64,
                vocab_low: int = 3, vocab_high: int = 1000) -> dict:
    """Per-token llama.cpp decode time of a GGUF (module docstring)."""
    import llama_cpp

    rng = np.random.default_rng(0)
    ids = rng.integers(vocab_low, vocab_high, n_prompt + n_decode).tolist()
    llm = llama_cpp.Llama(str(gguf), n_ctx=n_prompt + n_decode + 8, n_batch=n_prompt,
                          n_threads=threads, verbose=False)
    try:
        ctx = llm.ctx

        def feed(tokens: list[int]) -> None:
            arr = (llama_cpp.llama_token * len(tokens))(*tokens)
            if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(arr, len(tokens))):
                raise RuntimeError("llama_decode failed")

        feed(ids[:n_prompt])
        times = []
        for tok in ids[n_prompt:]:
            t0 = time.perf_counter()
            feed([tok])
            llama_cpp.llama_get_logits_ith(ctx, -1)
            times.append(time.perf_counter() - t0)
    finally:
        llm.close()
    per = summarize(times, warmup=2)
    return {"s_per_token": per.p50, "tokens_per_s": 1.0 / per.p50, "n": per.n}


def _big_steps(artifact: Path, spec: str, cfg, say) -> dict:
    """Per-stage steps of the runtime Policy on the 1B artifact (few: each is seconds)."""
    from llara_edge.benchmarks.bench_latency import _runner_summary
    from llara_edge.benchmarks.specs import BenchContext, make_runner
    from llara_edge.export.frames import sim_frames

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
    out = _runner_summary(records)
    for key in ("texts", "stage_samples"):
        out.pop(key)
    return out


def run_big(cfg, machine_gbps: float, say) -> dict:
    """The ~1B model's decode bandwidth and steps (module docstring)."""
    from llara_edge.benchmarks.bench_models import gguf_weight_bytes, llava_1b_artifact
    from llara_edge.benchmarks.bench_models import llava_1b_config as shape
    from llara_edge.export import manifest as mf

    artifact = llava_1b_artifact(cfg.checkpoint, cfg.cache_dir, say)
    manifest = mf.load_manifest(artifact)
    variants = {}
    for variant, entry in manifest["llm"].items():
        say(f"1B decode rate: {variant}")
        path = artifact / entry["file"]
        rate = decode_rate(path, cfg.n_threads)
        nbytes = gguf_weight_bytes(path)
        achieved = nbytes * rate["tokens_per_s"] / 1e9
        variants[variant] = {**rate, "weight_bytes": nbytes, "achieved_gbps": achieved,
                             "fraction_of_machine": achieved / machine_gbps}
    s = shape()
    out = {"artifact": str(artifact), "machine_copy_gbps": machine_gbps, "decode": variants,
           "shape": {"llm_hidden": s.hidden, "llm_layers": s.layers, "llm_vocab": s.vocab_size,
                     "vision": f"CLIP ViT {s.vision_layers}x{s.vision_hidden} @ {s.image_size}"}}
    spec = cfg.candidate if cfg.candidate.startswith("gguf") else "gguf:q4_k_m"
    out["steps"] = {spec: _big_steps(artifact, spec, cfg, say)}
    return out


def metrics(big: dict) -> dict[str, float]:
    if "decode" not in big:
        return {}
    return {f"latency.big.{v}.decode_bandwidth_fraction": d["fraction_of_machine"]
            for v, d in big["decode"].items()}
