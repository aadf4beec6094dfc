"""The parity rows of an export, measured with the runtime's own engines on the finished files.

Contract:
    rows = FORMAT_PARITY[fmt](ctx, say) -> list[parity.VariantResult]
    ctx: ParityContext(cfg (ExportConfig), artifact (runtime Artifact of the temporary export
         directory, opened from its provisional manifest), info (checkpoint info), refs
         ((reference outputs, cases, reference texts) for parity.measure), sections (the
         manifest sections; the onnx row adds onnx.preprocess_error))

Every row loads the artifact exactly as a robot's Policy does: `make_backend` / `make_vision`
(llara_edge.backends) over the hash-checked files of an `Artifact`, with a RuntimeConfig of
the export's thread count (config(cfg, ...)). Rows per format:
- "gguf": mmproj (vision "native": the f16 gguf engine's own llama.cpp clip; reported, not
  gated) and one row per LLM variant (f16 and each quant; gguf engine fed the reference
  image embeddings, so the row measures the LLM alone);
- "onnx": onnx end to end (vision engine "onnx" = vision.onnx, then the onnx engine:
  embed.onnx + llm.onnx through its KV cache) and onnx-features (vision engine "onnx+fused":
  vision_features.onnx + the fused projector kernel);
- "onnx-vision" (no ONNX LLM): onnx-vision (vision engine "onnx") and onnx-features. A
  vision engine checks its output width against the LLM it feeds; with no LLM engine in
  these rows that is the reference LLM's width (ReferenceWidth).
Engines are closed after their rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llara_edge.backends.base import make_backend, make_vision
from llara_edge.runtime.artifact import Artifact
from llara_edge.runtime.config import RuntimeConfig
from llara_export import parity
from llara_export.parity import Engines


@dataclass
class ParityContext:
    cfg: object  # pipeline.ExportConfig
    artifact: Artifact
    info: object  # models.checkpoint's CheckpointInfo
    refs: tuple  # (reference outputs, cases, reference texts): parity.measure's arguments
    sections: dict


@dataclass(frozen=True)
class ReferenceWidth:
    """Stands for the LLM a vision engine feeds where no LLM engine is in the row."""

    hidden_size: int


def config(cfg, **engines: str) -> RuntimeConfig:
    """The RuntimeConfig of a parity row: the export's threads, no grammar cache."""
    return RuntimeConfig(threads=cfg.threads, grammar_cache_dir=None, **engines)


def _gguf(ctx: ParityContext, say) -> list:
    results = []
    for variant in ("f16", *ctx.cfg.quants):
        say(f"parity: {variant}")
        run = config(ctx.cfg, llm="gguf", vision="native", variant=variant)
        with make_backend("gguf", ctx.artifact, run) as backend:
            if variant == "f16":
                vision = make_vision("native", ctx.artifact, run, backend)
                mm = parity.measure("mmproj", Engines(vision=vision), *ctx.refs)
                mm.note = "llama.cpp clip; reported, see parity_thresholds.json"
                results.append(mm)
            results.append(parity.measure(variant, Engines(backend=backend), *ctx.refs))
    return results


def _features(ctx: ParityContext, run: RuntimeConfig, llm) -> parity.VariantResult:
    engine = make_vision("onnx+fused", ctx.artifact, run, llm)
    try:
        return parity.measure("onnx-features", Engines(vision=engine), *ctx.refs)
    finally:
        engine.close()


def _onnx(ctx: ParityContext, say) -> list:
    from llara_export.onnx_preprocess import preprocess_error, preprocess_model

    say("parity: onnx (vision.onnx + embed.onnx + llm.onnx, onnxruntime CPU)")
    pre = ctx.info.preprocess
    err = preprocess_error(preprocess_model(pre), [c.rgb for c in ctx.refs[1]], pre)
    ctx.sections["onnx"]["preprocess_error"] = err
    run = config(ctx.cfg, llm="onnx", vision="onnx")
    with make_backend("onnx", ctx.artifact, run) as backend:
        vision = make_vision("onnx", ctx.artifact, run, backend)
        try:
            row = parity.measure("onnx", Engines(vision, backend), *ctx.refs)
        finally:
            vision.close()
        row.note = (f"end to end; preprocessing max {err['max_abs_lsb']:g} LSB on "
                    f"{100 * err['mismatch_fraction']:.3f}% of values")
        say("parity: onnx-features (vision_features.onnx + fused projector)")
        return [row, _features(ctx, run, backend)]


def _onnx_vision(ctx: ParityContext, say) -> list:
    say("parity: onnx-vision (vision.onnx embeddings, onnxruntime CPU)")
    run = config(ctx.cfg, vision="onnx")
    width = ReferenceWidth(int(ctx.refs[0][0].embeds.shape[1]))
    vision = make_vision("onnx", ctx.artifact, run, width)
    try:
        row = parity.measure("onnx-vision", Engines(vision=vision), *ctx.refs)
    finally:
        vision.close()
    say("parity: onnx-features (vision_features.onnx + fused projector)")
    return [row, _features(ctx, run, width)]


# format -> rows(ctx, say)
FORMAT_PARITY: dict[str, Callable[[ParityContext, Callable[[str], None]], list]] = {
    "gguf": _gguf, "onnx": _onnx, "onnx-vision": _onnx_vision}
