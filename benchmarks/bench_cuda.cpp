// CUDA benchmark (issue 5), JSON on stdout: cuBLAS sgemm and batched matmul TFLOP/s, and the
// fused tiled attention kernel against a dense masked softmax attention built from engine
// ops (scores = Q Kᵀ, + dense -inf mask, softmax, P V) on the same GPU, at T·L = 8×197,
// width 768, 12 heads (d = 64), batch 1: time (fastest and median of N calls) and peak extra
// device memory (allocator counters) of the forward and of forward + backward; KMCTA / KMTA
// time ratio (skipped tiles). Without a GPU: {"skipped": "no CUDA device"}.
// Usage: bench_cuda [--reps N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/engine.h"
#ifdef VERBCLIP_WITH_CUDA
#include "engine/backend/cuda/cuda_kernels.h"
#endif

using namespace vc;

namespace {

void sync() {
#ifdef VERBCLIP_WITH_CUDA
  cuda_kernels::synchronize();
#endif
}

struct Measure {
  double best = 0, median = 0;
  int64_t peak_extra = 0;
};

Measure measure(const std::function<void()>& f, int reps) {
  const Backend& be = backend_for(cuda());
  f();  // warm-up (plans, cuBLAS handle, cache)
  sync();
  std::vector<double> t;
  Measure m;
  for (int r = 0; r < reps; ++r) {
    be.memory.reset_peak();
    int64_t live0 = be.memory.stats().live_bytes;
    auto t0 = std::chrono::steady_clock::now();
    f();
    sync();
    auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(t1 - t0).count());
    m.peak_extra = std::max(m.peak_extra, be.memory.stats().peak_bytes - live0);
  }
  std::sort(t.begin(), t.end());
  m.best = t.front();
  m.median = t[t.size() / 2];
  return m;
}

std::string json(const Measure& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "{\"seconds\": %.6g, \"median\": %.6g, \"peak_extra_bytes\": %lld}",
                m.best, m.median, (long long)m.peak_extra);
  return buf;
}

Tensor dense_mask(const KronMask& m) {
  int64_t n = m.T * m.L;
  std::vector<float> v(size_t(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) v[size_t(i * n + j)] = m.visible(i, j) ? 0.f : -INFINITY;
  return Tensor::from_vector(v, {n, n}).to(cuda());
}

Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  Tensor s = add(mul(matmul(q, k.transpose(2, 3)), 1.0 / std::sqrt(double(q.size(3)))), mask);
  return matmul(softmax(s, -1), v);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 10;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--reps")) reps = std::max(1, std::atoi(argv[i + 1]));
  if (!cuda_available()) {
    std::printf("{\"skipped\": \"no CUDA device\"}\n");
    return 0;
  }
  Device d = cuda();
  std::string out = "{\n  \"device\": \"cuda:0\",\n";
  {  // GEMMs
    NoGradGuard ng;
    auto gemm_case = [&](const char* name, Shape sa, Shape sb, double flops) {
      Tensor a = rand_normal(sa, 1, 1, 0, 1, DType::F32, d), b = rand_normal(sb, 2, 1, 0, 1, DType::F32, d);
      Measure m = measure([&] { matmul(a, b); }, reps);
      char buf[256];
      std::snprintf(buf, sizeof buf, "  \"%s\": {\"seconds\": %.6g, \"tflops\": %.4g},\n", name,
                    m.best, flops / m.best / 1e12);
      out += buf;
    };
    gemm_case("sgemm_4096", {4096, 4096}, {4096, 4096}, 2.0 * 4096.0 * 4096 * 4096);
    gemm_case("sgemm_1576x768x3072", {1576, 768}, {768, 3072}, 2.0 * 1576 * 768 * 3072);
    gemm_case("bmm_96x197x64x197", {96, 197, 64}, {96, 64, 197}, 2.0 * 96 * 197 * 64 * 197);
    gemm_case("bmm_64x512x512x512", {64, 512, 512}, {64, 512, 512}, 2.0 * 64 * 512 * 512 * 512);
  }
  // Attention at T·L = 8×197, width 768, 12 heads.
  const int64_t T = 8, L = 197, H = 12, dh = 64, N = T * L;
  Tensor q = rand_normal({1, H, N, dh}, 3, 1, 0, 1, DType::F32, d);
  Tensor k = rand_normal({1, H, N, dh}, 4, 1, 0, 1, DType::F32, d);
  Tensor v = rand_normal({1, H, N, dh}, 5, 1, 0, 1, DType::F32, d);
  Tensor gout = rand_normal({1, H, N, dh}, 6, 1, 0, 1, DType::F32, d);
  double tf = 0, tb = 0;
  out += "  \"attention\": {\"T\": 8, \"L\": 197, \"heads\": 12, \"width\": 768,\n";
  for (auto [name, km] : {std::pair<const char*, KronMask>{"kmcta", KronMask::kmcta(T, L)},
                          std::pair<const char*, KronMask>{"kmta", KronMask::kmta(T, L)}}) {
    AttentionOptions o;
    o.mask = AttentionMask::kronecker(km);
    Tensor mask = dense_mask(km);
    Measure fwd, fb, dfwd, dfb;
    {
      NoGradGuard ng;
      fwd = measure([&] { attention(q, k, v, o); }, reps);
      dfwd = measure([&] { dense_attention(q, k, v, mask); }, reps);
    }
    auto fwd_bwd = [&](bool dense) {
      Tensor qq = q.detach(), kk = k.detach(), vv = v.detach();
      qq.set_requires_grad(true), kk.set_requires_grad(true), vv.set_requires_grad(true);
      Tensor y = dense ? dense_attention(qq, kk, vv, mask) : attention(qq, kk, vv, o);
      sum(mul(y, gout)).backward();
    };
    fb = measure([&] { fwd_bwd(false); }, reps);
    dfb = measure([&] { fwd_bwd(true); }, reps);
    if (std::string(name) == "kmcta") tf = fwd.best, tb = fb.best;
    else tf /= fwd.best, tb /= fb.best;
    out += std::string("    \"") + name + "\": {\"tiled_forward\": " + json(fwd) +
           ", \"dense_forward\": " + json(dfwd) + ",\n      \"tiled_forward_backward\": " +
           json(fb) + ", \"dense_forward_backward\": " + json(dfb) + "},\n";
  }
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "    \"kmcta_over_kmta_forward\": %.4g, \"kmcta_over_kmta_forward_backward\": %.4g\n  }\n}\n",
                tf, tb);
  out += buf;
  std::fputs(out.c_str(), stdout);
  return 0;
}
