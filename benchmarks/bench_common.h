// Timing and JSON helpers shared by the benchmark programs.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace vc::bench {

// "a,b,,c" -> {"a", "b", "c"}: the comma lists of the benchmarks' options.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

// Median seconds of `reps` calls after one warm-up call.
inline double time_median(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Fastest of `reps` calls: for a peak, where any slower run only measures interference.
inline double time_min(const std::function<void()>& fn, int reps) {
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  return best;
}

// ---------------------------------------------------------------- FMA peak
// A register-resident FMA loop: 12 independent accumulators per thread, each one vector of
// fused multiply-adds (explicit intrinsics: the build keeps floating-point contraction off),
// so the FMA pipes, not latency or memory, bound it.
#if defined(__AVX512F__)
using FmaVec = __m512;
constexpr int kFmaLanes = 16;
inline FmaVec fma_vfma(FmaVec a, FmaVec b, FmaVec c) { return _mm512_fmadd_ps(a, b, c); }
inline FmaVec fma_vset(float x) { return _mm512_set1_ps(x); }
inline float fma_vfirst(FmaVec v) { return _mm512_cvtss_f32(v); }
#else
using FmaVec = __m256;
constexpr int kFmaLanes = 8;
inline FmaVec fma_vfma(FmaVec a, FmaVec b, FmaVec c) { return _mm256_fmadd_ps(a, b, c); }
inline FmaVec fma_vset(float x) { return _mm256_set1_ps(x); }
inline float fma_vfirst(FmaVec v) { return _mm256_cvtss_f32(v); }
#endif

// One thread's loop, outside the OpenMP region so the accumulators stay in registers.
__attribute__((noinline)) inline float fma_loop(long iters) {
  FmaVec acc[12];
  FmaVec a = fma_vset(0.999999f), b = fma_vset(1e-7f);
  for (int i = 0; i < 12; ++i) acc[i] = fma_vset(float(i));
  for (long it = 0; it < iters / 12; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = fma_vfma(acc[i], a, b);
  float sink = 0;
  for (int i = 0; i < 12; ++i) sink += fma_vfirst(acc[i]);
  return sink;
}

// The machine's fp32 FMA peak on `threads` threads, GFLOP/s (2 FLOPs per lane per FMA): the
// fastest of 7 runs of 30 M FMA vectors per thread.
inline double fma_peak_gflops(int threads) {
  const long iters = 30'000'000;
  double seconds = time_min([&] {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_loop(iters);
    volatile float keep = sink;
    (void)keep;
  }, 7);
  double flops = double(threads) * double(iters / 12) * 12 * kFmaLanes * 2;
  return flops / seconds / 1e9;
}

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// A minimal JSON writer: objects and arrays of numbers and strings, enough for reports.
class Json {
 public:
  Json() { os_.precision(10); }  // parameter counts and FLOPs keep their digits
  Json& key(const std::string& k) {
    sep();
    os_ << '"' << k << "\": ";
    fresh_ = true;
    return *this;
  }
  Json& value(double v) {
    sep();
    os_ << v;
    return *this;
  }
  Json& value(const std::string& s) {
    sep();
    os_ << '"' << s << '"';
    return *this;
  }
  Json& begin_object() { return open('{'); }
  Json& end_object() { return close('}'); }
  Json& begin_array() { return open('['); }
  Json& end_array() { return close(']'); }
  std::string str() const { return os_.str(); }

 private:
  void sep() {
    if (!fresh_) os_ << ", ";
    fresh_ = false;
  }
  Json& open(char c) {
    sep();
    os_ << c;
    fresh_ = true;
    return *this;
  }
  Json& close(char c) {
    os_ << c;
    fresh_ = false;
    return *this;
  }
  std::ostringstream os_;
  bool fresh_ = true;
};

// Prints the report and writes it to `path` when given.
inline void emit(const Json& j, const std::string& path) {
  std::printf("%s\n", j.str().c_str());
  if (!path.empty()) std::ofstream(path) << j.str() << "\n";
}

}  // namespace vc::bench
