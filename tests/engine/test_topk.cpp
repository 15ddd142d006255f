// topk / argsort: naive references, tie rules, gradient (scatter back), thread invariance.
#include <algorithm>
#include <numeric>

#include "tests/common/testing.h"

using namespace vc;
using namespace vc::testing;

namespace {
// Indices of row r of a [rows, n] row-major vector, ordered by (value, index) the naive way.
std::vector<int64_t> ref_order(const std::vector<double>& v, int64_t n, int64_t row, bool largest) {
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  for (int64_t i = 0; i < n; ++i)  // selection sort: pick the best remaining, lowest index on ties
    for (int64_t j = i + 1; j < n; ++j) {
      double a = v[row * n + idx[i]], b = v[row * n + idx[j]];
      bool better = largest ? b > a : b < a;
      if (better || (a == b && idx[j] < idx[i])) std::swap(idx[i], idx[j]);
    }
  return idx;
}
}  // namespace

TEST_CASE("special: topk matches a naive selection on every axis") {
  Tensor x = randn({4, 9, 3}, 11);
  for (int64_t axis : {0, 1, 2})
    for (bool largest : {true, false}) {
      int64_t n = x.size(axis), k = std::max<int64_t>(1, n - 2);
      TopK r = topk(x, k, axis, largest);
      Shape expect_shape = x.shape();
      expect_shape[axis] = k;
      REQUIRE(r.values.shape() == expect_shape);
      REQUIRE(r.indices.shape() == expect_shape);
      // Move the axis last and compare row by row.
      Tensor xl = x.transpose(axis, -1).contiguous();
      Tensor il = r.indices.transpose(axis, -1).contiguous();
      Tensor vl = r.values.transpose(axis, -1).contiguous();
      std::vector<double> xv = values(xl), vv = values(vl);
      std::vector<int64_t> iv = il.to_vector<int64_t>();
      for (int64_t row = 0; row < xl.numel() / n; ++row) {
        std::vector<int64_t> want = ref_order(xv, n, row, largest);
        for (int64_t i = 0; i < k; ++i) {
          CHECK(iv[row * k + i] == want[i]);
          CHECK(vv[row * k + i] == xv[row * n + want[i]]);
        }
      }
    }
}

TEST_CASE("special: topk and argsort break ties by the lower index") {
  Tensor x = Tensor::from_vector<double>({1, 3, 3, 2, 3, 1}, {1, 6});
  CHECK(topk(x, 3).indices.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 4});
  CHECK(topk(x, 4).indices.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 4, 3});
  CHECK(topk(x, 3, -1, false).indices.to_vector<int64_t>() == std::vector<int64_t>{0, 5, 3});
  CHECK(argsort(x).to_vector<int64_t>() == std::vector<int64_t>{0, 5, 3, 1, 2, 4});
  CHECK(argsort(x, -1, true).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 4, 3, 0, 5});
  CHECK(topk(x, 0).indices.shape() == Shape{1, 0});
  CHECK_THROWS_AS(topk(x, 7), Error);
}

TEST_CASE("special: topk gradient flows to the selected positions") {
  Tensor x = randn({3, 8}, 5);
  gradcheck([](const TensorList& in) { return topk(in[0], 3, 1).values; }, {x}, "topk values");
  gradcheck([](const TensorList& in) { return topk(in[0], 2, 0, false).values; }, {x},
            "topk values axis 0");
  // Explicitly: the gradient is g scattered to the picked indices, zero elsewhere.
  Tensor xg = x.clone().detach();
  xg.set_requires_grad(true);
  TopK r = topk(xg, 3, 1);
  Tensor g = randn({3, 3}, 8);
  r.values.backward(g);
  std::vector<int64_t> idx = r.indices.to_vector<int64_t>();
  std::vector<double> gv = values(g), got = values(xg.grad()), want(24, 0.0);
  for (int64_t row = 0; row < 3; ++row)
    for (int64_t i = 0; i < 3; ++i) want[row * 8 + idx[row * 3 + i]] += gv[row * 3 + i];
  CHECK(got == want);
}

TEST_CASE("special: topk is the same for 1 and 2 threads") {
  // Many ties (values rounded to a few levels) over rows large enough to run in parallel.
  std::vector<float> v = randn({64, 400}, 3, DType::F32).to_vector<float>();
  for (float& e : v) e = std::round(e * 4) / 4;
  Tensor x = Tensor::from_vector(v, {64, 400});
  int before = num_threads();
  set_num_threads(1);
  uint64_t h1 = hash_bits(topk(x, 50).indices), a1 = hash_bits(argsort(x, 1, true));
  set_num_threads(2);
  uint64_t h2 = hash_bits(topk(x, 50).indices), a2 = hash_bits(argsort(x, 1, true));
  set_num_threads(before);
  CHECK(h1 == h2);
  CHECK(a1 == a2);
}
