"""The latency suite's "7B-shaped" mode: LLaRA-7B widths at reduced depth, per-layer costs,
the extrapolation to 32 layers on this CPU and the roofline fed with the measured shapes.

    llara-edge bench latency --shaped CKPT_A=ARTIFACT_A --shaped CKPT_B=ARTIFACT_B [--steps N]

Contract:
    results = run_shaped(ShapedBenchConfig(points=(ShapedPoint(ckpt, artifact), ...)), say)
    format_shaped(results) -> str
    extrapolate(points) / ratios_at(extrapolation, hf, stock) / floor(runner_summary)

Each point is a checkpoint written by export/llara_export/models/shaped.py (random weights, 7B
widths) and its export. The runners of every point (the candidate, its free-greedy twin, HF
generate and the stock llama-cpp-python handler + GBNF) are loaded together and measured in one
round robin of the latency suite (benchmarks/llara_bench/bench_latency.py: same frames, in-run
baselines; no cold-start, loop or ~1B parts), so load drifts of a shared machine hit every depth
alike. Per runner and stage (p50 seconds) the points give a line in the
number of LLM layers L: cost(L) = fixed + L x per_layer (least squares; two depths give it exactly),
and cost(32) is the extrapolation (LLM_STAGES only; the other stages are the points' mean). All
points must share the CLIP depth; the "vision" stage is scaled from the CLIP blocks the graph
computes to the 23 layers select layer -2 computes in CLIP ViT-L/14 (per CLIP layer = vision /
depth: the patch embedding and norms are under 1% of the FLOPs); stages that join vision and LLM
("vision+prefill", the stock handler) are extrapolated in L only and flagged. TTFT and the
runtime's single-token extend are fitted the same way, and each Policy runner's floor, TTFT +
passes x single-token extend, is reported per depth and at 32 layers with the step over it;
`ratios_at` gives every runner's step and decode over HF generate's and the stock handler's at
32 layers.
Random weights would write garbage to the token limit, so by default (answers="realistic")
every runner is taught the same realistic answer per frame (benchmarks/llara_bench/teacher.py,
vima_answers.seeded_answer): passes are a trained model's, each pass costs what the 7B-shaped
model costs. The roofline (benchmarks/llara_bench/roofline.py) gets the measured model shape
from the artifact manifest (hidden, vocab, image tokens, CLIP width; 32 layers), the
candidate's measured passes per answer and HF generate's tokens (free greedy).
benchmarks/llara_bench/report_shaped.py renders docs/benchmarks-7b-shaped.md from the JSON.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from llara_edge.errors import ConfigError

TARGET_LAYERS = 32  # Vicuna-7B
TARGET_VISION_LAYERS = 23  # CLIP ViT-L/14 has 24; select layer -2 computes 23
RUNNERS = ("gguf:q4_k_m", "gguf:q4_k_m+free", "hf-generate", "stock-gbnf:q4_k_m")
# stages whose cost grows with the LLM depth; the others (vision, projector, preprocess,
# parse) are the points' mean: a fitted slope there is the machine's noise
LLM_STAGES = ("prefill", "decode", "vision+prefill")


@dataclass(frozen=True)
class ShapedPoint:
    checkpoint: Path
    artifact: Path


@dataclass(frozen=True)
class ShapedBenchConfig:
    points: tuple[ShapedPoint, ...]
    runners: tuple[str, ...] = RUNNERS
    candidate: str = "gguf:q4_k_m"
    frames: int = 2
    warmup: int = 1
    steps: int = 2
    threads: int = 0
    max_new_tokens: int = 256  # LLaRA's evaluation budget (taught runners stop at </s>)
    membw_mib: int = 64
    answers: str = "realistic"  # every runner taught vima_answers' answer; "model": its own

    def __post_init__(self) -> None:
        if len(self.points) < 1:
            raise ConfigError("the 7B-shaped mode needs at least one CKPT=ARTIFACT point")
        if self.candidate not in self.runners:
            raise ConfigError(f"candidate {self.candidate!r} is not among the runners")


def depths(artifact: Path) -> tuple[int, int]:
    """(LLM layers, CLIP blocks computed) of an exported artifact (its manifest); for select
    layer -2 the vision graph computes all blocks but the last (kept_blocks)."""
    onnx = llm_dims(artifact)
    return int(onnx["layers"]), int(onnx["kept_blocks"])


def llm_dims(artifact: Path) -> dict:
    """The manifest's "onnx" table; an onnx-vision export (no llm.onnx) gets the LLM's
    layers / hidden / vocab from the f16 GGUF's header instead."""
    from llara_edge.models.gguf_vocab import read_gguf_metadata
    from llara_edge.runtime import manifest as mf

    man = mf.load_manifest(artifact)
    onnx = dict(man.get("onnx") or {})
    if "kept_blocks" not in onnx:
        raise ConfigError(f"{artifact}: the 7B-shaped mode needs an export with ONNX graphs")
    if "layers" in onnx:
        return onnx
    f16 = (man.get("llm") or {}).get("f16")
    meta = read_gguf_metadata(Path(artifact) / f16["file"]) if f16 else {}
    if "llama.block_count" not in meta:
        raise ConfigError(f"{artifact}: no llm.onnx and no f16 GGUF to read the LLM shape from")
    onnx.update(layers=meta["llama.block_count"], hidden=meta["llama.embedding_length"],
                vocab=meta.get("llama.vocab_size", len(meta["tokenizer.ggml.tokens"])))
    return onnx


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (fixed, slope) of ys = fixed + slope x xs; slope 0 for one point."""
    n = len(xs)
    if n == 1 or len(set(xs)) == 1:
        return sum(ys) / n, 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def extrapolate(points: list[dict], target: int = TARGET_LAYERS,
                target_vision: int = TARGET_VISION_LAYERS) -> dict:
    """Per runner and stage: fixed, per LLM layer, cost at `target` layers (module docstring).
    points: [{"layers", "clip_layers", "runners": {name: {"stages": {stage: {"p50"}}}}}]."""
    clip = {p["clip_layers"] for p in points}
    if len(clip) != 1:
        raise ConfigError(f"all points must share the CLIP depth, got {sorted(clip)}")
    vision_scale = target_vision / clip.pop()
    xs = [float(p["layers"]) for p in points]
    out: dict = {}
    for name in points[0]["runners"]:
        rows, total = {}, 0.0
        for stage in points[0]["runners"][name]["stages"]:
            ys = [p["runners"][name]["stages"][stage]["p50"] for p in points]
            fixed, per_layer = fit_line(xs, ys) if stage in LLM_STAGES else \
                (sum(ys) / len(ys), 0.0)
            at_target = fixed + per_layer * target
            if stage == "vision":
                at_target *= vision_scale
            rows[stage] = {"fixed_s": fixed, "per_layer_s": per_layer,
                           f"at_{target}_s": at_target,
                           "note": "CLIP part not scaled" if "vision+" in stage else ""}
            total += at_target
        out[name] = {"stages": rows, f"step_at_{target}_s": total,
                     **_step_terms(points, name, xs, rows, target)}
    return out


def _step_terms(points: list[dict], name: str, xs: list[float], rows: dict,
                target: int) -> dict:
    """TTFT (its vision part scaled as the vision stage), the single-token extend, passes
    and the floor TTFT + passes x extend at `target` layers; None where not measured."""
    runs = [p["runners"][name] for p in points]
    ttfts = [(r.get("ttft") or {}).get("p50") for r in runs]
    ext = [(r.get("extend1") or {}).get("p50") for r in runs]
    passes = sum(r.get("forward_passes_mean", 0.0) for r in runs) / len(runs)
    ttft = ext_t = floor_t = None
    if None not in ttfts:
        fixed, slope = fit_line(xs, ttfts)
        vision = rows.get("vision")
        ttft = fixed + slope * target + (vision[f"at_{target}_s"] - vision["fixed_s"]
                                         if vision else 0.0)
    if None not in ext and ttft is not None:
        fixed, slope = fit_line(xs, ext)
        ext_t = fixed + slope * target
        floor_t = ttft + passes * ext_t
    return {f"ttft_at_{target}_s": ttft, f"extend1_at_{target}_s": ext_t,
            "passes": passes, f"floor_at_{target}_s": floor_t}


def ratios_at(extrapolation: dict, hf: str | None, stock: str | None,
              target: int = TARGET_LAYERS) -> dict:
    """Per runner at `target` layers: step and decode over HF generate's and the stock
    handler's, and the step over its floor (None where a side is missing)."""
    def stage(name, key):
        row = extrapolation.get(name)
        if row is None:
            return None
        return row[f"step_at_{target}_s"] if key == "step" else \
            (row["stages"].get(key) or {}).get(f"at_{target}_s")

    out = {}
    for name, row in extrapolation.items():
        r = {}
        for label, base in (("hf_generate", hf), ("stock_gbnf", stock)):
            if base is None or base == name:
                continue
            for key in ("step", "decode"):
                num, den = stage(name, key), stage(base, key)
                r[f"{key}_over_{label}"] = num / den if num and den else None
        fl = row[f"floor_at_{target}_s"]
        r["step_over_floor"] = row[f"step_at_{target}_s"] / fl if fl else None
        out[name] = r
    return out


