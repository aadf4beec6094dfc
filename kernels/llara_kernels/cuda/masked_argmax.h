/* Masked argmax over logits rows: the hot inner step of constrained decoding.
 *
 * Contract (identical for the C++ reference, the CUDA kernel and the NumPy reference in
 * llara_edge.kernels): for each row r of `logits` [rows, n_vocab] (fp32, row-major), return
 * the index of the largest logit among the tokens whose bit is set in `mask` [rows, words]
 * (words = ceil(n_vocab / 32), bit i of word i/32 = token i allowed). Ties go to the lowest
 * index; NaN logits are never chosen; a row with no allowed finite logit yields -1.
 */
#ifndef LLARA_MASKED_ARGMAX_H
#define LLARA_MASKED_ARGMAX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of 32-bit mask words for a vocabulary of n_vocab tokens. */
static inline int llara_mask_words(int n_vocab) { return (n_vocab + 31) / 32; }

/* CPU reference (kernels/llara_kernels/cpp/masked_argmax_ref.cpp). Returns 0, or -1 on bad arguments. */
int llara_masked_argmax_ref(const float* logits, const uint32_t* mask, int rows, int n_vocab,
                            int32_t* out);

/* CUDA path (kernels/llara_kernels/cuda/masked_argmax.cu): all pointers are device pointers, `stream` is a
 * cudaStream_t (0 = default stream). Returns a cudaError_t value (0 = success). */
int llara_masked_argmax_cuda(const float* logits, const uint32_t* mask, int rows, int n_vocab,
                             int32_t* out, void* stream);

/* 1 when built with CUDA and a device is present, else 0. */
int llara_cuda_available(void);

#ifdef __cplusplus
}
#endif

#endif
