"""Fused LLaVA vision projector on CPU: select-layer states -> LLM input embeddings, in place.

Contract (every implementation: this NumPy reference, the CPU path here, projector_triton,
kernels/llara_kernels/cuda/fused_projector.cu, trt_plugin):

    hidden  (N + drop, C)  CLIP select-layer hidden states; the first `drop` rows (CLS) are
                           skipped (LLaVA "patch": drop = 1)
    w1 (C, H), b1 (H,)     mm_projector.0, stored input-major (Linear.weight.T)
    w2 (H, D), b2 (D,)     mm_projector.2
    out (N, D)             a slice of the LLM's input-embedding buffer, any float dtype,
                           overwritten: out = GELU_erf(x @ w1 + b1) @ w2 + b2 with x = hidden[drop:]

GELU is exact: 0.5 * v * (1 + erf(v / sqrt(2))) (LLaVA's nn.GELU()). `project_ref` computes in
float64 with math.erf; `project` in float32 (erf by a vectorisable fp32 rational
approximation, error at fp32 rounding level) with fp32 accumulation (BLAS): two GEMMs into
preallocated buffers, each followed by ONE fused epilogue pass (bias + GELU; bias + cast into
`out`), no allocation per call when a ProjectorWorkspace is reused. fp32 tolerance against
the reference: |project - ref| <= 1e-4 * max|ref| + 1e-5 (K = 1024 / 4096 accumulations).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numba
import numpy as np

from llara_kernels.errors import KernelError

# numba's threading layer: its own pthread pool ("workqueue"), unless the user chose one with
# NUMBA_THREADING_LAYER; it must be set before the first parallel build runs. numba's default
# pick on this box is "omp" (GNU OpenMP). With that layer started in a process (the onnx+fused
# engine calls numba.set_num_threads), a torch policy step loaded after it took 630-680 ms
# instead of 33 ms at 2 threads; with workqueue 33-53 ms (docs/runtime.md, "Threads").
# Workqueue does not nest: the projector is called from one thread at a time.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

INV_SQRT2 = 1.0 / math.sqrt(2.0)


@dataclass(frozen=True)
class ProjectorWeights:
    w1: np.ndarray  # (C, H) float32
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H, D)
    b2: np.ndarray  # (D,)

    def __post_init__(self) -> None:
        for name in ("w1", "b1", "w2", "b2"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float32)
            object.__setattr__(self, name, arr)
        (_, h), (h2, d) = self.w1.shape, self.w2.shape
        if h != h2 or self.b1.shape != (h,) or self.b2.shape != (d,):
            raise KernelError(f"projector shapes do not chain: w1 {self.w1.shape}, b1 "
                              f"{self.b1.shape}, w2 {self.w2.shape}, b2 {self.b2.shape}")

    @classmethod
    def from_linear(cls, w1, b1, w2, b2) -> ProjectorWeights:
        """From nn.Linear layout (out, in), e.g. model.mm_projector.{0,2}.{weight,bias}."""
        return cls(np.asarray(w1).T, b1, np.asarray(w2).T, b2)

    @property
    def dims(self) -> tuple[int, int, int]:
        return self.w1.shape[0], self.w1.shape[1], self.w2.shape[1]


class ProjectorWorkspace:
    """Scratch buffers for `project`, reused across calls: (N, H) and (N, D) float32."""

    def __init__(self, n_tokens: int, weights: ProjectorWeights):
        _, h, d = weights.dims
        self.hidden = np.empty((n_tokens, h), dtype=np.float32)
        self.acc = np.empty((n_tokens, d), dtype=np.float32)


def _gelu_ref(v: np.ndarray) -> np.ndarray:
    erf = np.frompyfunc(math.erf, 1, 1)
    return 0.5 * v * (1.0 + erf(v * INV_SQRT2).astype(np.float64))


def _check(hidden: np.ndarray, weights: ProjectorWeights, out: np.ndarray | None, drop: int):
    c, _, d = weights.dims
    if hidden.ndim != 2 or hidden.shape[1] != c or hidden.shape[0] <= drop:
        raise KernelError(f"hidden states must be (N + {drop}, {c}), got {hidden.shape}")
    n = hidden.shape[0] - drop
    if out is not None and (out.shape != (n, d) or not out.flags.writeable):
        raise KernelError(f"out must be a writeable ({n}, {d}) buffer, got {out.shape}")
    return n


def project_ref(hidden: np.ndarray, weights: ProjectorWeights, out: np.ndarray | None = None,
                drop: int = 1) -> np.ndarray:
    """Plain NumPy float64 reference; returns `out` (allocated float32 when None)."""
    n = _check(hidden, weights, out, drop)
    x = np.asarray(hidden[drop:], dtype=np.float64)
    h = _gelu_ref(x @ weights.w1.astype(np.float64) + weights.b1)
    y = h @ weights.w2.astype(np.float64) + weights.b2
    if out is None:
        out = np.empty((n, weights.dims[2]), dtype=np.float32)
    out[...] = y
    return out


# erf(x) = x P(x^2) / Q(x^2) on x in [-4, 4] (clamped outside, where |erf| = 1 in fp32):
# the float32 rational approximation of Eigen / XLA. It vectorises (libm's erf does not);
# |GELU error| <= 2e-6 * max(1, |v|) against float64 math.erf (tested), i.e. fp32 rounding.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)
P0, P1, P2, P3, P4, P5, P6 = (np.float32(c) for c in _ERF_P)
Q0, Q1, Q2, Q3, Q4 = (np.float32(c) for c in _ERF_Q)


@numba.njit(inline="always")
def _erf32(x):
    x = min(max(x, np.float32(-4.0)), np.float32(4.0))
    x2 = x * x
    p = ((((((P0 * x2 + P1) * x2 + P2) * x2 + P3) * x2 + P4) * x2 + P5) * x2 + P6) * x
    q = (((Q0 * x2 + Q1) * x2 + Q2) * x2 + Q3) * x2 + Q4
    return p / q


def _bias_gelu_rows(h, b):  # (N, H) f32 in place: GELU_erf(h + b), rows split by prange
    half, one, inv_sqrt2 = np.float32(0.5), np.float32(1.0), np.float32(INV_SQRT2)
    for i in numba.prange(h.shape[0]):
        for j in range(h.shape[1]):
            v = h[i, j] + b[j]
            h[i, j] = half * v * (one + _erf32(v * inv_sqrt2))


# One body, two builds: the parallel one for LLaVA-sized epilogues (576 x 4096), the serial
# one below PARALLEL_MIN elements. A tiny epilogue gains nothing from threads, and the serial
# build leaves numba's OpenMP pool asleep beside the other engines' pools (torch, llama.cpp).
# The measured case of a spinning pool is OpenBLAS's (backends/vision.py); this one is the
# same precaution, not separately measured.
_bias_gelu_ = numba.njit(parallel=True, cache=True)(_bias_gelu_rows)
_bias_gelu_serial = numba.njit(parallel=False, cache=True)(_bias_gelu_rows)
PARALLEL_MIN = 1 << 18  # elements of h (64 x 4096)


def project(hidden: np.ndarray, weights: ProjectorWeights, out: np.ndarray,
            workspace: ProjectorWorkspace | None = None, drop: int = 1) -> np.ndarray:
    """CPU fast path: writes the embeddings into `out` (float32 or float16); returns it."""
    n = _check(hidden, weights, out, drop)
    ws = workspace or ProjectorWorkspace(n, weights)
    if ws.hidden.shape[0] < n:
        raise KernelError(f"workspace holds {ws.hidden.shape[0]} rows, need {n}")
    x = hidden[drop:]
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    h = ws.hidden[:n]
    np.matmul(x, weights.w1, out=h)  # GEMM 1 (BLAS)
    (_bias_gelu_ if h.size >= PARALLEL_MIN else _bias_gelu_serial)(h, weights.b1)  # epilogue 1
    if out.dtype == np.float32 and out.flags.c_contiguous:
        np.matmul(h, weights.w2, out=out)  # GEMM 2 straight into the embedding buffer
        np.add(out, weights.b2, out=out)  # epilogue 2 in place (one memory pass)
    else:
        acc = ws.acc[:n]
        np.matmul(h, weights.w2, out=acc)
        np.add(acc, weights.b2, out=out, casting="unsafe")  # epilogue 2: bias + cast, one pass
    return out
