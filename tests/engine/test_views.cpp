// Views and copies: every layout change against a naive index mapping, storage sharing,
// and gradients through each view.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {
bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.impl().storage == b.impl().storage;
}
}  // namespace

TEST_CASE("views: reshape and view keep row-major order") {
  Tensor x = randn({3, 1, 7, 2}, 1);
  Tensor v = x.view({7, 6});
  CHECK(shares_storage(v, x));
  CHECK(values(v) == values(x));
  CHECK(x.reshape({-1, 3, 2}).shape() == Shape{7, 3, 2});
  CHECK(x.reshape({42}).shape() == Shape{42});
  CHECK(Tensor::scalar(3.0).reshape({1, 1}).shape() == Shape{1, 1});

  // A transposed tensor cannot be viewed flat; reshape copies in logical order.
  Tensor t = randn({5, 7}, 2).transpose(0, 1);
  CHECK_THROWS_WITH_AS(t.view({35}), doctest::Contains("view: shape [7, 5]"), vc::Error);
  Tensor r = t.reshape({35});
  CHECK_FALSE(shares_storage(r, t));
  CHECK(values(r) == values(t));
  // Splitting a non-contiguous dim that is contiguous within itself stays a view.
  Tensor n = randn({4, 6, 5}, 3).narrow(2, 1, 3);  // [4, 6, 3], rows of 5
  Tensor nv = n.view({2, 2, 6, 3});
  CHECK(shares_storage(nv, n));
  CHECK(values(nv) == values(n));
  // An expanded (stride 0) tensor: splitting a broadcast dim is a view, flattening copies.
  Tensor e = randn({3, 1}, 8).expand({3, 4});
  Tensor ev = e.reshape({3, 2, 2});
  CHECK(shares_storage(ev, e));
  CHECK(values(ev) == values(e));
  Tensor ef = e.reshape({12});
  CHECK_FALSE(shares_storage(ef, e));
  CHECK(values(ef) == values(e));
  CHECK_THROWS_WITH_AS(x.reshape({5, -1}), doctest::Contains("reshape"), vc::Error);
  CHECK_THROWS_WITH_AS(x.reshape({-1, -1}), doctest::Contains("more than one -1"), vc::Error);
}

TEST_CASE("views: permute, transpose, narrow, select against index maps") {
  Tensor x = randn({3, 1, 7, 5}, 4);
  Tensor p = x.permute({2, 0, 3, 1});
  REQUIRE(p.shape() == Shape{7, 3, 5, 1});
  CHECK(shares_storage(p, x));
  check_close(p, tensor_from(p.shape(), [&](const Shape& i) {
    return at(x, {i[1], i[3], i[0], i[2]});
  }), 0, 0, "permute");
  Tensor t = x.transpose(-1, 0);
  check_close(t, tensor_from(t.shape(), [&](const Shape& i) {
    return at(x, {i[3], i[1], i[2], i[0]});
  }), 0, 0, "transpose");
  Tensor n = p.narrow(0, 2, 4);  // narrow of a permuted view
  check_close(n, tensor_from(n.shape(), [&](const Shape& i) {
    return at(x, {i[1], i[3], i[0] + 2, i[2]});
  }), 0, 0, "narrow");
  Tensor s = x.select(2, -1);
  REQUIRE(s.shape() == Shape{3, 1, 5});
  check_close(s, tensor_from(s.shape(), [&](const Shape& i) {
    return at(x, {i[0], i[1], 6, i[2]});
  }), 0, 0, "select");
  CHECK_THROWS_WITH_AS(x.permute({0, 0, 1, 2}), doctest::Contains("permute"), vc::Error);
  CHECK_THROWS_WITH_AS(x.narrow(2, 5, 3), doctest::Contains("narrow: [5, 8)"), vc::Error);
  CHECK_THROWS_WITH_AS(x.select(0, 3), doctest::Contains("select"), vc::Error);
}

TEST_CASE("views: expand, squeeze, unsqueeze, flatten") {
  Tensor x = randn({3, 1, 5}, 5);
  Tensor e = x.expand({2, 3, 4, -1});
  REQUIRE(e.shape() == Shape{2, 3, 4, 5});
  CHECK(e.strides()[0] == 0);
  CHECK(e.strides()[2] == 0);
  check_close(e, tensor_from(e.shape(), [&](const Shape& i) { return at(x, {i[1], 0, i[3]}); }),
              0, 0, "expand");
  CHECK(x.expand({3, 2, 5}).shape() == Shape{3, 2, 5});
  CHECK_THROWS_WITH_AS(x.expand({2, 1, 5}), doctest::Contains("expand: cannot expand [3, 1, 5]"),
                       vc::Error);
  // -1 only keeps an existing size; a new leading axis needs a real size.
  CHECK_THROWS_AS(x.expand({-1, 3, 1, 5}), vc::Error);

  CHECK(x.squeeze(1).shape() == Shape{3, 5});
  CHECK_THROWS_WITH_AS(x.squeeze(0), doctest::Contains("squeeze"), vc::Error);
  CHECK(x.unsqueeze(0).shape() == Shape{1, 3, 1, 5});
  CHECK(x.unsqueeze(-1).shape() == Shape{3, 1, 5, 1});
  CHECK(values(x.unsqueeze(3)) == values(x));

  Tensor y = randn_permuted({2, 3, 4, 5}, 6);
  CHECK(y.flatten().shape() == Shape{120});
  CHECK(y.flatten(1, 2).shape() == Shape{2, 12, 5});
  CHECK(values(y.flatten(1, 2)) == values(y));
  CHECK(Tensor::scalar(1.0).flatten().shape() == Shape{1});
}

