// CLAVER (models/claver.h) on a micro CLIP: shapes, parameter counts, the structured KMT
// mask against a dense -inf bias, the frame-permutation properties of claver.md §2.2, prompt
// sampling, scoring rules, state-dict names and LR groups, a float64 gradient check and a few
// training steps.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "models/claver.h"
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

// Image 8, patch 4 (L = 5 tokens), width 32, 2 heads, 3 vision blocks (so L_K = 1), a one-block
// text tower with context 10.
clip::ClipConfig micro_config() { return vc::testing::micro_clip_config(8, 3); }

std::shared_ptr<ClaverModel> micro_claver(const KeyValues& kv, uint64_t seed = 1) {
  KeyValues o = kv;
  if (!o.count("num_frames")) o["num_frames"] = "4";
  auto m = std::make_shared<ClaverModel>(micro_config(), ClaverOptions::parse(o));
  Generator gen{seed, 0};
  m->init_random(gen);
  return m;
}

Tensor random_video(int64_t B, int64_t T, uint64_t seed, DType dtype = DType::F32) {
  return rand_normal({B, T, 3, 8, 8}, seed, 3, 0, 1, dtype);
}

// The same clip with its frames in another order.
Tensor permute_frames(const Tensor& video, const std::vector<int64_t>& order) {
  return index_select(video, 1, Tensor::from_vector(order, {int64_t(order.size())})).contiguous();
}

PromptSet micro_prompts() {
  return make_prompts({"moving left", "moving right", "moving up"}, {"{}", "a video of {} ."},
                      {{"the item slides left .", "left"},
                       {"the item slides right .", "right"},
                       {"the item rises .", "up"}});
}

}  // namespace

TEST_CASE("video-models: claver shapes, depth and options") {
  auto m = micro_claver({});
  NoGradGuard no_grad;
  Tensor video = random_video(2, 4, 11);
  CHECK(m->spatial_tokens(video).shape() == Shape{2, 4, 5, 32});
  CHECK(m->frame_features(video).shape() == Shape{2, 4, 16});
  CHECK(m->encode_video(video).shape() == Shape{2, 16});
  CHECK(m->kmt_depth() == 1);  // 3 vision blocks / 3
  CHECK(ClaverModel::kmt_depth_for(12, 0) == 4);
  CHECK(ClaverModel::kmt_depth_for(24, 0) == 8);
  CHECK(ClaverModel::kmt_depth_for(2, 0) == 1);  // at least one
  CHECK(ClaverModel::kmt_depth_for(12, 2) == 2);
  CHECK(m->temporal_embedding.shape() == Shape{1, 4, 32});

  // The tiny preset (the Fashion-Motion CLIP) builds and runs at its own size.
  {
    clip::ClipConfig tc = clip::ClipConfig::preset("tiny");
    ClaverModel tiny(tc, ClaverOptions::parse({{"num_frames", "8"}}));
    Generator g{1, 0};
    tiny.init_random(g);
    CHECK(tiny.kmt_depth() == std::max<int64_t>(1, tc.vision_layers / 3));
    CHECK(tiny.encode_video(rand_normal({1, 8, 3, tc.image_size, tc.image_size}, 1, 1)).shape() ==
          Shape{1, tc.embed_dim});
  }
  // Frame-norm-mean pooling: every frame vector has norm 1, so ‖v‖ <= 1; mean_norm gives 1.
  Tensor v = m->encode_video(video);
  auto norms = sqrt(sum(mul(v, v), {1})).to_vector<float>();
  for (float n : norms) CHECK(n <= 1.0f + 1e-6f);
  auto mn = micro_claver({{"pooling", "mean_norm"}});
  auto norms2 = sqrt(sum(mul(mn->encode_video(video), mn->encode_video(video)), {1})).to_vector<float>();
  for (float n : norms2) CHECK(n == doctest::Approx(1.0).epsilon(1e-5));

  // A clip with another frame count does not fit the temporal embedding.
  CHECK_THROWS_WITH_AS(m->encode_video(random_video(1, 3, 2)), doctest::Contains("temporal embedding"), Error);
  CHECK_THROWS_WITH_AS(m->encode_video(rand_normal({1, 4, 3, 6, 6}, 1, 1)), doctest::Contains("[B, T, 3, 8, 8]"),
                       Error);

  // Options: round trip, aliases, unknown keys and bad values are errors that name them.
  ClaverOptions o = ClaverOptions::parse({{"mask", "kmct"}, {"temporal_embedding", "off"},
                                          {"kmt_depth", "2"}, {"scoring", "sum_log_prob"},
                                          {"prompts_per_step", "3"}, {"kmt_init", "copy_last"}});
  CHECK(o.mask == ClaverOptions::Mask::KMCTA);
  CHECK(!o.temporal_embedding);
  CHECK(o.kmt_depth == 2);
  CHECK(o.scoring == VideoModelOptions::Scoring::SumLogProb);
  CHECK(o.kmt_init == ClaverOptions::KmtInit::CopyLast);
  CHECK(ClaverOptions::parse(o.to_kv()).to_kv() == o.to_kv());
  CHECK(o.to_kv().at("mask") == "kmcta");
  CHECK_THROWS_WITH_AS(ClaverOptions::parse({{"maks", "kmta"}}), doctest::Contains("unknown option 'maks'"), Error);
  CHECK_THROWS_WITH_AS(ClaverOptions::parse({{"mask", "diagonal"}}), doctest::Contains("diagonal"), Error);
  CHECK_THROWS_WITH_AS(ClaverOptions::parse({{"num_frames", "eight"}}), doctest::Contains("num_frames"), Error);
  CHECK_THROWS_WITH_AS(ClaverOptions::parse({{"train_text", "maybe"}}), doctest::Contains("train_text"), Error);
}

