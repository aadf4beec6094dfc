"""Quantise a GGUF LLM with llama.cpp's own quantiser (llama_model_quantize via llama-cpp-python).

Contract:
    quantize_gguf(src, dst, qtype, threads=0) -> QuantReport
    QUANT_TYPES: name -> llama_ftype value ("q8_0", "q4_k_m", ...)

`src` is an f16/f32 GGUF written by export.gguf_llm; `dst` receives the quantised model.
llama.cpp keeps 1-D tensors in f32 and may pick other types for tensors whose rows do not
fit the block size (k-quants need rows that are a multiple of 256, FORMATS.md §4): the
report lists the tensor types actually written, read back with the `gguf` reader, so a
silent fallback shows in the manifest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.runtime.config import usable_cpus

# name -> llama.cpp enum llama_ftype (include/llama.h LLAMA_FTYPE_MOSTLY_*)
QUANT_TYPES: dict[str, int] = {
    "q8_0": 7,
    "q4_0": 2,
    "q5_k_m": 17,
    "q4_k_m": 15,
    "q6_k": 18,
}


@dataclass(frozen=True)
class QuantReport:
    qtype: str
    path: Path
    tensor_types: dict[str, int]  # ggml type name -> number of tensors of that type


def tensor_types(path: str | Path) -> dict[str, int]:
    """ggml type name -> count, over the tensors of a GGUF file."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as err:
        raise ArtifactError(f"unreadable GGUF {path}: {err}") from err
    return dict(Counter(t.tensor_type.name for t in reader.tensors))


def quantize_gguf(src: str | Path, dst: str | Path, qtype: str, threads: int = 0) -> QuantReport:
    """Run llama_model_quantize(src -> dst, qtype); ArtifactError when llama.cpp fails."""
    if qtype not in QUANT_TYPES:
        raise ConfigError(f"unknown quantisation {qtype!r}; known: {sorted(QUANT_TYPES)}")
    from llara_edge.llama import quantize  # ArtifactError where llama-cpp-python is unusable

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ArtifactError(f"GGUF to quantise not found: {src}")
    # ArtifactError, and no dst, when it fails; 0 threads: RuntimeConfig's meaning
    quantize(src, dst, QUANT_TYPES[qtype], threads or usable_cpus())
    return QuantReport(qtype=qtype, path=dst, tensor_types=tensor_types(dst))
