// STDD (models/stdd.h) on a micro CLIP with a 4x4 patch grid: the WSM index rule at the
// model level, no new parameters, the block identities of stdd.md §2.2, frame-reversal
// behaviour, the frame-prompt score arithmetic, ASKG prompts, and a few training steps.
#include <cmath>

#include "models/baseline.h"
#include "models/registry.h"
#include "models/stdd.h"
#include "nn/nn.h"
#include "tests/common/testing.h"
#include "tests/models/micro_clip.h"

using namespace vc;
using namespace vc::models;
using vc::testing::max_abs_diff;

namespace {

// Image 16, patch 4: G = 4 (four 2x2 windows, L = 17), width 32 (d0 = 8 at channel_fold 4).
clip::ClipConfig micro_config() { return vc::testing::micro_clip_config(16, 2); }

std::shared_ptr<StddModel> micro_stdd(KeyValues kv, uint64_t seed = 1) {
  if (!kv.count("num_frames")) kv["num_frames"] = "4";
  if (!kv.count("channel_fold")) kv["channel_fold"] = "4";
  auto m = std::make_shared<StddModel>(micro_config(), StddOptions::parse(kv));
  Generator gen{seed, 0};
  m->init_random(gen);
  return m;
}

// M = 2 prompts x K = 3 classes, each row: start token, one word, end token (highest id), padding.
Tensor micro_prompt_tokens() {
  std::vector<int64_t> tk(2 * 3 * 10, 0);
  for (int64_t r = 0; r < 6; ++r) tk[r * 10] = 16, tk[r * 10 + 1] = 2 + r, tk[r * 10 + 2] = 17;
  return Tensor::from_vector(tk, {2, 3, 10});
}

Tensor random_video(int64_t B, int64_t T, uint64_t seed) { return rand_normal({B, T, 3, 16, 16}, seed, 3, 0, 1); }

Tensor reversed(const Tensor& video) {
  std::vector<int64_t> order;
  for (int64_t t = video.size(1) - 1; t >= 0; --t) order.push_back(t);
  return index_select(video, 1, Tensor::from_vector(order, {int64_t(order.size())})).contiguous();
}

}  // namespace

TEST_CASE("stdd: the inference masks follow stdd.md §2.3 (G = 4, T = 4)") {
  auto m = micro_stdd({});
  m->eval();
  Tensor q = m->visible_patches(1, 0, -1);
  REQUIRE(q.shape() == Shape{1, 4, 8});
  const std::vector<int64_t> expected = {4, 5, 6, 7, 12, 13, 14, 15, 0, 5, 2, 7, 8, 13, 10, 15,
                                         0, 1, 2, 3, 8,  9,  10, 11, 1, 4, 3, 6, 9, 12, 11, 14};
  CHECK(q.to_vector<int64_t>() == expected);
  // Training draws: every window keeps 2 of its 4 positions in every frame.
  m->train();
  std::vector<int64_t> t = m->visible_patches(3, 1, 7).to_vector<int64_t>();
  for (size_t f = 0; f < 12; ++f)
    for (size_t cell = 0; cell < 4; ++cell)
      for (size_t n = 0; n < 2; ++n) {
        int64_t p = t[f * 8 + cell * 2 + n], row = p / 4, col = p % 4;
        CHECK((row / 2) * 2 + col / 2 == int64_t(cell));
      }
}

TEST_CASE("stdd: no new parameters, and the four steps off give the plain CLIP block bit for bit") {
  BaselineModel base(micro_config());
  auto m = micro_stdd({{"kd_weight", "0"}});
  CHECK(m->num_parameters() == base.num_parameters());
  auto kd = micro_stdd({});
  // Trainable: the CLIP but its logit scale (τ is fixed), plus the loss-only projector.
  CHECK(kd->num_parameters(true) == base.num_parameters() - 1 + 2 * 16 * 16);

  auto off = micro_stdd({{"wsm", "false"}, {"mcm", "false"}, {"padding", "false"}, {"shortcut", "false"},
                         {"kd_weight", "0"}});
  NoGradGuard g;
  Tensor x = rand_normal({8, 17, 32}, 5, 0, 0, 1);
  const auto& block = off->clip().visual->transformer->block(0);
  CHECK(max_abs_diff(off->stca_block(block, x, 2, Tensor()), block.forward(x)) == 0);
  // With STCA on, the masked positions equal the plain block's output exactly (identity (i)).
  auto on = micro_stdd({{"kd_weight", "0"}});
  on->eval();
  Tensor vis = on->visible_patches(2, 0, -1);
  const auto& b2 = on->clip().visual->transformer->block(0);
  Tensor out = on->stca_block(b2, x, 2, vis), plain = b2.forward(x);
  std::vector<int64_t> q = vis.to_vector<int64_t>();
  int64_t checked = 0;
  for (int64_t f = 0; f < 8; ++f)
    for (int64_t p = 0; p < 16; ++p) {
      if (std::find(q.begin() + f * 8, q.begin() + f * 8 + 8, p) != q.begin() + f * 8 + 8) continue;
      CHECK(max_abs_diff(out.select(0, f).select(0, 1 + p), plain.select(0, f).select(0, 1 + p)) == 0);
      ++checked;
    }
  CHECK(checked == 8 * 8);
  CHECK(max_abs_diff(out, plain) > 1e-4);  // and the visible ones differ
}

