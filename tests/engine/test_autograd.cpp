// Autograd semantics: accumulation, repeated backward, no-grad guard, detach, ops without a
// backward, errors that name the op and the shapes.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {
Tensor leaf(const std::vector<double>& v) {
  return Tensor::from_vector(v, {int64_t(v.size())}).set_requires_grad(true);
}
}  // namespace

TEST_CASE("autograd: a tensor used twice accumulates both paths") {
  Tensor x = leaf({1, -2, 3});
  sum(mul(x, x)).backward();  // d/dx sum x^2 = 2x
  CHECK(values(x.grad()) == std::vector<double>{2, -4, 6});

  // A diamond: b feeds c twice through different ops.
  Tensor y = leaf({0.5, 1.5});
  Tensor b = exp(y);
  Tensor c = add(mul(b, b), b);  // e^{2y} + e^y
  sum(c).backward();
  check_close(y.grad(), map_ref(Tensor::from_vector<double>({0.5, 1.5}, {2}), [](double v) {
    return 2 * std::exp(2 * v) + std::exp(v);
  }), 1e-14, 1e-14, "diamond");

  // A leaf that is an input of one op twice.
  Tensor z = leaf({2, 3});
  sum(add(z, z)).backward();
  CHECK(values(z.grad()) == std::vector<double>{2, 2});
}

TEST_CASE("autograd: one backward's contributions to a leaf are summed before they meet .grad") {
  // .grad = .grad + (c1 + c2), not (.grad + c1) + c2 (nn/ddp.h relies on it). In float32 with
  // .grad = 1 and c1 = c2 = 2^-24 (half an ulp of 1) the orders differ: 1 + 2^-23 against 1
  // (each half-ulp addition alone rounds to even, back to 1).
  const float half_ulp = std::ldexp(1.0f, -24);
  Tensor x = Tensor::from_vector<float>({3.0f}, {1}).set_requires_grad(true);
  sum(x).backward();
  REQUIRE(x.grad().to_vector<float>()[0] == 1.0f);
  sum(add(mul(x, double(half_ulp)), mul(x, double(half_ulp)))).backward();
  CHECK(x.grad().to_vector<float>()[0] == 1.0f + 2 * half_ulp);
  CHECK(x.grad().to_vector<float>()[0] != (1.0f + half_ulp) + half_ulp);  // the other order is 1
}

TEST_CASE("autograd: backward twice accumulates; zero_grad resets") {
  Tensor x = leaf({1, 2});
  Tensor y = sum(mul(x, 3.0));
  y.backward();
  y.backward();  // the graph is kept
  CHECK(values(x.grad()) == std::vector<double>{6, 6});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  y.backward();
  CHECK(values(x.grad()) == std::vector<double>{3, 3});
  // Backward of a leaf itself, and an explicit output gradient.
  Tensor w = leaf({1, 1});
  w.backward(Tensor::from_vector<double>({4, 5}, {2}));
  CHECK(values(w.grad()) == std::vector<double>{4, 5});
  Tensor v = leaf({1, 2, 3});
  mul(v, v).backward(Tensor::from_vector<double>({1, 0, -1}, {3}));
  CHECK(values(v.grad()) == std::vector<double>{2, 0, -6});
  // The accumulated gradient is owned by the leaf: it is not the seed's storage.
  Tensor seed = Tensor::from_vector<double>({1, 1}, {2});
  Tensor u = leaf({0, 0});
  u.backward(seed);
  seed.data<double>()[0] = 9;
  CHECK(values(u.grad()) == std::vector<double>{1, 1});
  // A first gradient that only this backward refers to becomes .grad without a copy; one
  // that is shared (add hands the same tensor to both inputs, a view of the seed) is copied,
  // so no two leaves, and no leaf and the seed, share gradient storage.
  Tensor a = leaf({1, 2}), b = leaf({3, 4});
  Tensor s2 = Tensor::from_vector<double>({1, 2}, {2});
  add(a, b).backward(s2);
  CHECK(a.grad().impl().storage != b.grad().impl().storage);
  CHECK(a.grad().impl().storage != s2.impl().storage);
  CHECK(b.grad().impl().storage != s2.impl().storage);
  a.grad().data<double>()[0] = 7;
  CHECK(values(b.grad()) == std::vector<double>{1, 2});
  CHECK(values(s2) == std::vector<double>{1, 2});
  Tensor c = leaf({1, 2});
  Tensor t = mul(c, 3.0);
  sum(t).backward();
  CHECK(values(c.grad()) == std::vector<double>{3, 3});
  CHECK(c.grad().impl().storage != t.impl().storage);
}

