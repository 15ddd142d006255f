// The baseline (models/baseline.h) and the parts of models/video_model.h every model shares:
// prompts and their token layout, soft targets, frozen towers, pooling rules, a few steps.
#include <cmath>
#include <set>

#include "models/baseline.h"
#include "models/registry.h"
#include "nn/nn.h"
#include "tests/common/testing.h"
#include "tests/models/micro_clip.h"

using namespace vc;
using namespace vc::models;
using vc::testing::max_abs_diff;

namespace {

const char* kVocab =
    "<pad>\n<unk>\na\nvideo\nof\nmoving\nleft\nright\nup\ndown\nthe\nitem\nslides\nrises\n.\n,\n"
    "<|startoftext|>\n<|endoftext|>\n";

clip::ClipConfig micro_config() { return vc::testing::micro_clip_config(8, 2); }

std::shared_ptr<BaselineModel> micro_baseline(const KeyValues& kv = {}, uint64_t seed = 1) {
  auto m = std::make_shared<BaselineModel>(micro_config(), BaselineOptions::parse(kv));
  Generator gen{seed, 0};
  m->init_random(gen);
  return m;
}

Tensor random_video(int64_t B, int64_t T, uint64_t seed) {
  return rand_normal({B, T, 3, 8, 8}, seed, 3, 0, 1, DType::F32);
}

PromptSet micro_prompts() {
  return make_prompts({"moving left", "moving right", "moving up"}, {"{}", "a video of {} ."},
                      {{"the item slides left .", "left"},
                       {"the item slides right .", "right"},
                       {"the item rises .", "up"}});
}

}  // namespace

TEST_CASE("video-models: baseline is frame-wise CLIP with the pooling rules") {
  auto m = micro_baseline();
  NoGradGuard no_grad;
  Tensor video = random_video(2, 3, 1);
  Tensor u = m->frame_features(video);
  CHECK(u.shape() == Shape{2, 3, 16});
  // u_{b,t} is CLIP's image feature of frame (b, t) on its own.
  Tensor frame = video.select(0, 1).select(0, 2).unsqueeze(0);  // [1, 3, 8, 8]
  CHECK(max_abs_diff(u.select(0, 1).select(0, 2).unsqueeze(0), m->clip().encode_image(frame)) < 1e-5);
  // Code rule: mean of normalised frames; paper rule: normalised mean.
  Tensor code = m->encode_video(video);
  Tensor want = mean(l2_normalize(u, -1), {1});
  CHECK(max_abs_diff(code, want) < 1e-6);
  auto p = micro_baseline({{"pooling", "mean_norm"}});
  CHECK(max_abs_diff(p->encode_video(video), l2_normalize(mean(u, {1}), -1)) < 1e-6);
  // Any frame count works (no temporal parameters), and the order of frames does not matter.
  CHECK(m->encode_video(random_video(1, 5, 2)).shape() == Shape{1, 16});
  Tensor rev = index_select(video, 1, Tensor::from_vector<int64_t>({2, 1, 0}, {3}));
  CHECK(max_abs_diff(m->encode_video(rev), code) < 1e-6);
  // The attention picture: the class token's attention over each frame's 2x2 patches.
  Tensor a = m->attention_map(video);
  CHECK(a.shape() == Shape{2, 3, 2, 2});
  auto s = sum(a, {2, 3}).to_vector<float>();
  for (float x : s) CHECK((x > 0.0f && x < 1.0f));  // the rest went to the class token itself
}

TEST_CASE("video-models: baseline state dict is CLIP's under clip. with no new group") {
  auto m = micro_baseline();
  clip::CLIP plain(micro_config());
  std::vector<std::string> want;
  for (const auto& k : plain.state_dict().keys()) want.push_back("clip." + k);
  CHECK(m->state_dict().keys() == want);
  CHECK(m->num_parameters() == clip::count_parameters(micro_config()).total);
  CHECK(m->new_module_names().empty());
  CHECK(m->group_specs().empty());
  for (const auto& g : m->param_groups(0.01)) CHECK(g.lr_mult == 1.0);

  // Pretrained CLIP weights load under the prefix and change the output.
  clip::CLIP donor(micro_config());
  Generator g{5, 0};
  clip::init_clip(donor, g);
  clip::StateDict weights;
  for (const auto& [k, t] : donor.state_dict()) weights[k] = t;
  auto b = std::make_shared<BaselineModel>(micro_config());
  Generator g2{0, 0};
  b->init_from_clip(weights, g2);
  CHECK(max_abs_diff(b->clip().visual->proj, donor.visual->proj) == 0.0);
  weights.erase("visual.proj");
  auto c = std::make_shared<BaselineModel>(micro_config());
  CHECK_THROWS_WITH_AS(c->init_from_clip(weights, g2), doctest::Contains("visual.proj"), Error);
}