TEST_CASE("video-models: claver parameter counts") {
  for (bool te : {true, false}) {
    KeyValues kv = {{"num_frames", "4"}, {"temporal_embedding", te ? "true" : "false"}};
    ClaverModel m(micro_config(), ClaverOptions::parse(kv));
    CHECK(m.num_parameters() == ClaverModel::count_parameters(micro_config(), ClaverOptions::parse(kv)));
    // CLIP + one block of 12D² + 13D + T·D.
    CHECK(m.num_parameters() ==
          clip::count_parameters(micro_config()).total + 12 * 32 * 32 + 13 * 32 + (te ? 4 * 32 : 0));
  }
  // ViT-B/16, 8 frames, computed without allocating: CLIP 149,620,737 (149.62 M, ecosystem.md
  // §3.1) + 4 KMT blocks of 12·768² + 13·768 = 7,087,872 + e_tem 8·768. claver.md quotes no
  // paper count for the model, so this is the arithmetic alone.
  ClaverOptions b16;
  b16.num_frames = 8;
  CHECK(clip::count_parameters(clip::ClipConfig::preset("ViT-B/16")).total == 149620737);
  CHECK(ClaverModel::count_parameters(clip::ClipConfig::preset("ViT-B/16"), b16) ==
        149620737 + 4 * 7087872 + 8 * 768);
  CHECK(ClaverModel::count_parameters(clip::ClipConfig::preset("ViT-B/16"), b16) == 177978369);
  // B/32: the KMT part is the same size (the patch size only changes the tokens).
  CHECK(ClaverModel::count_parameters(clip::ClipConfig::preset("ViT-B/32"), b16) -
            clip::count_parameters(clip::ClipConfig::preset("ViT-B/32")).total ==
        28357632);
}