TEST_CASE("autograd: NoGradGuard records nothing and restores the previous state") {
  Tensor x = leaf({1, 2});
  {
    NoGradGuard g;
    CHECK_FALSE(grad_enabled());
    Tensor y = mul(exp(x), x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    {
      NoGradGuard nested;
    }
    CHECK_FALSE(grad_enabled());  // the inner guard restores "off", not "on"
  }
  CHECK(grad_enabled());
  CHECK(mul(x, x).requires_grad());
  CHECK_FALSE(mul(x.detach(), 2.0).requires_grad());
}

TEST_CASE("autograd: detach stops the gradient and shares storage") {
  Tensor x = leaf({1, 2, 3});
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.impl().storage == x.impl().storage);
  sum(mul(x, d)).backward();  // only the attached factor carries gradient
  CHECK(values(x.grad()) == std::vector<double>{1, 2, 3});
  // Gradient only flows into leaves that require it.
  Tensor a = leaf({1, 2});
  Tensor b = Tensor::from_vector<double>({3, 4}, {2});
  sum(mul(a, b)).backward();
  CHECK_FALSE(b.grad().defined());
  CHECK(values(a.grad()) == std::vector<double>{3, 4});
}

TEST_CASE("autograd: an op without a backward throws naming the op") {
  Tensor x = leaf({1, 2});
  Tensor out = Tensor::zeros({2}, DType::F64);
  CHECK_THROWS_WITH_AS(record(out, "my_special_op", {x}, nullptr),
                       doctest::Contains("my_special_op: has no backward"), vc::Error);
  // Without a requires-grad input, or under the guard, nothing is recorded and nothing throws.
  Tensor plain = Tensor::zeros({2}, DType::F64);
  CHECK_NOTHROW(record(out, "my_special_op", {plain}, nullptr));
  {
    NoGradGuard g;
    CHECK_NOTHROW(record(out, "my_special_op", {x}, nullptr));
  }
  CHECK_FALSE(out.requires_grad());
  // A backward that returns the wrong shape is caught, naming the op.
  Tensor bad = Tensor::zeros({2}, DType::F64);
  record(bad, "bad_op", {x}, [](const Tensor&, const std::vector<bool>&) {
    return TensorList{Tensor::zeros({3}, DType::F64)};
  });
  CHECK_THROWS_WITH_AS(sum(bad).backward(),
                       doctest::Contains("backward of 'bad_op' gave gradient of shape [3] for input 0 of shape [2]"),
                       vc::Error);
}

TEST_CASE("autograd: misuse gives errors that name the op and the shapes") {
  Tensor x = leaf({1, 2});
  Tensor y = mul(x, x);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward: implicit gradient needs a scalar, got shape [2]"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(y.backward(Tensor::ones({3}, DType::F64)),
                       doctest::Contains("gradient shape [3] does not match tensor shape [2]"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(Tensor::ones({2}).backward(), doctest::Contains("does not require grad"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(y.set_requires_grad(true), doctest::Contains("this tensor came from op 'mul'"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(Tensor::arange(3).set_requires_grad(true),
                       doctest::Contains("int64 tensors cannot require grad"), vc::Error);
  // Soft targets that require grad are refused rather than silently given no gradient.
  Tensor logits = randn({2, 3}, 1).set_requires_grad(true);
  Tensor soft = softmax(randn({2, 3}, 2)).detach().set_requires_grad(true);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, soft).backward(),
                       doctest::Contains("cross_entropy: soft targets cannot require grad"), vc::Error);
}

TEST_CASE("autograd: a long chain and a wide fan-in run in a fixed order") {
  // 2000 nodes deep: the iterative traversal must not overflow the stack.
  Tensor x = leaf({1.0});
  Tensor h = x;
  for (int i = 0; i < 2000; ++i) h = add(h, 0.001);
  h.backward();
  CHECK(values(x.grad()) == std::vector<double>{1});
  // Fan-in: the gradient sum of many branches is the same bits every time.
  auto run = [] {
    Tensor w = randn({64}, 3).set_requires_grad(true);
    Tensor acc = Tensor::zeros({64}, DType::F64);
    for (int i = 0; i < 50; ++i) acc = add(acc, tanh(mul(w, 0.1 * (i + 1))));
    sum(acc).backward();
    return hash_bits(w.grad());
  };
  CHECK(run() == run());
}