TEST_CASE("video-models: prompts, token layout and soft targets") {
  PromptSet p = micro_prompts();
  CHECK(p.classes() == 3);
  CHECK(p.variants() == 4);  // 2 templates + 2 sentences
  CHECK(p.texts[1][0] == "moving right");
  CHECK(p.texts[1][1] == "a video of moving right .");
  CHECK(p.texts[2][2] == "the item rises .");
  CHECK_THROWS_WITH_AS(make_prompts({"a", "b"}, {"{}"}, {{"x"}, {"y", "z"}}), doctest::Contains("same number"), Error);
  CHECK_THROWS_WITH_AS(make_prompts({"a"}, {"no slot"}), doctest::Contains("no slot"), Error);

  clip::WordTokenizer tok(kVocab);
  auto m = micro_baseline();
  Tensor t = m->tokenize(p, tok);
  CHECK(t.shape() == Shape{4, 3, 10});  // [M, K, context], variant-major
  Tensor one = tok.tokenize({p.texts[2][1]}, 10);
  CHECK(max_abs_diff(t.select(0, 1).select(0, 2).unsqueeze(0), one) == 0.0);
  // Text features: CLIP's text feature, normalised (padding trimmed or not, the same).
  {
    NoGradGuard no_grad;
    Tensor rows = t.select(0, 1).contiguous();  // [K, context]
    CHECK(max_abs_diff(m->encode_text(rows), l2_normalize(m->clip().encode_text(rows), -1)) < 1e-5);
  }
  // Prompts off: variant 0 only (the label-only ablation).
  auto off = micro_baseline({{"prompts", "false"}});
  CHECK(off->tokenize(p, tok).shape() == Shape{1, 3, 10});
  // Too long for the context: an error naming the text, unless truncation is asked for.
  PromptSet longp = make_prompts({"a video of a video of a video of the item"}, {"{} ."});
  CHECK_THROWS_AS(m->tokenize(longp, tok), Error);
  CHECK(micro_baseline({{"truncate_text", "true"}})->tokenize(longp, tok).shape() == Shape{1, 1, 10});

  Tensor y = soft_targets(Tensor::from_vector<int64_t>({2, 0}, {2}), 4, 0.1);
  auto v = y.to_vector<float>();
  CHECK(v[2] == doctest::Approx(0.925));
  CHECK(v[0] == doctest::Approx(0.025));
  CHECK(v[4] == doctest::Approx(0.925));
  CHECK_THROWS_AS(soft_targets(Tensor::from_vector<int64_t>({4}, {1}), 4, 0.1), Error);
}

