// softmax, log_softmax, layer_norm, l2_normalize, cross_entropy and dropout against loops
// written from their definitions; float64 gradients of every input.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

// softmax of x along axis at index i, from the definition (max-shifted for range).
double softmax_at(const Tensor& x, int64_t axis, const Shape& i, bool log) {
  Shape j = i;
  double m = -INFINITY, s = 0;
  for (j[axis] = 0; j[axis] < x.shape()[axis]; ++j[axis]) m = std::max(m, at(x, j));
  for (j[axis] = 0; j[axis] < x.shape()[axis]; ++j[axis]) s += std::exp(at(x, j) - m);
  double z = at(x, i) - m - std::log(s);
  return log ? z : std::exp(z);
}

}  // namespace

TEST_CASE("softmax and log_softmax on any axis") {
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor x = randn_permuted({3, 1, 7, 5}, 141, dt);
    double tol = dt == DType::F64 ? 1e-14 : 1e-6;
    for (int64_t axis : {0, 1, 2, 3}) {
      for (bool log : {false, true}) {
        Tensor y = log ? log_softmax(x, axis) : softmax(x, axis);
        check_close(y, tensor_from(x.shape(), [&](const Shape& i) {
          return softmax_at(x, axis, i, log);
        }), tol, tol, std::string(log ? "log_softmax" : "softmax") + " axis " + std::to_string(axis));
      }
    }
  }
  // Large logits do not overflow; a fully masked row is 0 (log: -inf), a partly masked row
  // ignores its -inf entries.
  Tensor big = Tensor::from_vector<float>({1000, 1001, -INFINITY, -INFINITY, 0, -INFINITY}, {2, 3});
  std::vector<double> want = {1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(-1.0)), 0, 0, 1, 0};
  check_close(softmax(big.reshape({3, 2}).transpose(0, 1).contiguous().transpose(0, 1), 0),
              softmax(big.reshape({3, 2}), 0), 0, 0, "softmax of transposed");
  check_close(softmax(big), tensor_from({2, 3}, [&](const Shape& i) { return want[i[0] * 3 + i[1]]; }),
              1e-7, 1e-6, "softmax masked rows");
  std::vector<double> lv = values(log_softmax(big));
  CHECK(lv[3] == -INFINITY);
  CHECK(lv[4] == 0);
  for (int64_t axis : {0, 2, -1}) {
    gradcheck([&](const TensorList& in) { return softmax(in[0].transpose(0, 2), axis); },
              {randn({3, 2, 4}, 142)}, "softmax axis " + std::to_string(axis));
    gradcheck([&](const TensorList& in) { return log_softmax(in[0].transpose(0, 2), axis); },
              {randn({3, 2, 4}, 143)}, "log_softmax axis " + std::to_string(axis));
  }
  // The gradient of a partly masked row leaves the masked entries at 0.
  Tensor m = Tensor::from_vector<double>({0.5, -INFINITY, 1.0}, {1, 3}).set_requires_grad(true);
  sum(mul(log_softmax(m), Tensor::from_vector<double>({1, 2, 3}, {1, 3}))).backward();
  std::vector<double> gm = values(m.grad());
  CHECK(gm[1] == 0);
  CHECK(std::isfinite(gm[0]));
}

TEST_CASE("layer_norm with and without affine parameters") {
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor x = randn_permuted({3, 1, 13}, 151, dt);
    Tensor w = randn({13}, 152, dt), b = randn_narrowed({13}, 153, dt);
    double eps = 1e-5, tol = dt == DType::F64 ? 1e-13 : 1e-5;
    for (int affine = 0; affine < 3; ++affine) {
      Tensor wt = affine >= 1 ? w : Tensor(), bt = affine >= 2 ? b : Tensor();
      Tensor y = layer_norm(x, wt, bt, eps);
      check_close(y, tensor_from(x.shape(), [&](const Shape& i) {
        double m = 0, v = 0;
        Shape j = i;
        for (j[2] = 0; j[2] < 13; ++j[2]) m += at(x, j) / 13;
        for (j[2] = 0; j[2] < 13; ++j[2]) v += (at(x, j) - m) * (at(x, j) - m) / 13;
        double h = (at(x, i) - m) / std::sqrt(v + eps);
        return h * (wt.defined() ? at(w, {i[2]}) : 1.0) + (bt.defined() ? at(b, {i[2]}) : 0.0);
      }), tol, tol, std::string("layer_norm ") + dtype_name(dt) + " affine " + std::to_string(affine));
    }
  }
  // A large offset does not destroy the variance (two-pass, not E[x^2] - E[x]^2).
  Tensor off = add(randn({4, 64}, 154, DType::F32), 1e4);
  Tensor y = layer_norm(off, Tensor(), Tensor());
  CHECK(var(y, {1}, 0).to_vector<float>()[0] == doctest::Approx(1.0).epsilon(1e-3));

  gradcheck([](const TensorList& in) { return layer_norm(in[0].transpose(0, 1), in[1], in[2]); },
            {randn({3, 5}, 155), randn({3}, 156), randn({3}, 157)}, "layer_norm x, w, b");
  gradcheck([](const TensorList& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-3); },
            {randn({2, 1, 7}, 158)}, "layer_norm x only");
  gradcheck([](const TensorList& in) { return layer_norm(in[0].expand({3, 4}), in[1], Tensor()); },
            {randn({1, 4}, 159), randn({4}, 160)}, "layer_norm expanded x, w");
  CHECK_THROWS_WITH_AS(layer_norm(randn({2, 3}, 161), randn({4}, 162), Tensor()),
                       doctest::Contains("layer_norm: parameter shape [4] does not match last dim of [2, 3]"),
                       vc::Error);
}

