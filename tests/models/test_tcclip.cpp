// TC-CLIP (models/tcclip.h) on a micro CLIP with a 4x4 patch grid: the merge schedule, seed
// selection against a brute-force reference, context tokens = group means, α = 0 = baseline,
// frame-permutation behaviour (tcclip.md §2.7, §10), the cheap text order = the reference's,
// VP's detached input and per-clip class features, weight-space ensembling, options, gradients.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/ops/token_merging.h"
#include "models/baseline.h"
#include "models/registry.h"
#include "models/tcclip.h"
#include "nn/nn.h"
#include "tests/common/testing.h"
#include "tests/models/micro_clip.h"

using namespace vc;
using namespace vc::models;
using vc::testing::max_abs_diff;

namespace {

// Image 16, patch 4: N = 16 patches, N' = 17; width 32, 2 heads, 3 layers; a 2-layer text
// tower (so one layer is shared before VP) and E = D_t = 32 (VP reads projected tokens).
clip::ClipConfig micro_config() {
  clip::ClipConfig c = vc::testing::micro_clip_config(16, 3);
  c.embed_dim = 32;
  c.text_layers = 2;
  return c;
}

// T = 4, k = 4 seeds per frame (16 seeds), m = 6, r = 4 (schedule [4, 4, 2]); P = 2.
std::shared_ptr<TcClipModel> micro_tc(KeyValues kv, uint64_t seed = 1) {
  const KeyValues defaults = {{"num_frames", "4"}, {"alpha", "0.25"}, {"context_tokens", "6"},
                              {"merge_step", "4"},  {"prompt_vectors", "2"}, {"prompt_init", "a video"}};
  for (const auto& [k, v] : defaults)
    if (!kv.count(k)) kv[k] = v;
  auto m = std::make_shared<TcClipModel>(micro_config(), TcClipOptions::parse(kv));
  Generator gen{seed, 0};
  m->init_random(gen);
  return m;
}

// K = 3 classes, one variant: start (16), the phrase (3, 4), a class word (5 + k), end (17).
Tensor micro_prompt_tokens() {
  std::vector<int64_t> tk(3 * 10, 0);
  for (int64_t k = 0; k < 3; ++k) {
    int64_t* r = tk.data() + k * 10;
    r[0] = 16, r[1] = 3, r[2] = 4, r[3] = 5 + k, r[4] = 17;
  }
  return Tensor::from_vector(tk, {1, 3, 10});
}

Tensor random_video(int64_t B, int64_t T, uint64_t seed) { return rand_normal({B, T, 3, 16, 16}, seed, 3, 0, 1); }

Tensor permute_frames(const Tensor& video, const std::vector<int64_t>& order) {
  return index_select(video, 1, Tensor::from_vector(order, {int64_t(order.size())})).contiguous();
}

}  // namespace

TEST_CASE("tcclip: the merge schedule of tcclip.md §2.5, capped and no-merge paths") {
  std::vector<int64_t> paper(8, 100);
  paper.push_back(32);
  CHECK(merge_schedule(928, 96, 100) == paper);                      // 928 -> 96
  CHECK(merge_schedule(32, 8, 8) == std::vector<int64_t>{8, 8, 8});  // §10.1 tiny
  CHECK(merge_schedule(32, 8, 100) == std::vector<int64_t>{16, 8});  // capped at n / 2
  CHECK(merge_schedule(32, 32, 8).empty());                          // m >= T·k: no merge
  CHECK(merge_schedule(32, 40, 8).empty());
  // The model keeps every seed when m >= T·k.
  auto m = micro_tc({{"context_tokens", "16"}});
  NoGradGuard g;
  Tensor x = rand_normal({8, 17, 32}, 3, 0, 0, 1), scores = rand_normal({8, 16}, 4, 0, 0, 1);
  auto o = m->summarise(1, x, scores, 2);
  CHECK(o.context.shape() == Shape{2, 16, 32});
}