TEST_CASE("views: contiguous, clone, to(dtype)") {
  Tensor x = randn_permuted({4, 7}, 7);
  REQUIRE_FALSE(x.is_contiguous());
  Tensor c = x.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Shape{7, 1});
  CHECK(values(c) == values(x));
  CHECK(c.contiguous().same(c));  // already contiguous: the same tensor

  Tensor k = c.clone();
  CHECK_FALSE(shares_storage(k, c));
  k.data<double>()[0] += 1;
  CHECK(at(c, {0, 0}) == at(x, {0, 0}));  // the clone owns its storage

  Tensor f = x.to(DType::F32);
  CHECK(f.dtype() == DType::F32);
  std::vector<double> vx = values(x), vf = values(f);
  for (size_t i = 0; i < vx.size(); ++i) CHECK(vf[i] == double(float(vx[i])));
  Tensor ints = Tensor::from_vector<double>({-2.7, -0.5, 0.5, 3.9}, {4}).to(DType::I64);
  CHECK(ints.to_vector<int64_t>() == std::vector<int64_t>{-2, 0, 0, 3});  // truncation
  CHECK(x.to(DType::F64).same(x));
  CHECK(Tensor::arange(5, DType::F32).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
}

TEST_CASE("views: float64 gradients through every view") {
  auto g = [](const char* what, std::function<Tensor(const Tensor&)> f, Shape shape) {
    gradcheck([&](const TensorList& x) { return f(x[0]); }, {randn(shape, 11)}, what);
  };
  g("view", [](const Tensor& x) { return x.view({5, 6}); }, {2, 3, 5});
  g("reshape(copy)", [](const Tensor& x) { return x.transpose(0, 1).reshape({-1}); }, {3, 4});
  g("permute", [](const Tensor& x) { return x.permute({2, 0, 1}); }, {2, 3, 4});
  g("transpose", [](const Tensor& x) { return x.transpose(0, 2); }, {2, 1, 3});
  g("narrow", [](const Tensor& x) { return x.narrow(1, 1, 2); }, {3, 4});
  g("narrow of permute",
    [](const Tensor& x) { return x.permute({1, 0}).narrow(0, 1, 2).narrow(1, 0, 2); }, {3, 4});
  g("select", [](const Tensor& x) { return x.select(0, 1); }, {3, 4});
  g("expand", [](const Tensor& x) { return x.expand({2, 3, 4}); }, {3, 1});
  g("squeeze/unsqueeze", [](const Tensor& x) { return x.squeeze(1).unsqueeze(0); }, {3, 1, 2});
  g("flatten", [](const Tensor& x) { return x.permute({1, 0, 2}).flatten(0, 1); }, {2, 3, 2});
  g("contiguous", [](const Tensor& x) { return x.transpose(0, 1).contiguous(); }, {3, 4});
  g("clone", [](const Tensor& x) { return x.clone(); }, {3, 4});
  // float64 -> float32 -> float64 loses bits; the gradient is still the identity.
  Tensor x = randn({5}, 12);
  x.set_requires_grad(true);
  sum(mul(x.to(DType::F32).to(DType::F64), 3.0)).backward();
  check_close(x.grad(), Tensor::full({5}, 3.0, DType::F64), 0, 0, "to(dtype) grad");
  CHECK_FALSE(x.to(DType::I64).requires_grad());
}

TEST_CASE("views: several narrows of one tensor add their gradients into its windows") {
  // q/k/v-style splits, an overlapping window, and a direct use, of a leaf and of an op
  // output: the gradient equals the sum of the zero-padded windows (the unfused adjoint),
  // written out as a loop; float64 central differences; the same bits on 1 and 2 threads.
  const int64_t R = 96, C = 384;
  auto loss = [&](const Tensor& x, bool through_op) {
    Tensor y = through_op ? mul(x, 2.0) : x;
    const std::pair<int64_t, int64_t> win[] = {{0, 128}, {128, 128}, {256, 128}, {100, 200}};
    Tensor l = sum(mul(y, randn({R, C}, 40, x.dtype())));
    for (int i = 0; i < 4; ++i)
      l = add(l, sum(mul(y.narrow(1, win[i].first, win[i].second),
                         randn({R, win[i].second}, 41 + i, x.dtype()))));
    return l;
  };
  for (bool through_op : {false, true}) {
    Tensor x = randn({R, C}, 50).set_requires_grad(true);
    loss(x, through_op).backward();
    std::vector<double> ref = values(randn({R, C}, 40));
    const std::pair<int64_t, int64_t> win[] = {{0, 128}, {128, 128}, {256, 128}, {100, 200}};
    for (int i = 0; i < 4; ++i) {
      std::vector<double> w = values(randn({R, win[i].second}, 41 + i));
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < win[i].second; ++c)
          ref[size_t(r * C + win[i].first + c)] += w[size_t(r * win[i].second + c)];
    }
    if (through_op)
      for (double& v : ref) v *= 2;
    check_close(x.grad(), Tensor::from_vector(ref, {R, C}), 1e-12, 1e-12,
                through_op ? "narrows of an op output" : "narrows of a leaf");
  }
  gradcheck([](const TensorList& x) {
    Tensor y = mul(x[0], 3.0);
    return concat({y.narrow(1, 0, 2), mul(y.narrow(1, 2, 3), y.narrow(1, 1, 3)), y}, 1);
  }, {randn({3, 5}, 60)}, "narrows of one tensor");
  auto bits = [&](int threads) {
    set_num_threads(threads);
    Tensor x = randn({R, C}, 50, DType::F32).set_requires_grad(true);
    loss(x, true).backward();
    return hash_bits(x.grad());
  };
  int before = num_threads();
  uint64_t one = bits(1), two = bits(2);
  set_num_threads(before);
  CHECK(one == two);
}
