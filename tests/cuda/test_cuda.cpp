// CUDA against CPU (DESIGN.md, tests layer 3). One table drives every op: each entry builds
// its inputs on the CPU, runs the same function on the CPU and on cuda:0, and compares every
// output and every input gradient with |cuda - cpu| <= atol + rtol |cpu|, reporting the max
// error. Without a GPU (or without the CUDA build) every test prints "SKIPPED: no CUDA
// device" and passes; with a GPU, a test that ran zero cases fails.
//
// VERBCLIP_CUDA_CASES=substring runs only the table entries whose name contains it (the
// compute-sanitizer subset in scripts/cuda-check.sh).
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "tests/common/testing.h"

namespace vc {
namespace {

using testing::hash_bits;

bool have_gpu() { return cuda_available(); }

#define VC_SKIP_WITHOUT_GPU()                \
  do {                                       \
    if (!have_gpu()) {                       \
      MESSAGE("SKIPPED: no CUDA device");    \
      return;                                \
    }                                        \
  } while (0)

Tensor R(const Shape& s, uint64_t seed) { return testing::randn(s, seed, DType::F32); }
Tensor I(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector(v, s); }
Tensor positive(const Tensor& x) { return add(abs(x), 0.25); }

struct Case {
  std::string name;
  std::function<TensorList()> make;                 // CPU inputs
  std::function<TensorList(const TensorList&)> f;   // outputs (some may be undefined)
  std::vector<int> grad;                            // inputs that get gradients
  double atol = 1e-5, rtol = 1e-4;
};

struct Compare {
  double max_abs = 0, worst_excess = 0;
  bool ok = true;
};

// Every element of the CUDA tensor (copied back) against the CPU one.
Compare compare(const Tensor& gpu, const Tensor& cpu_t, double atol, double rtol) {
  Compare c;
  Tensor g = gpu.detach().to(cpu());
  if (g.shape() != cpu_t.shape()) {
    c.ok = false;
    c.worst_excess = INFINITY;
    return c;
  }
  std::vector<double> a = testing::values(g), b = testing::values(cpu_t.detach());
  bool exact = !is_floating(cpu_t.dtype());
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) continue;
    double err = std::abs(a[i] - b[i]);
    double excess = exact ? err : err - (atol + rtol * std::abs(b[i]));
    if (std::isnan(err)) excess = err = INFINITY;
    c.max_abs = std::max(c.max_abs, err);
    if (excess > 0) c.ok = false;
    c.worst_excess = std::max(c.worst_excess, excess);
  }
  return c;
}

std::string case_filter() {
  const char* v = std::getenv("VERBCLIP_CUDA_CASES");
  return v ? v : "";
}

// Runs one case on both devices; returns false when it was filtered out.
bool run_case(const Case& c) {
  std::string filt = case_filter();
  if (!filt.empty() && c.name.find(filt) == std::string::npos) return false;
  TensorList cin = c.make(), gin;
  for (Tensor& t : cin) t = t.detach();
  for (const Tensor& t : cin) gin.push_back(t.defined() ? t.to(cuda()) : Tensor());
  for (int i : c.grad) {
    cin[i].set_requires_grad(true);
    gin[i].set_requires_grad(true);
  }
  TensorList cout_ = c.f(cin), gout = c.f(gin);
  REQUIRE(cout_.size() == gout.size());
  double worst = 0;
  Tensor lc, lg;
  for (size_t k = 0; k < cout_.size(); ++k) {
    if (!cout_[k].defined()) continue;
    REQUIRE_MESSAGE(gout[k].device() == cuda(), c.name, ": output ", k, " left the GPU");
    Compare r = compare(gout[k], cout_[k], c.atol, c.rtol);
    worst = std::max(worst, r.max_abs);
    CHECK_MESSAGE(r.ok, c.name, ": output ", k, " max |cuda - cpu| = ", r.max_abs,
                  " (atol ", c.atol, ", rtol ", c.rtol, ")");
    if (!c.grad.empty() && is_floating(cout_[k].dtype()) && cout_[k].requires_grad()) {
      Tensor w = testing::randn(cout_[k].shape(), 1000 + k, cout_[k].dtype());
      Tensor tc = sum(mul(cout_[k], w)), tg = sum(mul(gout[k], w.to(cuda())));
      lc = lc.defined() ? add(lc, tc) : tc;
      lg = lg.defined() ? add(lg, tg) : tg;
    }
  }
  if (lc.defined()) {
    lc.backward();
    lg.backward();
    for (int i : c.grad) {
      REQUIRE_MESSAGE(cin[i].grad().defined(), c.name, ": cpu input ", i, " got no gradient");
      REQUIRE_MESSAGE(gin[i].grad().defined(), c.name, ": cuda input ", i, " got no gradient");
      Compare r = compare(gin[i].grad(), cin[i].grad(), c.atol, c.rtol);
      worst = std::max(worst, r.max_abs);
      CHECK_MESSAGE(r.ok, c.name, ": d/d input ", i, " max |cuda - cpu| = ", r.max_abs,
                    " (atol ", c.atol, ", rtol ", c.rtol, ")");
    }
  }
  MESSAGE(c.name, ": max |cuda - cpu| = ", worst);
  return true;
}

