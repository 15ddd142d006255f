// Optimizers against the update formulas written out by hand here, the schedule at chosen
// steps, parameter groups and the no-decay rule, clipping and accumulation.
#include <cmath>

#include "tests/nn/nn_testing.h"

using namespace vc;
using namespace vc::nn;
using namespace vc::nn::testing;

namespace {

// A module with CLIP-like names, for the grouping rules.
struct Named : Module {
  Named() : Module("Named") {
    register_parameter("proj", Tensor::zeros({3, 2}));
    register_parameter("logit_scale", Tensor::zeros({}));
    register_parameter("positional_embedding", Tensor::zeros({4, 2}));
    register_module("token_embedding", std::make_shared<Embedding>(5, 2));
    register_module("ln_final", std::make_shared<LayerNorm>(2));
    register_module("head", std::make_shared<Linear>(2, 3));
  }
};

std::vector<std::string> names(const ParamGroup& g) {
  std::vector<std::string> n;
  for (const auto& [k, p] : g.params) n.push_back(k);
  return n;
}

}  // namespace

TEST_CASE("AdamW: two steps against the paper's formula, with groups and decay") {
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor a = Tensor::from_vector<double>({1.0, -2.0, 0.5}, {3}).to(dt);
    Tensor b = Tensor::from_vector<double>({0.3, 4.0}, {2}).to(dt);
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    // Group "a": decay 0.1, multiplier 1; group "b": no decay, 10x LR.
    AdamWOptions o;
    o.lr = 0.01, o.beta1 = 0.8, o.beta2 = 0.95, o.eps = 1e-3;
    AdamW opt({{"a", {{"a", a}}, 1.0, 0.1}, {"b", {{"b", b}}, 10.0, 0.0}}, o);
    std::vector<std::vector<double>> ga = {{0.5, -1.0, 2.0}, {-0.25, 3.0, 2.0}};
    std::vector<std::vector<double>> gb = {{1.0, -0.1}, {0.7, 0.2}};

    // Expected: Loshchilov & Hutter, Algorithm 2, in plain doubles.
    std::vector<double> pa = {1.0, -2.0, 0.5}, pb = {0.3, 4.0};
    std::vector<double> ma(3), va(3), mb(2), vb(2);
    auto adamw = [&](std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
                     const std::vector<double>& g, double lr, double wd, int t) {
      for (size_t i = 0; i < p.size(); ++i) {
        p[i] -= lr * wd * p[i];
        m[i] = 0.8 * m[i] + 0.2 * g[i];
        v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
        double mhat = m[i] / (1 - std::pow(0.8, t)), vhat = v[i] / (1 - std::pow(0.95, t));
        p[i] -= lr * mhat / (std::sqrt(vhat) + 1e-3);
      }
    };
    for (int t = 1; t <= 2; ++t) {
      a.set_grad(Tensor::from_vector<double>(ga[t - 1], {3}).to(dt));
      b.set_grad(Tensor::from_vector<double>(gb[t - 1], {2}).to(dt));
      opt.step();
      adamw(pa, ma, va, ga[t - 1], 0.01, 0.1, t);
      adamw(pb, mb, vb, gb[t - 1], 0.1, 0.0, t);
      double tol = dt == DType::F64 ? 1e-14 : 1e-6;
      check_close(a, Tensor::from_vector<double>(pa, {3}), tol, tol, "AdamW a");
      check_close(b, Tensor::from_vector<double>(pb, {2}), tol, tol, "AdamW b");
      check_close(opt.state_dict().at("a.exp_avg"), Tensor::from_vector<double>(ma, {3}), tol, tol, "m");
      check_close(opt.state_dict().at("a.exp_avg_sq"), Tensor::from_vector<double>(va, {3}), tol, tol, "v");
    }
    CHECK(opt.steps() == 2);
    CHECK(opt.state_dict().at("b.step").item() == 2);
    CHECK(opt.state_dict().keys() ==
          std::vector<std::string>{"a.step", "a.exp_avg", "a.exp_avg_sq", "b.step", "b.exp_avg",
                                   "b.exp_avg_sq"});
  }
  // One number worked out on paper: Adam's first step has size lr * |g| / (|g| + eps).
  Tensor p = Tensor::from_vector<float>({1.0f}, {1});
  p.set_requires_grad(true);
  AdamW one({{"p", {{"p", p}}, 1.0, 0.0}}, AdamWOptions{0.1, 0.9, 0.999, 1e-8});
  p.set_grad(Tensor::from_vector<float>({0.5f}, {1}));
  one.step();
  CHECK(p.item() == doctest::Approx(0.9).epsilon(1e-7));
}

