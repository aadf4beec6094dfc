"""The whole export: checkpoint -> GGUF (LLM f16 + quantised, mmproj) + ONNX -> parity -> manifest.

Contract:
    report = run_export(ExportConfig(checkpoint=..., out=..., quants=("q8_0", "q4_k_m"),
                                     formats=("gguf", "onnx")), progress=callable(str))
    report.ok, report.out, report.results (VariantResult list), report.manifest, report.seconds,
    report.stages (wall seconds and peak RSS of each progress stage, llara_export/resources.py)
    count_steps(cfg) -> int      # how many times run_export calls `progress` (a progress bar)

Formats (FORMAT_WRITERS): "gguf" writes llm-f16.gguf (streamed from the safetensors where
the checkpoint has them, export/llara_export/gguf_stream.py), llm-<quant>.gguf, mmproj-f16.gguf;
"onnx" writes vision.onnx, vision_features.onnx, projector.safetensors, embed.onnx and
llm.onnx (export/llara_export/onnx_vision.py, export/llara_export/onnx_llm.py). The tokenizer is
always written: the checkpoint's files and tokenizer.gguf, checked to tokenise every format's
texts as the checkpoint's tokenizer does (export/llara_export/vocab_check.py). Parity rows
(export/llara_export/parity_rows.py): f16 and each quant (the gguf engine fed the reference
image embeddings), mmproj (the gguf engine's llama.cpp clip, reported), onnx (end to end: the
onnx vision engine, then the onnx engine through its KV cache) and onnx-features
(vision_features.onnx + the fused projector kernel): the runtime's own engines
(llara_edge.backends, as Policy loads them) over the files of the temporary directory, opened
as an Artifact from a provisional manifest.json (every hash, no parity report yet).
llama.cpp's own output while quantising goes to OUT/export.log (a report, not listed in the
manifest), not to the terminal.

Everything is written into a temporary sibling of `out` (`.NAME.tmp-XXXX`) and renamed into
place only after the parity gate passed and manifest.json (rewritten with the parity report,
atomically) is there; on any error, a failed gate or an interrupt the temporary directory is
removed, so no half export is ever left where the runtime looks. An existing non-empty `out` is
refused unless `overwrite`. The TensorRT engine is never built here (engines are specific
to the target GPU and TensorRT version): the manifest records the tensorrt status.
What the checkpoint's training data wrote (its llara_text_formats.json, or
ExportConfig.answer_forms / prompt_variant over it: export/llara_export/text_formats.py) is
copied into the manifest as "answer_forms" and "prompt_variant"; unknown, they are left out.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from llara_edge.actions import PickPlaceAction
from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.formats import policy_format
from llara_export import manifest as mf
from llara_export.quantize import QUANT_TYPES
from llara_export.text_formats import manifest_entries

FORMATS = ("gguf", "onnx", "onnx-vision")  # onnx-vision: "onnx" without embed/llm.onnx
TOKENIZER_GGUF = "tokenizer.gguf"  # vocab-only GGUF: what the runtime tokenises with
EXPORT_LOG = "export.log"  # llama.cpp's own output (quantisation); not part of the artifact


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: Path
    out: Path
    clip_dir: Path | None = None
    quants: tuple[str, ...] = ("q8_0", "q4_k_m")
    parity_frames: int = 4
    frame_size: tuple[int, int] = (320, 240)  # W, H of the simulator camera for parity
    max_new_tokens: int = 96  # a one-step LLaRA answer is ~66 tokens (digits are tokens)
    policy_format: str = "llara"
    template: str = "vicuna_v1"
    thresholds: Path | None = None
    overwrite: bool = False
    threads: int = 1
    formats: tuple[str, ...] = ("gguf", "onnx")
    compact: bool = False  # keep the LLM's 16-bit weights as stored (models/compact.py)
    answer_forms: tuple[str, ...] | None = None  # None: the checkpoint's text formats file
    prompt_variant: str | None = None  # None: the checkpoint's text formats file

    def __post_init__(self) -> None:
        unknown = [q for q in self.quants if q not in QUANT_TYPES]
        if unknown:
            raise ConfigError(f"unknown quantisation {unknown}; known: {sorted(QUANT_TYPES)}")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ConfigError(f"formats must be a non-empty subset of {FORMATS}, got "
                              f"{list(self.formats)}")
        if self.quants and "gguf" not in self.formats:
            raise ConfigError("quantisation applies to the GGUF LLM: add gguf to the formats")
        if "onnx" in self.formats and "onnx-vision" in self.formats:
            raise ConfigError("formats onnx and onnx-vision overlap: name one")
        if not issubclass(policy_format(self.policy_format).action_type, PickPlaceAction):
            raise ConfigError(f"parity renders pick-and-place frames: policy format "
                              f"{self.policy_format!r} does not answer pick-and-place actions")
        if self.parity_frames < 1 or self.max_new_tokens < 1:
            raise ConfigError("parity_frames and max_new_tokens must be >= 1")


@dataclass
class ExportReport:
    ok: bool
    out: Path
    results: list = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    seconds: float = 0.0
    stages: list = field(default_factory=list)  # export/llara_export/resources.py StageMeter rows


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


def _write_gguf(model, tok, info, cfg: ExportConfig, tmp: Path, say) -> dict:
    """GGUF files; the manifest's "llm" and "mmproj" sections."""
    from llara_export.gguf_llm import write_llm_gguf
    from llara_export.gguf_mmproj import write_mmproj_gguf
    from llara_export.gguf_stream import can_stream, write_llm_gguf_streamed
    from llara_export.quantize import quantize_gguf

    say("writing llm-f16.gguf")
    if can_stream(info.path):  # the same bytes, read tensor by tensor from the safetensors
        write_llm_gguf_streamed(info.path, tok, tmp / "llm-f16.gguf", "f16")
    else:
        write_llm_gguf(model, tok, tmp / "llm-f16.gguf", "f16")
    say("writing mmproj-f16.gguf")
    write_mmproj_gguf(model, info.preprocess, tmp / "mmproj-f16.gguf", "f16")
    quant = {"f16": {"file": "llm-f16.gguf"}}
    for q in cfg.quants:
        say(f"quantising llm-{q}.gguf (llama.cpp)")
        rep = quantize_gguf(tmp / "llm-f16.gguf", tmp / f"llm-{q}.gguf", q, cfg.threads,
                            log=tmp / EXPORT_LOG)
        quant[q] = {"file": rep.path.name, "tensor_types": rep.tensor_types}
    return {"llm": quant, "mmproj": {"file": "mmproj-f16.gguf"}}


