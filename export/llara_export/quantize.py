"""Quantise a GGUF LLM with llama.cpp's own quantiser (llama_model_quantize via llama-cpp-python).

Contract:
    quantize_gguf(src, dst, qtype, threads=0, log=None) -> QuantReport
    QUANT_TYPES: name -> llama_ftype value ("q8_0", "q4_k_m", ...)

`src` is an f16/f32 GGUF written by export.gguf_llm; `dst` receives the quantised model.
llama.cpp keeps 1-D tensors in f32 and may pick other types for tensors whose rows do not
fit the block size (k-quants need rows that are a multiple of 256, FORMATS.md §4): the
report lists the tensor types actually written, read back with the `gguf` reader, so a
silent fallback shows in the manifest. With `log`, llama.cpp's own output (its model loader's
metadata dump and one line per tensor, ~300 lines for a 7B model) is appended to that file
instead of the terminal (native_log.NativeLog), and a failure's error names its last lines.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.runtime.config import usable_cpus
from llara_export.native_log import NativeLog

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


def quantize_gguf(src: str | Path, dst: str | Path, qtype: str, threads: int = 0,
                  log: str | Path | None = None) -> QuantReport:
    """Run llama_model_quantize(src -> dst, qtype); ArtifactError when llama.cpp fails.
    `log`: a file that receives llama.cpp's output (else it goes where it goes)."""
    if qtype not in QUANT_TYPES:
        raise ConfigError(f"unknown quantisation {qtype!r}; known: {sorted(QUANT_TYPES)}")
    from llara_edge.llama import quantize, quiet  # ArtifactError where llama.cpp is unusable

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ArtifactError(f"GGUF to quantise not found: {src}")
    capture = (NativeLog(log, f"llama_model_quantize {src.name} -> {dst.name} ({qtype})")
               if log is not None else None)
    try:  # 0 threads: RuntimeConfig's meaning
        quantize(src, dst, QUANT_TYPES[qtype], threads or usable_cpus(),
                 output=(lambda: capture) if capture else quiet)
    except ArtifactError as err:
        # the log's directory may be removed with a failed export: its last lines go along
        said = f"; llama.cpp: {' | '.join(capture.tail())}" if capture else ""
        raise ArtifactError(f"{err}{said}") from err
    return QuantReport(qtype=qtype, path=dst, tensor_types=tensor_types(dst))
