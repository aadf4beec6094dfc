// CUDA fused projector (contract in fused_projector.h): a 64x64-tile SGEMM-style kernel
// (256 threads, 4x4 outputs per thread, fp32 accumulation, inputs fp32 or fp16 widened to
// fp32 in shared memory) whose epilogue adds the bias, applies exact GELU (erff) when asked
// and stores in the output dtype at an arbitrary row stride, so GEMM 2 writes straight into
// the LLM's input-embedding buffer. CLS is dropped by offsetting the input pointer.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "fused_projector.h"

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kTM = 4, kTN = 4, kThreads = 256;

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

// y[M, N] (row stride ldy) = epilogue(x[M, K] (ldx) @ w[K, N] (ldw) + b[N])
template <typename T, bool kGelu>
__global__ void __launch_bounds__(kThreads)
    linear_epilogue(const T* __restrict__ x, int ldx, const T* __restrict__ w, int ldw,
                    const T* __restrict__ b, T* __restrict__ y, int ldy, int M, int N, int K) {
  __shared__ float as[kBK][kBM + 1];  // A tile stored k-major, +1 against bank conflicts
  __shared__ float bs[kBK][kBN];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  float acc[kTM][kTN] = {};
  for (int k0 = 0; k0 < K; k0 += kBK) {
    for (int i = threadIdx.x; i < kBM * kBK; i += kThreads) {
      const int m = i / kBK, k = i % kBK, gm = row0 + m, gk = k0 + k;
      as[k][m] = (gm < M && gk < K) ? to_f(x[static_cast<long>(gm) * ldx + gk]) : 0.0f;
    }
    for (int i = threadIdx.x; i < kBK * kBN; i += kThreads) {
      const int k = i / kBN, n = i % kBN, gk = k0 + k, gn = col0 + n;
      bs[k][n] = (gk < K && gn < N) ? to_f(w[static_cast<long>(gk) * ldw + gn]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      float a[kTM], bb[kTN];
#pragma unroll
      for (int i = 0; i < kTM; ++i) a[i] = as[k][ty * kTM + i];
#pragma unroll
      for (int j = 0; j < kTN; ++j) bb[j] = bs[k][tx * kTN + j];
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(a[i], bb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    const int gm = row0 + ty * kTM + i;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int gn = col0 + tx * kTN + j;
      if (gn >= N) continue;
      float v = acc[i][j] + to_f(b[gn]);
      if (kGelu) v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
      y[static_cast<long>(gm) * ldy + gn] = from_f<T>(v);
    }
  }
}

template <typename T>
int run(const T* hidden, int n_rows, int drop, int C, const T* w1, const T* b1, const T* w2,
        const T* b2, int H, int D, T* scratch, T* out, int ldo, cudaStream_t stream) {
  const int n = n_rows - drop;
  const dim3 block(kThreads);
  const dim3 grid1((H + kBN - 1) / kBN, (n + kBM - 1) / kBM);
  linear_epilogue<T, true><<<grid1, block, 0, stream>>>(hidden + static_cast<long>(drop) * C,
                                                        C, w1, H, b1, scratch, H, n, H, C);
  const dim3 grid2((D + kBN - 1) / kBN, (n + kBM - 1) / kBM);
  linear_epilogue<T, false><<<grid2, block, 0, stream>>>(scratch, H, w2, D, b2, out, ldo, n, D,
                                                         H);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

extern "C" int llara_fused_projector_cuda(const void* hidden, int n_rows, int drop, int C,
                                          const void* w1, const void* b1, const void* w2,
                                          const void* b2, int H, int D, void* scratch,
                                          void* out, int ldo, int dtype, void* stream) {
  if (!hidden || !w1 || !b1 || !w2 || !b2 || !scratch || !out || drop < 0 || n_rows <= drop ||
      C <= 0 || H <= 0 || D <= 0 || ldo < D)
    return cudaErrorInvalidValue;
  const auto s = static_cast<cudaStream_t>(stream);
  if (dtype == LLARA_F32)
    return run(static_cast<const float*>(hidden), n_rows, drop, C,
               static_cast<const float*>(w1), static_cast<const float*>(b1),
               static_cast<const float*>(w2), static_cast<const float*>(b2), H, D,
               static_cast<float*>(scratch), static_cast<float*>(out), ldo, s);
  if (dtype == LLARA_F16)
    return run(static_cast<const __half*>(hidden), n_rows, drop, C,
               static_cast<const __half*>(w1), static_cast<const __half*>(b1),
               static_cast<const __half*>(w2), static_cast<const __half*>(b2), H, D,
               static_cast<__half*>(scratch), static_cast<__half*>(out), ldo, s);
  return cudaErrorInvalidValue;
}