TEST_CASE("stdd: frame reversal leaves the plain model's logits unchanged, not STDD's") {
  Tensor video = random_video(2, 4, 9);
  Tensor c = l2_normalize(rand_normal({3, 5, 16}, 4, 0, 0, 1), -1);  // M = 3 prompts, K = 5
  NoGradGuard g;
  auto plain = micro_stdd({{"stca_blocks", "none"}, {"kd_weight", "0"}});
  plain->eval();
  Tensor a = plain->score(plain->encode_video(video), c), b = plain->score(plain->encode_video(reversed(video)), c);
  CHECK(a.shape() == Shape{2, 5});
  CHECK(max_abs_diff(a, b) < 1e-4);
  auto stdd = micro_stdd({{"kd_weight", "0"}});
  stdd->eval();
  Tensor s = stdd->score(stdd->encode_video(video), c), r = stdd->score(stdd->encode_video(reversed(video)), c);
  CHECK(max_abs_diff(s, r) > 1e-3);
}

TEST_CASE("stdd: the frame-prompt score on fixed similarities") {
  // B = 1, T = 2, M = 2, K = 1: s[t][m] = {{1, 4}, {3, 2}}.
  Tensor s = Tensor::from_vector(std::vector<float>{1, 4, 3, 2}, {1, 2, 2, 1});
  // frames' best prompt: (4 + 3) / 2 = 3.5; prompts' best frame: (3 + 4) / 2 = 3.5.
  CHECK(frame_prompt_score(s).item() == doctest::Approx(3.5));
  Tensor s2 = Tensor::from_vector(std::vector<float>{1, 2, 3, 0}, {1, 2, 2, 1});
  // frames: (2 + 3) / 2 = 2.5; prompts: (3 + 2) / 2 = 2.5.
  CHECK(frame_prompt_score(s2).item() == doctest::Approx(2.5));
  Tensor s3 = Tensor::from_vector(std::vector<float>{5, 1, 0, 0}, {1, 2, 2, 1});
  // frames: (5 + 0) / 2 = 2.5; prompts: (5 + 1) / 2 = 3; mean 2.75.
  CHECK(frame_prompt_score(s3).item() == doctest::Approx(2.75));
}

TEST_CASE("stdd: ASKG prompts insert each clause in each template and pad by cycling") {
  PromptSet p = make_askg_prompts({"moving left", "growing"}, {"{}", "a video of {}."},
                                  {{"which starts with the item on the right.", "where the item is upright."},
                                   {"which involves one item."}});
  REQUIRE(p.texts[0].size() == 6);
  CHECK(p.texts[0][0] == "moving left");
  CHECK(p.texts[0][1] == "moving left, which starts with the item on the right");
  CHECK(p.texts[0][4] == "a video of moving left, which starts with the item on the right.");
  REQUIRE(p.texts[1].size() == 6);  // 4 own prompts, padded cyclically
  CHECK(p.texts[1][4] == p.texts[1][0]);
  CHECK(p.texts[1][5] == p.texts[1][1]);
  CHECK_THROWS_WITH_AS(StddOptions::parse({{"mask_ratio", "0.3"}}), doctest::Contains("mask_ratio"), std::exception);
  CHECK_THROWS_WITH_AS(StddOptions::parse({{"scales", "1,x"}}), doctest::Contains("scales"), std::exception);
}

TEST_CASE("stdd: a few training steps lower the loss; the same seed gives the same bits") {
  auto run = [](uint64_t seed) {
    auto m = micro_stdd({}, seed);
    m->train();
    Tensor video = random_video(4, 4, 21);
    Tensor tokens = micro_prompt_tokens();
    Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 0}, {4});
    nn::AdamWOptions o;
    o.lr = 3e-3;
    nn::AdamW opt(m->param_groups(0.0), o);
    std::vector<double> losses;
    for (int64_t step = 0; step < 8; ++step) {
      opt.zero_grad();
      auto res = m->training_loss(video, tokens, labels, step);
      CHECK(res.metrics.count("kd_cosine") == 1);
      res.loss.backward();
      opt.step();
      losses.push_back(res.loss.item());
    }
    return losses;
  };
  std::vector<double> a = run(3), b = run(3);
  CHECK(a == b);
  CHECK(a.back() < a.front());
}

