"""Models the benchmarks run: the tiny trained policy's export, a ~1B LLaVA-1.5-shaped random
model, and deliberately degraded variants. Everything is cached under cache/bench/, never
committed (cache/ is git-ignored).

Contract:
    tiny_artifact(checkpoint, cache_dir, say) -> Path          # `llara-edge export` of it,
        cached under a key of the checkpoint's file hashes (a retrained model re-exports)
    with_quant_variant(artifact, qtype, out) -> Path           # a copy (hard links) of the
        artifact with one more LLM variant quantised by llama.cpp (e.g. "q2_k"), listed in
        the manifest's "llm" and "files" tables, parity marked "not gated (benchmark)"
    llava_1b_artifact(cache_dir, say, quants=("q8_0", "q4_k_m")) -> Path
    llava_1b_config() -> TinyConfig of the ~1B model
    gguf_weight_bytes(path) -> bytes a decode pass reads

The ~1B model: LLaVA-1.5's vision side at full size (CLIP ViT-L/14 at 336 px: 24 layers,
width 1024, 576 image tokens, mlp2x_gelu projector) and a LLaMA LLM of hidden 2048,
intermediate 5632, 20 layers, 16 heads (MHA, head_dim 128 as LLaMA), vocab 32000: 1.16 B
LLM parameters (1.03 B outside the embeddings), random weights (seed 0). Its tokenizer is
the tiny policy's (the GGUF writer pads the vocabulary to the 32000 embedding rows, as
convert_hf_to_gguf pads). Its artifact is written directly with the exporter's writers
(GGUF f16 + llama.cpp quantisations, mmproj, vision ONNX graphs, tokenizer, manifest with
hashes) but without the parity gate: parity of random weights means nothing, and the torch
reference at this size would take most of the benchmark's time.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from llara_edge.errors import ArtifactError, ConfigError

# llama.cpp enum llama_ftype (include/llama.h) of quantisations only benchmarks use
EXTRA_FTYPES = {"q2_k": 10, "q3_k_m": 12}
CACHE_DIR = Path("cache/bench")
Say = Callable[[str], None]


def llava_1b_config():
    from llara_export.models.llava import TinyConfig

    return TinyConfig(vocab_size=32000, image_size=336, patch_size=14, vision_hidden=1024,
                      vision_layers=24, vision_heads=16, vision_intermediate=4096,
                      hidden=2048, intermediate=5632, layers=20, heads=16, kv_heads=16,
                      max_positions=4096)


def _checkpoint_files(checkpoint: Path) -> list[Path]:
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file() and p.suffix != ".md")
    if not files:
        raise ArtifactError(f"no checkpoint files in {checkpoint}")
    return files


def tiny_artifact(checkpoint: Path, cache_dir: Path = CACHE_DIR,
                  say: Say = lambda m: None) -> Path:
    """The checkpoint's export (f16, q8_0, q4_k_m), reused while the checkpoint is unchanged."""
    from llara_export import manifest as mf
    from llara_export.pipeline import ExportConfig, run_export

    key = mf.source_hash(_checkpoint_files(checkpoint))[:12]
    out = cache_dir / f"{checkpoint.name}-{key}"
    if (out / mf.MANIFEST_NAME).is_file():
        return out
    say(f"exporting {checkpoint} -> {out} (once per checkpoint version)")
    raw = cache_dir / f".{checkpoint.name}-{key}-export"
    report = run_export(ExportConfig(checkpoint=checkpoint, out=raw, overwrite=True),
                        progress=lambda m: say(f"  export: {m}"))
    if not report.ok:
        failures = {r.name: r.failures for r in report.results if r.failures}
        raise ArtifactError(f"export of {checkpoint} failed its parity gate: {failures}")
    if "vision.onnx" in report.manifest.get("files", {}):
        os.replace(raw, out)
    else:
        say("  adding the vision ONNX graphs (this exporter does not write them)")
        with_vision_onnx(raw, checkpoint, out)
        shutil.rmtree(raw, ignore_errors=True)
    return out


def _quantize(src: Path, dst: Path, qtype: str) -> dict[str, int]:
    from llara_edge.llama import quantize
    from llara_export.quantize import QUANT_TYPES, tensor_types

    ftypes = {**QUANT_TYPES, **EXTRA_FTYPES}
    if qtype not in ftypes:
        raise ConfigError(f"unknown quantisation {qtype!r}; known: {sorted(ftypes)}")
    quantize(src, dst, ftypes[qtype])  # ArtifactError when llama.cpp fails
    return tensor_types(dst)