TEST_CASE("tcclip: seed selection = top-k of the class token's head-averaged attention (brute force)") {
  // The order on a fixed case with ties: descending score, ties to the lower index.
  Tensor s = Tensor::from_vector(std::vector<float>{0.1f, 0.5f, 0.5f, 0.2f, 0.7f}, {1, 5});
  CHECK(select_seeds(s, 3).to_vector<int64_t>() == std::vector<int64_t>{4, 1, 2});

  // In the model: layer 1 reads layer 0's context; its seeds come from the class row of that
  // attention (context columns and bias in the softmax, patch columns ranked). Recomputed
  // here with plain loops over q·k.
  auto m = micro_tc({});
  m->to(DType::F64);
  NoGradGuard g;
  const int64_t B = 2, T = 4, Np = 17, D = 32, H = 2, dh = 16;
  Tensor x = rand_normal({B * T, Np, D}, 7, 0, 0, 1).to(DType::F64);
  Tensor ctx = rand_normal({B, 6, D}, 8, 0, 0, 1).to(DType::F64);
  // A bias large enough to reorder the seeds: b_loc = (0.5, -1), b_glob = (2, 1.5) per head.
  nn::copy_into(m->local_global_bias->get("1"), Tensor::from_vector(std::vector<double>{0.5, 2, -1, 1.5}, {H, 2}));
  auto out = m->tc_layer(1, x, ctx, B, /*summarise=*/true);
  REQUIRE(out.seeds.shape() == Shape{B, T * 4});
  const auto& block = m->clip().visual->transformer->block(1);
  Tensor h = block.ln_1->forward(x), hs = block.ln_1->forward(ctx);
  Tensor W = block.attn->in_proj_weight, bias = block.attn->in_proj_bias;
  auto proj = [&](const Tensor& t, int64_t part) {
    return add(matmul(t, W.narrow(0, part * D, D).transpose(0, 1)), bias.narrow(0, part * D, D));
  };
  std::vector<double> q = proj(h, 0).contiguous().to_vector<double>(), k = proj(h, 1).contiguous().to_vector<double>(),
                      kc = proj(hs, 1).contiguous().to_vector<double>();
  std::vector<double> lg = m->local_global_bias->get("1").contiguous().to_vector<double>();  // [H, 2]
  std::vector<int64_t> got = out.seeds.to_vector<int64_t>();
  for (int64_t f = 0; f < B * T; ++f) {
    const int64_t bb = f / T, t = f % T;
    std::vector<double> score(16, 0.0);
    for (int64_t hh = 0; hh < H; ++hh) {
      std::vector<double> logit;
      auto dot = [&](const std::vector<double>& keys, int64_t row) {
        double s = 0;
        for (int64_t c = 0; c < dh; ++c) s += q[size_t((f * Np) * D + hh * dh + c)] * keys[size_t(row * D + hh * dh + c)];
        return s / std::sqrt(double(dh));
      };
      for (int64_t j = 0; j < Np; ++j) logit.push_back(dot(k, f * Np + j) + lg[size_t(hh * 2)]);
      for (int64_t j = 0; j < 6; ++j) logit.push_back(dot(kc, bb * 6 + j) + lg[size_t(hh * 2 + 1)]);
      double mx = *std::max_element(logit.begin(), logit.end()), z = 0;
      for (double l : logit) z += std::exp(l - mx);
      for (int64_t i = 0; i < 16; ++i) score[size_t(i)] += std::exp(logit[size_t(1 + i)] - mx) / z / double(H);
    }
    std::vector<int64_t> order(16);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return score[size_t(a)] > score[size_t(c)]; });
    for (int64_t i = 0; i < 4; ++i) {
      CAPTURE(f);
      CHECK(got[size_t(bb * T * 4 + t * 4 + i)] == order[size_t(i)]);
    }
  }
}

TEST_CASE("tcclip: every context token is the mean of its group of seeds (bipartite and random)") {
  for (const char* how : {"bipartite", "random"}) {
    CAPTURE(how);
    auto m = micro_tc({{"summarization", how}});
    m->to(DType::F64);
    NoGradGuard g;
    const int64_t B = 2, T = 4, D = 32;
    Tensor x = rand_normal({B * T, 17, D}, 11, 0, 0, 1).to(DType::F64);
    Tensor scores = rand_normal({B * T, 16}, 12, 0, 0, 1).to(DType::F64);
    auto o = m->summarise(1, x, scores, B);
    REQUIRE(o.context.shape() == Shape{B, 6, D});
    std::vector<int64_t> seeds = o.seeds.to_vector<int64_t>(), groups = o.groups.to_vector<int64_t>();
    std::vector<double> xs = x.contiguous().to_vector<double>(), ctx = o.context.contiguous().to_vector<double>();
    for (int64_t bb = 0; bb < B; ++bb)
      for (int64_t gi = 0; gi < 6; ++gi) {
        std::vector<double> acc(size_t(D), 0.0);
        int64_t n = 0;
        for (int64_t s = 0; s < T * 4; ++s) {
          if (groups[size_t(bb * 16 + s)] != gi) continue;
          const int64_t frame = bb * T + s / 4, row = 1 + seeds[size_t(bb * 16 + s)];
          for (int64_t c = 0; c < D; ++c) acc[size_t(c)] += xs[size_t((frame * 17 + row) * D + c)];
          ++n;
        }
        REQUIRE(n > 0);  // a partition into m non-empty groups
        for (int64_t c = 0; c < D; ++c) CHECK(std::abs(ctx[size_t((bb * 6 + gi) * D + c)] - acc[size_t(c)] / double(n)) < 1e-12);
      }
  }
}