TEST_CASE("stdd: the shared LN1 + attention gets the sum of its per-use gradients") {
  // Reference: the block of stdd.md §2.2 (a)-(e) built from three copies of the block, one per
  // use of LN1 + MHA (full branch, scale 1, scale 2). Its output must equal stca_block's, and
  // the shared block's gradient the sum of the copies' gradients.
  auto m = micro_stdd({{"kd_weight", "0"}});
  m->to(DType::F64);
  m->eval();
  const auto& block = m->clip().visual->transformer->block(0);
  const int64_t B = 2, T = 4;
  Tensor x = rand_normal({B * T, 17, 32}, 7, 0, 0, 1).to(DType::F64);
  Tensor vis = m->visible_patches(B, 0, -1);
  std::vector<std::shared_ptr<nn::ResidualAttentionBlock>> use;
  for (int k = 0; k < 3; ++k) {
    use.push_back(std::make_shared<nn::ResidualAttentionBlock>(32, 2, clip::activation_of(micro_config())));
    use.back()->to(DType::F64);
    use.back()->load_state_dict(block.state_dict());
  }
  auto attend = [](const nn::ResidualAttentionBlock& b, const Tensor& h) {
    return add(h, b.attn->forward(b.ln_1->forward(h)));
  };
  Tensor y = attend(*use[0], x);
  Tensor xv = window_mask_gather(x, vis);
  Tensor ubar;
  for (size_t s = 0; s < 2; ++s) {
    Tensor mixed = temporal_shift(xv.reshape({B, T, 8 + 1, 32}), m->shift_table(s), true).reshape({B * T, 9, 32});
    Tensor u = attend(*use[1 + s], mixed);
    ubar = ubar.defined() ? add(ubar, u) : u;
  }
  Tensor z = window_mask_scatter(y, mul(ubar, 0.5), vis);
  Tensor ref = add(z, use[0]->mlp->forward(use[0]->ln_2->forward(y)));
  Tensor out = m->stca_block(block, x, B, vis);
  CHECK(max_abs_diff(out, ref) < 1e-12);

  Tensor w = rand_normal(out.shape(), 8, 0, 0, 1).to(DType::F64);
  m->zero_grad();
  sum(mul(out, w)).backward();
  sum(mul(ref, w)).backward();
  for (const auto& [name, g] : block.named_parameters()) {
    CAPTURE(name);
    REQUIRE(g.grad().defined());
    Tensor total;
    for (const auto& b : use) {
      Tensor gk = b->get(name).grad();
      if (!gk.defined()) continue;  // the scale copies' MLP is unused
      total = total.defined() ? add(total, gk) : gk;
    }
    REQUIRE(total.defined());
    CHECK(max_abs_diff(g.grad(), total) < 1e-10);
    CHECK(max(abs(g.grad())).item() > 0);
  }
}

TEST_CASE("stdd: float64 gradient check of a micro STCA block and of the training loss") {
  auto m = micro_stdd({{"num_frames", "2"}});
  m->to(DType::F64);
  m->eval();  // the fixed masks (training draws are checked by the loss below)
  const auto& block = m->clip().visual->transformer->block(1);
  Tensor vis = m->visible_patches(1, 1, -1);
  vc::testing::gradcheck([&](const TensorList& in) { return m->stca_block(block, in[0], 1, vis); },
                         {rand_normal({2, 17, 32}, 11, 0, 0, 1).to(DType::F64)}, "stca block");

  // The loss: CE on the frame-prompt score over every prompt (+ λ·L_KD), training masks.
  Tensor tokens = micro_prompt_tokens();
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2});
  for (const char* kd : {"2", "0"}) {
    CAPTURE(kd);
    auto net = micro_stdd({{"num_frames", "2"}, {"kd_weight", kd}});
    net->to(DType::F64);
    net->train();
    Tensor video = random_video(2, 2, 13).to(DType::F64).set_requires_grad(true);
    auto loss = [&] { return net->training_loss(video, tokens, labels, 5).loss; };
    net->zero_grad();
    loss().backward();
    std::vector<std::pair<std::string, Tensor>> wrt;
    for (const auto& [name, t] : net->named_parameters())
      if (t.requires_grad()) wrt.emplace_back(name, t);  // not the frozen teacher, nor τ
    // The teacher's features are a target: by design no gradient reaches the video through
    // them, so the video is checked without distillation.
    if (std::string(kd) == "0") wrt.emplace_back("video", video);
    CHECK(vc::testing::gradcheck_elements(loss, wrt) > 60);
  }
}