TensorList one(const Tensor& t) { return {t}; }

// ---- the table ---------------------------------------------------------------------------

std::vector<Case> unary_cases() {
  using F = std::function<Tensor(const Tensor&)>;
  std::vector<std::pair<std::string, F>> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"log", [](const Tensor& x) { return log(positive(x)); }},
      {"sqrt", [](const Tensor& x) { return sqrt(positive(x)); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(positive(x)); }},
      {"abs", [](const Tensor& x) { return abs(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(mul(x, 4.0)); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu_tanh(x); }},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); }},
      {"pow3", [](const Tensor& x) { return pow(x, 3.0); }},
      {"pow_half", [](const Tensor& x) { return pow(positive(x), 0.5); }},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }},
      {"add_scalar", [](const Tensor& x) { return add(x, 1.5); }},
      {"mul_scalar", [](const Tensor& x) { return mul(x, -2.5); }},
      {"rdiv", [](const Tensor& x) { return rdiv(2.0, positive(x)); }},
  };
  std::vector<Case> cs;
  for (auto& [name, f] : ops)
    for (Shape s : {Shape{1}, Shape{3, 257}, Shape{1031}}) {
      F fn = f;
      cs.push_back({"unary/" + name + " " + shape_str(s), [s] { return TensorList{R(s, 1)}; },
                    [fn](const TensorList& in) { return one(fn(in[0])); }, {0}, 1e-5, 1e-4});
    }
  return cs;
}

std::vector<Case> binary_cases() {
  using F = std::function<Tensor(const Tensor&, const Tensor&)>;
  std::vector<std::pair<std::string, F>> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, positive(b)); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
  };
  std::vector<std::pair<Shape, Shape>> shapes = {
      {{1}, {1}}, {{5, 1, 7}, {1, 13, 7}}, {{3, 257}, {257}}, {{2, 3, 1}, {1}}};
  std::vector<Case> cs;
  for (auto& [name, f] : ops)
    for (auto& [sa, sb] : shapes) {
      F fn = f;
      Shape a = sa, b = sb;
      cs.push_back({"binary/" + name + " " + shape_str(a) + "x" + shape_str(b),
                    [a, b] { return TensorList{R(a, 2), R(b, 3)}; },
                    [fn](const TensorList& in) { return one(fn(in[0], in[1])); }, {0, 1}});
    }
  // Comparisons (no gradient), on values with ties.
  std::vector<std::pair<std::string, F>> cmp = {
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); }},
  };
  for (auto& [name, f] : cmp) {
    F fn = f;
    cs.push_back({"compare/" + name,
                  [] {
                    return TensorList{clamp(R({5, 1, 7}, 4), -1, 1).to(DType::F64).to(DType::I64)
                                          .to(DType::F32),
                                      clamp(R({1, 13, 7}, 5), -1, 1).to(DType::I64).to(DType::F32)};
                  },
                  [fn](const TensorList& in) { return one(fn(in[0], in[1])); }, {}});
  }
  cs.push_back({"where/broadcast", [] { return TensorList{R({4, 1, 9}, 6), R({1, 5, 9}, 7), R({9}, 8)}; },
                [](const TensorList& in) { return one(where(gt(in[0], Tensor::zeros({1}, DType::F32, in[0].device())), in[1], in[2])); },
                {1, 2}});
  cs.push_back({"masked_fill", [] { return TensorList{R({6, 11}, 9), R({6, 11}, 10)}; },
                [](const TensorList& in) { return one(masked_fill(in[0], gt(in[1], Tensor::zeros({1}, DType::F32, in[1].device())), -3.0)); },
                {0}});
  return cs;
}