TEST_CASE("layer_norm: the 8-lane row sums at the models' widths, gradients, 1-vs-2-thread bits") {
  // Widths 128 (the tiny models) and 131 (8 lanes and a tail), against the loop in float64
  // and float32; float64 gradcheck at width 19; rows x width above the threading threshold.
  for (int64_t n : {128, 131})
    for (DType dt : {DType::F64, DType::F32}) {
      Tensor x = add(randn({5, n}, 180, dt), 3.0), w = randn({n}, 181, dt), b = randn({n}, 182, dt);
      double tol = dt == DType::F64 ? 1e-13 : 1e-5;
      check_close(layer_norm(x, w, b), tensor_from(x.shape(), [&](const Shape& i) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < n; ++j) m += at(x, {i[0], j}) / double(n);
        for (int64_t j = 0; j < n; ++j) v += (at(x, {i[0], j}) - m) * (at(x, {i[0], j}) - m) / double(n);
        return (at(x, i) - m) / std::sqrt(v + 1e-5) * at(w, {i[1]}) + at(b, {i[1]});
      }), tol, tol, "layer_norm n=" + std::to_string(n) + " " + dtype_name(dt));
    }
  gradcheck([](const TensorList& in) { return layer_norm(in[0], in[1], in[2]); },
            {randn({3, 19}, 183), randn({19}, 184), randn({19}, 185)}, "layer_norm width 19");
  auto bits = [](int threads) {
    set_num_threads(threads);
    Tensor x = randn({300, 131}, 186, DType::F32).set_requires_grad(true);
    Tensor w = randn({131}, 187, DType::F32).set_requires_grad(true);
    Tensor b = randn({131}, 188, DType::F32).set_requires_grad(true);
    Tensor y = layer_norm(x, w, b);
    sum(mul(y, randn({300, 131}, 189, DType::F32))).backward();
    return std::vector<uint64_t>{hash_bits(y), hash_bits(x.grad()), hash_bits(w.grad()), hash_bits(b.grad())};
  };
  int before = num_threads();
  std::vector<uint64_t> one = bits(1), two = bits(2);
  set_num_threads(before);
  CHECK(one == two);
}

TEST_CASE("l2_normalize") {
  Tensor x = randn_permuted({4, 1, 6}, 171);
  for (int64_t axis : {0, 2, -1}) {
    int64_t a = axis < 0 ? axis + 3 : axis;
    Tensor y = l2_normalize(x, axis);
    check_close(y, tensor_from(x.shape(), [&](const Shape& i) {
      Shape j = i;
      double s = 0;
      for (j[a] = 0; j[a] < x.shape()[a]; ++j[a]) s += at(x, j) * at(x, j);
      return at(x, i) / std::max(std::sqrt(s), 1e-12);
    }), 1e-15, 1e-14, "l2_normalize axis " + std::to_string(axis));
    gradcheck([&](const TensorList& in) { return l2_normalize(in[0].transpose(0, 2), axis); },
              {randn({3, 1, 4}, 172)}, "l2_normalize axis " + std::to_string(axis));
  }
  // A zero vector stays zero, finite, with a finite gradient.
  Tensor z = Tensor::zeros({2, 3}, DType::F64).set_requires_grad(true);
  Tensor yz = l2_normalize(z);
  CHECK(values(yz) == std::vector<double>(6, 0.0));
  sum(yz).backward();
  for (double g : values(z.grad())) CHECK(std::isfinite(g));
}

