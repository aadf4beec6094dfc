"""The "gguf" backend: llama.cpp through llama-cpp-python's low-level C API.

Contract: base.Backend. `GgufBackend.from_artifact(artifact, config)` loads the manifest's
GGUF of `config.variant` (f16 / q8_0 / q4_k_m, hash-checked) with
llama_model_load_from_file + llama_init_from_model (n_ctx = n_batch = config.n_ctx, threads
= config.n_threads, config.gpu_layers offloaded). One sequence (id 0):
- prefill: each token run is one llama_decode of a token batch, each embedding segment one
  llama_decode of a batch whose `embd` points straight at the caller's float32 (N, hidden)
  buffer (no copy: a fused projector writes there); logits only for the last position;
- extend: one llama_decode with an output flag on every token -> (k, vocab) logits;
- rollback / prefix: llama_memory_seq_rm(mem, 0, n_keep, -1) drops positions >= n_keep,
  so a system-prompt prefix computed once stays in the KV cache across control steps;
- positions are left to llama.cpp (pos = NULL: next after the sequence's last position).
encode_image: the artifact's mmproj through llama.cpp's own clip (mtmd). In llama-cpp-python
0.3.36 that clip drops patch 0 and keeps CLS (see export/llara_export/gguf_runner.py), so policies
use the ONNX vision engines by default and reach this path only with vision="native". KV cache: K in
`cache_type_k` (f16 by default, as llama.cpp; q8_0 makes 1-token extends about 2x faster on CPU at
some fidelity, docs/runtime.md), V in f16; with f16 the logits differ from the fp32 reference at
~1e-3. Flash attention is off on CPU (gpu_layers 0): with it ("auto" enables it) a k-token extend of
tiny-llara cost ~0.4 ms per token (8 tokens 3.3 ms), without it 8 tokens took 1.1 ms, and
jump-forward decoding is made of such multi-token extends. With GPU layers it stays "auto".
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import numpy as np

from llara_edge.backends.base import Backend, Part, check_frame, register_backend
from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.llama_lib import quiet
from llara_edge.runtime.config import GGML_TYPES_K


@register_backend("gguf")
class GgufBackend(Backend):
    """One llama.cpp model + context over sequence 0."""

    def __init__(self, model_path: str | Path, n_ctx: int = 2048, threads: int = 1,
                 gpu_layers: int = 0, mmproj_path: str | Path | None = None,
                 cache_type_k: str = "f16"):
        from llara_edge.llama_lib import load_llama_cpp

        lc = load_llama_cpp()

        if cache_type_k not in GGML_TYPES_K:
            raise ConfigError(f"cache_type_k must be one of {sorted(GGML_TYPES_K)}, "
                              f"got {cache_type_k!r}")

        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        self._lc = lc
        self.model = self.ctx = self._mtmd = None
        self._mmproj = mmproj_path
        with quiet():
            lc.llama_backend_init()
            mparams = lc.llama_model_default_params()
            mparams.n_gpu_layers = gpu_layers
            self.model = lc.llama_model_load_from_file(str(model_path).encode(), mparams)
            if not self.model:
                raise ArtifactError(f"llama.cpp cannot load the GGUF {model_path}")
            cparams = lc.llama_context_default_params()
            cparams.n_ctx = cparams.n_batch = n_ctx
            cparams.n_ubatch = min(n_ctx, 512)
            cparams.n_threads = cparams.n_threads_batch = threads
            cparams.no_perf = True
            cparams.type_k = GGML_TYPES_K[cache_type_k]
            if gpu_layers == 0:  # CPU: see the module note on flash attention
                cparams.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
            self.ctx = lc.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            self.close()
            raise ArtifactError(f"llama.cpp cannot create a context for {model_path}")
        self._mem = lc.llama_get_memory(self.ctx)
        self.n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self.model))
        self.hidden_size = lc.llama_model_n_embd(self.model)
        self.n_ctx = lc.llama_n_ctx(self.ctx)
        self.threads = threads
        self._n_past = 0

    @classmethod
    def from_artifact(cls, artifact, config) -> GgufBackend:
        mmproj = (artifact.manifest.get("mmproj") or {}).get("file")
        return cls(artifact.gguf(config.variant), config.n_ctx, config.n_threads,
                   config.gpu_layers, mmproj_path=None if mmproj is None else
                   artifact.root / mmproj, cache_type_k=config.cache_type_k)

    def close(self) -> None:
        if self._mtmd:
            from llama_cpp import mtmd_cpp

            mtmd_cpp.mtmd_free(self._mtmd)
            self._mtmd = None
        if self.ctx:
            self._lc.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            self._lc.llama_model_free(self.model)
            self.model = None

    # --- KV cache ------------------------------------------------------------------------
    @property
    def n_past(self) -> int:
        return self._n_past

    def _truncate(self, n_keep: int) -> None:
        if not self._lc.llama_memory_seq_rm(self._mem, 0, n_keep, -1):
            raise ConfigError(f"llama.cpp cannot drop positions >= {n_keep} of sequence 0")
        self._n_past = n_keep

    def _clear(self) -> None:
        self._lc.llama_memory_clear(self._mem, False)
        self._n_past = 0

    def _decode(self, batch, n: int) -> None:
        rc = self._lc.llama_decode(self.ctx, batch)
        if rc != 0:
            # rc 1: no KV slot; < 0: invalid batch or fatal (ubatches may have been kept)
            self._truncate(self._n_past)
            raise ConfigError(f"llama_decode failed with code {rc} at n_past {self._n_past}")
        self._n_past += n

    def _batch(self, part: Part, all_logits: bool) -> tuple[object, list[np.ndarray]]:
        """A llama_batch over NumPy buffers (returned too: they must outlive the decode)."""
        lc = self._lc
        batch = lc.llama_batch()
        batch.n_tokens = len(part)
        keep: list[np.ndarray] = []
        if isinstance(part, np.ndarray):
            keep.append(part)  # (N, hidden) float32, C-contiguous (base.Backend._parts)
            batch.embd = part.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        else:
            ids = np.asarray(part, dtype=np.int32)
            keep.append(ids)
            batch.token = ids.ctypes.data_as(ctypes.POINTER(lc.llama_token))
        if all_logits:
            flags = np.ones(len(part), dtype=np.int8)
            keep.append(flags)
            batch.logits = flags.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
        return batch, keep

    def _rows(self, k: int) -> np.ndarray:
        """The logits of the last decode's k output rows, float32 (k, vocab) copy."""
        ptr = self._lc.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(k, self.n_vocab)).copy()

    def _prefill(self, parts: list[Part]) -> np.ndarray:
        for part in parts:
            batch, _keep = self._batch(part, all_logits=False)
            self._decode(batch, len(part))
        ptr = self._lc.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def _extend(self, ids: list[int]) -> np.ndarray:
        batch, _keep = self._batch(ids, all_logits=True)
        self._decode(batch, len(ids))
        return self._rows(len(ids))

    # --- llama.cpp's clip (mtmd) ---------------------------------------------------------
    def encode_image(self, frame: np.ndarray) -> np.ndarray:
        """Projected embeddings (N, hidden) from the mmproj via mtmd (see the module note)."""
        from llama_cpp import mtmd_cpp as m

        frame = check_frame(frame)
        if not self._mtmd:
            if self._mmproj is None:
                raise ArtifactError("this artifact has no mmproj for llama.cpp's clip")
            params = m.mtmd_context_params_default()
            params.use_gpu, params.print_timings, params.n_threads = False, False, self.threads
            with quiet():
                self._mtmd = m.mtmd_init_from_file(str(self._mmproj).encode(), self.model,
                                                   params)
            if not self._mtmd:
                raise ArtifactError(f"llama.cpp's clip cannot load {self._mmproj}")
        with quiet():
            return _mtmd_embeddings(m, self._mtmd, frame, self.hidden_size)