TEST_CASE("tcclip: the context tokens go through the layer's FFN like the frame tokens ([Ẑ; Ŝ] + MLP(LN2(.)))") {
  // Without merging every context token is one seed row of Ẑ, so after the shared FFN it must
  // equal the layer's output row of that patch.
  auto m = micro_tc({{"summarization", "none"}});
  m->to(DType::F64);
  NoGradGuard g;
  const int64_t B = 2, T = 4, D = 32;
  Tensor x = rand_normal({B * T, 17, D}, 31, 0, 0, 1).to(DType::F64);
  Tensor ctx = rand_normal({B, 16, D}, 32, 0, 0, 1).to(DType::F64);
  auto o = m->tc_layer(1, x, ctx, B, true);
  REQUIRE(o.context.shape() == Shape{B, 16, D});
  std::vector<int64_t> seeds = o.seeds.to_vector<int64_t>();
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t s = 0; s < 16; ++s) {
      Tensor row = o.x.select(0, bb * T + s / 4).select(0, 1 + seeds[size_t(bb * 16 + s)]);
      CHECK(max_abs_diff(o.context.select(0, bb).select(0, s), row) < 1e-12);
    }
}

TEST_CASE("tcclip: with alpha = 0 the video encoder is the baseline's, bit for bit") {
  KeyValues kv = {{"alpha", "0"}, {"vp", "false"}, {"pooling", "mean_norm"}};
  auto m = micro_tc(kv);
  BaselineOptions bo = BaselineOptions::parse({{"num_frames", "4"}, {"pooling", "mean_norm"}});
  BaselineModel base(micro_config(), bo);
  Generator gen{1, 0};
  base.init_random(gen);
  NoGradGuard g;
  Tensor video = random_video(2, 4, 5);
  CHECK(max_abs_diff(m->frame_features(video), base.frame_features(video)) == 0);
  CHECK(max_abs_diff(m->encode_video(video).select(1, 0), base.encode_video(video)) == 0);
  // And with context tokens the features do change.
  auto tc = micro_tc({{"vp", "false"}, {"pooling", "mean_norm"}});
  CHECK(max_abs_diff(tc->frame_features(video), base.frame_features(video)) > 1e-4);
}

TEST_CASE("tcclip: frame order (tcclip.md §2.7, §10): invariant with space PE and no merge; joint PE breaks it") {
  const std::vector<int64_t> order = {2, 0, 3, 1};
  Tensor video = random_video(2, 4, 9);
  auto check = [&](const KeyValues& kv, bool invariant) {
    auto m = micro_tc(kv);
    m->to(DType::F64);
    NoGradGuard g;
    if (m->joint_positional_embedding.defined())  // as trained: the copies of CLIP's table drift apart
      nn::copy_into(m->joint_positional_embedding,
                    add(m->joint_positional_embedding,
                        rand_normal(m->joint_positional_embedding.shape(), 5, 0, 0, 0.1).to(DType::F64)));
    Tensor v = video.to(DType::F64);
    Tensor u = m->frame_features(v), up = m->frame_features(permute_frames(v, order));
    // Frame t of the permuted clip is frame order[t] of the original.
    double d = max_abs_diff(up, permute_frames(u, order));
    if (invariant) CHECK(d < 1e-12);
    else CHECK(d > 1e-4);
  };
  check({{"summarization", "none"}}, true);  // the context is the set of all seeds: order-free
  check({{"summarization", "none"}, {"positional_embedding", "joint"}}, false);
  // The bipartite split takes even/odd positions of an ordered list whose frame blocks shrink
  // as merging goes on: which frame's tokens fall on even positions, and so the partition,
  // depends on the frame order (the only order dependence with space PE, §2.7).
  check({}, false);
}

