// Elementwise ops: unary maps, broadcasting binary ops, scalar forms, comparisons, where
// and masked_fill, each against a loop over std:: math; gradients in float64.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  bool positive_only;  // domain of log, sqrt, rsqrt, fractional pow
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, false},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, false},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, true},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); },
       [](double x) { return 1 / std::sqrt(x); }, true},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::fabs(x); }, false},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, false},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_ref, false},
      {"relu", [](const Tensor& x) { return relu(x); },
       [](double x) { return x > 0 ? x : 0.0; }, false},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, false},
      {"gelu_tanh", [](const Tensor& x) { return gelu_tanh(x); },
       [](double x) {
         double c = std::sqrt(2.0 / M_PI);
         return 0.5 * x * (1 + std::tanh(c * (x + 0.044715 * x * x * x)));
       }, false},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); },
       [](double x) { return x * sigmoid_ref(1.702 * x); }, false},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); },
       [](double x) { return x * x * x; }, false},
      {"pow 2.5", [](const Tensor& x) { return pow(x, 2.5); },
       [](double x) { return x * x * std::sqrt(x); }, true},
      {"pow -1", [](const Tensor& x) { return pow(x, -1.0); },
       [](double x) { return 1 / x; }, true},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, false},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
       [](double x) { return std::min(0.7, std::max(-0.5, x)); }, false},
  };
}

// Inputs kept off the kinks of abs/relu/clamp, so central differences are exact enough.
Tensor unary_input(const Shape& shape, uint64_t seed, bool positive, DType dt) {
  Tensor x = randn_permuted(shape, seed, DType::F64);
  Tensor v = tensor_from(x.shape(), [&](const Shape& i) {
    double a = at(x, i) * 2;
    if (positive) return std::fabs(a) + 0.3;
    for (double kink : {0.0, -0.5, 0.7})
      if (std::fabs(a - kink) < 1e-3) a += 0.01;
    return a;
  });
  // Back to a non-contiguous layout of the requested dtype.
  return v.to(dt).transpose(0, -1).contiguous().transpose(0, -1);
}

}  // namespace

TEST_CASE("unary ops: forward against std:: math on non-contiguous inputs") {
  for (const UnaryCase& c : unary_cases()) {
    for (DType dt : {DType::F64, DType::F32}) {
      Tensor x = unary_input({7, 1, 13}, 21, c.positive_only, dt);
      REQUIRE_FALSE(x.is_contiguous());
      Tensor y = c.op(x);
      CHECK(y.dtype() == dt);
      double tol = dt == DType::F64 ? 1e-14 : 2e-6;
      check_close(y, map_ref(x, c.ref), tol, tol, std::string(c.name) + " " + dtype_name(dt));
    }
  }
  // Large magnitudes: sigmoid and quick_gelu stay finite and exact in the tails.
  Tensor big = Tensor::from_vector<double>({-700, -100, -30, 30, 100, 700}, {6});
  check_close(sigmoid(big), map_ref(big, sigmoid_ref), 0, 1e-13, "sigmoid tails");
  check_close(quick_gelu(big), map_ref(big, [](double x) { return x * sigmoid_ref(1.702 * x); }),
              0, 1e-13, "quick_gelu tails");
  for (double v : values(sigmoid(big.to(DType::F32)))) CHECK(std::isfinite(v));
  CHECK_THROWS_WITH_AS(clamp(big, 1, 0), doctest::Contains("clamp"), vc::Error);
  CHECK_THROWS_WITH_AS(exp(Tensor::arange(3)), doctest::Contains("exp: expected a float tensor"),
                       vc::Error);
}

TEST_CASE("unary ops: float64 gradients") {
  for (const UnaryCase& c : unary_cases()) {
    Tensor x = unary_input({3, 1, 4}, 22, c.positive_only, DType::F64).contiguous();
    // Through a permuted view, so the op sees a non-contiguous input.
    gradcheck([&](const TensorList& in) { return c.op(in[0].permute({2, 0, 1})); }, {x}, c.name);
  }
}

namespace {
struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; },
       [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; },
       [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; },
       [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; },
       [](double a, double b) { return a / b; }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }},
  };
}
}  // namespace