def _mtmd_embeddings(m, ctx, frame: np.ndarray, hidden: int) -> np.ndarray:
    """Tokenise one image marker with `frame` as bitmap, encode its chunk, copy the output."""
    data = (ctypes.c_uint8 * frame.size).from_buffer_copy(frame.tobytes())
    bitmap = m.mtmd_bitmap_init(frame.shape[1], frame.shape[0], data)
    text = m.mtmd_input_text()
    text.text = m.mtmd_default_marker()
    text.text_len = len(text.text)
    text.add_special, text.parse_special = False, True
    chunks = m.mtmd_input_chunks_init()
    try:
        if m.mtmd_tokenize(ctx, chunks, ctypes.byref(text),
                           (m.mtmd_bitmap_p_ctypes * 1)(bitmap), 1) != 0:
            raise ArtifactError("mtmd_tokenize failed on the frame")
        for i in range(m.mtmd_input_chunks_size(chunks)):
            chunk = m.mtmd_input_chunks_get(chunks, i)
            if m.mtmd_input_chunk_get_type(chunk) != m.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                continue
            n = m.mtmd_input_chunk_get_n_tokens(chunk)
            if m.mtmd_encode_chunk(ctx, chunk) != 0:
                raise ArtifactError("mtmd_encode_chunk failed")
            flat = np.ctypeslib.as_array(m.mtmd_get_output_embd(ctx), shape=(n * hidden,))
            return flat.reshape(n, hidden).copy()
        raise ArtifactError("mtmd produced no image chunk")
    finally:
        m.mtmd_bitmap_free(bitmap)
        m.mtmd_input_chunks_free(chunks)