TEST_CASE("tcclip: shapes, the prompt phrase's embedding, and VP's per-clip class features") {
  auto m = micro_tc({});
  NoGradGuard g;
  Tensor video = random_video(3, 4, 1), tokens = micro_prompt_tokens();
  Tensor vf = m->encode_video(video);
  CHECK(vf.shape() == Shape{3, 1 + 6, 32});
  Tensor c = m->class_features(tokens);
  CHECK(c.shape() == Shape{1, 3, 5, 33});  // trimmed to 5 tokens, one end-token flag channel
  CHECK(m->score(vf, c).shape() == Shape{3, 3});
  auto out = m->vision(video, /*keep_membership=*/true);
  CHECK(out.seeds.size() == 3);  // every layer summarises (layers 1, 2 read; VP reads the last)
  CHECK(out.context.shape() == Shape{3, 6, 32});
  // p starts as the embedding of the phrase: rows 1..2 of the text input.
  Tensor emb = m->embed_prompts(tokens.select(0, 0));
  Tensor phrase = m->clip().token_embedding->weight.narrow(0, 3, 2);
  Tensor pos = m->clip().positional_embedding.narrow(0, 1, 2);
  CHECK(max_abs_diff(emb.select(0, 0).narrow(0, 1, 2), add(phrase, pos)) == 0);
  // Before VP the prompt rows are the same in every class; VP makes them differ by clip.
  std::vector<double> rows;
  for (int64_t k = 0; k < 3; ++k)
    CHECK(max_abs_diff(c.select(1, k).select(0, 0).narrow(0, 1, 2), c.select(1, 0).select(0, 0).narrow(0, 1, 2)) == 0);
  Tensor f = m->conditioned_class_features(c, vf.narrow(1, 1, 6));  // [B, M, K, E]
  CHECK(f.shape() == Shape{3, 1, 3, 32});
  CHECK(max_abs_diff(f.select(0, 0), f.select(0, 1)) > 1e-4);
  CHECK(max_abs_diff(f.select(0, 1), f.select(0, 2)) > 1e-4);
}

TEST_CASE("tcclip: the cheap text order (shared layers once, last layer per clip and class) = the reference's") {
  auto m = micro_tc({});
  m->to(DType::F64);
  NoGradGuard g;
  // Two variants so both axes of [M, K] are exercised.
  Tensor t1 = micro_prompt_tokens();
  std::vector<int64_t> v = t1.to_vector<int64_t>(), w = v;
  for (int64_t k = 0; k < 3; ++k) w[size_t(k * 10 + 4)] = 9, w[size_t(k * 10 + 5)] = 17;  // a longer text
  v.insert(v.end(), w.begin(), w.end());
  Tensor tokens = Tensor::from_vector(v, {2, 3, 10});
  Tensor ctx = rand_normal({3, 6, 32}, 17, 0, 0, 1).to(DType::F64);
  Tensor cheap = m->conditioned_class_features(m->class_features(tokens), ctx);
  Tensor naive = m->class_features_naive(tokens, ctx);
  REQUIRE(cheap.shape() == naive.shape());
  CHECK(max_abs_diff(cheap, naive) < 1e-12);

  // E ≠ D_t (16 against 32): VP reads the tokens through kv_in; the two orders still agree.
  clip::ClipConfig c16 = micro_config();
  c16.embed_dim = 16;
  TcClipModel narrow(c16, TcClipOptions::parse({{"num_frames", "4"}, {"alpha", "0.25"}, {"context_tokens", "6"},
                                                {"merge_step", "4"}, {"prompt_vectors", "2"}}));
  Generator gen{3, 0};
  narrow.init_random(gen);
  narrow.to(DType::F64);
  REQUIRE(narrow.prompt_generation->kv_in);
  Tensor ctx16 = rand_normal({3, 6, 16}, 18, 0, 0, 1).to(DType::F64);
  CHECK(max_abs_diff(narrow.conditioned_class_features(narrow.class_features(tokens), ctx16),
                     narrow.class_features_naive(tokens, ctx16)) < 1e-12);
  Tensor vf = narrow.encode_video(random_video(3, 4, 2).to(DType::F64));
  CHECK(narrow.score(vf, narrow.class_features(tokens)).shape() == Shape{3, 3});
}

