// ctest: the C++ projector reference on a hand-checkable case, and the CUDA kernel against
// the reference (fp32: |d| <= 1e-4 max|ref| + 1e-5; fp16: 3e-2 max|ref|) when a device exists.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../cuda/fused_projector.h"
#include "../cuda/masked_argmax.h"

#ifdef LLARA_WITH_CUDA
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

static int failures = 0;
static void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL %s\n", what);
    ++failures;
  }
}

static void reference_checks() {
  // C = H = D = 2, identity weights, zero bias: out = GELU(x); row 0 (CLS) dropped, ldo = 3
  const float hidden[6] = {9.0f, 9.0f, 1.0f, -1.0f, 0.0f, 2.5f};
  const float eye[4] = {1, 0, 0, 1}, zero[2] = {0, 0};
  float out[6] = {7, 7, 7, 7, 7, 7};
  expect(llara_fused_projector_ref(hidden, 3, 1, 2, eye, zero, eye, zero, 2, 2, out, 3) == 0,
         "ref returns 0");
  const float x[4] = {1.0f, -1.0f, 0.0f, 2.5f};
  const int at[4] = {0, 1, 3, 4};
  for (int i = 0; i < 4; ++i) {
    const double g = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    expect(std::fabs(out[at[i]] - g) < 1e-6, "ref = GELU_erf on identity weights");
  }
  expect(out[2] == 7.0f && out[5] == 7.0f, "ref leaves the row padding alone");
  expect(llara_fused_projector_ref(hidden, 1, 1, 2, eye, zero, eye, zero, 2, 2, out, 3) == -1,
         "ref rejects an input with no patch rows");
}

#ifdef LLARA_WITH_CUDA
template <typename T>
static T* upload(const std::vector<float>& v) {
  std::vector<T> host(v.size());
  for (size_t i = 0; i < v.size(); ++i) host[i] = static_cast<T>(v[i]);
  T* d = nullptr;
  cudaMalloc(&d, host.size() * sizeof(T));
  cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}

template <typename T>
static double cuda_max_error(int dtype, const std::vector<std::vector<float>>& t, int rows,
                             int C, int H, int D, const std::vector<float>& ref) {
  T *hs = upload<T>(t[0]), *w1 = upload<T>(t[1]), *b1 = upload<T>(t[2]), *w2 = upload<T>(t[3]),
    *b2 = upload<T>(t[4]), *scratch = nullptr, *out = nullptr;
  const int ldo = D + 5;
  cudaMalloc(&scratch, sizeof(T) * (rows - 1) * H);
  cudaMalloc(&out, sizeof(T) * (rows - 1) * ldo);
  expect(llara_fused_projector_cuda(hs, rows, 1, C, w1, b1, w2, b2, H, D, scratch, out, ldo,
                                    dtype, nullptr) == 0, "cuda launch");
  std::vector<T> got(static_cast<size_t>(rows - 1) * ldo);
  cudaMemcpy(got.data(), out, got.size() * sizeof(T), cudaMemcpyDeviceToHost);
  double err = 0;
  for (int i = 0; i < rows - 1; ++i)
    for (int j = 0; j < D; ++j)
      err = std::fmax(err, std::fabs(static_cast<float>(got[i * ldo + j]) - ref[i * D + j]));
  for (T* p : {hs, w1, b1, w2, b2, scratch, out}) cudaFree(p);
  return err;
}
#endif

static int cuda_vs_ref() {
#ifdef LLARA_WITH_CUDA
  if (!llara_cuda_available()) return 0;
  const int rows = 37, C = 40, H = 96, D = 72;
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<std::vector<float>> t = {std::vector<float>(rows * C), std::vector<float>(C * H),
                                       std::vector<float>(H), std::vector<float>(H * D),
                                       std::vector<float>(D)};
  for (auto& v : t)
    for (auto& x : v) x = u(rng);
  std::vector<float> ref(static_cast<size_t>(rows - 1) * D);
  llara_fused_projector_ref(t[0].data(), rows, 1, C, t[1].data(), t[2].data(), t[3].data(),
                            t[4].data(), H, D, ref.data(), D);
  double scale = 0;
  for (float v : ref) scale = std::fmax(scale, std::fabs(v));
  expect(cuda_max_error<float>(LLARA_F32, t, rows, C, H, D, ref) <= 1e-4 * scale + 1e-5,
         "cuda fp32 within 1e-4 of the reference");
  expect(cuda_max_error<__half>(LLARA_F16, t, rows, C, H, D, ref) <= 3e-2 * scale,
         "cuda fp16 within 3e-2 of the reference");
  return 1;
#else
  return 0;
#endif
}

int main() {
  reference_checks();
  const int ran = cuda_vs_ref();
  std::printf("fused_projector: reference checks done; CUDA %s\n",
              ran ? "compared against reference" : "skipped (no CUDA build or device)");
  return failures == 0 ? 0 : 1;
}