TEST_CASE("video-models: hard labels equal one-hot soft targets; all-variant mode") {
  auto m = micro_baseline({{"prompts_per_step", "3"}});
  clip::WordTokenizer tok(kVocab);
  Tensor prompts = m->tokenize(micro_prompts(), tok);
  Tensor video = random_video(2, 3, 7);
  Tensor labels = Tensor::from_vector<int64_t>({1, 2}, {2});
  NoGradGuard no_grad;
  double hard = m->training_loss(video, prompts, labels, 0).loss.item();
  double soft = m->training_loss(video, prompts, soft_targets(labels, 3, 0.0), 0).loss.item();
  CHECK(hard == doctest::Approx(soft).epsilon(1e-6));
  // The loss is the mean CE over the B·S rows of the returned logits.
  auto out = m->training_loss(video, prompts, labels, 0);
  Tensor z = out.logits.reshape({6, 3});
  Tensor ls = log_softmax(z, -1);
  auto lv = ls.to_vector<float>();
  double manual = 0;
  int64_t y[2] = {1, 2};
  for (int b = 0; b < 2; ++b)
    for (int s = 0; s < 3; ++s) manual -= lv[(b * 3 + s) * 3 + y[b]];
  CHECK(out.loss.item() == doctest::Approx(manual / 6).epsilon(1e-5));
  // prompts_per_step 0: every variant, in order.
  auto all = micro_baseline({{"prompts_per_step", "0"}});
  auto o2 = all->training_loss(video, prompts, labels, 0);
  CHECK(o2.variants == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(o2.logits.shape() == Shape{2, 4, 3});
}

TEST_CASE("video-models: frozen towers get no gradient") {
  auto m = micro_baseline({{"train_text", "false"}});
  clip::WordTokenizer tok(kVocab);
  Tensor prompts = m->tokenize(micro_prompts(), tok);
  Tensor labels = Tensor::from_vector<int64_t>({0, 1}, {2});
  m->training_loss(random_video(2, 3, 9), prompts, labels, 0).loss.backward();
  CHECK(!m->clip().token_embedding->weight.requires_grad());
  CHECK(!m->clip().token_embedding->weight.grad().defined());
  CHECK(!m->clip().text_projection.grad().defined());
  CHECK(m->clip().visual->proj.grad().defined());
  CHECK(m->clip().logit_scale.grad().defined());  // the temperature still learns
  for (const auto& g : m->param_groups(0.0))
    for (const auto& [name, p] : g.params) CHECK_MESSAGE(name.rfind("clip.transformer.", 0) != 0, name);

  auto f = micro_baseline({{"train_image", "false"}});
  f->training_loss(random_video(2, 3, 9), prompts, labels, 0).loss.backward();
  CHECK(!f->clip().visual->proj.grad().defined());
  CHECK(!f->clip().visual->conv1->weight.grad().defined());
  CHECK(f->clip().text_projection.grad().defined());
}

TEST_CASE("video-models: a few AdamW steps on random tiny data lower the baseline loss") {
  auto m = micro_baseline({{"prompts_per_step", "2"}}, 4);
  clip::WordTokenizer tok(kVocab);
  Tensor prompts = m->tokenize(micro_prompts(), tok);
  Tensor video = random_video(6, 3, 71);
  Tensor targets = soft_targets(Tensor::from_vector<int64_t>({0, 1, 2, 0, 1, 2}, {6}), 3, 0.1);
  nn::AdamWOptions ao;
  ao.lr = 1e-3, ao.beta2 = 0.98;
  nn::AdamW opt(m->param_groups(1e-3), ao);
  double first = 0, last = 0;
  for (int64_t step = 0; step < 12; ++step) {
    opt.zero_grad();
    Tensor loss = m->training_loss(video, prompts, targets, step).loss;
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  CHECK(std::isfinite(last));
  CHECK(last < 0.7 * first);
}

TEST_CASE("video-models: the tiny preset's float32 gradients equal float64 at the real shapes") {
  // The float32 fast paths (packed GEMM, attention and layer-norm kernels) against the float64
  // reference path, on the tiny preset's own shapes (32x32 frames, 17 tokens, width 64).
  clip::ClipConfig c = clip::ClipConfig::preset("tiny");
  c.vocab_size = 18;
  auto make = [&](DType dt) {
    auto m = std::make_shared<BaselineModel>(c, BaselineOptions::parse({{"prompts_per_step", "2"}}));
    Generator gen{3, 0};
    m->init_random(gen);
    m->to(dt);
    return m;
  };
  auto m32 = make(DType::F32), m64 = make(DType::F64);
  clip::WordTokenizer tok(kVocab);
  Tensor prompts = m32->tokenize(micro_prompts(), tok);
  Tensor video = rand_normal({4, 8, 3, 32, 32}, 5, 3, 0, 1, DType::F32);
  Tensor targets = soft_targets(Tensor::from_vector<int64_t>({0, 1, 2, 0}, {4}), 3, 0.1);
  m32->training_loss(video, prompts, targets, 0).loss.backward();
  m64->training_loss(video.to(DType::F64), prompts, targets.to(DType::F64), 0).loss.backward();
  const nn::NamedTensors p32 = m32->named_parameters(), p64 = m64->named_parameters();
  REQUIRE(p32.size() == p64.size());
  for (size_t i = 0; i < p32.size(); ++i) {
    const auto& [n, p] = p32[i];
    CAPTURE(n);
    REQUIRE(p.grad().defined());
    Tensor g64 = p64[i].second.grad();
    const double scale = std::max(1e-6, max_abs_diff(g64, Tensor::zeros(g64.shape(), DType::F64)));
    CHECK(max_abs_diff(p.grad().to(DType::F64), g64) / scale < 1e-3);
  }
}