std::vector<Case> reduce_cases() {
  std::vector<Case> cs;
  for (Shape s : {Shape{1, 1}, Shape{13, 1}, Shape{3, 1000}, Shape{2, 513, 3}}) {
    std::string sh = shape_str(s);
    cs.push_back({"sum/axis1 " + sh, [s] { return TensorList{R(s, 11)}; },
                  [](const TensorList& in) { return one(sum(in[0], {1})); }, {0}});
    cs.push_back({"sum/all " + sh, [s] { return TensorList{R(s, 12)}; },
                  [](const TensorList& in) { return one(sum(in[0])); }, {0}, 1e-4, 1e-4});
    // Leading axes take the column kernel (reduce_columns).
    cs.push_back({"sum/axis0 (columns) " + sh, [s] { return TensorList{R(s, 14)}; },
                  [](const TensorList& in) { return one(sum(in[0], {0})); }, {0}});
    cs.push_back({"mean/axis0 " + sh, [s] { return TensorList{R(s, 13)}; },
                  [](const TensorList& in) { return one(mean(in[0], {0}, true)); }, {0}});
    cs.push_back({"max/axis-1 " + sh, [s] { return TensorList{R(s, 15)}; },
                  [](const TensorList& in) {
                    MaxResult m = max(in[0], -1);
                    return TensorList{m.values, m.indices};
                  },
                  {0}});
    cs.push_back({"min/axis0 " + sh, [s] { return TensorList{R(s, 16)}; },
                  [](const TensorList& in) {
                    MaxResult m = min(in[0], 0);
                    return TensorList{m.values, m.indices};
                  },
                  {0}});
    if (s[1] > 1)
      cs.push_back({"var/axis1 " + sh, [s] { return TensorList{R(s, 14)}; },
                    [](const TensorList& in) { return one(var(in[0], {1})); }, {0}});
  }
  cs.push_back({"argmax/ties", [] { return TensorList{clamp(R({7, 300}, 17), -0.5, 0.5)}; },
                [](const TensorList& in) { return one(argmax(in[0], 1)); }, {}});
  return cs;
}

std::vector<Case> matmul_cases() {
  std::vector<Case> cs;
  std::vector<std::pair<Shape, Shape>> shapes = {{{1, 1}, {1, 1}},
                                                 {{7, 13}, {13, 5}},
                                                 {{3, 31, 17}, {17, 29}},
                                                 {{2, 3, 65, 67}, {2, 3, 67, 63}},
                                                 {{257}, {257, 3}},
                                                 {{4, 0}, {0, 3}}};
  for (auto& [a, b] : shapes) {
    Shape sa = a, sb = b;
    cs.push_back({"matmul " + shape_str(sa) + "x" + shape_str(sb),
                  [sa, sb] { return TensorList{R(sa, 21), R(sb, 22)}; },
                  [](const TensorList& in) { return one(matmul(in[0], in[1])); }, {0, 1}, 1e-4,
                  1e-4});
  }
  cs.push_back({"matmul/transposed views", [] { return TensorList{R({19, 11}, 23), R({7, 19}, 24)}; },
                [](const TensorList& in) {
                  return one(matmul(in[0].transpose(0, 1), in[1].transpose(0, 1)));
                },
                {0, 1}, 1e-4, 1e-4});
  return cs;
}

std::vector<Case> view_cases() {
  std::vector<Case> cs;
  cs.push_back({"copy/permute", [] { return TensorList{R({3, 5, 7, 2}, 31)}; },
                [](const TensorList& in) { return one(in[0].permute({2, 0, 3, 1}).contiguous()); },
                {0}});
  cs.push_back({"copy/narrow", [] { return TensorList{R({9, 33}, 32)}; },
                [](const TensorList& in) { return one(mul(in[0].narrow(1, 5, 17), 2.0)); }, {0}});
  cs.push_back({"concat/stack", [] { return TensorList{R({2, 3, 5}, 33), R({2, 4, 5}, 34)}; },
                [](const TensorList& in) {
                  return TensorList{concat({in[0], in[1]}, 1), stack({in[0], in[0]}, 0)};
                },
                {0, 1}});
  cs.push_back({"cast/f64", [] { return TensorList{R({5, 7}, 35)}; },
                [](const TensorList& in) { return one(mul(in[0].to(DType::F64), 3.0)); }, {0}});
  cs.push_back({"cast/i64 u8", [] { return TensorList{mul(R({5, 7}, 36), 4.0)}; },
                [](const TensorList& in) {
                  return TensorList{in[0].to(DType::I64), gt(in[0], Tensor::zeros({1}, DType::F32, in[0].device())).to(DType::U8)};
                },
                {}});
  cs.push_back({"fill/full", [] { return TensorList{R({1}, 37)}; },
                [](const TensorList& in) {
                  return TensorList{Tensor::full({3, 7}, 2.5, DType::F32, in[0].device()),
                                    Tensor::arange(11, DType::I64, in[0].device())};
                },
                {}});
  return cs;
}

