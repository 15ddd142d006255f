// Checkpoints and exact resume: N steps == N/2 steps + save + load into fresh objects +
// N/2 steps, parameters, optimizer state and RNG compared bit for bit. And weight averaging.
#include <cmath>

#include "tests/nn/nn_testing.h"

using namespace vc;
using namespace vc::nn;
using namespace vc::nn::testing;

namespace {

// A small model that exercises every source of state: dropout and drop-path (the RNG),
// LayerNorm, attention, two LR groups, weight decay and clipping.
struct TinyNet : Module {
  std::shared_ptr<Linear> embed, head;
  std::shared_ptr<Transformer> transformer;
  std::shared_ptr<LayerNorm> ln_post;
  std::shared_ptr<Dropout> drop;
  Tensor logit_scale;
  TinyNet() : Module("TinyNet") {
    embed = register_module("embed", std::make_shared<Linear>(6, 8));
    transformer = register_module("transformer",
                                  std::make_shared<Transformer>(8, 2, 2, Activation::QuickGELU, 0.2));
    ln_post = register_module("ln_post", std::make_shared<LayerNorm>(8));
    drop = register_module("drop", std::make_shared<Dropout>(0.1));
    head = register_module("head", std::make_shared<Linear>(8, 3));
    logit_scale = register_parameter("logit_scale", Tensor::scalar(std::log(1 / 0.07)));
  }
  Tensor forward(const Tensor& x) const {
    Tensor h = ln_post->forward(transformer->forward(embed->forward(x)));
    return mul(head->forward(drop->forward(mean(h, {1}))), exp(logit_scale));
  }
};

struct Run {
  TinyNet model;
  Generator gen;
  std::unique_ptr<AdamW> opt;
  std::unique_ptr<CosineSchedule> sched;
  TrainingState state;

  Run(uint64_t init_seed, double lr_scale = 1.0) : gen{42, 0} {
    Generator init{init_seed, 0};
    model.reset_parameters(init);
    init::clip_transformer_(*model.transformer, init);
    model.set_generator(&gen);
    opt = std::make_unique<AdamW>(
        make_param_groups(model, 0.05, {{"new", "^head\\.", 10.0}}),
        AdamWOptions{1e-3 * lr_scale, 0.9, 0.98, 1e-8});
    CosineScheduleOptions so;
    so.base_lr = 1e-3 * lr_scale, so.min_lr = 1e-5, so.warmup_steps = 2, so.total_steps = 8;
    sched = std::make_unique<CosineSchedule>(so);
  }

  // One optimizer step over 2 micro-batches; the data depend only on (data seed, step).
  void step() {
    sched->apply(*opt, state.step);
    GradAccumulator acc(2);
    for (int m = 0; m < 2; ++m) {
      uint64_t key = uint64_t(state.step) * 2 + m;
      Tensor x = rand_normal({4, 5, 6}, 1234, key);
      Tensor u = rand_uniform({4}, 5678, key, 0, 2.999, DType::F64);
      std::vector<int64_t> labels;
      for (double v : values(u)) labels.push_back(int64_t(v));
      Tensor loss = cross_entropy(model.forward(x), Tensor::from_vector<int64_t>(labels, {4}));
      mul(loss, acc.loss_scale()).backward();
      if (acc.micro_step()) {
        clip_grad_norm(model.parameters(), 0.5);
        opt->step();
        opt->zero_grad();
      }
    }
    ++state.step;
    state.epoch = state.step / 2;
  }
  void save(const std::string& path) {
    state.rng = gen;
    state.config = "model: tiny\nlr: 1e-3\n";
    state.extra["best_acc"] = "12.5";
    save_checkpoint(path, model, opt.get(), sched.get(), state);
  }
  void load(const std::string& path) {
    state = load_checkpoint(path, model, opt.get(), sched.get());
    gen = state.rng;
  }
};

// Differences between two runs' parameters and optimizer state, by name ("" when equal).
std::vector<std::string> bit_differences(Run& a, Run& b) {
  std::vector<std::string> diff;
  for (const auto& [n, t] : a.model.state_dict())
    if (hash_bits(t) != hash_bits(b.model.get(n))) diff.push_back("model." + n);
  StateDict sa = a.opt->state_dict(), sb = b.opt->state_dict();
  if (sa.keys() != sb.keys()) diff.push_back("optimizer state keys");
  for (const auto& [n, t] : sa)
    if (!sb.contains(n) || hash_bits(t) != hash_bits(sb.at(n))) diff.push_back("optimizer." + n);
  return diff;
}

}  // namespace

