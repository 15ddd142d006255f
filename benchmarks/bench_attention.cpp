// Attention benchmark (issue 3): CLAVER's masked temporal attention at T·L = 8×50 (ViT-B/32)
// and 8×197 (ViT-B/16), width 768, 12 heads, batch 1. The tiled op (engine/ops/attention.h)
// against a naive dense op composed of engine ops (scores, + dense -inf mask, softmax, P V):
// time (fastest and median of N calls) and peak extra memory (backend allocator counters) of the forward, and of
// forward + backward. Ratios to read: KMCTA / KMTA time (skipped tiles, target <= 0.6),
// tiled / naive time (target <= 1), tiled peak memory 8×197 / 8×50 (linear: ~3.9; the naive
// op is quadratic: ~15.5).
// Usage: bench_attention [--out FILE] [--reps N] [--quick]   (--quick: forward only)
#include <time.h>

#include <cmath>
#include <cstring>

#include "benchmarks/bench_common.h"
#include "engine/backend/backend.h"
#include "engine/engine.h"

using namespace vc;
using namespace vc::bench;

namespace {

Tensor dense_mask(const KronMask& m) {
  int64_t n = m.T * m.L;
  std::vector<float> v(size_t(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) v[size_t(i * n + j)] = m.visible(i, j) ? 0.f : -INFINITY;
  return Tensor::from_vector(v, {n, n});
}

Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  Tensor s = add(mul(matmul(q, k.transpose(2, 3)), 1.0 / std::sqrt(double(q.size(3)))), mask);
  return matmul(softmax(s, -1), v);
}

struct Measure {
  double seconds = 0;      // the fastest of `reps` calls: the least disturbed by other load
  double median = 0;       // median of the same calls
  double cpu = 0;          // fewest process CPU seconds (all threads) of the same calls
  int64_t peak_extra = 0;  // peak bytes above what was live before the call
};

// The machine is shared, so the minimum over calls (after a warm-up) is the figure to
// compare; the median is reported beside it.
Measure measure(const std::function<void()>& fn, int reps) {
  const Backend& be = backend_for(cpu());
  Measure m;
  fn();
  std::vector<double> t, c;
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  for (int i = 0; i < reps; ++i) {
    double c0 = cpu_now();
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    c.push_back(cpu_now() - c0);
  }
  std::sort(t.begin(), t.end());
  m.cpu = *std::min_element(c.begin(), c.end());
  m.seconds = t.front();
  m.median = t[t.size() / 2];
  int64_t live = be.memory.stats().live_bytes;
  be.memory.reset_peak();
  fn();
  m.peak_extra = be.memory.stats().peak_bytes - live;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  int reps = 5;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
  }
  const int64_t B = 1, H = 12, D = 768, d = D / H, T = 8;
  Json j;
  j.begin_object();
  j.key("bench").value("attention");
  j.key("cpu").value(cpu_model());
  j.key("threads").value(double(num_threads()));
  j.key("shape").value("B=1, H=12, d_h=64, T=8");
  j.key("cases").begin_array();
  // [size][fwd, fwdbwd, fwd cpu, fwdbwd cpu]
  double kmta_time[2][4] = {}, kmcta_time[2][4] = {}, tiled_peak[2] = {}, naive_peak[2] = {};
  int li = 0;
  for (int64_t L : {50, 197}) {
    int64_t n = T * L;
    Tensor q = rand_normal({B, H, n, d}, 1, 0), k = rand_normal({B, H, n, d}, 2, 0),
           v = rand_normal({B, H, n, d}, 3, 0), w = rand_normal({B, H, n, d}, 4, 0);
    for (const char* name : {"kmta", "kmcta"}) {
      KronMask m = std::string(name) == "kmta" ? KronMask::kmta(T, L) : KronMask::kmcta(T, L);
      Tensor mask = dense_mask(m);
      AttentionOptions opt;
      opt.mask = AttentionMask::kronecker(m);
      // forward (inference)
      Measure tf = measure([&] { NoGradGuard g; attention(q, k, v, opt); }, reps);
      Measure nf = measure([&] { NoGradGuard g; naive_attention(q, k, v, mask); }, reps);
      // forward + backward (training)
      Measure tb, nb;
      if (!quick) {
        auto train = [&](bool tiled) {
          Tensor qg = q.detach().set_requires_grad(), kg = k.detach().set_requires_grad(),
                 vg = v.detach().set_requires_grad();
          Tensor o = tiled ? attention(qg, kg, vg, opt) : naive_attention(qg, kg, vg, mask);
          sum(mul(o, w)).backward();
        };
        tb = measure([&] { train(true); }, reps);
        nb = measure([&] { train(false); }, reps);
      }
      bool is_kmta = std::string(name) == "kmta";
      (is_kmta ? kmta_time : kmcta_time)[li][0] = tf.seconds;
      (is_kmta ? kmta_time : kmcta_time)[li][1] = tb.seconds;
      (is_kmta ? kmta_time : kmcta_time)[li][2] = tf.cpu;
      (is_kmta ? kmta_time : kmcta_time)[li][3] = tb.cpu;
      if (is_kmta) tiled_peak[li] = double(tf.peak_extra), naive_peak[li] = double(nf.peak_extra);
      j.begin_object();
      j.key("mask").value(name);
      j.key("T").value(double(T));
      j.key("L").value(double(L));
      j.key("tokens").value(double(n));
      j.key("fwd_tiled_ms").value(tf.seconds * 1e3);
      j.key("fwd_naive_ms").value(nf.seconds * 1e3);
      j.key("fwd_tiled_cpu_ms").value(tf.cpu * 1e3);
      j.key("fwd_naive_cpu_ms").value(nf.cpu * 1e3);
      j.key("fwd_tiled_median_ms").value(tf.median * 1e3);
      j.key("fwd_naive_median_ms").value(nf.median * 1e3);
      j.key("fwd_tiled_over_naive").value(tf.seconds / nf.seconds);
      j.key("fwd_tiled_peak_extra_MB").value(double(tf.peak_extra) / 1e6);
      j.key("fwd_naive_peak_extra_MB").value(double(nf.peak_extra) / 1e6);
      if (!quick) {
        j.key("fwdbwd_tiled_ms").value(tb.seconds * 1e3);
        j.key("fwdbwd_naive_ms").value(nb.seconds * 1e3);
        j.key("fwdbwd_tiled_cpu_ms").value(tb.cpu * 1e3);
        j.key("fwdbwd_naive_cpu_ms").value(nb.cpu * 1e3);
        j.key("fwdbwd_tiled_median_ms").value(tb.median * 1e3);
        j.key("fwdbwd_naive_median_ms").value(nb.median * 1e3);
        j.key("fwdbwd_tiled_over_naive").value(tb.seconds / nb.seconds);
        j.key("fwdbwd_tiled_peak_extra_MB").value(double(tb.peak_extra) / 1e6);
        j.key("fwdbwd_naive_peak_extra_MB").value(double(nb.peak_extra) / 1e6);
      }
      j.end_object();
    }
    ++li;
  }
  j.end_array();
  j.key("summary").begin_object();
  const char* tag[2] = {"8x50", "8x197"};
  for (int i = 0; i < 2; ++i) {
    j.key(std::string("fwd_kmcta_over_kmta_") + tag[i]).value(kmcta_time[i][0] / kmta_time[i][0]);
    j.key(std::string("fwd_kmcta_over_kmta_cpu_") + tag[i]).value(kmcta_time[i][2] / kmta_time[i][2]);
    if (!quick) {
      j.key(std::string("fwdbwd_kmcta_over_kmta_") + tag[i]).value(kmcta_time[i][1] / kmta_time[i][1]);
      j.key(std::string("fwdbwd_kmcta_over_kmta_cpu_") + tag[i]).value(kmcta_time[i][3] / kmta_time[i][3]);
    }
  }
  j.key("tiled_peak_growth_8x197_over_8x50").value(tiled_peak[1] / tiled_peak[0]);
  j.key("naive_peak_growth_8x197_over_8x50").value(naive_peak[1] / naive_peak[0]);
  j.key("sequence_growth").value(197.0 / 50.0);
  j.end_object();
  j.end_object();
  emit(j, out);
  return 0;
}