std::vector<Case> index_cases() {
  std::vector<Case> cs;
  cs.push_back({"index_select/repeated", [] { return TensorList{R({3, 7, 5}, 41), I({6, 0, 6, 2, 6, 1, 0}, {7})}; },
                [](const TensorList& in) { return one(index_select(in[0], 1, in[1])); }, {0}});
  cs.push_back({"index_select/rows 257", [] {
                  std::vector<int64_t> v(300);
                  for (size_t i = 0; i < v.size(); ++i) v[i] = int64_t(i * 7 % 257);
                  return TensorList{R({257, 3}, 42), I(v, {300})};
                },
                [](const TensorList& in) { return one(index_select(in[0], 0, in[1])); }, {0}});
  cs.push_back({"gather", [] {
                  std::vector<int64_t> v(4 * 9 * 3);
                  for (size_t i = 0; i < v.size(); ++i) v[i] = int64_t(i * 5 % 6);
                  return TensorList{R({4, 6, 3}, 43), I(v, {4, 9, 3})};
                },
                [](const TensorList& in) { return one(gather(in[0], 1, in[1])); }, {0}});
  cs.push_back({"scatter_add", [] {
                  std::vector<int64_t> v(4 * 9 * 3);
                  for (size_t i = 0; i < v.size(); ++i) v[i] = int64_t(i * 5 % 6);
                  return TensorList{R({4, 6, 3}, 44), I(v, {4, 9, 3}), R({4, 9, 3}, 45)};
                },
                [](const TensorList& in) { return one(scatter_add(in[0], 1, in[1], in[2])); },
                {0, 2}});
  cs.push_back({"embedding", [] { return TensorList{R({11, 13}, 46), I({3, 3, 0, 10, 7, 3}, {2, 3})}; },
                [](const TensorList& in) { return one(embedding(in[0], in[1])); }, {0}});
  return cs;
}

std::vector<Case> norm_cases() {
  std::vector<Case> cs;
  for (Shape s : {Shape{5, 1}, Shape{4, 257}, Shape{3, 1000}}) {
    cs.push_back({"softmax " + shape_str(s), [s] { return TensorList{mul(R(s, 51), 3.0)}; },
                  [](const TensorList& in) { return one(softmax(in[0])); }, {0}});
    cs.push_back({"log_softmax " + shape_str(s), [s] { return TensorList{mul(R(s, 52), 3.0)}; },
                  [](const TensorList& in) { return one(log_softmax(in[0])); }, {0}});
  }
  cs.push_back({"softmax/fully masked row", [] { return TensorList{R({4, 37}, 53)}; },
                [](const TensorList& in) {
                  Tensor rowmask = Tensor::zeros({4, 1}, DType::F32, in[0].device());
                  rowmask = add(rowmask, Tensor::from_vector(std::vector<float>{0, 1, 0, 0}, {4, 1}).to(in[0].device()));
                  Tensor x = masked_fill(in[0], gt(rowmask, Tensor::zeros({1}, DType::F32, in[0].device())), -INFINITY);
                  return TensorList{softmax(x), log_softmax(x)};
                },
                {0}});
  for (Shape s : {Shape{1, 1}, Shape{7, 768}, Shape{3, 5, 13}, Shape{130, 257}}) {
    int64_t n = s.back();
    cs.push_back({"layer_norm " + shape_str(s), [s, n] { return TensorList{R(s, 54), R({n}, 55), R({n}, 56)}; },
                  [](const TensorList& in) { return one(layer_norm(in[0], in[1], in[2])); },
                  {0, 1, 2}, 2e-5, 2e-4});
  }
  cs.push_back({"layer_norm/no affine", [] { return TensorList{R({9, 31}, 57)}; },
                [](const TensorList& in) { return one(layer_norm(in[0], Tensor(), Tensor())); }, {0}});
  cs.push_back({"cross_entropy/hard smoothing ignore", [] {
                  return TensorList{R({6, 257}, 58), I({3, -100, 256, 0, 3, 100}, {6})};
                },
                [](const TensorList& in) {
                  CrossEntropyOptions o;
                  o.label_smoothing = 0.1;
                  return one(cross_entropy(in[0], in[1], o));
                },
                {0}});
  cs.push_back({"cross_entropy/soft sum", [] { return TensorList{R({5, 13}, 59), softmax(R({5, 13}, 60))}; },
                [](const TensorList& in) {
                  CrossEntropyOptions o;
                  o.mean = false;
                  return one(cross_entropy(in[0], in[1], o));
                },
                {0}});
  cs.push_back({"l2_normalize", [] { return TensorList{R({7, 65}, 61)}; },
                [](const TensorList& in) { return one(l2_normalize(in[0])); }, {0}});
  return cs;
}