TEST_CASE("SGD with momentum (and Nesterov): two steps by hand") {
  for (bool nesterov : {false, true}) {
    Tensor p = Tensor::from_vector<double>({1.0, -3.0}, {2});
    p.set_requires_grad(true);
    SGDOptions o;
    o.lr = 0.1, o.momentum = 0.9, o.nesterov = nesterov;
    SGD opt({{"g", {{"p", p}}, 2.0, 0.01}}, o);  // lr multiplier 2 -> effective lr 0.2
    std::vector<std::vector<double>> g = {{0.5, 1.0}, {-1.0, 2.0}};
    std::vector<double> want = {1.0, -3.0}, buf(2);
    for (int t = 0; t < 2; ++t) {
      p.set_grad(Tensor::from_vector<double>(g[t], {2}));
      opt.step();
      for (int i = 0; i < 2; ++i) {
        double gi = g[t][i] + 0.01 * want[i];  // L2 weight decay
        buf[i] = t == 0 ? gi : 0.9 * buf[i] + gi;
        want[i] -= 0.2 * (nesterov ? gi + 0.9 * buf[i] : buf[i]);
      }
      check_close(p, Tensor::from_vector<double>(want, {2}), 1e-15, 1e-14, "SGD");
    }
  }
  // Paper numbers: p = 1, g = 0.5 then 0.5, lr 0.1, momentum 0.9, no decay:
  // step 1: buf = 0.5, p = 0.95; step 2: buf = 0.95, p = 0.855.
  Tensor q = Tensor::from_vector<double>({1.0}, {1});
  q.set_requires_grad(true);
  SGD sgd({{"g", {{"q", q}}, 1.0, 0.0}}, SGDOptions{0.1, 0.9, 0.0, false});
  for (int t = 0; t < 2; ++t) {
    q.set_grad(Tensor::from_vector<double>({0.5}, {1}));
    sgd.step();
  }
  CHECK(q.item() == doctest::Approx(0.855).epsilon(1e-14));
}

TEST_CASE("optimizer skips parameters without a gradient; zero_grad clears") {
  Tensor a = Tensor::ones({2}), b = Tensor::ones({2});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  AdamW opt({{"all", {{"a", a}, {"b", b}}, 1.0, 0.5}}, AdamWOptions{});
  a.set_grad(Tensor::ones({2}));
  opt.step();
  CHECK(values(b) == std::vector<double>{1, 1});  // no decay either: untouched
  CHECK_FALSE(opt.state_dict().contains("b.exp_avg"));
  CHECK(values(a)[0] < 1);
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_THROWS_WITH_AS(AdamW({{"x", {{"a", a}, {"a", b}}, 1.0, 0.0}}, AdamWOptions{}),
                       doctest::Contains("appears twice"), Error);
}

TEST_CASE("parameter groups: LR multipliers and the no-decay rule") {
  Named m;
  auto groups = make_param_groups(m, 0.2, {{"new", "^head\\.", 10.0}});
  REQUIRE(groups.size() == 4);
  CHECK(groups[0].name == "new");
  CHECK(names(groups[0]) == std::vector<std::string>{"head.weight"});
  CHECK(groups[0].lr_mult == 10.0);
  CHECK(groups[0].weight_decay == 0.2);
  CHECK(groups[1].name == "new.no_decay");
  CHECK(names(groups[1]) == std::vector<std::string>{"head.bias"});
  CHECK(groups[1].lr_mult == 10.0);
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[2].name == "default");
  CHECK(names(groups[2]) == std::vector<std::string>{"proj"});
  CHECK(groups[2].lr_mult == 1.0);
  CHECK(groups[3].name == "default.no_decay");
  CHECK(names(groups[3]) == std::vector<std::string>{"logit_scale", "positional_embedding",
                                                     "token_embedding.weight", "ln_final.weight",
                                                     "ln_final.bias"});
  CHECK(groups[3].weight_decay == 0.0);
  auto all = make_param_groups(m, 0.2);
  REQUIRE(all.size() == 2);
  CHECK(names(all[0]) == std::vector<std::string>{"proj", "head.weight"});
  CHECK(all[0].weight_decay == 0.2);

  // A user rule: decay everything except logit_scale.
  auto custom = make_param_groups(m, 0.2, {}, [](const std::string& n, const Tensor&) {
    return n == "logit_scale";
  });
  REQUIRE(custom.size() == 2);
  CHECK(names(custom[1]) == std::vector<std::string>{"logit_scale"});
  CHECK(custom[0].params.size() == 7);
}