TEST_CASE("binary ops: NumPy broadcasting on non-contiguous and expanded inputs") {
  for (const BinaryCase& c : binary_cases()) {
    for (DType dt : {DType::F64, DType::F32}) {
      Tensor a = randn_permuted({7, 1, 13}, 31, dt);               // transposed storage
      Tensor b = randn_narrowed({5, 1}, 32, dt);                   // a window, stride 4
      Tensor e = randn({1, 13}, 33, dt).expand({5, 13});           // stride 0 rows
      double tol = dt == DType::F64 ? 1e-15 : 1e-6;
      Tensor ab = c.op(a, b);
      REQUIRE(ab.shape() == Shape{7, 5, 13});
      check_close(ab, tensor_from(ab.shape(), [&](const Shape& i) {
        return c.ref(at(a, {i[0], 0, i[2]}), at(b, {i[1], 0}));
      }), tol, tol, std::string(c.name) + " [7,1,13] op [5,1]");
      Tensor ea = c.op(e, a);
      check_close(ea, tensor_from(ea.shape(), [&](const Shape& i) {
        return c.ref(at(e, {i[1], i[2]}), at(a, {i[0], 0, i[2]}));
      }), tol, tol, std::string(c.name) + " expanded op [7,1,13]");
      Tensor s = Tensor::scalar(1.5, dt);  // 0-d broadcasts against anything
      Tensor as = c.op(s, a);
      check_close(as, map_ref(a, [&](double v) { return c.ref(1.5, v); }), tol, tol,
                  std::string(c.name) + " 0-d op tensor");
    }
  }
  Tensor a = randn({2, 3}, 34), b = randn({4, 3}, 35);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [2, 3] and [4, 3] do not broadcast"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(mul(a, b.to(DType::F32)), doctest::Contains("mul: dtype mismatch"),
                       vc::Error);
}

TEST_CASE("binary ops: scalar forms") {
  Tensor x = randn_permuted({3, 7}, 36);
  auto same = [&](const Tensor& y, std::function<double(double)> f, const char* what) {
    check_close(y, map_ref(x, f), 1e-15, 1e-15, what);
  };
  same(add(x, 2.5), [](double v) { return v + 2.5; }, "add s");
  same(sub(x, 2.5), [](double v) { return v - 2.5; }, "sub s");
  same(mul(x, -3.0), [](double v) { return v * -3.0; }, "mul s");
  same(div(x, 4.0), [](double v) { return v / 4.0; }, "div s");
  same(rsub(2.0, x), [](double v) { return 2.0 - v; }, "rsub");
  same(rdiv(2.0, x), [](double v) { return 2.0 / v; }, "rdiv");
  same(1.0 + x * 2.0 - 0.5, [](double v) { return 1.0 + v * 2.0 - 0.5; }, "operators");
  same(-x / 3.0, [](double v) { return -v / 3.0; }, "neg, div");
  same(3.0 - x, [](double v) { return 3.0 - v; }, "s - x");
  same(3.0 / x, [](double v) { return 3.0 / v; }, "s / x");
  same(3.0 * x, [](double v) { return 3.0 * v; }, "s * x");
}

TEST_CASE("binary ops: float64 gradients with broadcasting on both sides") {
  for (const BinaryCase& c : binary_cases()) {
    // a [3,1,4] and b [2,1] broadcast to [3,2,4]; b is kept away from 0 for div.
    Tensor a = randn({3, 1, 4}, 41);
    Tensor b = add(abs(randn({2, 1}, 42)), 0.5);
    gradcheck([&](const TensorList& in) { return c.op(in[0], in[1]); }, {a, b}, c.name);
    // Non-contiguous: transposed a against a narrowed b.
    gradcheck([&](const TensorList& in) {
      return c.op(in[0].transpose(0, 1), in[1].narrow(1, 1, 3));
    }, {randn({3, 4}, 43), add(abs(randn({4, 5}, 44)), 0.5)}, std::string(c.name) + " views");
  }
  // Scalar forms.
  gradcheck([](const TensorList& in) {
    return rdiv(2.0, add(in[0], 5.0)) + rsub(1.0, in[0]) * 3.0 - div(in[0], 7.0);
  }, {randn({2, 3}, 45)}, "scalar forms");
}