std::vector<Case> random_cases() {
  std::vector<Case> cs;
  cs.push_back({"random/uniform normal gumbel", [] { return TensorList{R({1}, 0)}; },
                [](const TensorList& in) {
                  Device d = in[0].device();
                  return TensorList{rand_uniform({1031}, 5, 2, -1, 3, DType::F32, d),
                                    rand_normal({1031}, 5, 3, 0.5, 2, DType::F32, d),
                                    rand_gumbel({1031}, 5, 4, DType::F32, d),
                                    rand_normal({257}, 9, 1, 0, 1, DType::F64, d)};
                },
                {}, 1e-6, 1e-6});
  cs.push_back({"dropout", [] { return TensorList{R({13, 67}, 62)}; },
                [](const TensorList& in) { return one(dropout(in[0], 0.3, true, 77, 5)); }, {0}});
  cs.push_back({"gumbel_softmax/soft", [] { return TensorList{R({6, 17}, 63)}; },
                [](const TensorList& in) { return one(gumbel_softmax(in[0], 0.7, false, 3, 1)); },
                {0}});
  cs.push_back({"gumbel_softmax/hard", [] { return TensorList{R({6, 17}, 64)}; },
                [](const TensorList& in) { return one(gumbel_softmax(in[0], 0.5, true, 3, 2)); },
                {0}});
  return cs;
}

// q, k, v (+ optional bias / key_bias / extra k, v) for one attention configuration.
struct AttnCfg {
  std::string name;
  int64_t B, H, Nq, Nk, d, dv;
  AttentionMask mask;
  bool bias = false, key_bias = false, extra = false, dead_row = false;
  std::vector<int64_t> prob_rows;
};

Case attention_case(const AttnCfg& c) {
  auto make = [c] {
    TensorList in{R({c.B, c.H, c.Nq, c.d}, 71), R({c.B, c.H, c.Nk, c.d}, 72),
                  R({c.B, c.H, c.Nk, c.dv}, 73)};
    if (c.bias) {
      Tensor b = R({c.H, c.Nq, c.Nk}, 74);
      if (c.dead_row) {  // query row 1 sees nothing: a fully masked row
        std::vector<float> m(size_t(c.H * c.Nq * c.Nk), 0.f);
        for (int64_t h = 0; h < c.H; ++h)
          for (int64_t j = 0; j < c.Nk; ++j) m[size_t((h * c.Nq + 1) * c.Nk + j)] = 1.f;
        b = masked_fill(b, gt(Tensor::from_vector(m, {c.H, c.Nq, c.Nk}), Tensor::zeros({1})), -INFINITY);
      }
      in.push_back(b);
    } else {
      in.push_back(Tensor());
    }
    in.push_back(c.key_bias ? R({c.B, c.Nk}, 75) : Tensor());
    in.push_back(c.extra ? R({c.B, c.H, 5, c.d}, 76) : Tensor());
    in.push_back(c.extra ? R({c.B, c.H, 5, c.dv}, 77) : Tensor());
    return in;
  };
  auto f = [c](const TensorList& in) {
    AttentionOptions o;
    o.mask = c.mask;
    o.bias = in[3];
    o.key_bias = in[4];
    o.extra_k = in[5];
    o.extra_v = in[6];
    o.prob_rows = c.prob_rows;
    AttentionResult r = attention_ex(in[0], in[1], in[2], o);
    return TensorList{r.out, r.probs};
  };
  std::vector<int> grad = {0, 1, 2};
  if (c.bias && !c.dead_row) grad.push_back(3);
  if (c.key_bias) grad.push_back(4);
  if (c.extra) grad.push_back(5), grad.push_back(6);
  return {"attention/" + c.name, make, f, grad, 2e-5, 2e-4};
}

