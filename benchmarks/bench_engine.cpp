// Engine benchmark (issue 2): the machine's fp32 FMA peak, sgemm GFLOP/s against that peak
// and against OpenBLAS side by side, and elementwise / softmax bandwidth.
// Usage: bench_engine [--threads 1,2] [--out FILE] [--quick]
#include <cstring>

#include "benchmarks/bench_common.h"
#include "engine/backend/cpu/gemm.h"
#include "engine/engine.h"

extern "C" {
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc);
void openblas_set_num_threads(int n);
}

using namespace vc;
using namespace vc::bench;

namespace {

// Medians of `reps` alternating calls of ours and theirs, after one warm-up each, and the
// median of the per-pair ratios theirs/ours: on a shared machine each pair sees about the
// same interference, so the ratio is steadier than a ratio of separate medians.
struct PairTimes {
  double ours, theirs, ratio;
};
PairTimes time_pairs(const std::function<void()>& ours, const std::function<void()>& theirs,
                     int reps) {
  ours();
  theirs();
  auto once = [](const std::function<void()>& fn) {
    auto a = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  };
  std::vector<double> to, tt, r;
  for (int i = 0; i < reps; ++i) {
    to.push_back(once(ours));
    tt.push_back(once(theirs));
    r.push_back(tt.back() / to.back());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(to), median(tt), median(r)};
}

struct Shape3 {
  int M, N, K;
  std::string name;
  bool trans_a = false;  // A stored [K, M], as in a weight gradient x^T g
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts = {1, 2};
  std::string out;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      thread_counts.clear();
      for (std::string s = argv[++i]; !s.empty();) {
        size_t c = s.find(',');
        thread_counts.push_back(std::stoi(s.substr(0, c)));
        s = c == std::string::npos ? "" : s.substr(c + 1);
      }
    } else {
      std::fprintf(stderr, "bench_engine: unknown argument '%s'\n", argv[i]);
      return 1;
    }
  }
  std::vector<Shape3> shapes = {{256, 256, 256, "square 256"},
                                {512, 512, 512, "square 512"},
                                {1024, 1024, 1024, "square 1024"},
                                {1576, 2304, 768, "ViT-B/16 qkv 1576x768x2304"},
                                {1576, 768, 768, "ViT-B/16 attn-out 1576x768x768"},
                                {1576, 3072, 768, "ViT-B/16 mlp-fc 1576x768x3072"},
                                {1576, 768, 3072, "ViT-B/16 mlp-proj 1576x3072x768"},
                                {2176, 384, 128, "tiny qkv 2176x128x384"},
                                {2176, 512, 128, "tiny mlp-fc 2176x128x512"},
                                {128, 384, 2176, "tiny weight-grad x^T g 128x2176x384", true}};
  if (!quick) shapes.insert(shapes.begin() + 3, {2048, 2048, 2048, "square 2048"});

  Json j;
  j.begin_object();
  j.key("benchmark").value("engine");
  j.key("machine").begin_object();
  j.key("cpu").value(cpu_model());
  j.key("hardware_threads").value(double(std::thread::hardware_concurrency()));
#ifdef EIGEN_USE_BLAS
  j.key("eigen_gemm").value("OpenBLAS (EIGEN_USE_BLAS)");
#else
  j.key("eigen_gemm").value("Eigen");
#endif
  // float32 GEMM path (VERBCLIP_GEMM_ISA=avx512|avx2|scalar forces one).
  j.key("sgemm_path").value(cpu_kernels::gemm_isa_name(cpu_kernels::gemm_isa()));
  j.end_object();
  j.key("runs").begin_array();
  for (int threads : thread_counts) {
    set_num_threads(threads);
    openblas_set_num_threads(threads);
    double peak = fma_peak_gflops(threads);
    j.begin_object();
    j.key("threads").value(double(threads));
    j.key("fma_peak_gflops").value(peak);
    j.key("sgemm").begin_array();
    for (const Shape3& s : shapes) {
      Tensor a = s.trans_a ? rand_normal({s.K, s.M}, 1, 0) : rand_normal({s.M, s.K}, 1, 0);
      Tensor b = rand_normal({s.K, s.N}, 1, 1);
      Tensor op_a = s.trans_a ? a.transpose(0, 1) : a;  // a view: the GEMM reads it transposed
      int reps = s.M * double(s.N) * s.K > 2e9 ? 5 : 11;
      std::vector<float> c(size_t(s.M) * s.N);
      PairTimes t = time_pairs([&] { matmul(op_a, b); }, [&] {
        cblas_sgemm(101 /*row major*/, s.trans_a ? 112 : 111, 111, s.M, s.N, s.K, 1.f,
                    a.data<float>(), s.trans_a ? s.M : s.K, b.data<float>(), s.N, 0.f, c.data(),
                    s.N);
      }, reps);
      double ours = t.ours, theirs = t.theirs;
      double flops = 2.0 * s.M * double(s.N) * s.K;
      j.begin_object();
      j.key("shape").value(s.name);
      j.key("ours_gflops").value(flops / ours / 1e9);
      j.key("fraction_of_peak").value(flops / ours / 1e9 / peak);
      j.key("openblas_gflops").value(flops / theirs / 1e9);
      j.key("ours_over_openblas").value(t.ratio);  // median of paired runs
      j.end_object();
    }
    j.end_array();
    // Bandwidth: bytes read + written per second.
    int64_t n = 1 << 24;
    Tensor x = rand_normal({n}, 2, 0), y = rand_normal({n}, 2, 1);
    double t_add = time_median([&] { add(x, y); }, 7);
    double t_gelu = time_median([&] { quick_gelu(x); }, 7);
    Tensor rows = rand_normal({16384, 1024}, 2, 2);
    double t_softmax = time_median([&] { softmax(rows, -1); }, 7);
    j.key("add_gbps").value(3.0 * n * 4 / t_add / 1e9);
    j.key("quick_gelu_gbps").value(2.0 * n * 4 / t_gelu / 1e9);
    j.key("softmax_16384x1024_gbps").value(2.0 * rows.numel() * 4 / t_softmax / 1e9);
    j.end_object();
  }
  j.end_array();
  j.end_object();
  emit(j, out);
  return 0;
}