def _link_tree(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.is_file():
            try:
                os.link(item, dst / item.name)
            except OSError:
                shutil.copy2(item, dst / item.name)


def _derive(artifact: Path, out: Path, add: Callable[[Path, dict], list[str]]) -> Path:
    """Copy (hard links) `artifact` to `out`, let `add(tmp, manifest)` write files and edit
    the manifest, hash the new files into it and publish atomically."""
    from llara_export import manifest as mf

    manifest = mf.load_manifest(artifact)
    manifest.pop("manifest_version", None)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        _link_tree(artifact, tmp)
        (tmp / mf.MANIFEST_NAME).unlink()
        names = add(tmp, manifest)
        manifest["files"] = {**manifest["files"], **mf.file_entries(tmp, names)}
        mf.write_manifest(tmp, manifest)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def with_quant_variant(artifact: Path, qtype: str, out: Path) -> Path:
    """A copy of `artifact` at `out` with an extra LLM variant `qtype` (module docstring)."""

    def add(tmp: Path, manifest: dict) -> list[str]:
        if qtype in manifest.get("llm", {}):
            raise ConfigError(f"{artifact} already has a {qtype} variant")
        name = f"llm-{qtype}.gguf"
        types = _quantize(tmp / manifest["llm"]["f16"]["file"], tmp / name, qtype)
        manifest["llm"][qtype] = {"file": name, "tensor_types": types,
                                  "note": "benchmark-made variant, not parity-gated"}
        return [name]

    return _derive(artifact, out, add)


def with_vision_onnx(artifact: Path, checkpoint: Path, out: Path) -> Path:
    """A copy of `artifact` with the vision ONNX graphs exported from `checkpoint` (for
    exports made before the exporter wrote them)."""
    from llara_export.models.checkpoint import load_checkpoint
    from llara_export.onnx_vision import export_vision

    def add(tmp: Path, manifest: dict) -> list[str]:
        model, _tok, info = load_checkpoint(checkpoint)
        scratch = tmp / ".scratch"
        scratch.mkdir()
        result = export_vision(model, info.preprocess, tmp, scratch)
        shutil.rmtree(scratch)
        return [Path(f).name for f in result.files]

    return _derive(artifact, out, add)


def gguf_weight_bytes(path: Path) -> int:
    """Bytes of the tensors a decode pass reads: all but the token embedding (a row lookup)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    return int(sum(int(t.n_bytes) for t in reader.tensors if t.name != "token_embd.weight"))


def _write_1b(tmp: Path, tokenizer_dir: Path, quants: tuple[str, ...], say: Say) -> dict:
    """All files of the 1B artifact into tmp; returns the manifest's llm table."""
    import torch

    from llara_edge.models.preprocess import PreprocessConfig
    from llara_export.gguf_llm import write_llm_gguf
    from llara_export.gguf_mmproj import write_mmproj_gguf
    from llara_export.models.llava import build_tiny
    from llara_export.models.tokenizer import SpmTokenizer
    from llara_export.onnx_vision import export_vision

    say("building the ~1B LLaVA-1.5-shaped model (random weights)")
    with torch.no_grad():
        model = build_tiny(llava_1b_config(), seed=0)
    tok = SpmTokenizer.from_dir(tokenizer_dir)
    say("writing llm-f16.gguf and mmproj-f16.gguf")
    write_llm_gguf(model, tok, tmp / "llm-f16.gguf", "f16", name="llava-1b-random")
    write_mmproj_gguf(model, PreprocessConfig(), tmp / "mmproj-f16.gguf", "f16")
    say("exporting the vision ONNX graphs")
    scratch = tmp / ".scratch"
    scratch.mkdir()
    export_vision(model, PreprocessConfig(), tmp, scratch)
    shutil.rmtree(scratch)
    del model
    llm = {"f16": {"file": "llm-f16.gguf"}}
    for q in quants:
        say(f"quantising llm-{q}.gguf")
        llm[q] = {"file": f"llm-{q}.gguf",
                  "tensor_types": _quantize(tmp / "llm-f16.gguf", tmp / f"llm-{q}.gguf", q)}
    tok.save(tmp)
    return llm


def llava_1b_artifact(tokenizer_dir: Path, cache_dir: Path = CACHE_DIR, say: Say = lambda m: None,
                      quants: tuple[str, ...] = ("q8_0", "q4_k_m")) -> Path:
    """The ~1B random model's artifact directory (built once, then reused)."""
    from llara_edge.models.preprocess import PreprocessConfig
    from llara_export import manifest as mf

    out = cache_dir / "llava-1b-random"
    if (out / mf.MANIFEST_NAME).is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".llava-1b.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        llm = _write_1b(tmp, tokenizer_dir, quants, say)
        names = [p.name for p in tmp.iterdir() if p.is_file() and not p.name.startswith(".")]
        mf.write_manifest(tmp, {
            "source": {"checkpoint": "random weights (benchmarks.bench_models.llava_1b_config)"},
            "policy_format": "llara", "template": "vicuna_v1",
            "preprocess": PreprocessConfig().to_dict(),
            "multimodal": {"select_layer": -2, "select_feature": "patch",
                           "projector_type": "mlp2x_gelu"},
            "llm": llm, "mmproj": {"file": "mmproj-f16.gguf"}, "tokenizer": "tokenizer.model",
            "parity": {"skipped": "random weights: a timing model, parity is meaningless"},
            "files": mf.file_entries(tmp, names)})
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out

