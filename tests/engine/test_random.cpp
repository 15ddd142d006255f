// Philox4x32-10 against Random123's known-answer vectors; uniform, normal and Gumbel moments;
// each element a pure function of (seed, stream, index).
#include "engine/rng/philox.h"
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

TEST_CASE("philox4x32-10: Random123 known-answer vectors") {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    Philox4 r = philox4x32(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) CHECK(r.v[i] == k.out[i]);
  }
  // The counter is (index, stream) and the key the seed, as random.h documents.
  Philox4 a = philox_at(0xa4093822299f31d0ull, 0, 0);
  Philox4 b = philox4x32(0, 0, 0, 0, 0x299f31d0u, 0xa4093822u);
  for (int i = 0; i < 4; ++i) CHECK(a.v[i] == b.v[i]);
  Philox4 c = philox_at(7, 0x0000000500000003ull, 0x0000000200000001ull);
  Philox4 d = philox4x32(1, 2, 3, 5, 7, 0);
  for (int i = 0; i < 4; ++i) CHECK(c.v[i] == d.v[i]);
}

TEST_CASE("random fills: moments of uniform, normal and Gumbel") {
  const int64_t n = 200000;
  auto moments = [](const Tensor& t) {
    std::vector<double> v = values(t);
    double m = 0, s = 0;
    for (double e : v) m += e;
    m /= double(v.size());
    for (double e : v) s += (e - m) * (e - m);
    return std::pair<double, double>{m, s / double(v.size() - 1)};
  };
  // Tolerances are about 5 standard errors of each estimate.
  Tensor u = rand_uniform({n}, 1, 0, -2, 3, DType::F64);
  auto [um, uv] = moments(u);
  CHECK(um == doctest::Approx(0.5).epsilon(0.01));
  CHECK(uv == doctest::Approx(25.0 / 12).epsilon(0.01));
  std::vector<double> uvals = values(u);
  CHECK(*std::min_element(uvals.begin(), uvals.end()) >= -2);
  CHECK(*std::max_element(uvals.begin(), uvals.end()) < 3);

  auto [nm, nv] = moments(rand_normal({n}, 2, 0, 1.5, 2.0, DType::F64));
  CHECK(std::fabs(nm - 1.5) < 0.025);
  CHECK(nv == doctest::Approx(4.0).epsilon(0.02));

  auto [gm, gv] = moments(rand_gumbel({n}, 3, 0, DType::F64));
  CHECK(std::fabs(gm - 0.5772156649) < 0.02);  // Euler-Mascheroni
  CHECK(gv == doctest::Approx(M_PI * M_PI / 6).epsilon(0.03));

  // float32 draws are the float64 draws rounded.
  std::vector<float> f = rand_normal({1000}, 2, 0, 0, 1, DType::F32).to_vector<float>();
  std::vector<double> g = rand_normal({1000}, 2, 0, 0, 1, DType::F64).to_vector<double>();
  for (size_t i = 0; i < f.size(); ++i) CHECK(f[i] == float(g[i]));
  CHECK_THROWS_WITH_AS(rand_uniform({2}, 1, 0, 0, 1, DType::I64), doctest::Contains("random"),
                       vc::Error);
}

TEST_CASE("random fills: a pure function of (seed, stream, index)") {
  Tensor a = rand_uniform({100, 300}, 42, 3);
  CHECK(hash_bits(rand_uniform({100, 300}, 42, 3)) == hash_bits(a));
  CHECK(hash_bits(rand_uniform({100, 300}, 42, 4)) != hash_bits(a));
  CHECK(hash_bits(rand_uniform({100, 300}, 43, 3)) != hash_bits(a));
  // Element i does not depend on the tensor's size or shape.
  std::vector<float> small = rand_uniform({10}, 42, 3).to_vector<float>();
  std::vector<float> big = a.to_vector<float>();
  CHECK(std::vector<float>(big.begin(), big.begin() + 10) == small);
  // Element i is word 0 of Philox(counter = (i, stream), key = seed), mapped into (0, 1).
  for (int64_t i : {0, 1, 299, 29999}) {
    double want = (double(philox_at(42, 3, uint64_t(i)).v[0]) + 0.5) / 4294967296.0;
    CHECK(big[i] == float(want));
  }
  // Any thread count gives the same bits (the fill runs threaded above 16384 elements).
  set_num_threads(1);
  uint64_t h1 = hash_bits(rand_normal({100, 300}, 42, 3));
  set_num_threads(2);
  CHECK(hash_bits(rand_normal({100, 300}, 42, 3)) == h1);
  // A Generator hands out consecutive streams.
  Generator gen{42, 0};
  CHECK(gen.stream() == 0);
  CHECK(gen.stream() == 1);
  CHECK(gen.next_stream == 2);
}
