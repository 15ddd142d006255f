// The float32 GEMM kernel (engine/backend/cpu/gemm.cpp) called directly: against a naive
// double loop on edge sizes, transposes, batches, strides, alpha and beta; bit for bit
// against its stated order of operations (one FMA chain per K block, blocks summed in
// order); and the same bits on 1 and 2 threads and on every forced ISA path.
#include <cmath>
#include <cstring>

#include "engine/backend/cpu/gemm.h"
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;
using namespace vc::cpu_kernels;

namespace {

struct G {
  int64_t batch, M, N, K;
  bool ta, tb;
  float alpha = 1, beta = 0;
  int64_t pad = 0;  // extra elements between batch entries of A, B and C
  bool shared_b = false;  // B's batch stride 0: one B for every entry
};

std::string isa_str(GemmIsa isa) { return gemm_isa_name(isa); }

std::string name_of(const G& g) {
  return std::string() + std::to_string(g.batch) + "x" + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" +
         std::to_string(g.K) + (g.ta ? " ta" : "") + (g.tb ? " tb" : "") +
         " alpha " + std::to_string(g.alpha) + " beta " + std::to_string(g.beta) +
         (g.pad ? " padded" : "") + (g.shared_b ? " shared B" : "");
}

// Operands with random values in [-1, 1) using all 24 bits of a float's mantissa, so
// products round and any change in the order of operations shows in the bits; strides and
// an initial C.
struct Data {
  G g;
  int64_t sa, sb, sc;
  std::vector<float> A, B, C0;
  explicit Data(const G& g_) : g(g_) {
    sa = g.M * g.K + g.pad;
    sb = g.shared_b ? 0 : g.K * g.N + g.pad;
    sc = g.M * g.N + g.pad;
    uint64_t s = 0x9e3779b97f4a7c15ull ^ uint64_t(g.M * 131 + g.N * 17 + g.K);
    auto next = [&] {  // xorshift
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      return float(int64_t(s >> 40) - (int64_t(1) << 23)) / float(1 << 23);
    };
    A.resize(size_t(sa * g.batch));
    B.resize(size_t(g.shared_b ? g.K * g.N : sb * g.batch));
    C0.resize(size_t(sc * g.batch));
    for (float& x : A) x = next();
    for (float& x : B) x = next();
    for (float& x : C0) x = next();
  }
  float a(int64_t b, int64_t i, int64_t k) const { return A[b * sa + (g.ta ? k * g.M + i : i * g.K + k)]; }
  float bv(int64_t b, int64_t k, int64_t j) const { return B[b * sb + (g.tb ? j * g.K + k : k * g.N + j)]; }
  std::vector<float> run() const {
    std::vector<float> C = C0;
    if (g.beta == 0)  // beta = 0 must not read C: NaN there must not show
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t e = 0; e < g.M * g.N; ++e) C[b * sc + e] = NAN;
    sgemm(g.ta, g.tb, g.batch, g.M, g.N, g.K, g.alpha, A.data(), sa, B.data(), sb, g.beta,
          C.data(), sc);
    return C;
  }
};

std::vector<G> shapes() {
  std::vector<G> r;
  // Edge sizes around every path's MR (4, 6, 12), NR (16, 32) and the K block (256).
  for (int64_t M : {1, 5, 7, 11, 13, 25}) r.push_back({1, M, 33, 19, false, false});
  for (int64_t N : {1, 15, 17, 31, 33, 65}) r.push_back({1, 13, N, 19, false, false});
  for (int64_t K : {1, 2, 255, 256, 257, 513, 600}) r.push_back({1, 13, 31, K, false, false});
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      r.push_back({1, 37, 45, 300, ta, tb});
      r.push_back({1, 97, 1030, 70, ta, tb});    // more than one task of rows and of columns
      r.push_back({1, 40, 48, 1100, ta, tb});    // few tiles, long K: K blocks split
      r.push_back({3, 13, 17, 270, ta, tb, 1, 0, 5});  // batch with gaps between entries
    }
  r.push_back({4, 12, 32, 257, false, true, 1, 0, 0, true});  // B shared by the batch
  r.push_back({200, 20, 30, 40, true, false});  // many small entries: threaded by entry
  r.push_back({1, 19, 23, 300, false, false, 0.5f, 0});
  r.push_back({1, 19, 23, 300, true, true, -1.25f, 1.5f});
  r.push_back({2, 19, 23, 600, false, true, 1, 1, 3});
  r.push_back({2, 7, 9, 0, false, false, 1, 0.5f});  // K = 0: C = beta C
  return r;
}

// The order the kernel promises, written plainly: per K block an FMA chain from 0, blocks
// added in order, then alpha and beta.
std::vector<float> stated_order(const Data& d) {
  const G& g = d.g;
  std::vector<float> C = d.C0;
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) {
        float sum = 0;
        for (int64_t k0 = 0; k0 < g.K; k0 += kGemmKC) {
          float acc = 0;
          for (int64_t k = k0; k < std::min(g.K, k0 + kGemmKC); ++k)
            acc = std::fma(d.a(b, i, k), d.bv(b, k, j), acc);
          sum = k0 == 0 ? acc : sum + acc;
        }
        float& c = C[b * d.sc + i * g.N + j];
        float s = g.alpha * sum;
        c = g.beta == 0 ? (g.K == 0 ? 0.f : s) : (g.K == 0 ? g.beta * c : std::fma(g.beta, c, s));
      }
  return C;
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::memcmp(&x[i], &y[i], sizeof(float))) { MESSAGE("first difference at ", i, ": ", x[i], " vs ", y[i]); return false; }
  return true;
}