TEST_CASE("exact resume: 6 steps == 3 steps + save + load (fresh objects) + 3 steps") {
  ScratchDir dir("ckpt");
  const int N = 6;
  Run straight(1);
  for (int i = 0; i < N; ++i) straight.step();

  Run first(1);
  for (int i = 0; i < N / 2; ++i) first.step();
  std::string path = dir.file("step3.safetensors");
  first.save(path);

  // Fresh objects, deliberately different: other init seed, other LR, other generator.
  Run resumed(99, 3.0);
  resumed.gen = Generator{7, 123};
  resumed.load(path);
  CHECK(resumed.state.step == N / 2);
  CHECK(resumed.state.epoch == 1);
  CHECK(resumed.state.config == "model: tiny\nlr: 1e-3\n");
  CHECK(resumed.state.extra.at("best_acc") == "12.5");
  CHECK(resumed.sched->options().base_lr == 1e-3);
  CHECK(resumed.opt->options().beta2 == 0.98);
  for (int i = 0; i < N / 2; ++i) resumed.step();

  std::vector<std::string> diff = bit_differences(straight, resumed);
  CHECK_MESSAGE(diff.empty(), diff.size(), " tensors differ, first: ", diff.empty() ? "" : diff[0]);
  CHECK(resumed.gen.seed == straight.gen.seed);
  CHECK(resumed.gen.next_stream == straight.gen.next_stream);
  CHECK(resumed.opt->steps() == straight.opt->steps());
  CHECK(resumed.opt->lr() == straight.opt->lr());
  size_t n_tensors = straight.model.state_dict().size() + straight.opt->state_dict().size();
  MESSAGE("exact resume: ", n_tensors, " tensors (", straight.model.state_dict().size(),
          " model + ", straight.opt->state_dict().size(), " optimizer) compared bit for bit after ",
          N, " steps; differences: ", diff.size(), "; generator next_stream ",
          resumed.gen.next_stream, " in both");

  // The comparison can fail: resuming without the optimizer state, or without the RNG
  // state, does not reproduce the run.
  Run no_optim(1);
  for (int i = 0; i < N / 2; ++i) no_optim.step();
  Run fresh_opt(99);
  fresh_opt.load(path);
  fresh_opt.opt = std::make_unique<AdamW>(make_param_groups(fresh_opt.model, 0.05, {{"new", "^head\\.", 10.0}}),
                                          AdamWOptions{1e-3, 0.9, 0.98, 1e-8});
  for (int i = 0; i < N / 2; ++i) fresh_opt.step();
  CHECK_FALSE(bit_differences(straight, fresh_opt).empty());
  Run fresh_rng(99);
  fresh_rng.load(path);
  fresh_rng.gen = Generator{42, 0};
  for (int i = 0; i < N / 2; ++i) fresh_rng.step();
  CHECK_FALSE(bit_differences(straight, fresh_rng).empty());
}

TEST_CASE("checkpoint errors name the file and the problem") {
  ScratchDir dir("ckpt_err");
  Run a(1);
  a.step();
  std::string path = dir.file("a.safetensors");
  a.save(path);
  // A model of another shape: every mismatch is named.
  struct Other : Module {
    Other() : Module("Other") { register_module("head", std::make_shared<Linear>(8, 4)); }
  } other;
  try {
    load_checkpoint(path, other, nullptr, nullptr);
    FAIL("loaded into the wrong model");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("head.weight: dict [3, 8] vs model [4, 8]") != std::string::npos);
    CHECK(msg.find("unexpected key") != std::string::npos);
  }
  // A plain safetensors file is not a checkpoint.
  std::string plain = dir.file("plain.safetensors");
  save_safetensors(plain, a.model.state_dict());
  CHECK_THROWS_WITH_AS(load_checkpoint(plain, a.model, nullptr, nullptr),
                       doctest::Contains("not a verbclip checkpoint"), Error);
  // An SGD optimizer cannot take AdamW state.
  SGD sgd(make_param_groups(a.model, 0.05, {{"new", "^head\\.", 10.0}}), SGDOptions{});
  CHECK_THROWS_WITH_AS(load_checkpoint(path, a.model, &sgd, nullptr), doctest::Contains("AdamW"), Error);
  // Weights alone.
  StateDict w = load_checkpoint_model(path);
  CHECK(w.keys() == a.model.state_dict().keys());
}

TEST_CASE("weight averaging: interpolate and average checkpoints") {
  StateDict a, b, c;
  a.set("w", Tensor::from_vector<float>({1, 2, 3}, {3}));
  b.set("w", Tensor::from_vector<float>({5, -2, 3}, {3}));
  c.set("w", Tensor::from_vector<float>({0, 3, 0}, {3}));
  for (StateDict* d : {&a, &b, &c}) d->set("ids", Tensor::from_vector<int64_t>({4, 5}, {2}));
  StateDict m = interpolate(a, b, 0.25);  // 0.75 a + 0.25 b
  CHECK(values(m.at("w")) == std::vector<double>{2, 1, 3});
  CHECK(m.at("w").dtype() == DType::F32);
  CHECK(values(m.at("ids")) == std::vector<double>{4, 5});
  CHECK(values(interpolate(a, b, 0.0).at("w")) == values(a.at("w")));
  CHECK(values(interpolate(a, b, 1.0).at("w")) == values(b.at("w")));
  CHECK(values(average({a, b, c}).at("w")) == std::vector<double>{2, 1, 2});

  StateDict bad = b;
  bad.set("extra", Tensor::zeros({1}));
  CHECK_THROWS_WITH_AS(interpolate(a, bad, 0.5), doctest::Contains("'extra' missing in the first"), Error);
  StateDict shape = a;
  shape.set("w", Tensor::zeros({4}));
  CHECK_THROWS_WITH_AS(average({a, shape}), doctest::Contains("'w'"), Error);
  StateDict ids = a;
  ids.set("ids", Tensor::from_vector<int64_t>({4, 6}, {2}));
  CHECK_THROWS_WITH_AS(average({a, ids}), doctest::Contains("'ids' differs"), Error);

  // Average of two checkpoints' models.
  ScratchDir dir("avg");
  Run r1(1), r2(2);
  r1.save(dir.file("e1.safetensors"));
  r2.save(dir.file("e2.safetensors"));
  StateDict avg = average_checkpoints({dir.file("e1.safetensors"), dir.file("e2.safetensors")});
  Tensor w1 = r1.model.get("head.weight"), w2 = r2.model.get("head.weight");
  std::vector<double> v1 = values(w1), v2 = values(w2), va = values(avg.at("head.weight"));
  for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx((v1[i] + v2[i]) / 2).epsilon(1e-7));
}