def _latency_config(point: ShapedPoint, cfg: ShapedBenchConfig):
    from llara_bench.bench_latency import LatencyConfig

    hf = next((r for r in cfg.runners if r.startswith("hf-generate")), cfg.candidate)
    stock = next((r for r in cfg.runners if r.startswith("stock-gbnf")), cfg.candidate)
    return LatencyConfig(checkpoint=point.checkpoint, artifact=point.artifact,
                         runners=cfg.runners, candidate=cfg.candidate, hf_baseline=hf,
                         stock_baseline=stock, frames=cfg.frames, warmup=cfg.warmup,
                         steps=cfg.steps, threads=cfg.threads,
                         max_new_tokens=cfg.max_new_tokens, cold_start=False, loop_episodes=0,
                         big_model=False, membw_mib=cfg.membw_mib, answers=cfg.answers)


def measured_shape(artifact: Path, target: int = TARGET_LAYERS):
    """roofline.ModelShape from the artifact's manifest, at `target` LLM layers."""
    from llara_bench import roofline

    onnx = llm_dims(artifact)
    return roofline.ModelShape(
        f"measured shapes ({Path(artifact).name}) at {target} layers", layers=target,
        hidden=int(onnx["hidden"]), intermediate=roofline.LLARA_7B.intermediate,
        vocab=int(onnx["vocab"]), vision_hidden=int(onnx["vision_hidden"]),
        image_tokens=int(onnx["image_tokens"]))


