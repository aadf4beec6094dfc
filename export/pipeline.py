"""The whole export: checkpoint -> GGUF LLM (f16 + quantised) + mmproj -> parity -> manifest.

Contract:
    report = run_export(ExportConfig(checkpoint=..., out=..., quants=("q8_0", "q4_k_m")))
    report.ok, report.out, report.results (VariantResult list), report.manifest, report.seconds

Everything is written into a temporary sibling of `out` (`.NAME.tmp-XXXX`) and renamed into
place only after the parity gate passed and manifest.json (written last, atomically) is
there; on any error, a failed gate or an interrupt the temporary directory is removed, so
no half export is ever left where the runtime looks. An existing non-empty `out` is
refused unless `overwrite`. The TensorRT engine is never built here (engines are specific
to the target GPU and TensorRT version): the manifest records the tensorrt status.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.export import manifest as mf
from llara_edge.export.quantize import QUANT_TYPES

POLICY_FORMATS = ("llara",)  # parity prompts and parsers used by the gate


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: Path
    out: Path
    clip_dir: Path | None = None
    quants: tuple[str, ...] = ("q8_0", "q4_k_m")
    parity_frames: int = 4
    frame_size: tuple[int, int] = (320, 240)  # W, H of the simulator camera for parity
    max_new_tokens: int = 48
    policy_format: str = "llara"
    template: str = "vicuna_v1"
    thresholds: Path | None = None
    overwrite: bool = False
    threads: int = 1

    def __post_init__(self) -> None:
        unknown = [q for q in self.quants if q not in QUANT_TYPES]
        if unknown:
            raise ConfigError(f"unknown quantisation {unknown}; known: {sorted(QUANT_TYPES)}")
        if self.policy_format not in POLICY_FORMATS:
            raise ConfigError(f"parity needs policy format in {POLICY_FORMATS}")
        if self.parity_frames < 1 or self.max_new_tokens < 1:
            raise ConfigError("parity_frames and max_new_tokens must be >= 1")


@dataclass
class ExportReport:
    ok: bool
    out: Path
    results: list = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    seconds: float = 0.0


def _tool_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "gguf", "llama_cpp_python", "onnx", "onnxruntime",
                 "tensorrt"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _prepare_out(cfg: ExportConfig) -> Path:
    """Check the destination and create the temporary sibling directory."""
    out = cfg.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not cfg.overwrite:
        raise ArtifactError(f"output {out} exists and is not empty (pass --overwrite)")
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as err:
        raise ArtifactError(f"cannot write the output directory {out}: {err}") from err
    return tmp


def _write_files(model, tok, info, cfg: ExportConfig, tmp: Path, say) -> dict:
    from llara_edge.export.gguf_llm import write_llm_gguf
    from llara_edge.export.gguf_mmproj import write_mmproj_gguf
    from llara_edge.export.quantize import quantize_gguf

    say("writing llm-f16.gguf")
    write_llm_gguf(model, tok, tmp / "llm-f16.gguf", "f16")
    say("writing mmproj-f16.gguf")
    write_mmproj_gguf(model, info.preprocess, tmp / "mmproj-f16.gguf", "f16")
    quant = {"f16": {"file": "llm-f16.gguf"}}
    for q in cfg.quants:
        say(f"quantising llm-{q}.gguf (llama.cpp)")
        rep = quantize_gguf(tmp / "llm-f16.gguf", tmp / f"llm-{q}.gguf", q, cfg.threads)
        quant[q] = {"file": rep.path.name, "tensor_types": rep.tensor_types}
    tok.save(tmp)
    return quant


class _MmprojOnly:
    """Parity runner exposing only the mmproj image encoder of a GgufRunner."""

    def __init__(self, runner):
        self.encode_image = runner.encode_image


class _LlmOnly:
    """Parity runner exposing only the LLM of a GgufRunner (fed the reference embeddings)."""

    def __init__(self, runner):
        self.generate = runner.generate


def _parity(model, tok, info, cfg: ExportConfig, tmp: Path, say) -> list:
    from llara_edge.backends.torch_ref import PolicyConfig, TorchPolicy, TorchReferenceBackend
    from llara_edge.export import parity
    from llara_edge.export.frames import sim_frames
    from llara_edge.export.gguf_runner import GgufRunner

    thresholds = parity.load_thresholds(cfg.thresholds)
    say(f"parity: rendering {cfg.parity_frames} simulator frames")
    cases = sim_frames(cfg.parity_frames, *cfg.frame_size)
    policy = TorchPolicy(TorchReferenceBackend(model, tok, info.preprocess),
                         PolicyConfig(cfg.policy_format, cfg.template, cfg.max_new_tokens))
    refs = parity.reference_outputs(policy, cases)
    results = []
    for variant in ("f16", *cfg.quants):
        say(f"parity: {variant}")
        runner = GgufRunner(tmp / f"llm-{variant}.gguf", tmp / "mmproj-f16.gguf",
                            threads=cfg.threads)
        try:
            if variant == "f16":
                mm = parity.measure("mmproj", _MmprojOnly(runner), refs, cases, policy)
                mm.note = "llama.cpp clip; reported, see parity_thresholds.json"
                results.append(mm)
            results.append(parity.measure(variant, _LlmOnly(runner), refs, cases, policy))
        finally:
            runner.close()
    for res in results:
        parity.gate(res, thresholds)
    return results


def _manifest(cfg, info, tok, quant, results, tmp: Path) -> dict:
    from llara_edge.export.trt_build import tensorrt_status

    sources = [*info.weight_files, info.path / "config.json", tok.model_file]
    names = [p.name for p in tmp.iterdir() if p.is_file() and not p.name.startswith(".")]
    return {
        "source": {"checkpoint": str(info.path.resolve()), "layout": info.layout,
                   "clip_dir": str(info.clip_dir) if info.clip_dir else None,
                   "sha256": mf.source_hash(sources)},
        "policy_format": cfg.policy_format,
        "template": cfg.template,
        "preprocess": info.preprocess.to_dict(),
        "multimodal": {"select_layer": info.spec.select_layer,
                       "select_feature": info.spec.select_feature,
                       "projector_type": info.spec.projector_type},
        "llm": quant,
        "mmproj": {"file": "mmproj-f16.gguf"},
        "tokenizer": "tokenizer.model",
        "tensorrt": tensorrt_status(),
        "tools": _tool_versions(),
        "parity": {"frames": cfg.parity_frames, "frame_size": list(cfg.frame_size),
                   "results": [r.to_dict() for r in results]},
        "files": mf.file_entries(tmp, names),
    }


def run_export(cfg: ExportConfig, progress: Callable[[str], None] | None = None) -> ExportReport:
    """Export, gate and publish (see module docstring)."""
    from llara_edge.models.checkpoint import load_checkpoint

    say = progress or (lambda msg: None)
    start = time.perf_counter()
    say(f"loading {cfg.checkpoint}")
    model, tok, info = load_checkpoint(cfg.checkpoint, cfg.clip_dir)
    tmp = _prepare_out(cfg)
    try:
        quant = _write_files(model, tok, info, cfg, tmp, say)
        results = _parity(model, tok, info, cfg, tmp, say)
        report = ExportReport(ok=not any(r.failures for r in results), out=cfg.out,
                              results=results)
        if report.ok:
            report.manifest = _manifest(cfg, info, tok, quant, results, tmp)
            mf.write_manifest(tmp, report.manifest)
            _publish(tmp, cfg.out)
    except OSError as err:
        raise ArtifactError(f"cannot write the export to {cfg.out}: {err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    return report


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished directory into place (an old export is replaced only now)."""
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
