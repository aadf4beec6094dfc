// Plain C++ reference of the masked argmax (see kernels/llara_kernels/cuda/masked_argmax.h for the contract).
#include <cmath>

#include "../cuda/masked_argmax.h"

extern "C" int llara_masked_argmax_ref(const float* logits, const uint32_t* mask, int rows,
                                       int n_vocab, int32_t* out) {
  if (!logits || !mask || !out || rows < 0 || n_vocab <= 0) return -1;
  const int words = llara_mask_words(n_vocab);
  for (int r = 0; r < rows; ++r) {
    const float* row = logits + static_cast<long>(r) * n_vocab;
    const uint32_t* m = mask + static_cast<long>(r) * words;
    int32_t best = -1;
    float best_v = 0.0f;
    for (int i = 0; i < n_vocab; ++i) {
      if (!((m[i >> 5] >> (i & 31)) & 1u)) continue;
      const float v = row[i];
      if (std::isnan(v) || (std::isinf(v) && v < 0)) continue;
      if (best < 0 || v > best_v) {  // strict '>' keeps the lowest index on ties
        best = i;
        best_v = v;
      }
    }
    out[r] = best;
  }
  return 0;
}

#ifndef LLARA_WITH_CUDA
extern "C" int llara_masked_argmax_cuda(const float*, const uint32_t*, int, int, int32_t*,
                                        void*) {
  return 35;  // cudaErrorInsufficientDriver: built without CUDA
}
extern "C" int llara_cuda_available(void) { return 0; }
#endif