TEST_CASE("video-models: the KMT blocks use the structured mask, equal to a dense -inf bias") {
  const int64_t T = 4, L = 5;
  Tensor video = random_video(2, T, 21);
  NoGradGuard no_grad;
  for (const char* kind : {"kmta", "kmcta", "pipeline", "class_token_only", "joint"}) {
    CAPTURE(kind);
    auto m = micro_claver({{"mask", kind}});
    // The same weights with the mask written out densely: -inf where the index rule hides a key.
    KronMask km = kron_mask(m->claver_options().mask, T, L);
    std::vector<float> bias(T * L * T * L, 0.0f);
    int64_t hidden = 0;
    for (int64_t i = 0; i < T * L; ++i)
      for (int64_t j = 0; j < T * L; ++j)
        if (!km.visible(i, j)) bias[i * T * L + j] = -std::numeric_limits<float>::infinity(), ++hidden;
    nn::AttentionOptions dense;
    dense.bias = Tensor::from_vector(bias, {T * L, T * L});
    Tensor x = m->spatial_tokens(video);
    Tensor want = m->head(m->temporal(x, dense), T);
    Tensor got = m->frame_features(video);
    CHECK(max_abs_diff(got, want) < 1e-5);
    // The model passes a Kronecker mask, not a dense bias.
    nn::AttentionOptions o = m->kmt_attention(T, L);
    CHECK(o.mask.kind == AttentionMask::Kind::Kron);
    CHECK(!o.bias.defined());
    // The masks matter: every kind but joint differs from unmasked attention.
    Tensor joint = m->head(m->temporal(x, nn::AttentionOptions{}), T);
    if (std::string(kind) == "joint") CHECK(hidden == 0);
    else CHECK(max_abs_diff(got, joint) > 1e-3);
  }
  // Index rules spot-checked (claver.md §2.2): KMTA hides the other tokens of the own frame.
  KronMask kmta = kron_mask(ClaverOptions::Mask::KMTA, T, L), kmcta = kron_mask(ClaverOptions::Mask::KMCTA, T, L);
  CHECK(kmta.visible(1 * L + 2, 1 * L + 2));   // itself
  CHECK(!kmta.visible(1 * L + 2, 1 * L + 0));  // own frame, other slot
  CHECK(kmta.visible(1 * L + 2, 3 * L + 4));   // another frame, later too
  CHECK(!kmcta.visible(1 * L + 2, 3 * L + 4)); // KMCTA: later frames hidden
  CHECK(kmcta.visible(3 * L + 0, 0 * L + 4));  // earlier frames visible
}

TEST_CASE("video-models: frame order, KMTA without temporal embedding is invariant, KMCTA is not") {
  Tensor video = random_video(2, 4, 31);
  Tensor shuffled = permute_frames(video, {2, 0, 3, 1});
  NoGradGuard no_grad;
  auto diff = [&](const KeyValues& kv) {
    auto m = micro_claver(kv);
    // e_tem starts at std 0.02, a small push next to O(1) tokens; a unit-scale one makes
    // the broken symmetry plain.
    if (m->temporal_embedding.defined())
      nn::copy_into(m->temporal_embedding, rand_normal(m->temporal_embedding.shape(), 5, 1));
    return max_abs_diff(m->encode_video(video), m->encode_video(shuffled));
  };
  // Without e_tem, KMTA and joint attention are frame-permutation equivariant: the mean over
  // frames is order-invariant (up to the summation order).
  CHECK(diff({{"mask", "kmta"}, {"temporal_embedding", "false"}}) < 1e-5);
  CHECK(diff({{"mask", "joint"}, {"temporal_embedding", "false"}}) < 1e-5);
  CHECK(diff({{"mask", "kmta"}, {"temporal_embedding", "false"}, {"pooling", "mean_norm"}}) < 1e-5);
  // The causal mask breaks the symmetry even without it; e_tem breaks it for KMTA.
  CHECK(diff({{"mask", "kmcta"}, {"temporal_embedding", "false"}}) > 1e-3);
  CHECK(diff({{"mask", "kmta"}, {"temporal_embedding", "true"}}) > 1e-3);
  CHECK(diff({{"mask", "kmcta"}, {"temporal_embedding", "true"}}) > 1e-3);
}