std::vector<Case> attention_cases() {
  std::vector<Case> cs;
  cs.push_back(attention_case({"none 1x1", 1, 1, 1, 1, 1, 1, AttentionMask::none(), false, false, false, false, {}}));
  cs.push_back(attention_case({"none 130x67 d7 dv5", 2, 3, 130, 67, 7, 5, AttentionMask::none(), false, false, false, false, {}}));
  cs.push_back(attention_case({"causal 100 d64", 1, 2, 100, 100, 64, 64, AttentionMask::causal(), false, false, false, false, {}}));
  cs.push_back(attention_case({"kmcta T4 L50 (blocked tiles)", 1, 2, 200, 200, 16, 16,
                               AttentionMask::kronecker(KronMask::kmcta(4, 50)), false, false, false, false, {}}));
  cs.push_back(attention_case({"kmta T3 L70", 2, 1, 210, 210, 33, 8,
                               AttentionMask::kronecker(KronMask::kmta(3, 70)), false, false, false, false, {}}));
  cs.push_back(attention_case({"class_token_only T2 L65 + probs", 1, 2, 130, 130, 8, 8,
                               AttentionMask::kronecker(KronMask::class_token_only(2, 65)), false,
                               false, false, false, {0, 64, 129}}));
  cs.push_back(attention_case({"bias key_bias extra", 2, 2, 70, 70, 12, 12,
                               AttentionMask::causal(), true, true, true, false, {3, 69}}));
  cs.push_back(attention_case({"fully masked row", 1, 2, 66, 66, 8, 8, AttentionMask::none(), true,
                               false, false, true, {}}));
  cs.push_back(attention_case({"d 96 dv 160", 1, 1, 65, 129, 96, 160, AttentionMask::none(), false, false, false, false, {}}));
  return cs;
}

std::vector<Case> special_cases() {
  std::vector<Case> cs;
  for (bool keep : {false, true}) {
    cs.push_back({std::string("temporal_shift/tsm") + (keep ? " keep" : ""),
                  [] { return TensorList{R({2, 8, 5, 24}, 81)}; },
                  [keep](const TensorList& in) { return one(temporal_shift(in[0], tsm_shift_table(8, 3), keep)); },
                  {0}});
    cs.push_back({std::string("temporal_shift/mcm") + (keep ? " keep" : ""),
                  [] { return TensorList{R({3, 8, 4, 33}, 82)}; },
                  [keep](const TensorList& in) { return one(temporal_shift(in[0], mcm_shift_table(8, 8, 2), keep)); },
                  {0}});
  }
  cs.push_back({"window_mask gather/scatter", [] {
                  return TensorList{R({8, 1 + 16, 6}, 83), R({8, 1 + 16, 6}, 84),
                                    window_mask_indices(window_mask_offsets(2, 4, 2, true, true, 5, 1), 2, 4, 4, 2, 2)};
                },
                [](const TensorList& in) {
                  Tensor g = window_mask_gather(in[0], in[2]);
                  return TensorList{g, window_mask_scatter(in[1], mul(g, 2.0), in[2])};
                },
                {0, 1}});
  for (bool protect : {true, false})
    for (int64_t n : {2, 9, 197}) {
      std::string nm = "token_merge n" + std::to_string(n) + (protect ? " protect" : "");
      cs.push_back({nm, [n] { return TensorList{R({3, n, 20}, 85), R({3, n, 20}, 86)}; },
                    [n, protect](const TensorList& in) {
                      MergePlan p = bipartite_soft_matching(in[1].detach(), n / 3 + 1, protect);
                      MergeResult m = merge_tokens(in[0], Tensor(), p);
                      MergeResult m2 = merge_tokens(m.x, m.sizes, bipartite_soft_matching(m.x.detach(), 1, protect));
                      Tensor un = p.r ? unmerge_tokens(m.x, p) : m.x;
                      return TensorList{p.r ? p.unm : Tensor(), p.r ? p.src : Tensor(),
                                        p.r ? p.dst : Tensor(), m.x, m.sizes, m2.x, m2.sizes, un};
                    },
                    {0}});
    }
  cs.push_back({"bipartite/unmerged by score, ties", [] {
                  return TensorList{clamp(R({2, 31, 3}, 87), -0.3, 0.3)};
                },
                [](const TensorList& in) {
                  MergePlan p = bipartite_soft_matching(in[0], 9, true, UnmergedOrder::Score);
                  return TensorList{p.unm, p.src, p.dst};
                },
                {}});
  for (bool largest : {true, false})
    cs.push_back({std::string("topk/ties ") + (largest ? "largest" : "smallest"),
                  [] { return TensorList{clamp(R({5, 1031}, 88), -1, 1)}; },
                  [largest](const TensorList& in) {
                    Tensor x = in[0].to(DType::F64).to(DType::I64).to(DType::F32);
                    x = add(x, mul(in[0], 1e-3));  // few distinct values near each integer
                    TopK t = topk(x, 7, -1, largest);
                    TopK t2 = topk(clamp(in[0], -0.2, 0.2), 300, -1, largest);  // exact ties
                    return TensorList{t.values, t.indices, t2.values, t2.indices};
                  },
                  {0}});
  for (int64_t s : {1, 2})
    cs.push_back({"conv2d 3x3 stride " + std::to_string(s),
                  [] { return TensorList{R({2, 3, 9, 21}, 90), R({5, 3, 3, 3}, 91), R({5}, 92)}; },
                  [s](const TensorList& in) { return one(conv2d(in[0], in[1], in[2], s, 1)); },
                  {0, 1, 2}});
  cs.push_back({"argsort", [] { return TensorList{R({3, 257}, 89)}; },
                [](const TensorList& in) {
                  return TensorList{argsort(in[0], -1, false), argsort(in[0], 0, true)};
                },
                {}});
  return cs;
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto part : {unary_cases(), binary_cases(), reduce_cases(), matmul_cases(), view_cases(),
                    index_cases(), norm_cases(), random_cases(), attention_cases(),
                    special_cases()})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

