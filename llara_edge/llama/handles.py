"""Owners of llama.cpp's C handles: the one module that calls llama-cpp-python's raw bindings.

As llama-cpp-python's `_internals.py` over its `llama_cpp` ctypes module, one thin layer in
which every pointer llama.cpp hands out has one Python owner that frees it exactly once: on
close(), at the end of a `with` block, or when the owner is garbage-collected
(weakref.finalize runs its callback at most once). A constructor that fails owns nothing: it
raises before it takes the pointer, and callers that build several handles enter them in an
ExitStack, so what was made before the failure is freed before the error propagates.
Closing a model first closes the contexts and mtmd contexts made from it (they point into
it); each of those keeps its model alive until it is freed itself. Return codes become typed
errors (llara_edge.errors):
    ArtifactError     a file llama.cpp cannot load (GGUF, mmproj) or quantise, a context it
                      cannot create
    ContextFullError  llama_decode found no KV slot for the batch (code 1)
    EngineError       any other failing call at run time (llama_decode 2 / -1 / < -1,
                      llama_memory_seq_rm, mtmd_tokenize, mtmd_encode_chunk), a closed handle
    InputError        a batch llama.cpp would abort the process on (empty, above n_batch)

Contract:
    model = LlamaModel(path, gpu_layers=0, vocab_only=False)   # llama_model_load_from_file
    model.n_vocab, model.n_embd, model.tokenize(text, add_special=False, parse_special=False)
    ctx = LlamaContext(model, n_ctx=2048, threads=1, type_k=1, flash_attn=None)
    ctx.n_ctx (as llama.cpp sized it: >= 256), ctx.n_batch (as asked), ctx.decode(batch),
    ctx.logits(k) -> float32 (k, vocab)
    (the last decode's output rows, copied), ctx.last_logits() -> (vocab,), ctx.seq_rm(n_keep)
    (positions >= n_keep of sequence 0 dropped), ctx.clear()
    batch = Batch(ids | float32 (N, n_embd) embeddings, all_logits=False)
    mtmd = MtmdContext(mmproj_path, model, threads)              # llama.cpp's clip
    mtmd.encode_image(frame uint8 (H, W, 3)) -> float32 (N, model.n_embd)
    quantize(src, dst, ftype, threads=0)                         # llama_model_quantize
Every handle is a context manager; `handle.closed` says whether it was freed.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from llara_edge.errors import ArtifactError, ContextFullError, EngineError, InputError
from llara_edge.llama.lib import load_llama_cpp, quiet

# llama_decode's return codes other than 0 (llama.h)
_DECODE_CODES = {1: "no KV slot for the batch", 2: "aborted", -1: "invalid input batch"}


def _release(free, ptr, keep: tuple) -> None:
    """Finalizer body: frees `ptr`; `keep` (the model a context points into) lives until now."""
    free(ptr)


class _Owner:
    """One C pointer and the function that frees it (see the module contract)."""

    what = "llama.cpp handle"
    _finalizer: weakref.finalize | None = None
    _ptr = None

    def _own(self, ptr, free, *keep: object) -> None:
        self._ptr = ptr
        self._finalizer = weakref.finalize(self, _release, free, ptr, keep)

    @property
    def ptr(self):
        """The live pointer; EngineError once freed (a freed pointer must never reach C)."""
        if self.closed:
            raise EngineError(f"the {self.what} is closed")
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._finalizer is None or not self._finalizer.alive

    def close(self) -> None:
        """Free the handle (idempotent: the finalizer runs at most once)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LlamaModel(_Owner):
    """A llama_model (weights, or the vocabulary alone with vocab_only)."""

    what = "llama.cpp model"

    def __init__(self, path: str | Path, *, gpu_layers: int = 0, vocab_only: bool = False):
        lc = self._lc = load_llama_cpp()
        self.path = Path(path)
        self._users: weakref.WeakSet = weakref.WeakSet()  # contexts that point into the model
        params = lc.llama_model_default_params()
        params.n_gpu_layers = gpu_layers
        params.vocab_only = vocab_only
        with quiet():
            lc.llama_backend_init()
            ptr = lc.llama_model_load_from_file(str(path).encode(), params)
        if not ptr:
            what = "the vocabulary of" if vocab_only else "the GGUF"
            raise ArtifactError(f"llama.cpp cannot load {what} {path}")
        self._own(ptr, lc.llama_model_free)
        self._vocab = lc.llama_model_get_vocab(ptr)
        self.n_vocab = lc.llama_vocab_n_tokens(self._vocab)
        self.n_embd = lc.llama_model_n_embd(ptr)

    def close(self) -> None:
        for user in list(self._users):
            user.close()
        super().close()

    def tokenize(self, text: str, add_special: bool = False,
                 parse_special: bool = False) -> list[int]:
        """llama_tokenize of `text` (UTF-8) with this model's vocabulary."""
        self.ptr  # noqa: B018 - EngineError on a closed model, before C sees its vocab
        data = text.encode("utf-8")
        cap = len(data) + 8  # SPM: at most one token per byte, plus prefix space and BOS/EOS
        buf = (ctypes.c_int32 * cap)()
        n = self._lc.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special,
                                    parse_special)
        if n < 0:  # cannot happen with cap >= bytes + 3; a typed error, not a crash
            raise EngineError(f"llama_tokenize needs {-n} tokens for {len(data)} bytes")
        return list(buf[:n])


