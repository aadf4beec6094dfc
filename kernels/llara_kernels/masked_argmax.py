"""Masked argmax over logits: the hot inner step of constrained decoding (numba on CPU).

Contract (the same as kernels/llara_kernels/cuda/masked_argmax.h, the C++ reference and the CUDA
kernel): for logits (V,) or (rows, V) float and a mask of allowed tokens, either bool (..., V) or
packed uint32 (..., ceil(V / 32)) with bit i of word i // 32 (LSB first) = token i allowed, return
the index of the largest allowed logit. Ties go to the LOWEST index (as np.argmax); NaN and -inf
logits are never chosen (+inf is); no allowed finite-or-+inf logit gives -1. The choice is exact
(comparisons only, no tolerance): every implementation must return the same index for the same
input.

    masked_argmax(logits, mask) -> int | np.ndarray[int32]    numba kernels
    masked_argmax_ref(logits, mask) -> same                   plain NumPy reference
    pack_mask(bool (..., V)) -> uint32 (..., words); unpack_mask(bits, V) -> bool
"""

from __future__ import annotations

import numba
import numpy as np

from llara_kernels.errors import KernelError


def mask_words(n_vocab: int) -> int:
    return (n_vocab + 31) // 32


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """bool (..., V) -> uint32 (..., ceil(V / 32)), bit i of word i // 32 = mask[..., i]."""
    mask = np.asarray(mask, dtype=bool)
    n = mask.shape[-1]
    padded = np.zeros((*mask.shape[:-1], mask_words(n) * 32), dtype=bool)
    padded[..., :n] = mask
    packed = np.packbits(padded, axis=-1, bitorder="little")  # uint8, LSB first
    return np.ascontiguousarray(packed).view("<u4").astype(np.uint32, copy=False)


def unpack_mask(bits: np.ndarray, n_vocab: int) -> np.ndarray:
    """Inverse of pack_mask."""
    as_bytes = np.ascontiguousarray(bits, dtype="<u4").view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n_vocab].astype(bool)


def _as_bool(mask: np.ndarray, n_vocab: int) -> np.ndarray:
    if mask.dtype == np.bool_:
        if mask.shape[-1] != n_vocab:
            raise KernelError(f"bool mask width {mask.shape[-1]} != vocab {n_vocab}")
        return mask
    if mask.dtype != np.uint32 or mask.shape[-1] != mask_words(n_vocab):
        raise KernelError(f"packed mask must be uint32 (..., {mask_words(n_vocab)}), "
                          f"got {mask.dtype} {mask.shape}")
    return unpack_mask(mask, n_vocab)


def masked_argmax_ref(logits: np.ndarray, mask: np.ndarray) -> int | np.ndarray:
    """NumPy reference (see the module contract)."""
    logits = np.asarray(logits)
    allowed = _as_bool(np.asarray(mask), logits.shape[-1])
    valid = allowed & ~np.isnan(logits) & ~np.isneginf(logits)
    scores = np.where(valid, logits, -np.inf)
    best = np.argmax(scores, axis=-1)  # first maximum: lowest index on ties
    out = np.where(valid.any(axis=-1), best, -1).astype(np.int32)
    return int(out) if out.ndim == 0 else out


@numba.njit(cache=True, nogil=True)
def _argmax_bool_row(logits, mask):  # (V,) float, (V,) bool -> int
    best, best_v = -1, 0.0
    for i in range(logits.shape[0]):
        if mask[i]:
            v = logits[i]
            if v != v or v == -np.inf:
                continue
            if best < 0 or v > best_v:  # strict '>' keeps the lowest index on ties
                best, best_v = i, v
    return best


@numba.njit(cache=True, nogil=True)
def _argmax_bits_row(logits, bits):  # (V,) float, (words,) uint32 -> int
    best, best_v = -1, 0.0
    n = logits.shape[0]
    for w in range(bits.shape[0]):
        word = bits[w]
        if word == 0:
            continue  # 32 disallowed tokens at once: masks are sparse
        for b in range(32):
            if (word >> b) & 1:
                i = w * 32 + b
                if i >= n:
                    break
                v = logits[i]
                if v != v or v == -np.inf:
                    continue
                if best < 0 or v > best_v:
                    best, best_v = i, v
    return best


@numba.njit(cache=True, nogil=True)
def _rows_bool(logits, mask):  # (R, V), (R, V) bool -> (R,) int32
    out = np.empty(logits.shape[0], dtype=np.int32)
    for r in range(logits.shape[0]):
        out[r] = _argmax_bool_row(logits[r], mask[r])
    return out


@numba.njit(cache=True, nogil=True)
def _rows_bits(logits, bits):  # (R, V), (R, words) uint32 -> (R,) int32
    out = np.empty(logits.shape[0], dtype=np.int32)
    for r in range(logits.shape[0]):
        out[r] = _argmax_bits_row(logits[r], bits[r])
    return out


def masked_argmax(logits: np.ndarray, mask: np.ndarray) -> int | np.ndarray:
    """numba kernel: (V,) -> int, (rows, V) -> int32 (rows,). Mask bool or packed uint32."""
    logits = np.ascontiguousarray(logits)
    if logits.dtype not in (np.float32, np.float64):
        logits = logits.astype(np.float32)
    mask = np.ascontiguousarray(mask)
    packed = mask.dtype == np.uint32
    width = mask_words(logits.shape[-1]) if packed else logits.shape[-1]
    if mask.dtype not in (np.bool_, np.uint32) or mask.shape[-1] != width:
        raise KernelError(f"mask must be bool (..., {logits.shape[-1]}) or uint32 "
                          f"(..., {mask_words(logits.shape[-1])}), got {mask.dtype} {mask.shape}")
    if logits.ndim == 1:
        if packed:
            return int(_argmax_bits_row(logits, mask))
        return int(_argmax_bool_row(logits, mask))
    if logits.ndim != 2 or mask.shape[0] != logits.shape[0]:
        raise KernelError(f"logits {logits.shape} and mask {mask.shape} do not match")
    return _rows_bits(logits, mask) if packed else _rows_bool(logits, mask)
