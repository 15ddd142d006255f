// Gumbel-softmax + straight-through (ALT): one-hot forward, soft gradient, seeded noise.
#include "tests/common/testing.h"

using namespace vc;
using namespace vc::testing;

namespace {
int64_t row_argmax(const std::vector<double>& v, int64_t n, int64_t row) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j)
    if (v[row * n + j] > v[row * n + best]) best = j;
  return best;
}
}  // namespace

TEST_CASE("special: gumbel_softmax hard forward is exactly one-hot at argmax of soft") {
  Tensor logits = randn({16, 7}, 1);
  Tensor soft = gumbel_softmax(logits, 0.5, false, 42, 3);
  Tensor hard = gumbel_softmax(logits, 0.5, true, 42, 3);
  std::vector<double> s = values(soft), h = values(hard);
  for (int64_t row = 0; row < 16; ++row) {
    int64_t pick = row_argmax(s, 7, row);
    for (int64_t j = 0; j < 7; ++j) CHECK(h[row * 7 + j] == (j == pick ? 1.0 : 0.0));
  }
  // Ties go to the lowest index.
  Tensor tied = Tensor::from_vector<double>({0.25, 0.25, 0.5, 0.0, 0.5, 0.5, 0.0, 0.0}, {2, 4});
  CHECK(values(hard_straight_through(tied)) == std::vector<double>{0, 0, 1, 0, 1, 0, 0, 0});
  // Along another axis.
  Tensor h0 = gumbel_softmax(logits, 1.0, true, 42, 3, true, 0);
  CHECK(values(sum(h0, {0})) == std::vector<double>(7, 1.0));
}

TEST_CASE("special: gumbel_softmax hard gradient equals the soft gradient") {
  for (double tau : {1.0, 0.3}) {
    Tensor x = randn({5, 6}, 2), w = randn({5, 6}, 3);
    Tensor xs = x.clone().detach(), xh = x.clone().detach();
    xs.set_requires_grad(true);
    xh.set_requires_grad(true);
    Tensor soft = gumbel_softmax(xs, tau, false, 9, 1);
    sum(mul(soft, w)).backward();
    sum(mul(gumbel_softmax(xh, tau, true, 9, 1), w)).backward();
    CHECK(max_abs_diff(xh.grad(), xs.grad()) == 0.0);
    // And that gradient is softmax's, written out: g = y (w - sum(w y)) / tau.
    std::vector<double> y = values(soft), wv = values(w), want(30);
    for (int64_t r = 0; r < 5; ++r) {
      double dot = 0;
      for (int64_t j = 0; j < 6; ++j) dot += wv[r * 6 + j] * y[r * 6 + j];
      for (int64_t j = 0; j < 6; ++j) want[r * 6 + j] = y[r * 6 + j] * (wv[r * 6 + j] - dot) / tau;
    }
    check_close(xs.grad(), Tensor::from_vector(want, {5, 6}), 1e-14, 1e-12, "soft grad");
  }
  gradcheck([](const TensorList& in) { return gumbel_softmax(in[0], 0.7, false, 4, 2); },
            {randn({3, 5}, 4)}, "gumbel_softmax soft");
}

TEST_CASE("special: gumbel_softmax noise is seeded and reproducible") {
  Tensor x = randn({8, 10}, 6);
  uint64_t a = hash_bits(gumbel_softmax(x, 1.0, false, 123, 5));
  CHECK(a == hash_bits(gumbel_softmax(x, 1.0, false, 123, 5)));
  CHECK(a != hash_bits(gumbel_softmax(x, 1.0, false, 123, 6)));
  CHECK(a != hash_bits(gumbel_softmax(x, 1.0, false, 124, 5)));
  // Noise off is the plain tempered softmax.
  CHECK(max_abs_diff(gumbel_softmax(x, 0.5, false, 1, 1, false), softmax(div(x, 0.5))) == 0.0);
  // float32 too, and CPU results equal between thread counts.
  Tensor xf = randn({300, 64}, 6, DType::F32);
  int before = num_threads();
  set_num_threads(1);
  uint64_t h1 = hash_bits(gumbel_softmax(xf, 0.5, true, 3, 3));
  set_num_threads(2);
  uint64_t h2 = hash_bits(gumbel_softmax(xf, 0.5, true, 3, 3));
  set_num_threads(before);
  CHECK(h1 == h2);
}

TEST_CASE("special: gumbel_softmax with small tau picks argmax(logits + g)") {
  Tensor x = randn({200, 9}, 7);
  Tensor soft = gumbel_softmax(x, 1e-4, false, 77, 2);
  // The noise is element i of Philox(seed, stream), drawn by the test itself.
  std::vector<double> z = values(add(x, rand_gumbel({200, 9}, 77, 2, DType::F64)));
  std::vector<double> s = values(soft);
  int64_t saturated = 0;
  for (int64_t row = 0; row < 200; ++row) {
    CHECK(row_argmax(s, 9, row) == row_argmax(z, 9, row));
    saturated += s[row * 9 + row_argmax(z, 9, row)] > 0.99;
  }
  CHECK(saturated >= 190);
}

TEST_CASE("special: gumbel_softmax hard samples follow softmax(logits)") {
  // argmax(logits + g) is a draw from softmax(logits): compare frequencies over 40000 rows.
  const int64_t rows = 40000;
  Tensor logits = Tensor::from_vector<double>({1.0, 0.0, -1.0, 0.5}, {1, 4}).expand({rows, 4});
  Tensor counts = sum(gumbel_softmax(logits, 1.0, true, 2024, 0), {0});
  std::vector<double> c = values(counts), p = values(softmax(logits.narrow(0, 0, 1)));
  for (int j = 0; j < 4; ++j) {
    double sd = std::sqrt(p[j] * (1 - p[j]) / rows);
    CHECK(std::abs(c[j] / rows - p[j]) < 4 * sd);
  }
}
