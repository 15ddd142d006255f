// Run under `mpirun -np W` by tests/dist/test_dist.cpp: the MPI communicator's collectives
// against what one process computes. Every rank can make every rank's buffer (keyed by rank),
// so each checks, bitwise, that allreduce_sum equals the sequential sum in rank order
//   ((init + x_0) + x_1) + ... + x_{W-1}
// for awkward sizes (0, 1, fewer floats than ranks, primes, a large bucket), with and without
// init, in place; that broadcast and allgather move the bytes; and, as a control that the
// check can fail, that adding in reverse order changes some bits. Prints "dist_check OK" on
// success, else the first mismatch, and exits non-zero.
// --nccl (builds with NCCL, one GPU per rank): the NCCL communicator's sum of device buffers
// against the host sum, within float rounding; prints "nccl_check OK".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/dist/communicator.h"

#if VERBCLIP_WITH_NCCL
#include <cuda_runtime.h>
#endif

namespace {

// Values of very different magnitudes, so the order of additions shows in the bits.
std::vector<float> buffer(int rank, int64_t n, uint64_t salt) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t h = (uint64_t(rank) * 0x9E3779B97F4A7C15ull) ^ (uint64_t(i) * 0xBF58476D1CE4E5B9ull) ^ salt;
    h ^= h >> 31, h *= 0x94D049BB133111EBull, h ^= h >> 29;
    const double u = double(h >> 11) / double(1ull << 53);
    v[size_t(i)] = float((u - 0.5) * std::pow(10.0, double(int(h % 7)) - 3));
  }
  return v;
}

int fails = 0;
void expect(bool ok, const std::string& what, int rank) {
  if (!ok && fails++ < 5) std::printf("rank %d: FAILED %s\n", rank, what.c_str());
}

}  // namespace

#if VERBCLIP_WITH_NCCL
int nccl_check(vc::dist::Communicator& host) {
  auto c = vc::dist::make_nccl(host);
  const int W = c->size(), R = c->rank();
  const int64_t n = 100003;
  std::vector<float> mine = buffer(R, n, 1), out(static_cast<size_t>(n)), want(static_cast<size_t>(n), 0.f);
  for (int r = 0; r < W; ++r) {
    const auto x = buffer(r, n, 1);
    for (int64_t i = 0; i < n; ++i) want[size_t(i)] += x[size_t(i)];
  }
  float *d_in = nullptr, *d_out = nullptr;
  if (cudaMalloc(&d_in, size_t(n) * 4) != cudaSuccess || cudaMalloc(&d_out, size_t(n) * 4) != cudaSuccess) {
    std::printf("rank %d: cudaMalloc failed\n", R);
    return 1;
  }
  cudaMemcpy(d_in, mine.data(), size_t(n) * 4, cudaMemcpyHostToDevice);
  c->allreduce_sum(d_in, d_out, n, nullptr);
  cudaMemcpy(out.data(), d_out, size_t(n) * 4, cudaMemcpyDeviceToHost);
  double worst = 0;
  for (int64_t i = 0; i < n; ++i)
    worst = std::max(worst, std::fabs(double(out[size_t(i)]) - want[size_t(i)]) /
                                (1e-6 + 1e-5 * std::fabs(double(want[size_t(i)]))));
  cudaFree(d_in), cudaFree(d_out);
  std::printf("rank %d of %d: %s (worst |nccl - host| / (1e-6 + 1e-5 |host|) = %.3g)\n", R, W,
              worst <= 1 ? "nccl_check OK" : "nccl_check FAILED", worst);
  return worst <= 1 ? 0 : 1;
}
#endif

int main(int argc, char** argv) {
  try {
    vc::dist::Communicator& c = vc::dist::world();
    const int W = c.size(), R = c.rank();
    if (argc > 1 && std::string(argv[1]) == "--nccl") {
#if VERBCLIP_WITH_NCCL
      const int code = nccl_check(c);
      vc::dist::finalize();
      return code;
#else
      std::printf("dist_check: built without NCCL\n");
      return 1;
#endif
    }
    bool order_matters = false;
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(W - 1), int64_t(7), int64_t(1009), int64_t(262147)}) {
      if (n < 0) continue;
      for (int with_init = 0; with_init < 2; ++with_init) {
        const auto init = buffer(-1, n, 7);
        std::vector<float> want(static_cast<size_t>(n)), reverse(static_cast<size_t>(n));
        std::vector<std::vector<float>> xs;
        for (int r = 0; r < W; ++r) xs.push_back(buffer(r, n, 1));
        for (int64_t i = 0; i < n; ++i) {
          float s = with_init ? init[size_t(i)] : 0.f;
          bool first = !with_init;
          for (int r = 0; r < W; ++r) {
            const float x = xs[size_t(r)][size_t(i)];
            s = first ? x : s + x, first = false;
          }
          want[size_t(i)] = s;
          float t = with_init ? init[size_t(i)] : 0.f;
          first = !with_init;
          for (int r = W - 1; r >= 0; --r) {
            const float x = xs[size_t(r)][size_t(i)];
            t = first ? x : t + x, first = false;
          }
          reverse[size_t(i)] = t;
        }
        std::vector<float> mine = buffer(R, n, 1), out(size_t(n), NAN);
        c.allreduce_sum(mine.data(), out.data(), n, with_init ? init.data() : nullptr);
        expect(std::memcmp(out.data(), want.data(), size_t(n) * sizeof(float)) == 0,
               "allreduce_sum n=" + std::to_string(n) + " init=" + std::to_string(with_init), R);
        // In place: the running sum is both init and out.
        std::vector<float> acc = init;
        c.allreduce_sum(mine.data(), acc.data(), n, with_init ? acc.data() : nullptr);
        expect(std::memcmp(acc.data(), want.data(), size_t(n) * sizeof(float)) == 0,
               "allreduce_sum in place n=" + std::to_string(n), R);
        if (std::memcmp(reverse.data(), want.data(), size_t(n) * sizeof(float)) != 0) order_matters = true;
      }
    }
    std::string payload = "rank" + std::string(size_t(R) * 3 + 1, char('a' + R));
    const auto all = c.allgather(payload);
    expect(int(all.size()) == W, "allgather count", R);
    for (int r = 0; r < W && r < int(all.size()); ++r)
      expect(all[size_t(r)] == "rank" + std::string(size_t(r) * 3 + 1, char('a' + r)), "allgather bytes", R);
    double x = R == 0 ? 3.25 : -1;
    c.broadcast(&x, sizeof x, 0);
    expect(x == 3.25, "broadcast", R);
    c.barrier();
    if (W > 1) expect(order_matters, "control: the reverse order should change some bits", R);
    std::printf("rank %d of %d (%s): %s%s\n", R, W, c.name().c_str(), fails ? "dist_check FAILED" : "dist_check OK",
                W > 1 && order_matters ? " (the reverse order gives other bits)" : "");
    std::fflush(stdout);
    vc::dist::finalize();
    return fails ? 1 : 0;
  } catch (const std::exception& e) {
    std::printf("dist_check error: %s\n", e.what());
    vc::dist::abort_world(1);
    return 1;
  }
}
