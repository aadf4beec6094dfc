"""The "gguf" backend: llama.cpp through the owner layer llara_edge.llama (its C handles).

Contract: base.Backend. `GgufBackend.from_artifact(artifact, config)` loads the manifest's
GGUF of `config.variant` (f16 / q8_0 / q4_k_m, hash-checked) as a llama.cpp model + context
(n_ctx = n_batch = config.n_ctx, threads = config.n_threads, config.gpu_layers offloaded). One
sequence (id 0):
- prefill: each token run is one llama_decode of a token batch, each embedding segment one
  llama_decode of a batch whose `embd` points straight at the caller's float32 (N, hidden)
  buffer (no copy: a fused projector writes there); logits only for the last position;
- extend: one llama_decode with an output flag on every token -> (k, vocab) logits;
- rollback / prefix: llama_memory_seq_rm(mem, 0, n_keep, -1) drops positions >= n_keep,
  so a system-prompt prefix computed once stays in the KV cache across control steps;
- positions are left to llama.cpp (pos = NULL: next after the sequence's last position).
A failing llama_decode is an EngineError (ContextFullError when llama.cpp finds no KV slot);
the positions it may have kept are dropped again, so n_past stays true.
encode_image: the artifact's mmproj through llama.cpp's own clip (mtmd). In llama-cpp-python
0.3.36 that clip drops patch 0 and keeps CLS (tests/test_export_gguf.py reproduces it), so policies
use the ONNX vision engines by default and reach this path only with vision="native". KV cache: K in
`cache_type_k` (f16 by default, as llama.cpp; q8_0 makes 1-token extends about 2x faster on CPU at
some fidelity, docs/runtime.md), V in f16; with f16 the logits differ from the fp32 reference at
~1e-3. Flash attention is off on CPU (gpu_layers 0): with it ("auto" enables it) a k-token extend of
tiny-llara cost ~0.4 ms per token (8 tokens 3.3 ms), without it 8 tokens took 1.1 ms, and
jump-forward decoding is made of such multi-token extends. With GPU layers it stays "auto".
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from llara_edge.backends.base import Backend, Part, check_frame, register_backend
from llara_edge.errors import ArtifactError, ConfigError, EngineError
from llara_edge.llama import Batch, LlamaContext, LlamaModel, MtmdContext
from llara_edge.runtime.config import GGML_TYPES_K


@register_backend("gguf")
class GgufBackend(Backend):
    """One llama.cpp model + context over sequence 0."""

    def __init__(self, model_path: str | Path, n_ctx: int = 2048, threads: int = 1,
                 gpu_layers: int = 0, mmproj_path: str | Path | None = None,
                 cache_type_k: str = "f16"):
        if cache_type_k not in GGML_TYPES_K:
            raise ConfigError(f"cache_type_k must be one of {sorted(GGML_TYPES_K)}, "
                              f"got {cache_type_k!r}")
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        self._mtmd: MtmdContext | None = None
        self.model: LlamaModel | None = None
        self.ctx: LlamaContext | None = None
        self._mmproj = mmproj_path
        with contextlib.ExitStack() as made:  # a context that fails frees the model at once
            self.model = made.enter_context(LlamaModel(model_path, gpu_layers=gpu_layers))
            self.ctx = made.enter_context(LlamaContext(
                self.model, n_ctx=n_ctx, threads=threads, type_k=GGML_TYPES_K[cache_type_k],
                flash_attn=False if gpu_layers == 0 else None))  # see the module note
            made.pop_all()
        self.n_vocab = self.model.n_vocab
        self.hidden_size = self.model.n_embd
        # llama.cpp rounds n_ctx up (to 256 at least) but keeps n_batch: a prefill part above
        # n_batch would abort it, so the backend's room is the smaller of the two
        self.n_ctx = min(self.ctx.n_ctx, self.ctx.n_batch)
        self.threads = threads
        self._n_past = 0

    @classmethod
    def from_artifact(cls, artifact, config) -> GgufBackend:
        mmproj = (artifact.manifest.get("mmproj") or {}).get("file")
        return cls(artifact.gguf(config.variant), config.n_ctx, config.n_threads,
                   config.gpu_layers, mmproj_path=None if mmproj is None else
                   artifact.root / mmproj, cache_type_k=config.cache_type_k)

    def close(self) -> None:
        for handle in (self._mtmd, self.ctx, self.model):  # each frees itself at most once
            if handle is not None:
                handle.close()

    # --- KV cache ------------------------------------------------------------------------
    @property
    def n_past(self) -> int:
        return self._n_past

    def _truncate(self, n_keep: int) -> None:
        self.ctx.seq_rm(n_keep)
        self._n_past = n_keep

    def _clear(self) -> None:
        self.ctx.clear()
        self._n_past = 0

    def _decode(self, batch: Batch) -> None:
        try:
            self.ctx.decode(batch)
        except EngineError:
            # code 2 / < -1: the ubatches decoded before the failure stay in the cache
            with contextlib.suppress(EngineError):
                self.ctx.seq_rm(self._n_past)
            raise
        self._n_past += batch.n_tokens

    def _prefill(self, parts: list[Part]) -> np.ndarray:
        for part in parts:
            self._decode(Batch(part))
        return self.ctx.last_logits()

    def _extend(self, ids: list[int]) -> np.ndarray:
        self._decode(Batch(ids, all_logits=True))
        return self.ctx.logits(len(ids))

    # --- llama.cpp's clip (mtmd) ---------------------------------------------------------
    def encode_image(self, frame: np.ndarray) -> np.ndarray:
        """Projected embeddings (N, hidden) from the mmproj via mtmd (see the module note)."""
        frame = check_frame(frame)
        if self._mtmd is None:
            if self._mmproj is None:
                raise ArtifactError("this artifact has no mmproj for llama.cpp's clip")
            self._mtmd = MtmdContext(self._mmproj, self.model, self.threads)
        return self._mtmd.encode_image(frame)