TEST_CASE("cosine schedule with linear warmup: values at chosen steps") {
  CosineScheduleOptions o;
  o.base_lr = 1e-3, o.min_lr = 1e-5, o.warmup_steps = 10, o.total_steps = 110;
  CosineSchedule s(o);
  CHECK(s.lr_at(0) == 0.0);
  CHECK(s.lr_at(5) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(s.lr_at(10) == doctest::Approx(1e-3).epsilon(1e-12));
  CHECK(s.lr_at(35) == doctest::Approx(0.000855017856684).epsilon(1e-10));  // cos(pi/4)
  CHECK(s.lr_at(60) == doctest::Approx(5.05e-4).epsilon(1e-12));           // halfway
  CHECK(s.lr_at(110) == 1e-5);
  CHECK(s.lr_at(500) == 1e-5);
  o.warmup_init_lr = 1e-4;
  CHECK(CosineSchedule(o).lr_at(5) == doctest::Approx(5.5e-4).epsilon(1e-12));
  // timm's default (X-CLIP): the cosine counts from step 0, warmup overrides its start.
  o.warmup_prefix = false;
  o.warmup_init_lr = 0;
  CosineSchedule x(o);
  CHECK(x.lr_at(55) == doctest::Approx(5.05e-4).epsilon(1e-12));
  CHECK(x.lr_at(10) == doctest::Approx(1e-5 + 0.5 * 0.00099 * (1 + std::cos(M_PI / 11))).epsilon(1e-12));
  // Round trip through JSON is exact.
  CosineSchedule y = CosineSchedule::from_json(s.to_json());
  for (int64_t t : {0, 3, 10, 37, 99, 110}) CHECK(y.lr_at(t) == s.lr_at(t));
  // apply() sets the optimizer's lr.
  Tensor p = Tensor::ones({1});
  SGD opt({{"g", {{"p", p}}, 1.0, 0.0}}, SGDOptions{});
  s.apply(opt, 60);
  CHECK(opt.lr() == s.lr_at(60));
}

TEST_CASE("clip_grad_norm scales by max_norm / norm") {
  Tensor a = Tensor::zeros({2}), b = Tensor::zeros({1}), c = Tensor::zeros({3});
  a.set_grad(Tensor::from_vector<float>({3, 4}, {2}));
  b.set_grad(Tensor::from_vector<float>({12}, {1}));  // norm sqrt(9 + 16 + 144) = 13
  double n = clip_grad_norm({a, b, c}, 6.5);
  CHECK(n == doctest::Approx(13.0).epsilon(1e-12));
  double k = 6.5 / (13.0 + 1e-6);
  check_close(a.grad(), Tensor::from_vector<float>({float(3 * k), float(4 * k)}, {2}), 1e-6, 1e-6, "a");
  check_close(b.grad(), Tensor::from_vector<float>({float(12 * k)}, {1}), 1e-6, 1e-6, "b");
  CHECK(clip_grad_norm({a, b}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));  // no change
  CHECK(values(b.grad())[0] == doctest::Approx(12 * k).epsilon(1e-6));
}

TEST_CASE("gradient accumulation over micro-batches equals the full batch") {
  Linear lin(3, 2);
  init_module(lin, 4, DType::F64);
  Tensor x = randn({4, 3}, 2), y = randn({4, 2}, 3);
  auto loss_of = [&](const Tensor& xb, const Tensor& yb) {
    Tensor d = sub(lin.forward(xb), yb);
    return mean(mul(d, d));
  };
  loss_of(x, y).backward();
  Tensor full_w = lin.weight.grad(), full_b = lin.bias.grad();
  lin.zero_grad();
  GradAccumulator acc(2);
  bool stepped = false;
  for (int m = 0; m < 2; ++m) {
    mul(loss_of(x.narrow(0, 2 * m, 2), y.narrow(0, 2 * m, 2)), acc.loss_scale()).backward();
    stepped = acc.micro_step();
    CHECK(stepped == (m == 1));
  }
  check_close(lin.weight.grad(), full_w, 1e-14, 1e-12, "accumulated weight grad");
  check_close(lin.bias.grad(), full_b, 1e-14, 1e-12, "accumulated bias grad");
}