TEST_CASE("cuda parity: every op, forward and input gradients, against the CPU") {
  VC_SKIP_WITHOUT_GPU();
  int ran = 0;
  for (const Case& c : all_cases()) {
    CAPTURE(c.name);
    if (run_case(c)) ++ran;
  }
  MESSAGE("cuda parity: ", ran, " cases ran");
  REQUIRE_MESSAGE(ran > 0, "a CUDA device is present but no parity case ran");
}

TEST_CASE("cuda parity: optimizer steps have the CPU's bits") {
  VC_SKIP_WITHOUT_GPU();
  const Backend& cb = backend_for(cpu());
  const Backend& gb = backend_for(cuda());
  int ran = 0;
  for (DType t : {DType::F32, DType::F64}) {
    int64_t n = 1031;
    Tensor p = testing::randn({n}, 1, t), g = testing::randn({n}, 2, t),
           m = mul(testing::randn({n}, 3, t), 0.1), v = abs(mul(testing::randn({n}, 4, t), 0.1));
    TensorList c{p.clone(), g.clone(), m.clone(), v.clone()};
    TensorList d{p.to(cuda()), g.to(cuda()), m.to(cuda()), v.to(cuda())};
    for (int64_t step = 1; step <= 3; ++step) {
      cb.optim.adamw_step(t, c[0].raw(), c[1].raw(), c[2].raw(), c[3].raw(), n, 1e-3, 0.9, 0.999,
                          1e-8, 0.05, step);
      gb.optim.adamw_step(t, d[0].raw(), d[1].raw(), d[2].raw(), d[3].raw(), n, 1e-3, 0.9, 0.999,
                          1e-8, 0.05, step);
      cb.optim.sgd_step(t, c[0].raw(), c[1].raw(), c[2].raw(), n, 0.1, 0.9, 0.1, 1e-4, step == 2,
                        step == 1);
      gb.optim.sgd_step(t, d[0].raw(), d[1].raw(), d[2].raw(), n, 0.1, 0.9, 0.1, 1e-4, step == 2,
                        step == 1);
    }
    for (int i = 0; i < 4; ++i) {
      Compare r = compare(d[i], c[i], 0, 0);
      CHECK_MESSAGE(hash_bits(d[i]) == hash_bits(c[i]), "optim ", dtype_name(t), " array ", i,
                    ": max |cuda - cpu| = ", r.max_abs);
    }
    ++ran;
  }
  REQUIRE(ran > 0);
}