class Batch:
    """A llama_batch viewing NumPy buffers that this object holds.

    No llama_batch_init: there is no C memory to free. Token ids are copied to int32;
    C-contiguous float32 (N, n_embd) embeddings are NOT copied (the batch's `embd` points at
    the caller's buffer: a fused projector writes the LLM input there). The buffers live as
    long as the Batch, so across the decode that reads them. Positions are left to llama.cpp
    (pos = NULL: after the sequence's last), sequence 0; logits for the last row, or for
    every row with all_logits."""

    def __init__(self, part: list[int] | np.ndarray, all_logits: bool = False):
        lc = load_llama_cpp()
        self.struct = lc.llama_batch()
        self.n_tokens = self.struct.n_tokens = len(part)
        if isinstance(part, np.ndarray):
            self._data = np.ascontiguousarray(part, dtype=np.float32)
            self.struct.embd = self._data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        else:
            self._data = np.asarray(part, dtype=np.int32)
            self.struct.token = self._data.ctypes.data_as(ctypes.POINTER(lc.llama_token))
        self._flags = np.ones(len(part), dtype=np.int8) if all_logits else None
        if self._flags is not None:
            self.struct.logits = self._flags.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))


class LlamaContext(_Owner):
    """A llama_context over a model: one KV cache, sequence 0."""

    what = "llama.cpp context"

    def __init__(self, model: LlamaModel, *, n_ctx: int = 2048, threads: int = 1,
                 type_k: int = 1, flash_attn: bool | None = None):
        """n_ctx = n_batch (a prefill is one decode), n_ubatch <= 512; type_k: ggml type of
        the K cache (1 = f16); flash_attn None leaves llama.cpp's "auto"."""
        lc = self._lc = model._lc
        params = lc.llama_context_default_params()
        params.n_ctx = params.n_batch = n_ctx
        params.n_ubatch = min(n_ctx, 512)
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        params.type_k = type_k
        if flash_attn is not None:
            params.flash_attn_type = (lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                      else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        with quiet():
            ptr = lc.llama_init_from_model(model.ptr, params)
        if not ptr:
            raise ArtifactError(f"llama.cpp cannot create a context for {model.path}")
        self._own(ptr, lc.llama_free, model)
        model._users.add(self)
        self.model = model
        self._mem = lc.llama_get_memory(ptr)
        self.n_ctx = lc.llama_n_ctx(ptr)  # llama.cpp rounds it up (to 256 at least)
        self.n_batch = lc.llama_n_batch(ptr)  # as asked: a batch above it aborts llama.cpp

    def decode(self, batch: Batch) -> None:
        """llama_decode; ContextFullError (no KV slot) or EngineError (see the module note:
        after code 2 or < -1 some ubatches may stay in the cache, the caller trims it).
        An empty batch or one above n_batch is an InputError: llama.cpp would abort."""
        if not 0 < batch.n_tokens <= self.n_batch:
            raise InputError(f"a llama.cpp batch holds 1 to n_batch {self.n_batch} positions, "
                             f"got {batch.n_tokens}")
        rc = self._lc.llama_decode(self.ptr, batch.struct)
        if rc == 1:
            raise ContextFullError(f"llama_decode: no KV slot for {batch.n_tokens} positions "
                                   f"(n_ctx {self.n_ctx})")
        if rc != 0:
            why = _DECODE_CODES.get(rc, "fatal error")
            raise EngineError(f"llama_decode failed with code {rc} ({why})")

    def _rows(self, ptr, k: int) -> np.ndarray:
        if not ptr:
            raise EngineError("llama.cpp returned no logits (no output row was requested)")
        return np.ctypeslib.as_array(ptr, shape=(k, self.model.n_vocab)).copy()

    def logits(self, k: int) -> np.ndarray:
        """The last decode's k output rows, float32 (k, vocab), copied."""
        return self._rows(self._lc.llama_get_logits(self.ptr), k)

    def last_logits(self) -> np.ndarray:
        """The last decode's last output row, float32 (vocab,), copied."""
        return self._rows(self._lc.llama_get_logits_ith(self.ptr, -1), 1)[0]

    def seq_rm(self, n_keep: int) -> None:
        """Drop the positions >= n_keep of sequence 0."""
        self.ptr  # noqa: B018 - EngineError on a closed context
        if not self._lc.llama_memory_seq_rm(self._mem, 0, n_keep, -1):
            raise EngineError(f"llama.cpp cannot drop positions >= {n_keep} of sequence 0")

    def clear(self) -> None:
        """Empty the KV cache (data buffers kept)."""
        self.ptr  # noqa: B018 - EngineError on a closed context
        self._lc.llama_memory_clear(self._mem, False)


class _Bitmap(_Owner):
    what = "mtmd bitmap"

    def __init__(self, m, frame: np.ndarray):
        data = (ctypes.c_uint8 * frame.size).from_buffer_copy(frame.tobytes())
        ptr = m.mtmd_bitmap_init(frame.shape[1], frame.shape[0], data)
        if not ptr:
            raise EngineError(f"mtmd_bitmap_init failed for a {frame.shape} frame")
        self._own(ptr, m.mtmd_bitmap_free)


class _Chunks(_Owner):
    what = "mtmd input chunks"

    def __init__(self, m):
        ptr = m.mtmd_input_chunks_init()
        if not ptr:
            raise EngineError("mtmd_input_chunks_init failed")
        self._own(ptr, m.mtmd_input_chunks_free)


class MtmdContext(_Owner):
    """llama.cpp's multimodal (clip) context over an mmproj GGUF and the LLM it feeds."""

    what = "mtmd context"

    def __init__(self, path: str | Path, model: LlamaModel, threads: int = 1):
        load_llama_cpp()
        from llama_cpp import mtmd_cpp

        m = self._m = mtmd_cpp
        params = m.mtmd_context_params_default()
        params.use_gpu, params.print_timings, params.n_threads = False, False, threads
        with quiet():
            ptr = m.mtmd_init_from_file(str(path).encode(), model.ptr, params)
        if not ptr:
            raise ArtifactError(f"llama.cpp's clip cannot load {path}")
        self._own(ptr, m.mtmd_free, model)
        model._users.add(self)
        self.n_embd = model.n_embd

    def encode_image(self, frame: np.ndarray) -> np.ndarray:
        """Projected embeddings float32 (N, n_embd) of one uint8 (H, W, 3) frame: one image
        marker tokenised with the frame as bitmap, its image chunk encoded, output copied."""
        m = self._m
        text = m.mtmd_input_text()
        text.text = m.mtmd_default_marker()
        text.text_len = len(text.text)
        text.add_special, text.parse_special = False, True
        with quiet(), _Bitmap(m, frame) as bitmap, _Chunks(m) as chunks:
            if m.mtmd_tokenize(self.ptr, chunks.ptr, ctypes.byref(text),
                               (m.mtmd_bitmap_p_ctypes * 1)(bitmap.ptr), 1) != 0:
                raise EngineError("mtmd_tokenize failed on the frame")
            for i in range(m.mtmd_input_chunks_size(chunks.ptr)):
                chunk = m.mtmd_input_chunks_get(chunks.ptr, i)
                if m.mtmd_input_chunk_get_type(chunk) != m.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    continue
                n = m.mtmd_input_chunk_get_n_tokens(chunk)
                if m.mtmd_encode_chunk(self.ptr, chunk) != 0:
                    raise EngineError("mtmd_encode_chunk failed")
                flat = np.ctypeslib.as_array(m.mtmd_get_output_embd(self.ptr),
                                             shape=(n * self.n_embd,))
                return flat.reshape(n, self.n_embd).copy()
        raise EngineError("mtmd produced no image chunk for the frame")


def quantize(src: str | Path, dst: str | Path, ftype: int, threads: int = 0,
             output: Callable[[], AbstractContextManager] = quiet) -> None:
    """llama_model_quantize(src -> dst) to llama_ftype `ftype` on `threads` threads (0:
    llama.cpp's choice); ArtifactError (and no `dst` left behind) when it fails. llama.cpp
    prints one line per tensor: inside `output()` (default: silenced; the export logs it)."""
    lc = load_llama_cpp()
    src, dst = Path(src), Path(dst)
    params = lc.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    with output():
        rc = lc.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0 or not dst.is_file():
        dst.unlink(missing_ok=True)
        raise ArtifactError(f"llama_model_quantize {src.name} -> {dst.name} failed (code {rc})")