def floor(runner: dict) -> dict | None:
    """The step's floor, TTFT + passes x a single-token extend (both p50 of the run), and the
    step over it; None for runners without a measured extend (HF generate, the stock handler)."""
    if not runner.get("extend1") or not runner.get("ttft"):
        return None
    floor_s = runner["ttft"]["p50"] + runner["forward_passes_mean"] * runner["extend1"]["p50"]
    return {"floor_s": floor_s, "extend1_s": runner["extend1"]["p50"],
            "step_over_floor": runner["step"]["p50"] / floor_s}


def _point_summary(res: dict, layers: int, clip_layers: int) -> dict:
    keep = ("stages", "step", "ttft", "n_tokens_mean", "forward_passes_mean",
            "decode_tokens_per_s", "parse_failures", "extend1", "on_target", "texts")
    runners = {n: {k: s.get(k) for k in keep} for n, s in res["runners"].items()}
    for r in runners.values():
        r["floor"] = floor(r)
    return {"layers": layers, "clip_layers": clip_layers, "artifact": res["artifact"],
            "frames": res["frames"], "runners": runners, "comparisons": res["comparisons"],
            "machine": res["machine"], "membw": res["membw"]}


def _jsonable(value):
    """Paths (also inside the points' dicts) as strings: the results are written as JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def _load_runners(cfg: ShapedBenchConfig, configs: list) -> list:
    """Every point's runners, named SPEC@i (point i), taught when cfg.answers says so."""
    from llara_bench.specs import BenchContext, make_runner
    from llara_bench.teacher import taught
    from llara_bench.vima_answers import seeded_answer

    runners = []
    try:
        for i, (point, lc) in enumerate(zip(cfg.points, configs, strict=True)):
            ctx = BenchContext(point.artifact, point.checkpoint, lc.n_threads,
                               lc.max_new_tokens)
            for spec in lc.runners:
                runner = make_runner(spec, ctx)
                runner = taught(runner, seeded_answer) if cfg.answers == "realistic" else runner
                runner.name = f"{spec}@{i}"
                runners.append(runner)
    except BaseException:
        for r in runners:
            r.close()
        raise
    return runners


