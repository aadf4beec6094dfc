"""Fused LLaVA vision projector in Triton (GPU; also runs under TRITON_INTERPRET=1 on CPU).

Contract: as kernels/llara_kernels/projector.py, on torch tensors:

    project_triton(hidden (N + drop, C), w1 (C, H), b1 (H,), w2 (H, D), b2 (D,),
                   out (N, D) view of the embedding buffer (row stride free), drop=1,
                   scratch (N, H) or None) -> out

Two launches of one tiled GEMM kernel with a fused epilogue: GEMM1 + bias + exact GELU
(erf) into `scratch` (the weights' dtype, as LLaVA runs the projector), then GEMM2 + bias,
cast to out's dtype and stored straight into `out`. Accumulation is fp32; fp32 inputs use
IEEE dot products (no TF32), so the NumPy tolerance of projector.py applies. CLS is dropped
by offsetting the input view, never by a copy. triton is imported on first use.
"""

from __future__ import annotations

import functools

from llara_kernels.errors import KernelError

BLOCK_M, BLOCK_N, BLOCK_K = 32, 64, 32


@functools.lru_cache(maxsize=1)
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def linear_epilogue(x_ptr, w_ptr, b_ptr, y_ptr, M, N, K, stride_xm, stride_wk, stride_ym,
                        GELU: tl.constexpr, IEEE: tl.constexpr, BM: tl.constexpr,
                        BN: tl.constexpr, BK: tl.constexpr):
        rm = tl.program_id(0) * BM + tl.arange(0, BM)
        rn = tl.program_id(1) * BN + tl.arange(0, BN)
        rk = tl.arange(0, BK)
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k0 in range(0, K, BK):
            kk = k0 + rk
            a = tl.load(x_ptr + rm[:, None] * stride_xm + kk[None, :],
                        mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
            b = tl.load(w_ptr + kk[:, None] * stride_wk + rn[None, :],
                        mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
            if IEEE:
                acc += tl.dot(a, b, input_precision="ieee")
            else:
                acc += tl.dot(a, b)
        acc += tl.load(b_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
        if GELU:
            acc = 0.5 * acc * (1.0 + tl.math.erf(acc * 0.7071067811865476))
        tl.store(y_ptr + rm[:, None] * stride_ym + rn[None, :], acc.to(y_ptr.dtype.element_ty),
                 mask=(rm[:, None] < M) & (rn[None, :] < N))

    return triton, linear_epilogue


def _launch(x, w, b, y, gelu: bool) -> None:
    triton, kernel = _kernel()
    (m, k), n = x.shape, w.shape[1]
    if x.stride(1) != 1 or w.stride(1) != 1 or y.stride(1) != 1:
        raise KernelError("projector operands must have unit stride along their rows")
    grid = (triton.cdiv(m, BLOCK_M), triton.cdiv(n, BLOCK_N))
    ieee = str(x.dtype) == "torch.float32"
    kernel[grid](x, w, b, y, m, n, k, x.stride(0), w.stride(0), y.stride(0),
                 GELU=gelu, IEEE=ieee, BM=BLOCK_M, BN=BLOCK_N, BK=BLOCK_K)


def project_triton(hidden, w1, b1, w2, b2, out, drop: int = 1, scratch=None):
    """Write GELU_erf(hidden[drop:] @ w1 + b1) @ w2 + b2 into `out`; returns out."""
    import torch

    (c, h), d = w1.shape, w2.shape[1]
    n = hidden.shape[0] - drop
    if hidden.shape[1] != c or w2.shape[0] != h or tuple(out.shape) != (n, d) or n < 1:
        raise KernelError(f"shapes do not chain: hidden {tuple(hidden.shape)}, w1 "
                          f"{tuple(w1.shape)}, w2 {tuple(w2.shape)}, out {tuple(out.shape)}")
    if scratch is None:
        scratch = torch.empty((n, h), dtype=w2.dtype, device=hidden.device)
    _launch(hidden[drop:], w1, b1, scratch, gelu=True)
    _launch(scratch, w2, b2, out, gelu=False)
    return out
