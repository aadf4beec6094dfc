// Plain C++ reference of the fused projector (contract in kernels/llara_kernels/cuda/fused_projector.h).
#include <cmath>
#include <vector>

#include "../cuda/fused_projector.h"

extern "C" int llara_fused_projector_ref(const float* hidden, int n_rows, int drop, int C,
                                         const float* w1, const float* b1, const float* w2,
                                         const float* b2, int H, int D, float* out, int ldo) {
  if (!hidden || !w1 || !b1 || !w2 || !b2 || !out || drop < 0 || n_rows <= drop || C <= 0 ||
      H <= 0 || D <= 0 || ldo < D)
    return -1;
  std::vector<double> h(H);
  for (int i = 0; i < n_rows - drop; ++i) {
    const float* x = hidden + static_cast<long>(i + drop) * C;
    for (int j = 0; j < H; ++j) {
      double v = b1[j];
      for (int k = 0; k < C; ++k) v += static_cast<double>(x[k]) * w1[static_cast<long>(k) * H + j];
      h[j] = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    }
    for (int j = 0; j < D; ++j) {
      double v = b2[j];
      for (int k = 0; k < H; ++k) v += h[k] * w2[static_cast<long>(k) * D + j];
      out[static_cast<long>(i) * ldo + j] = static_cast<float>(v);
    }
  }
  return 0;
}

#ifndef LLARA_WITH_CUDA
extern "C" int llara_fused_projector_cuda(const void*, int, int, int, const void*, const void*,
                                          const void*, const void*, int, int, void*, void*, int,
                                          int, void*) {
  return 35;  // cudaErrorInsufficientDriver: built without CUDA
}
#endif
