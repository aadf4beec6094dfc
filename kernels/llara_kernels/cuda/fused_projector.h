/* Fused LLaVA vision projector: select-layer hidden states -> LLM input embeddings.
 *
 * Contract (the same as llara_edge.kernels.projector): hidden [n_rows, C] row-major, the
 * first `drop` rows (CLS) skipped; w1 [C, H], b1 [H], w2 [H, D], b2 [D] (input-major, i.e.
 * nn.Linear.weight transposed); out rows i = 0 .. n_rows-drop-1 at out + i * ldo (a slice of
 * the LLM's input-embedding buffer) receive GELU_erf(x @ w1 + b1) @ w2 + b2 with fp32
 * accumulation. GELU is exact: 0.5 v (1 + erf(v / sqrt 2)).
 */
#ifndef LLARA_FUSED_PROJECTOR_H
#define LLARA_FUSED_PROJECTOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { LLARA_F32 = 0, LLARA_F16 = 1 };

/* CPU reference (kernels/llara_kernels/cpp/fused_projector_ref.cpp), float64 math, fp32 in and out.
 * Returns 0, or -1 on bad arguments. */
int llara_fused_projector_ref(const float* hidden, int n_rows, int drop, int C,
                              const float* w1, const float* b1, const float* w2,
                              const float* b2, int H, int D, float* out, int ldo);

/* CUDA path (kernels/llara_kernels/cuda/fused_projector.cu): device pointers, every tensor of `dtype`
 * (LLARA_F32 or LLARA_F16); scratch holds [n_rows - drop, H] of that dtype. Two launches of
 * one tiled GEMM kernel with fused epilogues (bias + GELU; bias + store into out).
 * Returns a cudaError_t value (0 = success). */
int llara_fused_projector_cuda(const void* hidden, int n_rows, int drop, int C, const void* w1,
                               const void* b1, const void* w2, const void* b2, int H, int D,
                               void* scratch, void* out, int ldo, int dtype, void* stream);

#ifdef __cplusplus
}
#endif

#endif
