// CUDA masked argmax (contract in masked_argmax.h): one block per logits row, each thread
// scans a strided slice of the vocabulary, then a warp-shuffle + shared-memory reduction
// picks (max value, lowest index). Allowed bits are read a word at a time (32 tokens).
#include <cuda_runtime.h>

#include <cmath>

#include "masked_argmax.h"

namespace {

constexpr int kThreads = 256;

struct Best {
  float v;
  int32_t i;  // -1: nothing allowed seen yet
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

__device__ __forceinline__ Best warp_reduce(Best b) {
  for (int off = 16; off > 0; off >>= 1) {
    Best o{__shfl_down_sync(0xffffffffu, b.v, off), __shfl_down_sync(0xffffffffu, b.i, off)};
    b = better(b, o);
  }
  return b;
}

__global__ void masked_argmax_kernel(const float* __restrict__ logits,
                                     const uint32_t* __restrict__ mask, int n_vocab,
                                     int32_t* __restrict__ out) {
  const int words = (n_vocab + 31) / 32;  // llara_mask_words is host-only
  const float* row = logits + static_cast<long>(blockIdx.x) * n_vocab;
  const uint32_t* m = mask + static_cast<long>(blockIdx.x) * words;
  Best best{0.0f, -1};
  for (int i = threadIdx.x; i < n_vocab; i += blockDim.x) {
    if (!((m[i >> 5] >> (i & 31)) & 1u)) continue;
    const float v = row[i];
    if (isnan(v) || (isinf(v) && v < 0)) continue;
    best = better(best, Best{v, i});
  }
  __shared__ float sv[kThreads / 32];
  __shared__ int32_t si[kThreads / 32];
  best = warp_reduce(best);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = best.v;
    si[warp] = best.i;
  }
  __syncthreads();
  if (warp == 0) {
    best = lane < kThreads / 32 ? Best{sv[lane], si[lane]} : Best{0.0f, -1};
    best = warp_reduce(best);
    if (lane == 0) out[blockIdx.x] = best.i;
  }
}

}  // namespace

extern "C" int llara_masked_argmax_cuda(const float* logits, const uint32_t* mask, int rows,
                                        int n_vocab, int32_t* out, void* stream) {
  if (!logits || !mask || !out || rows < 0 || n_vocab <= 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  masked_argmax_kernel<<<rows, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(logits, mask,
                                                                                 n_vocab, out);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int llara_cuda_available(void) {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0 ? 1 : 0;
}