def _write_onnx(model, tok, info, cfg: ExportConfig, tmp: Path, say) -> dict:
    """ONNX graphs + projector weights; the manifest's "onnx" section."""
    from importlib import metadata

    from llara_export.onnx_common import ONNX_FILES, OPSET
    from llara_export.onnx_llm import export_llm
    from llara_export.onnx_vision import export_vision

    with_llm = "onnx" in cfg.formats  # "onnx-vision": the vision graphs only
    scratch = tmp / ".onnx-scratch"
    try:
        say("writing vision.onnx, vision_features.onnx, projector.safetensors")
        vision = export_vision(model, info.preprocess, tmp, scratch)
        llm = None
        if with_llm:
            say("writing embed.onnx, llm.onnx")
            llm = export_llm(model, tmp, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = (*vision.files, *(llm.files if llm else ()))
    roles = ONNX_FILES if llm else {k: v for k, v in ONNX_FILES.items()
                                    if k not in ("embed", "llm")}
    section = {
        **roles, "external_data": [p.name for p in files if p.name.endswith(".data")],
        "opset": OPSET, "onnx_version": metadata.version("onnx"),
        "onnxruntime_version": metadata.version("onnxruntime"),
        "image_tokens": vision.n_tokens, "drop": vision.drop, "kept_blocks": vision.kept_blocks,
        "vision_hidden": vision.vision_hidden}
    if llm:
        section.update(hidden=llm.hidden, vocab=llm.vocab, layers=llm.layers,
                       kv_heads=llm.kv_heads, head_dim=llm.head_dim)
    return {"onnx": section}


# format -> writer(model, tok, info, cfg, tmp, say) -> manifest sections
FORMAT_WRITERS: dict[str, Callable] = {"gguf": _write_gguf, "onnx": _write_onnx,
                                       "onnx-vision": _write_onnx}


def _write_files(model, tok, info, cfg: ExportConfig, tmp: Path, say) -> dict:
    sections: dict = {}
    from llara_export.gguf_llm import write_vocab_gguf
    from llara_export.gguf_stream import llama_config
    from llara_export.vocab_check import check_vocab_gguf

    for fmt in cfg.formats:
        sections.update(FORMAT_WRITERS[fmt](model, tok, info, cfg, tmp, say))
    tok.save(tmp)  # the checkpoint's tokenizer files: the torch reference's
    write_vocab_gguf(llama_config(info.path), tok, tmp / TOKENIZER_GGUF)  # the runtime's
    check_vocab_gguf(tok, tmp / TOKENIZER_GGUF)  # the same ids on every format's texts
    return sections


def count_steps(cfg: ExportConfig) -> int:
    """Progress calls of run_export: load, writers, frames, reference, provisional manifest,
    parity rows, manifest."""
    per_format = {"gguf": 2 + len(cfg.quants) + 1 + len(cfg.quants), "onnx": 2 + 2,
                  "onnx-vision": 1 + 2}
    return 1 + sum(per_format[f] for f in cfg.formats) + 2 + 1 + 1


class _ReferenceTexts:
    """What parity.measure reads of the reference policy once its answers are computed (the
    tokenizer and the decoding budget), so the torch model can be freed before the rows."""

    def __init__(self, tok, config):
        self.backend, self.config = SimpleNamespace(tokenizer=tok), config


def _reference(model, tok, info, cfg: ExportConfig, say) -> tuple:
    """(reference outputs, frames, _ReferenceTexts) of the torch model on simulator frames."""
    from llara_edge.cases import sim_frames
    from llara_export import parity
    from llara_export.torch_ref import PolicyConfig, TorchPolicy, TorchReferenceBackend

    say(f"parity: rendering {cfg.parity_frames} simulator frames")
    cases = sim_frames(cfg.parity_frames, *cfg.frame_size, policy_format=cfg.policy_format)
    policy = TorchPolicy(TorchReferenceBackend(model, tok, info.preprocess),
                         PolicyConfig(cfg.policy_format, cfg.template, cfg.max_new_tokens))
    say("parity: torch reference answers")
    refs = parity.reference_outputs(policy, cases)
    return refs, cases, _ReferenceTexts(tok, policy.config)


def _parity(reference: tuple, info, cfg: ExportConfig, tmp: Path, sections: dict,
            say) -> list:
    """Every row with the runtime's engines over `tmp` (its provisional manifest.json)."""
    from llara_edge.runtime.artifact import Artifact
    from llara_export import parity
    from llara_export.parity_rows import FORMAT_PARITY, ParityContext

    thresholds = parity.load_thresholds(cfg.thresholds)
    ctx = ParityContext(cfg, Artifact.open(tmp), info, reference, sections)
    results = []
    for fmt in cfg.formats:
        results += FORMAT_PARITY[fmt](ctx, say)
    for res in results:
        parity.gate(res, thresholds)
    return results


def _source(info, tok) -> dict:
    """Where the weights came from; hashed right after loading (a checkpoint that a training
    job rewrites during a long export must not be credited with the old weights' export)."""
    sources = [*info.weight_files, info.path / "config.json", tok.model_file]
    return {"checkpoint": str(info.path.resolve()), "layout": info.layout,
            "clip_dir": str(info.clip_dir) if info.clip_dir else None,
            "sha256": mf.source_hash(sources)}


def _text_formats(cfg: ExportConfig) -> dict:
    """The manifest's "answer_forms" / "prompt_variant" (ConfigError on a bad entry)."""
    variants = policy_format(cfg.policy_format).prompt_variants
    return manifest_entries(cfg.checkpoint, variants, cfg.answer_forms, cfg.prompt_variant)


def _manifest(cfg, info, source, text_formats: dict, sections, tmp: Path) -> dict:
    """Everything but the parity report (files hashed once, before manifest.json exists)."""
    from llara_edge.backends.trt_build import tensorrt_status

    names = [p.name for p in tmp.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.name != EXPORT_LOG]
    return {
        "source": source,
        "policy_format": cfg.policy_format,
        "template": cfg.template,
        **text_formats,
        "preprocess": info.preprocess.to_dict(),
        "multimodal": {"select_layer": info.spec.select_layer,
                       "select_feature": info.spec.select_feature,
                       "projector_type": info.spec.projector_type},
        "formats": list(cfg.formats),
        **sections,
        "tokenizer": TOKENIZER_GGUF,
        "tensorrt": tensorrt_status(),
        "tools": _tool_versions(),
        "files": mf.file_entries(tmp, names),
    }


def _with_parity(manifest: dict, cfg: ExportConfig, results: list) -> dict:
    """The provisional manifest with the parity report (before `files`, as always)."""
    body = {k: v for k, v in manifest.items() if k != "files"}
    return {**body, "parity": {"frames": cfg.parity_frames, "frame_size": list(cfg.frame_size),
                               "results": [r.to_dict() for r in results]},
            "files": manifest["files"]}


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch uses `threads` CPU threads during the export (as llama.cpp and onnxruntime do),
    restored afterwards: oversubscribed BLAS threads crawl on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_export(cfg: ExportConfig, progress: Callable[[str], None] | None = None) -> ExportReport:
    """Export, gate and publish (see module docstring); every progress message starts a
    measured stage (report.stages)."""
    from llara_export.resources import StageMeter

    meter = StageMeter()
    try:
        with _torch_threads(cfg.threads):
            report = _run_export(cfg, meter.wrap(progress or (lambda msg: None)))
    finally:
        meter.close()
    report.stages = meter.stages
    return report


def _run_export(cfg: ExportConfig, say: Callable[[str], None]) -> ExportReport:
    from llara_export.models.checkpoint import load_checkpoint
    from llara_export.parity import load_thresholds

    start = time.perf_counter()
    load_thresholds(cfg.thresholds)  # an unreadable file fails before any work
    text_formats = _text_formats(cfg)  # so does a bad text formats file
    say(f"loading {cfg.checkpoint}")
    model, tok, info = load_checkpoint(cfg.checkpoint, cfg.clip_dir, compact=cfg.compact)
    source = _source(info, tok)
    tmp = _prepare_out(cfg)
    try:
        sections = _write_files(model, tok, info, cfg, tmp, say)
        reference = _reference(model, tok, info, cfg, say)
        # the rows compare with the reference outputs only: free the torch weights first
        # (a 7B model's stay resident otherwise while llama.cpp maps its own copy)
        del model
        gc.collect()
        # provisional manifest (no parity): the rows open tmp as the runtime opens an export
        say("hashing the files: provisional manifest.json")
        draft = _manifest(cfg, info, source, text_formats, sections, tmp)
        mf.write_manifest(tmp, draft)
        results = _parity(reference, info, cfg, tmp, sections, say)
        report = ExportReport(ok=not any(r.failures for r in results), out=cfg.out,
                              results=results)
        say("writing manifest.json" if report.ok else "parity gate failed: nothing published")
        if report.ok:
            report.manifest = _with_parity(draft, cfg, results)  # sections hold the rows' notes
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