TEST_CASE("tcclip: the context tokens reach VP detached; with vp_detach off they carry gradient") {
  for (bool detach : {true, false}) {
    CAPTURE(detach);
    auto m = micro_tc({{"vp_detach", detach ? "true" : "false"}});
    m->zero_grad();
    Tensor video = random_video(2, 4, 3);
    Tensor vf = m->encode_video(video);
    // The prompt side alone: the class features of each clip.
    Tensor f = m->conditioned_class_features(m->class_features(micro_prompt_tokens()), vf.narrow(1, 1, 6));
    sum(mul(f, rand_normal(f.shape(), 4, 0, 0, 1))).backward();
    double vision = 0;
    for (const auto& [name, p] : m->named_parameters())
      if (name.rfind("clip.visual.", 0) == 0 && p.grad().defined()) vision += max(abs(p.grad())).item();
    if (detach) CHECK(vision == 0);
    else CHECK(vision > 0);
    CHECK(max(abs(m->prompt_generation->attn->in_proj_weight.grad())).item() > 0);
  }
}

TEST_CASE("tcclip: gradients reach the new parameters; float64 check of a TC layer and the loss") {
  // VP's input with gradient: a stop-gradient is not the derivative central differences see.
  auto m = micro_tc({{"positional_embedding", "joint"}, {"vp_detach", "false"}});
  m->to(DType::F64);
  Tensor video = random_video(2, 4, 13).to(DType::F64);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2});
  Tensor tokens = micro_prompt_tokens();
  auto loss = [&] { return m->training_loss(video, tokens, labels, 0).loss; };
  m->zero_grad();
  loss().backward();
  std::vector<std::pair<std::string, Tensor>> wrt;
  for (const char* name : {"local_global_bias.1", "local_global_bias.2", "joint_positional_embedding", "prompt_offset",
                           "prompt_generation.attn.in_proj_weight", "prompt_generation.ln_kv.weight",
                           "prompt_generation.mlp.c_fc.weight", "clip.visual.transformer.resblocks.2.attn.in_proj_weight",
                           "clip.transformer.resblocks.1.mlp.c_proj.weight", "clip.logit_scale"}) {
    CAPTURE(name);
    Tensor p = m->get(name);
    REQUIRE(p.grad().defined());
    CHECK(max(abs(p.grad())).item() > 0);
    wrt.emplace_back(name, p);
  }
  CHECK(vc::testing::gradcheck_elements(loss, wrt) >= 28);
  // Only b_glob − b_loc matters (softmax shift): the two columns' gradients are negatives (O8).
  for (const char* name : {"local_global_bias.1", "local_global_bias.2"}) {
    std::vector<double> gb = vc::testing::values(m->get(name).grad());
    for (size_t h = 0; h < 2; ++h) {
      CHECK(std::abs(gb[2 * h]) > 1e-8);
      CHECK(std::abs(gb[2 * h] + gb[2 * h + 1]) < 1e-12);
    }
  }
  // One TC layer: input stream, previous context, and the local/global bias (O3, O5, O7, O8).
  Tensor lg = m->local_global_bias->get("1");
  vc::testing::gradcheck(
      [&](const TensorList& in) {
        auto o = m->tc_layer(1, in[0], in[1], 1, true);
        return concat({o.x.reshape({-1}), o.context.reshape({-1})}, 0);
      },
      {rand_normal({4, 17, 32}, 21, 0, 0, 1).to(DType::F64), rand_normal({1, 6, 32}, 22, 0, 0, 1).to(DType::F64)},
      "tc layer");
  (void)lg;
}

TEST_CASE("tcclip: weight-space ensembling mixes the CLIP's tensors only (tcclip.md §4)") {
  auto ft = micro_tc({}, 1);
  clip::CLIP pre(micro_config());
  Generator gen{2, 0};
  clip::init_clip(pre, gen);
  nn::StateDict f = ft->state_dict(), p = pre.state_dict();
  nn::StateDict e = weight_space_ensemble(f, p, 0.7);
  REQUIRE(e.keys() == f.keys());
  int64_t mixed = 0, kept = 0;
  for (const auto& [name, t] : e) {
    CAPTURE(name);
    std::vector<double> got = vc::testing::values(t), fv = vc::testing::values(f.at(name));
    if (name.rfind("clip.", 0) == 0) {
      std::vector<double> pv = vc::testing::values(p.at(name.substr(5)));
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - (0.3 * pv[i] + 0.7 * fv[i])));
      CHECK(worst < 1e-6);
      ++mixed;
    } else {
      CHECK(got == fv);  // bias tables, prompt offset, VP block: as fine-tuned
      ++kept;
    }
  }
  CHECK(mixed == int64_t(p.size()));
  CHECK(kept == 2 + 1 + int64_t(ft->prompt_generation->state_dict().size()));
  // In place on the model, and a CLIP that does not fit is named.
  ft->ensemble_with(p, 1.0);
  CHECK(max_abs_diff(ft->get("clip.visual.proj"), f.at("clip.visual.proj")) == 0);
  nn::StateDict q;
  for (const auto& [name, t] : p)
    if (name != "text_projection") q.set(name, t);
  CHECK_THROWS_WITH_AS(weight_space_ensemble(f, q, 0.7), doctest::Contains("text_projection"), std::exception);
  CHECK_THROWS_WITH_AS(weight_space_ensemble(f, p, 1.5), doctest::Contains("w must be in [0, 1]"), std::exception);
}