// Restores the ISA path and thread count a test case changes.
struct Restore {
  GemmIsa isa = gemm_isa();
  int threads = num_threads();
  ~Restore() {
    set_gemm_isa(isa);
    set_num_threads(threads);
  }
};

std::vector<GemmIsa> supported_isas() {
  std::vector<GemmIsa> r;
  for (GemmIsa isa : {GemmIsa::Scalar, GemmIsa::Avx2, GemmIsa::Avx512}) {
    if (gemm_isa_supported(isa)) r.push_back(isa);
    else MESSAGE("SKIPPED gemm path ", isa_str(isa), ": this CPU lacks it");
  }
  return r;
}

}  // namespace

TEST_CASE("gemm: float32 against a naive double loop, every path") {
  Restore restore;
  for (GemmIsa isa : supported_isas()) {
    set_gemm_isa(isa);
    for (const G& g : shapes()) {
      Data d(g);
      std::vector<float> C = d.run();
      bool ok = true;
      for (int64_t b = 0; b < g.batch && ok; ++b)
        for (int64_t i = 0; i < g.M && ok; ++i)
          for (int64_t j = 0; j < g.N && ok; ++j) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < g.K; ++k) {
              s += double(d.a(b, i, k)) * d.bv(b, k, j);
              mag += std::abs(double(d.a(b, i, k)) * d.bv(b, k, j));
            }
            double c0 = d.C0[b * d.sc + i * g.N + j];
            double ref = g.alpha * s + (g.beta == 0 ? 0.0 : g.beta * c0);
            double got = C[b * d.sc + i * g.N + j];
            double tol = 1e-6 * (std::abs(g.alpha) * mag + std::abs(g.beta * c0)) + 1e-7;
            if (!(std::abs(got - ref) <= tol)) {
              ok = false;
              FAIL_CHECK(isa_str(isa), " ", name_of(g), ": C[", b, "][", i, "][", j,
                         "] = ", got, ", expected ", ref);
            }
          }
      // The padding between entries is never written.
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t e = g.M * g.N; e < d.sc && b * d.sc + e < int64_t(C.size()); ++e)
          CHECK_MESSAGE(same_bits({C[b * d.sc + e]}, {d.C0[b * d.sc + e]}), name_of(g), " wrote a gap");
    }
  }
}

TEST_CASE("gemm: bit for bit the stated order (FMA chain per K block, blocks in order)") {
  Restore restore;
  for (GemmIsa isa : supported_isas()) {
    set_gemm_isa(isa);
    for (const G& g : shapes()) {
      Data d(g);
      CHECK_MESSAGE(same_bits(d.run(), stated_order(d)), isa_str(isa), " ", name_of(g));
    }
  }
}

TEST_CASE("gemm: the same bits on 1 and 2 threads") {
  Restore restore;
  for (GemmIsa isa : supported_isas()) {
    set_gemm_isa(isa);
    for (G g : {G{1, 300, 200, 600, false, false}, G{1, 128, 384, 2176, true, false},
                G{1, 1000, 100, 300, false, true}, G{200, 20, 30, 40, true, false},
                G{3, 150, 140, 700, true, true, 1, 0, 7}}) {
      Data d(g);
      set_num_threads(1);
      std::vector<float> one = d.run();
      set_num_threads(2);
      std::vector<float> two = d.run();
      CHECK_MESSAGE(same_bits(one, two), isa_str(isa), " ", name_of(g));
    }
  }
}

TEST_CASE("gemm: AVX-512, AVX2 and scalar paths give the same bits") {
  Restore restore;
  std::vector<GemmIsa> isas = supported_isas();
  if (isas.size() < 2) MESSAGE("SKIPPED: only one gemm path on this CPU");
  std::vector<G> gs = shapes();
  gs.push_back({1, 200, 300, 1000, false, true});
  for (const G& g : gs) {
    Data d(g);
    set_gemm_isa(isas[0]);
    std::vector<float> first = d.run();
    for (size_t i = 1; i < isas.size(); ++i) {
      set_gemm_isa(isas[i]);
      CHECK_MESSAGE(same_bits(d.run(), first), isa_str(isas[i]), " vs ", isa_str(isas[0]), " ", name_of(g));
    }
  }
}

TEST_CASE("gemm: the path in use is named and can be forced") {
  Restore restore;
  MESSAGE("gemm path in use: ", isa_str(gemm_isa()));
  set_gemm_isa(GemmIsa::Scalar);
  CHECK(gemm_isa() == GemmIsa::Scalar);
  CHECK(isa_str(GemmIsa::Avx512) == "avx512");
  if (!gemm_isa_supported(GemmIsa::Avx512))
    CHECK_THROWS_AS(set_gemm_isa(GemmIsa::Avx512), vc::Error);
}