TEST_CASE("video-models: KMCTA frame t never sees later frames; KMTA does") {
  Tensor video = random_video(1, 4, 41);
  // Change only the last frame.
  Tensor last = rand_normal({1, 1, 3, 8, 8}, 42, 3);
  Tensor changed = concat({video.narrow(1, 0, 3), last}, 1);
  NoGradGuard no_grad;
  auto kmcta = micro_claver({{"mask", "kmcta"}});
  Tensor a = kmcta->frame_features(video), b = kmcta->frame_features(changed);
  CHECK(max_abs_diff(a.narrow(1, 0, 3), b.narrow(1, 0, 3)) == 0.0);  // bitwise: never mixed in
  CHECK(max_abs_diff(a.narrow(1, 3, 1), b.narrow(1, 3, 1)) > 1e-3);
  auto kmta = micro_claver({{"mask", "kmta"}});
  CHECK(max_abs_diff(kmta->frame_features(video).narrow(1, 0, 1),
                     kmta->frame_features(changed).narrow(1, 0, 1)) > 1e-3);
}

TEST_CASE("video-models: prompt sampling is deterministic per (seed, step)") {
  const int64_t M = 14, S = 5;
  for (int64_t step : {0, 1, 7, 123456}) {
    auto a = sample_variants(M, S, 3047, step), b = sample_variants(M, S, 3047, step);
    CHECK(a == b);
    CHECK(int64_t(a.size()) == S);
    for (int64_t i : a) CHECK((i >= 0 && i < M));
  }
  // Other seeds or steps draw other subsets (over a few steps at least one differs).
  int differ_seed = 0, differ_step = 0;
  for (int64_t step = 0; step < 8; ++step) {
    differ_seed += sample_variants(M, S, 3047, step) != sample_variants(M, S, 3048, step);
    differ_step += sample_variants(M, S, 3047, step) != sample_variants(M, S, 3047, step + 1);
  }
  CHECK(differ_seed >= 7);
  CHECK(differ_step >= 7);
  // Uniform with replacement: over 2000 steps every variant's share is near 1/M, and
  // repeats within a step happen.
  std::vector<int64_t> count(M, 0);
  int repeats = 0;
  for (int64_t step = 0; step < 2000; ++step) {
    auto v = sample_variants(M, S, 9, step);
    for (int64_t i : v) ++count[i];
    repeats += std::set<int64_t>(v.begin(), v.end()).size() < v.size();
  }
  for (int64_t c : count) CHECK(std::abs(double(c) / (2000.0 * S) - 1.0 / M) < 0.2 / M);
  CHECK(repeats > 0);

  // The model's training loss uses exactly those variants.
  auto m = micro_claver({{"prompts_per_step", "3"}, {"seed", "5"}});
  clip::WordTokenizer tok(kVocab);
  Tensor prompts = m->tokenize(micro_prompts(), tok);
  auto out = m->training_loss(random_video(2, 4, 1), prompts, Tensor::from_vector<int64_t>({0, 2}, {2}), 17);
  CHECK(out.variants == sample_variants(4, 3, 5, 17));
  CHECK(out.logits.shape() == Shape{2, 3, 3});
}