TEST_CASE("tcclip: options round-trip; every bad option is named") {
  TcClipOptions d;
  CHECK(d.pooling == VideoModelOptions::Pooling::MeanNorm);  // the code's pooling
  KeyValues kv = micro_tc({{"reference", "cls"}, {"tc_layers", "2"}, {"summarization", "random"}})->options_kv();
  CHECK(TcClipOptions::parse(kv).to_kv() == kv);
  CHECK(create_model("tcclip", micro_config(), kv)->name() == "tcclip");
  auto bad = [](const KeyValues& kv, const char* what) {
    CHECK_THROWS_WITH_AS(TcClipOptions::parse(kv), doctest::Contains(what), std::exception);
  };
  bad({{"alpha", "1.5"}}, "alpha");
  bad({{"context_tokens", "0"}}, "context_tokens");
  bad({{"merge_step", "0"}}, "merge_step");
  bad({{"tc_layers", "0"}}, "tc_layers");
  bad({{"tc_layers", "1,x"}}, "tc_layers");
  bad({{"positional_embedding", "temporal"}}, "positional_embedding");
  bad({{"reference", "adjacent"}}, "reference");
  bad({{"seed_selection", "saliency"}}, "seed_selection");
  bad({{"summarization", "kmeans"}}, "summarization");
  bad({{"vp_input", "gap"}}, "vp_input");
  bad({{"prompt_vectors", "0"}}, "prompt vectors");
  bad({{"wise_ft", "2"}}, "wise_ft");
  bad({{"logit_scale_init", "-1"}}, "logit_scale_init");
  CHECK(micro_tc({{"logit_scale_init", "100"}})->clip().scale().item() == doctest::Approx(100));
  bad({{"no_such_key", "1"}}, "no_such_key");
  CHECK_THROWS_WITH_AS(micro_tc({{"tc_layers", "5"}}), doctest::Contains("tc_layers names layer 5"), std::exception);
  CHECK_THROWS_WITH_AS(micro_tc({{"alpha", "0"}}), doctest::Contains("vp_input"), std::exception);
  // The phrase must be P tokens long (a word tokenizer: "a video" is two).
  auto m = micro_tc({{"prompt_vectors", "3"}});
  clip::WordTokenizer tok("<pad>\n<unk>\na\nvideo\nof\nmoving\nleft\n<|startoftext|>\n<|endoftext|>\n");
  PromptSet ps = make_prompts({"moving left"}, {"{}"});
  CHECK_THROWS_WITH_AS(m->tokenize(ps, tok), doctest::Contains("prompt_init 'a video' is 2 tokens"), std::exception);
  auto ok = micro_tc({});
  std::vector<int64_t> ids = ok->tokenize(ps, tok).to_vector<int64_t>();
  CHECK(std::vector<int64_t>(ids.begin(), ids.begin() + 6) == std::vector<int64_t>{7, 2, 3, 5, 6, 8});
}

TEST_CASE("tcclip: a few training steps lower the loss; the same seed gives the same bits") {
  auto run = [](uint64_t seed) {
    auto m = micro_tc({}, seed);
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
      res.loss.backward();
      opt.step();
      losses.push_back(res.loss.item());
    }
    uint64_t h = 0;
    for (const auto& [name, p] : m->named_parameters()) h = h * 31 + vc::testing::hash_bits(p);
    return std::make_pair(losses, h);
  };
  auto [l1, h1] = run(1);
  CHECK(l1.back() < l1.front());
  auto [l2, h2] = run(1);
  CHECK(h1 == h2);
  CHECK(l1 == l2);
}
