// Reductions over any set of axes, with and without keepdim, against loops that gather each
// output's group of input elements; max/min indices, ties and gradients.
#include <map>

#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

// The elements of x reduced into each output, grouped in row-major order of the output and,
// within a group, in row-major order of the input.
struct Groups {
  Shape out_shape;
  std::vector<std::vector<double>> members;
};

Groups group_by(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  std::vector<bool> reduced(x.dim(), false);
  for (int64_t a : axes) reduced[a < 0 ? a + x.dim() : a] = true;
  Shape keep = x.shape();
  Groups g;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (reduced[d]) keep[d] = 1;
    if (!reduced[d] || keepdim) g.out_shape.push_back(reduced[d] ? 1 : x.shape()[d]);
  }
  g.members.resize(numel_of(keep));
  for_each_index(x.shape(), [&](const Shape& i) {
    int64_t flat = 0;
    for (int64_t d = 0; d < x.dim(); ++d) flat = flat * keep[d] + (reduced[d] ? 0 : i[d]);
    g.members[flat].push_back(at(x, i));
  });
  return g;
}

Tensor reduce_ref(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim,
                  const std::function<double(const std::vector<double>&)>& f) {
  Groups g = group_by(x, axes, keepdim);
  int64_t k = 0;
  return tensor_from(g.out_shape, [&](const Shape&) { return f(g.members[k++]); });
}

double sum_of(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return s;
}

double var_of(const std::vector<double>& v, double correction) {
  double m = sum_of(v) / double(v.size()), s = 0;
  for (double e : v) s += (e - m) * (e - m);
  return s / (double(v.size()) - correction);
}

const std::vector<std::vector<int64_t>> kAxisSets = {
    {0}, {1}, {3}, {-1}, {0, 2}, {2, 0}, {1, 3}, {-3, -1}, {0, 1, 2, 3}};

}  // namespace

TEST_CASE("sum, mean, var over any axes with keepdim") {
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor x = randn_permuted({3, 1, 7, 5}, 61, dt);
    double tol = dt == DType::F64 ? 1e-13 : 1e-5;
    for (const auto& axes : kAxisSets) {
      for (bool keepdim : {false, true}) {
        std::string what = std::string(dtype_name(dt)) + " axes " + shape_str(axes) +
                           (keepdim ? " keepdim" : "");
        check_close(sum(x, axes, keepdim), reduce_ref(x, axes, keepdim, sum_of), tol, tol,
                    "sum " + what);
        check_close(mean(x, axes, keepdim), reduce_ref(x, axes, keepdim, [](auto& v) {
          return sum_of(v) / double(v.size());
        }), tol, tol, "mean " + what);
        for (double corr : {0.0, 1.0}) {
          if (axes == std::vector<int64_t>{1}) continue;  // one element: var undefined at 1
          check_close(var(x, axes, corr, keepdim), reduce_ref(x, axes, keepdim, [&](auto& v) {
            return var_of(v, corr);
          }), tol, tol, "var " + what);
        }
      }
    }
    CHECK(sum(x).shape() == Shape{});
    CHECK(sum(x).item() == doctest::Approx(sum_of(values(x))).epsilon(tol));
    CHECK(mean(x).item() == doctest::Approx(sum_of(values(x)) / 105).epsilon(tol));
  }
  Tensor x = randn({2, 3}, 62);
  CHECK_THROWS_WITH_AS(sum(x, {1, -1}), doctest::Contains("sum: axis 1 repeated"), vc::Error);
  CHECK_THROWS_WITH_AS(mean(x, {2}), doctest::Contains("mean: axis 2 out of range"), vc::Error);
  CHECK_THROWS_WITH_AS(var(randn({2, 1}, 63), {1}), doctest::Contains("var"), vc::Error);
}

TEST_CASE("max/min with indices, argmax, ties pick the first") {
  Tensor x = randn_permuted({3, 1, 7, 5}, 64);
  for (int64_t axis : {0, 1, 2, 3, -1}) {
    for (bool keepdim : {false, true}) {
      Groups g = group_by(x, {axis}, keepdim);
      for (bool is_max : {true, false}) {
        MaxResult r = is_max ? max(x, axis, keepdim) : min(x, axis, keepdim);
        int64_t k = 0, j = 0;
        std::string what = std::string(is_max ? "max" : "min") + " axis " + std::to_string(axis);
        check_close(r.values, tensor_from(g.out_shape, [&](const Shape&) {
          auto& m = g.members[k++];
          return is_max ? *std::max_element(m.begin(), m.end())
                        : *std::min_element(m.begin(), m.end());
        }), 0, 0, what);
        REQUIRE(r.indices.dtype() == DType::I64);
        check_close(r.indices, tensor_from(g.out_shape, [&](const Shape&) {
          auto& m = g.members[j++];
          auto it = is_max ? std::max_element(m.begin(), m.end())
                           : std::min_element(m.begin(), m.end());
          return double(it - m.begin());
        }), 0, 0, what + " indices");
      }
      check_close(argmax(x, axis, keepdim), max(x, axis, keepdim).indices, 0, 0, "argmax");
    }
  }
  Tensor t = Tensor::from_vector<float>({1, 3, 3, 2, 0, 0, -1, 0}, {2, 4});
  CHECK(argmax(t, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(min(t, 1).indices.to_vector<int64_t>() == std::vector<int64_t>{0, 2});
  CHECK(max(t).item() == 3);
  CHECK_FALSE(argmax(t.clone().set_requires_grad(true), 0).requires_grad());
  CHECK_THROWS_WITH_AS(max(Tensor::zeros({3, 0}), 1), doctest::Contains("max: empty axis"),
                       vc::Error);
}

TEST_CASE("reductions: float64 gradients") {
  Tensor x = randn({3, 1, 4, 2}, 65);
  for (const auto& axes : kAxisSets) {
    for (bool keepdim : {false, true}) {
      std::string what = " axes " + shape_str(axes) + (keepdim ? " keepdim" : "");
      auto f = [&](auto op) {
        return [&, op](const TensorList& in) { return op(in[0].permute({2, 0, 3, 1})); };
      };
      gradcheck(f([&](const Tensor& v) { return sum(v, axes, keepdim); }), {x}, "sum" + what);
      gradcheck(f([&](const Tensor& v) { return mean(v, axes, keepdim); }), {x}, "mean" + what);
      bool single = axes == std::vector<int64_t>{3} || axes == std::vector<int64_t>{-1};
      if (!single)  // the permuted axis 3 has size 1: no unbiased variance
        gradcheck(f([&](const Tensor& v) { return var(v, axes, 1, keepdim); }), {x}, "var" + what);
      gradcheck(f([&](const Tensor& v) { return var(v, axes, 0, keepdim); }), {x},
                "var(c=0)" + what);
    }
  }
  for (int64_t axis : {0, 2, -1}) {
    gradcheck([&](const TensorList& in) { return max(in[0].transpose(0, 2), axis).values; }, {x},
              "max axis " + std::to_string(axis));
    gradcheck([&](const TensorList& in) { return min(in[0], axis, true).values; }, {x},
              "min axis " + std::to_string(axis));
  }
  gradcheck([](const TensorList& in) { return max(in[0]); }, {x}, "max all");
  gradcheck([](const TensorList& in) { return sum(in[0]) + mean(in[0]); }, {x}, "sum+mean all");
  // A tie sends the whole gradient to the first maximum.
  Tensor t = Tensor::from_vector<double>({2, 5, 5, 1}, {4}).set_requires_grad(true);
  max(t, 0).values.backward();
  CHECK(values(t.grad()) == std::vector<double>{0, 1, 0, 0});
}