TEST_CASE("video-models: inference scoring rules on fixed logits") {
  // z [B=1, M=2, K=3]: variant 0 prefers class 0 strongly, variant 1 prefers class 1 mildly.
  Tensor z = Tensor::from_vector<float>({4, 0, 0, 0, 1, 0}, {1, 2, 3});
  auto sm = [](std::vector<double> x) {
    double s = 0;
    for (double& v : x) s += (v = std::exp(v));
    for (double& v : x) v /= s;
    return x;
  };
  auto p0 = sm({4, 0, 0}), p1 = sm({0, 1, 0});
  auto code = score_from_logits(z, VideoModelOptions::Scoring::MeanProb).to_vector<float>();
  auto paper = score_from_logits(z, VideoModelOptions::Scoring::SumLogProb).to_vector<float>();
  for (int k = 0; k < 3; ++k) {
    CHECK(code[k] == doctest::Approx((p0[k] + p1[k]) / 2).epsilon(1e-6));
    CHECK(paper[k] == doctest::Approx(std::log(p0[k]) + std::log(p1[k])).epsilon(1e-6));
  }
  // Mean of probabilities sums to 1 per row.
  CHECK(code[0] + code[1] + code[2] == doctest::Approx(1.0).epsilon(1e-6));
  // The two rules can disagree: a confident-but-wrong variant dominates the sum of log-probs.
  Tensor z2 = Tensor::from_vector<float>({0, 3, 0, 3, 0, -8}, {1, 2, 3});
  auto c2 = score_from_logits(z2, VideoModelOptions::Scoring::MeanProb).to_vector<float>();
  auto p2 = score_from_logits(z2, VideoModelOptions::Scoring::SumLogProb).to_vector<float>();
  CHECK(std::max_element(c2.begin(), c2.end()) - c2.begin() != 2);
  CHECK(p2[2] < p2[0]);

  // The model's score uses its option and the logits s·⟨v, c⟩.
  auto m = micro_claver({{"scoring", "sum_log_prob"}});
  NoGradGuard no_grad;
  clip::WordTokenizer tok(kVocab);
  Tensor c = m->class_features(m->tokenize(micro_prompts(), tok));  // [M, K, E]
  CHECK(c.shape() == Shape{4, 3, 16});
  Tensor v = m->encode_video(random_video(2, 4, 3));
  Tensor z3 = m->logits(v, c);
  CHECK(z3.shape() == Shape{2, 4, 3});
  CHECK(max_abs_diff(m->score(v, c), score_from_logits(z3, VideoModelOptions::Scoring::SumLogProb)) < 1e-6);
  // Logit (b, m, k) = exp(logit_scale) · ⟨v_b, c_mk⟩.
  double dot = sum(mul(v.select(0, 1), c.select(0, 2).select(0, 1))).item();
  CHECK(z3.select(0, 1).select(0, 2).select(0, 1).item() ==
        doctest::Approx(dot * std::exp(m->clip().logit_scale.item())).epsilon(1e-5));
  // Class features are unit vectors.
  auto cn = sqrt(sum(mul(c, c), {2})).to_vector<float>();
  for (float n : cn) CHECK(n == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("video-models: claver state-dict names and learning-rate groups") {
  auto m = micro_claver({});
  clip::CLIP plain(micro_config());
  std::set<std::string> clip_keys, keys;
  for (const auto& k : plain.state_dict().keys()) clip_keys.insert("clip." + k);
  for (const auto& k : m->state_dict().keys()) keys.insert(k);
  for (const auto& k : clip_keys) CHECK_MESSAGE(keys.count(k), k);
  std::set<std::string> extra;
  for (const auto& k : keys)
    if (!clip_keys.count(k)) extra.insert(k);
  CHECK(extra.count("temporal_embedding"));
  CHECK(extra.count("temporal_transformer.resblocks.0.attn.in_proj_weight"));
  CHECK(extra.count("temporal_transformer.resblocks.0.attn.out_proj.bias"));
  CHECK(extra.count("temporal_transformer.resblocks.0.mlp.c_fc.weight"));
  CHECK(extra.count("temporal_transformer.resblocks.0.ln_2.bias"));
  for (const auto& k : extra) CHECK_MESSAGE(k.rfind("temporal_", 0) == 0, k);
  CHECK(extra.size() == 13);  // e_tem + 12 tensors of one block

  // Groups: everything "temporal_*" at 10x, the rest at 1x; decay rule of the code.
  double wd = 1e-3;
  auto groups = m->param_groups(wd);
  std::map<std::string, const nn::ParamGroup*> by_name;
  int64_t n = 0;
  for (const auto& g : groups) {
    by_name[g.name] = &g;
    for (const auto& [name, p] : g.params) {
      ++n;
      bool is_new = name.rfind("temporal_", 0) == 0;
      CHECK_MESSAGE(g.lr_mult == (is_new ? 10.0 : 1.0), name);
      bool decays = g.weight_decay > 0;
      CHECK_MESSAGE(decays == !VideoModel::no_decay(name, p), name);
    }
  }
  CHECK(n == int64_t(m->named_parameters().size()));
  auto decay_of = [&](const std::string& name) {
    for (const auto& g : groups)
      for (const auto& [nm, p] : g.params)
        if (nm == name) return g.weight_decay;
    FAIL("no parameter " << name);
    return -1.0;
  };
  CHECK(decay_of("temporal_embedding") == wd);  // 3-D: the code decays it
  CHECK(decay_of("clip.visual.positional_embedding") == 0);
  CHECK(decay_of("clip.logit_scale") == 0);
  CHECK(decay_of("temporal_transformer.resblocks.0.attn.in_proj_bias") == 0);
  CHECK(decay_of("clip.visual.transformer.resblocks.0.mlp.c_fc.weight") == wd);

  // A checkpoint round trip through the state dict restores identical outputs.
  auto other = micro_claver({}, /*seed=*/99);
  Tensor video = random_video(1, 4, 5);
  NoGradGuard no_grad;
  CHECK(max_abs_diff(m->encode_video(video), other->encode_video(video)) > 1e-3);
  other->load_state_dict(m->state_dict());
  CHECK(max_abs_diff(m->encode_video(video), other->encode_video(video)) == 0.0);
}

TEST_CASE("video-models: claver initialisation of the new modules") {
  clip::CLIP donor(micro_config());
  Generator g0{7, 0};
  clip::init_clip(donor, g0);
  clip::StateDict weights;
  for (const auto& [k, t] : donor.state_dict()) weights[k] = t;

  // copy_last: the KMT block starts as the last CLIP block.
  auto m = std::make_shared<ClaverModel>(micro_config(), ClaverOptions::parse({{"num_frames", "4"}, {"kmt_init", "copy_last"}}));
  Generator g1{1, 0};
  m->init_from_clip(weights, g1);
  CHECK(max_abs_diff(m->temporal_transformer->block(0).attn->in_proj_weight,
                     donor.visual->transformer->block(2).attn->in_proj_weight) == 0.0);
  CHECK(max_abs_diff(m->clip().visual->proj, donor.visual->proj) == 0.0);

  // pytorch (default): Xavier in-proj with bound √(6/(D+3D)), zero in/out-proj biases,
  // e_tem with std ≈ 0.02.
  auto p = std::make_shared<ClaverModel>(micro_config(), ClaverOptions::parse({{"num_frames", "4"}}));
  Generator g2{1, 0};
  p->init_from_clip(weights, g2);
  const auto& attn = *p->temporal_transformer->block(0).attn;
  double bound = std::sqrt(6.0 / (32 + 96));
  auto w = attn.in_proj_weight.to_vector<float>();
  double wmax = 0;
  for (float x : w) wmax = std::max(wmax, double(std::abs(x)));
  CHECK(wmax <= bound);
  CHECK(wmax > 0.8 * bound);
  CHECK(max(abs(attn.in_proj_bias)).item() == 0.0);
  CHECK(max(abs(attn.out_proj->bias)).item() == 0.0);
  CHECK(max(abs(p->temporal_transformer->block(0).mlp->c_fc->bias)).item() > 0.0);  // U(±1/√fan_in)
  double sd = std::sqrt(var(p->temporal_embedding, {0, 1, 2}).item());
  CHECK(sd == doctest::Approx(0.02).epsilon(0.25));
  // Same seed, same weights.
  auto q = std::make_shared<ClaverModel>(micro_config(), ClaverOptions::parse({{"num_frames", "4"}}));
  Generator g3{1, 0};
  q->init_from_clip(weights, g3);
  CHECK(max_abs_diff(q->temporal_embedding, p->temporal_embedding) == 0.0);
}

TEST_CASE("video-models: claver float64 gradient check of the training loss") {
  auto m = micro_claver({{"num_frames", "3"}, {"prompts_per_step", "2"}});
  m->to(DType::F64);
  clip::WordTokenizer tok(kVocab);
  Tensor prompts = m->tokenize(micro_prompts(), tok);
  Tensor video = random_video(2, 3, 51, DType::F64).set_requires_grad(true);
  Tensor targets = soft_targets(Tensor::from_vector<int64_t>({1, 2}, {2}), 3, 0.1, DType::F64);
  auto loss = [&] { return m->training_loss(video, prompts, targets, 4).loss; };
  m->zero_grad();
  loss().backward();
  // Every parameter tensor (and the input), at up to 3 evenly spaced elements each.
  auto wrt = m->named_parameters();
  wrt.emplace_back("video", video);
  const int checked = vc::testing::gradcheck_elements(loss, wrt);
  CHECK(checked > 100);
}

TEST_CASE("video-models: a few AdamW steps on random tiny data lower the CLAVER loss") {
  for (const char* mask : {"kmta", "kmcta"}) {
    CAPTURE(mask);
    auto m = micro_claver({{"mask", mask}, {"prompts_per_step", "2"}}, 3);
    clip::WordTokenizer tok(kVocab);
    Tensor prompts = m->tokenize(micro_prompts(), tok);
    Tensor video = random_video(6, 4, 61);
    Tensor labels = Tensor::from_vector<int64_t>({0, 1, 2, 0, 1, 2}, {6});
    Tensor targets = soft_targets(labels, 3, 0.1);
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
  // Deterministic per seed: the same steps twice give bitwise equal parameters.
  auto run = [](uint64_t seed) {
    auto m = micro_claver({{"prompts_per_step", "2"}}, seed);
    clip::WordTokenizer tok(kVocab);
    Tensor prompts = m->tokenize(micro_prompts(), tok);
    nn::AdamW opt(m->param_groups(1e-3), nn::AdamWOptions{});
    for (int64_t step = 0; step < 3; ++step) {
      opt.zero_grad();
      m->training_loss(random_video(2, 4, 81), prompts, Tensor::from_vector<int64_t>({0, 1}, {2}), step)
          .loss.backward();
      opt.step();
    }
    uint64_t h = 0;
    for (const auto& [name, p] : m->named_parameters()) h = h * 31 + vc::testing::hash_bits(p);
    return h;
  };
  CHECK(run(3) == run(3));
  CHECK(run(3) != run(4));
}

TEST_CASE("video-models: registry creates models by name") {
  auto names = model_names();
  CHECK(std::find(names.begin(), names.end(), "baseline") != names.end());
  CHECK(std::find(names.begin(), names.end(), "claver") != names.end());
  auto m = create_model("claver", micro_config(), {{"num_frames", "4"}, {"mask", "kmcta"}});
  CHECK(m->name() == "claver");
  CHECK(m->options_kv().at("mask") == "kmcta");
  CHECK(m->new_module_names().size() == 2);
  CHECK(create_model("baseline", micro_config())->name() == "baseline");
  CHECK_THROWS_WITH_AS(create_model("xclip", micro_config()), doctest::Contains("xclip"), Error);
  CHECK_THROWS_WITH_AS(create_model("baseline", micro_config(), {{"mask", "kmta"}}),
                       doctest::Contains("unknown option 'mask'"), Error);
  // The apps' flat config: MODEL.* keys upper-cased; NAME / ARCH / PRETRAINED are not options.
  KeyValues config = {{"MODEL.NAME", "claver"}, {"MODEL.ARCH", "tiny"}, {"MODEL.MASK", "kmta"},
                      {"MODEL.KMT_DEPTH", "2"}, {"TRAIN.LR", "1e-4"}};
  CHECK(model_options_of(config) == KeyValues{{"mask", "kmta"}, {"kmt_depth", "2"}});
  // Every option is documented, with the default the parser uses.
  for (const std::string& name : model_names()) {
    auto docs = model_option_docs(name);
    KeyValues defaults;
    for (const auto& d : docs) {
      CHECK_MESSAGE(!d.help.empty(), d.key);
      defaults[d.key] = d.default_value;
    }
    CHECK(create_model(name, micro_config(), defaults)->options_kv() == defaults);
  }
  CHECK(model_option_docs("claver").size() == model_option_docs("baseline").size() + 4);
}