// A small training step touching the main kernel families; returns the parameter hashes.
std::vector<uint64_t> training_step_hashes() {
  Device d = cuda();
  Tensor x = R({4, 70, 32}, 91).to(d);
  Tensor w1 = mul(R({32, 96}, 92), 0.2).to(d), w2 = mul(R({32, 32}, 93), 0.2).to(d);
  Tensor lw = R({32}, 94).to(d), lb = R({32}, 95).to(d), head = mul(R({32, 11}, 96), 0.2).to(d);
  TensorList params{w1, w2, lw, lb, head};
  for (Tensor& p : params) p.set_requires_grad(true);
  Tensor h = layer_norm(x, lw, lb);
  Tensor qkv = matmul(h, w1).reshape({4, 70, 3, 2, 16}).permute({2, 0, 3, 1, 4});
  AttentionOptions o;
  o.mask = AttentionMask::kronecker(KronMask::kmcta(2, 35));
  Tensor a = attention(qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2), o);
  Tensor y = add(x, matmul(gelu(a.permute({0, 2, 1, 3}).reshape({4, 70, 32})), w2));
  Tensor logits = matmul(mean(y, {1}), head);
  Tensor loss = cross_entropy(logits, I({1, 3, 10, 0}, {4}).to(d));
  loss.backward();
  std::vector<uint64_t> hs{hash_bits(loss)};
  for (Tensor& p : params) {
    hs.push_back(hash_bits(p.grad()));
    Tensor m = Tensor::zeros(p.shape(), DType::F32, d), v = Tensor::zeros(p.shape(), DType::F32, d);
    backend_for(d).optim.adamw_step(DType::F32, p.raw(), p.grad().raw(), m.raw(), v.raw(),
                                    p.numel(), 1e-3, 0.9, 0.999, 1e-8, 0.01, 1);
    hs.push_back(hash_bits(p));
  }
  return hs;
}

TEST_CASE("cuda determinism: the same step twice gives the same bits") {
  VC_SKIP_WITHOUT_GPU();
  std::vector<uint64_t> a = training_step_hashes(), b = training_step_hashes();
  REQUIRE(a.size() > 1);
  CHECK(a == b);
}

TEST_CASE("cuda allocator: counters and the cache") {
  VC_SKIP_WITHOUT_GPU();
  const Backend& be = backend_for(cuda());
  AllocStats s0 = be.memory.stats();
  {
    Tensor t = Tensor::zeros({1 << 20}, DType::F32, cuda());  // 4 MiB
    AllocStats s1 = be.memory.stats();
    CHECK(s1.live_bytes - s0.live_bytes >= (int64_t(4) << 20));
    CHECK(s1.allocations > s0.allocations);
    CHECK(s1.peak_bytes >= s1.live_bytes);
  }
  AllocStats s2 = be.memory.stats();
  CHECK(s2.live_bytes == s0.live_bytes);
  const char* nc = std::getenv("VERBCLIP_NO_CACHING");
  bool caching = !(nc && *nc && std::string(nc) != "0");
  if (caching) CHECK(s2.cached_bytes >= (int64_t(4) << 20));
  be.memory.release_cache();
  CHECK(be.memory.stats().cached_bytes == 0);
  be.memory.reset_peak();
  CHECK(be.memory.stats().peak_bytes == be.memory.stats().live_bytes);
}

TEST_CASE("cuda: to(device) both ways, mixed devices and bad indices fail cleanly") {
  VC_SKIP_WITHOUT_GPU();
  Tensor x = R({3, 5}, 97);
  Tensor g = x.to(cuda());
  CHECK(g.device() == cuda());
  CHECK(hash_bits(g.to(cpu())) == hash_bits(x));
  // The gradient of .to() flows back across devices.
  Tensor xr = x.detach();
  xr.set_requires_grad(true);
  sum(mul(xr.to(cuda()), 2.0)).backward();
  CHECK(testing::max_abs_diff(xr.grad(), Tensor::full({3, 5}, 2.0)) == 0);
  try {
    add(x, g);
    FAIL("mixing devices did not throw");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK_MESSAGE(m.find("cpu") != std::string::npos, m);
    CHECK_MESSAGE(m.find("cuda:0") != std::string::npos, m);
  }
  auto throws_out_of_range = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      std::string m = e.what();
      CHECK_MESSAGE(m.find("out of range") != std::string::npos, m);
      return;
    }
    FAIL("a bad index did not throw");
  };
  Tensor bad = I({0, 7}, {2}).to(cuda());
  throws_out_of_range([&] { index_select(g, 0, bad); });
  throws_out_of_range([&] { embedding(g, bad); });
  throws_out_of_range([&] { gather(g, 0, I({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1}, {3, 5}).to(cuda())); });
  throws_out_of_range([&] { cross_entropy(g, I({1, 2, 5}, {3}).to(cuda())); });
  // The device still works after a caught error.
  CHECK(hash_bits(add(g, 1.0).to(cpu())) == hash_bits(add(x, 1.0)));
}

TEST_CASE("cuda: the CUDA backend reports itself") {
  if (!have_gpu()) {
    MESSAGE("SKIPPED: no CUDA device");
    CHECK_THROWS_AS(Tensor::zeros({2}, DType::F32, cuda()), Error);
    return;
  }
  CHECK(std::string(backend_for(cuda()).name) == "cuda");
}

}  // namespace
}  // namespace vc
