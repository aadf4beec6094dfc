// ctest: the C++ reference on hand-made edge cases, and the CUDA kernel against the reference
// on random rows when a CUDA device is present (reported as skipped otherwise).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../cuda/masked_argmax.h"

#ifdef LLARA_WITH_CUDA
#include <cuda_runtime.h>
#endif

static int failures = 0;
#define EXPECT_EQ(a, b)                                                             \
  do {                                                                              \
    if ((a) != (b)) {                                                               \
      std::printf("FAIL %s:%d: %s = %d, expected %d\n", __FILE__, __LINE__, #a,     \
                  static_cast<int>(a), static_cast<int>(b));                        \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

static void set_bit(std::vector<uint32_t>& m, int i) { m[i >> 5] |= 1u << (i & 31); }

static void edge_cases() {
  const int n = 40;
  std::vector<float> logits(n, 0.0f);
  std::vector<uint32_t> mask(llara_mask_words(n), 0u);
  int32_t out = 7;
  EXPECT_EQ(llara_masked_argmax_ref(logits.data(), mask.data(), 1, n, &out), 0);
  EXPECT_EQ(out, -1);  // nothing allowed
  logits[3] = 5.0f, logits[35] = 5.0f, logits[20] = 9.0f;
  set_bit(mask, 3), set_bit(mask, 35);
  llara_masked_argmax_ref(logits.data(), mask.data(), 1, n, &out);
  EXPECT_EQ(out, 3);  // tie -> lowest index; 20 is larger but masked out
  logits[3] = NAN;
  llara_masked_argmax_ref(logits.data(), mask.data(), 1, n, &out);
  EXPECT_EQ(out, 35);  // NaN never chosen
  EXPECT_EQ(llara_masked_argmax_ref(nullptr, mask.data(), 1, n, &out), -1);
}

static int cuda_vs_ref() {
#ifdef LLARA_WITH_CUDA
  if (!llara_cuda_available()) return 0;
  const int rows = 8, n = 32003, words = llara_mask_words(n);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> logits(static_cast<size_t>(rows) * n);
  std::vector<uint32_t> mask(static_cast<size_t>(rows) * words);
  for (auto& v : logits) v = normal(rng);
  for (auto& w : mask) w = rng() & rng();  // ~25% allowed
  mask[0 * words] = 0;                      // row 0: few allowed, ties below
  logits[5] = logits[9] = 100.0f;
  std::vector<int32_t> ref(rows), got(rows);
  llara_masked_argmax_ref(logits.data(), mask.data(), rows, n, ref.data());
  float* dl;
  uint32_t* dm;
  int32_t* dout;
  cudaMalloc(&dl, logits.size() * 4), cudaMalloc(&dm, mask.size() * 4), cudaMalloc(&dout, rows * 4);
  cudaMemcpy(dl, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dm, mask.data(), mask.size() * 4, cudaMemcpyHostToDevice);
  EXPECT_EQ(llara_masked_argmax_cuda(dl, dm, rows, n, dout, nullptr), 0);
  cudaMemcpy(got.data(), dout, rows * 4, cudaMemcpyDeviceToHost);
  for (int r = 0; r < rows; ++r) EXPECT_EQ(got[r], ref[r]);
  cudaFree(dl), cudaFree(dm), cudaFree(dout);
  return 1;
#else
  return 0;
#endif
}

int main() {
  edge_cases();
  const int ran_cuda = cuda_vs_ref();
  std::printf("masked_argmax: reference checks done; CUDA %s\n",
              ran_cuda ? "compared against reference" : "skipped (no CUDA build or device)");
  return failures == 0 ? 0 : 1;
}