TEST_CASE("binary ops: maximum/minimum send a tie's gradient to a") {
  Tensor a = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad(true);
  Tensor b = Tensor::from_vector<double>({2, 2, 2}, {3}).set_requires_grad(true);
  sum(maximum(a, b)).backward();
  CHECK(values(a.grad()) == std::vector<double>{0, 1, 1});
  CHECK(values(b.grad()) == std::vector<double>{1, 0, 0});
  a.zero_grad();
  b.zero_grad();
  sum(minimum(a, b)).backward();
  CHECK(values(a.grad()) == std::vector<double>{1, 1, 0});
  CHECK(values(b.grad()) == std::vector<double>{0, 0, 1});
}

TEST_CASE("comparisons: 0/1 in a's dtype, broadcast, no gradient") {
  // Small integers so that ties occur.
  Tensor a = Tensor::from_vector<float>({0, 1, 2, 1, 2, 0, 2, 2, 1}, {3, 3}).transpose(0, 1);
  Tensor b = Tensor::from_vector<float>({1, 2, 0}, {3, 1});
  struct C {
    const char* name;
    Tensor (*op)(const Tensor&, const Tensor&);
    bool (*ref)(double, double);
  };
  std::vector<C> cases = {
      {"eq", eq, [](double x, double y) { return x == y; }},
      {"ne", ne, [](double x, double y) { return x != y; }},
      {"gt", gt, [](double x, double y) { return x > y; }},
      {"ge", ge, [](double x, double y) { return x >= y; }},
      {"lt", lt, [](double x, double y) { return x < y; }},
      {"le", le, [](double x, double y) { return x <= y; }},
  };
  Tensor ag = a.contiguous().set_requires_grad(true);
  for (const C& c : cases) {
    Tensor y = c.op(a, b);
    CHECK(y.dtype() == DType::F32);
    check_close(y, tensor_from({3, 3}, [&](const Shape& i) {
      return c.ref(at(a, i), at(b, {i[0], 0})) ? 1.0 : 0.0;
    }), 0, 0, c.name);
    CHECK_FALSE(c.op(ag, b).requires_grad());
  }
  // Integer tensors compare too.
  Tensor i = Tensor::from_vector<int64_t>({1, 5, 3}, {3});
  CHECK(gt(i, Tensor::from_vector<int64_t>({2}, {1})).to_vector<int64_t>() ==
        std::vector<int64_t>{0, 1, 1});
}

TEST_CASE("where and masked_fill: broadcast forward, gradients of both branches") {
  Tensor a = randn_permuted({1, 13}, 51), b = randn_permuted({7, 13}, 52);
  Tensor cond_f = gt(randn({7, 1}, 53), Tensor::scalar(0.0, DType::F64));
  for (DType ct : {DType::F64, DType::I64, DType::U8}) {
    Tensor cond = cond_f.to(ct);
    Tensor y = where(cond, a, b);
    REQUIRE(y.shape() == Shape{7, 13});
    check_close(y, tensor_from(y.shape(), [&](const Shape& i) {
      return at(cond, {i[0], 0}) != 0 ? at(a, {0, i[1]}) : at(b, i);
    }), 0, 0, std::string("where cond ") + dtype_name(ct));
  }
  gradcheck([&](const TensorList& in) { return where(cond_f, in[0], in[1].transpose(0, 1)); },
            {randn({1, 13}, 54), randn({13, 7}, 55)}, "where");

  Tensor x = randn_permuted({5, 4}, 56);
  Tensor mask = Tensor::from_vector<uint8_t>({1, 0, 0, 1}, {4});
  Tensor m = masked_fill(x, mask, -7.0);
  check_close(m, tensor_from(m.shape(), [&](const Shape& i) {
    return at(mask, {i[1]}) ? -7.0 : at(x, i);
  }), 0, 0, "masked_fill");
  gradcheck([&](const TensorList& in) { return masked_fill(in[0], mask, 3.0); }, {randn({2, 4}, 57)},
            "masked_fill");
  // No silent casts: value tensors of two dtypes are refused, naming the op.
  CHECK_THROWS_WITH_AS(where(cond_f, a, b.to(DType::F32)),
                       doctest::Contains("where: dtype mismatch, float64 [1, 13] and float32 [7, 13]"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(masked_fill(x, Tensor::ones({2, 5, 4}, DType::U8), 0),
                       doctest::Contains("masked_fill"), vc::Error);
}