def measure_points(cfg: ShapedBenchConfig, say=lambda m: None) -> list[dict]:
    """All points' runners loaded together and measured in ONE round robin (frame by frame,
    every runner of every depth in turn), so a shared machine's load drifts hit every depth
    alike (measured one depth after the other, a load spike made 1 layer slower than 2).
    Per point: the latency suite's runner summaries and comparisons."""
    from llara_bench import membw
    from llara_bench.bench_latency import _comparisons, _machine, _measure, bench_frames
    from llara_bench.stats import runner_summary

    configs = [_latency_config(p, cfg) for p in cfg.points]
    frames = bench_frames(configs[0])
    machine = _machine(configs[0].n_threads)
    runners = _load_runners(cfg, configs)
    say(f"measuring {len(runners)} runners of {len(cfg.points)} depths in one round robin")
    try:
        records = _measure(runners, frames, configs[0], say)
    finally:
        for r in runners:
            r.close()
    machine["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    bw = membw.measure_bandwidth(membw.BandwidthConfig(mib=cfg.membw_mib, repeats=3))
    out = []
    for i, (point, lc) in enumerate(zip(cfg.points, configs, strict=True)):
        recs = {spec: records[f"{spec}@{i}"] for spec in lc.runners}
        summary = {spec: runner_summary(r) for spec, r in recs.items()}
        out.append({"artifact": str(point.artifact), "frames": [c.name for c in frames],
                    "runners": summary, "comparisons": _comparisons(recs, summary, lc),
                    "machine": machine, "membw": bw})
    return out


def run_shaped(cfg: ShapedBenchConfig, say=lambda m: None) -> dict:
    """Every point measured together (measure_points), then per-layer fits, extrapolation,
    floors, ratios at 32 layers and the roofline."""
    from llara_bench import roofline

    dims = [depths(point.artifact) for point in cfg.points]  # each reads a verified manifest
    for point, (layers, clip_layers) in zip(cfg.points, dims, strict=True):
        say(f"7B-shaped point: {layers} LLM layers, {clip_layers} CLIP layers "
            f"({point.artifact})")
    points = [_point_summary(res, *dim)
              for dim, res in zip(dims, measure_points(cfg, say), strict=True)]
    points.sort(key=lambda p: p["layers"])
    ex = extrapolate(points)
    hf = next((r for r in cfg.runners if r.startswith("hf-generate")), None)
    stock = next((r for r in cfg.runners if r.startswith("stock-gbnf")), None)
    cand = points[-1]["runners"][cfg.candidate]
    free = points[-1]["runners"][hf]["n_tokens_mean"] if hf else roofline.Workload.passes_free
    workload = roofline.Workload(passes_constrained=max(1.0, cand["forward_passes_mean"]),
                                 passes_free=max(1.0, free))
    shape = measured_shape(cfg.points[-1].artifact)
    return {
        "suite": "latency", "mode": "7b-shaped", "candidate": cfg.candidate,
        "baselines": {"hf_generate": hf, "stock_gbnf": stock},
        "config": _jsonable(asdict(cfg)),
        "points": points,
        "extrapolation": ex,
        "ratios_at_32": ratios_at(ex, hf, stock),
        "roofline": {"model": asdict(shape), "workload": asdict(workload),
                     "rows": roofline.estimate_table((shape,), workload=workload)},
    }


def format_shaped(results: dict) -> str:
    """Per point: stage p50 ms, TTFT, passes, ratios; then the extrapolation and roofline."""
    from llara_bench import roofline

    lines = []
    for p in results["points"]:
        lines.append(f"7B-shaped, {p['layers']} LLM layers x {p['clip_layers']} CLIP layers "
                     f"(p50 ms; ratios = candidate step p50 / baseline step p50)")
        for name, r in p["runners"].items():
            stages = " ".join(f"{k}={1e3 * v['p50']:.0f}" for k, v in r["stages"].items())
            ttft = f"{1e3 * r['ttft']['p50']:.0f}" if r["ttft"] else "-"
            comp = p["comparisons"].get(name, {})
            ratios = " ".join(f"/{k}={v['step_p50_ratio']:.2f}" for k, v in comp.items()
                              if "step_p50_ratio" in v)
            fl = r.get("floor") or {}
            floor_txt = (f" floor={1e3 * fl['floor_s']:.0f} (x{fl['step_over_floor']:.2f})"
                         if fl else "")
            lines.append(f"  {name:<22} step={1e3 * r['step']['p50']:.0f} ttft={ttft} "
                         f"passes={r['forward_passes_mean']:.1f} on_target={r.get('on_target')} "
                         f"parse_fail={r['parse_failures']} {stages} {ratios}{floor_txt}")
    lines.append(f"extrapolated to {TARGET_LAYERS} LLM layers (+{TARGET_VISION_LAYERS} CLIP "
                 "layers for 'vision'), this CPU, ms:")
    for name, r in results["extrapolation"].items():
        stages = " ".join(f"{k}: {1e3 * v['per_layer_s']:.1f}/layer -> "
                          f"{1e3 * v[f'at_{TARGET_LAYERS}_s']:.0f}" for k, v in r["stages"].items())
        lines.append(f"  {name:<22} step {1e3 * r[f'step_at_{TARGET_LAYERS}_s']:.0f}  {stages}")
    lines.append(roofline.format_table(results["roofline"]["rows"]))
    return "\n".join(lines)