TEST_CASE("cross_entropy: hard labels, soft targets, smoothing, ignore_index") {
  const int64_t N = 5, C = 7;
  Tensor logits = randn_permuted({N, C}, 181);
  Tensor labels = Tensor::from_vector<int64_t>({3, 0, 6, 3, 1}, {N});
  Tensor soft = softmax(randn({N, C}, 182));
  // Reference: per row sum_j q_j (lse - x_j), q = (1 - eps) target + eps / C.
  auto ref = [&](const std::function<double(int64_t, int64_t)>& target, double eps,
                 const std::vector<bool>& counted, bool mean) {
    double total = 0;
    int64_t rows = 0;
    for (int64_t r = 0; r < N; ++r) {
      if (!counted[r]) continue;
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < C; ++j) m = std::max(m, at(logits, {r, j}));
      for (int64_t j = 0; j < C; ++j) s += std::exp(at(logits, {r, j}) - m);
      double lse = m + std::log(s);
      for (int64_t j = 0; j < C; ++j)
        total += ((1 - eps) * target(r, j) + eps / C) * (lse - at(logits, {r, j}));
      ++rows;
    }
    return mean ? total / rows : total;
  };
  auto onehot = [&](int64_t r, int64_t j) { return at(labels, {r}) == j ? 1.0 : 0.0; };
  auto softq = [&](int64_t r, int64_t j) { return at(soft, {r, j}); };
  std::vector<bool> all(N, true);
  for (double eps : {0.0, 0.1}) {
    CrossEntropyOptions o;
    o.label_smoothing = eps;
    CHECK(cross_entropy(logits, labels, o).item() == doctest::Approx(ref(onehot, eps, all, true)).epsilon(1e-13));
    CHECK(cross_entropy(logits, soft, o).item() == doctest::Approx(ref(softq, eps, all, true)).epsilon(1e-13));
    o.mean = false;
    CHECK(cross_entropy(logits, labels, o).item() == doctest::Approx(ref(onehot, eps, all, false)).epsilon(1e-13));
    o.mean = true;
    o.ignore_index = 3;  // rows 0 and 3 are ignored, the mean is over the other 3
    CHECK(cross_entropy(logits, labels, o).item() ==
          doctest::Approx(ref(onehot, eps, {false, true, true, false, true}, true)).epsilon(1e-13));
  }
  // float32 logits and soft targets.
  CHECK(cross_entropy(logits.to(DType::F32), labels).item() ==
        doctest::Approx(ref(onehot, 0, all, true)).epsilon(1e-5));

  for (double eps : {0.0, 0.2}) {
    CrossEntropyOptions o;
    o.label_smoothing = eps;
    std::string e = " eps " + std::to_string(eps);
    gradcheck([&](const TensorList& in) { return cross_entropy(in[0].transpose(0, 1), labels, o); },
              {randn({C, N}, 183)}, "cross_entropy hard" + e);
    gradcheck([&](const TensorList& in) { return cross_entropy(in[0], soft, o); },
              {randn({N, C}, 184)}, "cross_entropy soft" + e);
    o.ignore_index = 3;
    o.mean = false;
    gradcheck([&](const TensorList& in) { return cross_entropy(in[0], labels, o); },
              {randn({N, C}, 185)}, "cross_entropy ignore_index, sum" + e);
  }
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector<int64_t>({7, 0, 0, 0, 0}, {N})),
                       doctest::Contains("cross_entropy: label 7 at row 0 is out of range [0, 7)"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, labels.narrow(0, 0, 4)),
                       doctest::Contains("cross_entropy: labels [4] for logits [5, 7]"), vc::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits.reshape({-1}), labels),
                       doctest::Contains("cross_entropy: logits must be [N, C]"), vc::Error);
}

TEST_CASE("dropout: rate, scale, reproducibility, identity in eval") {
  Tensor x = Tensor::ones({200, 300});
  double p = 0.3;
  Tensor y = dropout(x, p, true, 5, 1);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeros = 0;
  for (float e : v) {
    if (e == 0) ++zeros;
    else CHECK(e == float(1.0 / (1.0 - p)));
  }
  // 60000 Bernoulli(0.3) draws: the standard deviation of the rate is about 0.0019.
  CHECK(double(zeros) / v.size() == doctest::Approx(p).epsilon(0.03));
  CHECK(hash_bits(dropout(x, p, true, 5, 1)) == hash_bits(y));
  CHECK(hash_bits(dropout(x, p, true, 5, 2)) != hash_bits(y));
  CHECK(hash_bits(dropout(x, p, true, 6, 1)) != hash_bits(y));
  CHECK(dropout(x, p, false, 5, 1).same(x));
  CHECK(dropout(x, 0.0, true, 5, 1).same(x));
  CHECK_THROWS_WITH_AS(dropout(x, 1.0, true, 5, 1), doctest::Contains("dropout: p = 1"), vc::Error);
  // The gradient is the same mask and scale.
  gradcheck([](const TensorList& in) { return dropout(in[0].transpose(0, 1), 0.4, true, 9, 3); },
            {randn({4, 6}, 191)}, "dropout");
  Tensor xg = Tensor::ones({50, 20}, DType::F64).set_requires_grad(true);
  Tensor yg = dropout(xg, 0.5, true, 3, 0);
  sum(yg).backward();
  CHECK(values(xg.grad()) == values(yg));
}
