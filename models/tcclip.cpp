// TC-CLIP's video encoder, prompts and objective, step by step as in tcclip.md §2-4 (symbols:
// B videos, T frames, N patches, N' = N + 1, D width, H heads, k = floor(α·N) seeds per frame,
// m context tokens, r merge step, E embedding, D_t text width, P prompt vectors, K classes).
//
//   Z⁰     = ln_pre([c; X_p W_pe] + E_pos)          space: one table, every frame    [B·T, N', D]  (§2.1)
//                                                   joint: a table per frame
//   layer l (the block's own ln_1, attn, ln_2, mlp):
//   Y      = LN1(Z^{l−1}),  Y_S = LN1(S^{l−1})       S^{l−1}: context of layer l−1     [B, m, D]
//   A_t    = Q_t [K_t; K_S]ᵀ/√d_h + [b_loc | b_glob]  per frame, per head (O7, O8)     (§2.3)
//   Ẑ      = Z^{l−1} + softmax(A_t) [V_t; V_S] Wo     S^{l−1} is dropped here (no residual)
//   I_t    = top-k_i mean_h P_{t,h}[0, 1..N]         class-token attention (O1, O2)   (§2.4)
//   U      = [Ẑ_0[I_0]; …; Ẑ_{T−1}[I_{T−1}]]          seeds, frame-major (O3)          [B, T·k, D]
//   Ŝ      = merge_to_count(U, m, r)                 group means of the seeds (O4, O5) (§2.5)
//   [Z^l; S^l] = [Ẑ; Ŝ] + MLP(LN2([Ẑ; Ŝ]))            the shared FFN                   [B, T·N' + m, D]
//   u_bt   = LN_post(Z^L_{bt,0}) W_vis,  v̄_b = mean_t u_bt / ‖·‖                       [B, E]        (§2.6)
//   S_proj = SG(LN_post(S^L) W_vis)                  the VP input                     [B, m, E]
//   text:  x = [SOS; E(phrase) + δ; E(name); EOS] + pos, text layers 1..L_t−1 once    [K, L, D_t]   (§3.1-3.2)
//   x_p   ← x_p + MHA(LN_a(x_p), LN_kv(S_proj)); x_p ← x_p + MLP(LN_b(x_p))   per video [B, P, D_t]   (§3.3)
//   c_bk   = (ln_final(layer L_t(x with rows 1..P = x_p,b)))_EOS W_text / ‖·‖            [B, K, E]
//   ℓ_bk   = exp(θ_s) ⟨v̄_b, c_bk⟩,  L = CE(ℓ, y)                                                    (§4)
//
// Engine pieces: top-k with the (−score, index) order (engine/ops/topk.h), gather/scatter for
// O3, merge_to_count for O4-O5 (engine/ops/token_merging.h), attention_ex with extra_k/v,
// key_bias (b_loc) and extra_bias (b_glob) and the class row's probabilities (O7-O8).
#include "models/tcclip.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/engine.h"
#include "engine/rng/philox.h"
#include "nn/init.h"

namespace vc::models {

namespace {

const char* b(bool x) { return x ? "true" : "false"; }

std::vector<int64_t> parse_layers(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    VC_CHECK(used > 0 && used == item.size() && v >= 1, "tcclip: option 'tc_layers' = '", text,
             "' must be 'all' or a comma list of layer indices >= 1 (layer 0 has no context to read)");
    out.push_back(v);
  }
  VC_CHECK(!out.empty(), "tcclip: option 'tc_layers' is empty");
  return out;
}

template <class E>
std::string choice(E v, const std::vector<std::pair<E, std::string>>& names) {
  for (const auto& [e, n] : names)
    if (e == v) return n;
  return {};
}

template <class E>
void read_enum(OptionReader& r, const std::string& key, E& v, const std::vector<std::pair<E, std::string>>& names) {
  std::string s = choice(v, names);
  std::vector<std::string> allowed;
  for (const auto& p : names) allowed.push_back(p.second);
  r.read_choice(key, s, allowed);
  for (const auto& [e, n] : names)
    if (n == s) v = e;
}

using O = TcClipOptions;
const std::vector<std::pair<O::PosEmb, std::string>> kPosEmb = {{O::PosEmb::Space, "space"},
                                                               {O::PosEmb::Joint, "joint"}};
const std::vector<std::pair<O::Reference, std::string>> kReference = {
    {O::Reference::Context, "context"}, {O::Reference::None, "none"}, {O::Reference::Cls, "cls"},
    {O::Reference::Joint, "joint"}};
const std::vector<std::pair<O::SeedSelection, std::string>> kSeeds = {
    {O::SeedSelection::ClsAttention, "cls_attention"}, {O::SeedSelection::KeyNorm, "key_norm"},
    {O::SeedSelection::All, "all"}};
const std::vector<std::pair<O::Summarization, std::string>> kSummary = {
    {O::Summarization::Bipartite, "bipartite"}, {O::Summarization::None, "none"},
    {O::Summarization::Random, "random"}};
const std::vector<std::pair<O::VpInput, std::string>> kVpInput = {{O::VpInput::Context, "context"},
                                                                 {O::VpInput::Cls, "cls"}};

// Causal self-attention options of the text tower.
nn::AttentionOptions causal() {
  nn::AttentionOptions o;
  o.mask = AttentionMask::causal();
  return o;
}

}  // namespace

// ------------------------------------------------------------------ options

TcClipOptions TcClipOptions::parse(const KeyValues& kv) {
  TcClipOptions o;
  OptionReader r(kv, "tcclip");
  o.read(r);
  r.read("alpha", o.alpha);
  r.read("context_tokens", o.context_tokens);
  r.read("merge_step", o.merge_step);
  r.read("tc_layers", o.tc_layers);
  if (o.tc_layers != "all") parse_layers(o.tc_layers);
  read_enum(r, "positional_embedding", o.positional_embedding, kPosEmb);
  r.read("local_global_bias", o.local_global_bias);
  read_enum(r, "reference", o.reference, kReference);
  read_enum(r, "seed_selection", o.seed_selection, kSeeds);
  read_enum(r, "summarization", o.summarization, kSummary);
  r.read("vp", o.vp);
  read_enum(r, "vp_input", o.vp_input, kVpInput);
  r.read("vp_detach", o.vp_detach);
  r.read("prompt_vectors", o.prompt_vectors);
  r.read("prompt_init", o.prompt_init);
  r.read("logit_scale_init", o.logit_scale_init);
  r.read("wise_ft", o.wise_ft);
  r.finish();
  VC_CHECK(o.logit_scale_init >= 0, "tcclip: option 'logit_scale_init' must be >= 0 (0: the checkpoint's), got ",
           o.logit_scale_init);
  VC_CHECK(o.alpha >= 0 && o.alpha <= 1, "tcclip: option 'alpha' must be in [0, 1], got ", o.alpha);
  VC_CHECK(o.context_tokens >= 1, "tcclip: option 'context_tokens' must be >= 1, got ", o.context_tokens);
  VC_CHECK(o.merge_step >= 1, "tcclip: option 'merge_step' must be >= 1, got ", o.merge_step);
  VC_CHECK(o.prompt_vectors >= 0, "tcclip: option 'prompt_vectors' must be >= 0, got ", o.prompt_vectors);
  VC_CHECK(!o.vp || o.prompt_vectors >= 1,
           "tcclip: option 'vp' needs prompt vectors to condition (prompt_vectors is 0)");
  VC_CHECK(o.wise_ft >= 0 && o.wise_ft <= 1, "tcclip: option 'wise_ft' must be in [0, 1], got ", o.wise_ft);
  return o;
}

KeyValues TcClipOptions::to_kv() const {
  KeyValues kv;
  write(kv);
  kv["alpha"] = format_number(alpha);
  kv["context_tokens"] = std::to_string(context_tokens);
  kv["merge_step"] = std::to_string(merge_step);
  kv["tc_layers"] = tc_layers;
  kv["positional_embedding"] = choice(positional_embedding, kPosEmb);
  kv["local_global_bias"] = b(local_global_bias);
  kv["reference"] = choice(reference, kReference);
  kv["seed_selection"] = choice(seed_selection, kSeeds);
  kv["summarization"] = choice(summarization, kSummary);
  kv["vp"] = b(vp);
  kv["vp_input"] = choice(vp_input, kVpInput);
  kv["vp_detach"] = b(vp_detach);
  kv["prompt_vectors"] = std::to_string(prompt_vectors);
  kv["prompt_init"] = prompt_init;
  kv["logit_scale_init"] = format_number(logit_scale_init);
  kv["wise_ft"] = format_number(wise_ft);
  return kv;
}

// ------------------------------------------------------------------ free functions

Tensor select_seeds(const Tensor& scores, int64_t k) {
  VC_CHECK(scores.dim() == 2 && k >= 1 && k <= scores.size(1), "tcclip: cannot select ", k,
           " seeds from scores ", scores.shape());
  return topk(scores.detach(), k, 1, /*largest=*/true).indices;  // (−score, index) order
}

nn::StateDict weight_space_ensemble(const nn::StateDict& finetuned, const nn::StateDict& pretrained, double w) {
  VC_CHECK(w >= 0 && w <= 1, "weight-space ensembling: w must be in [0, 1], got ", w);
  // The CLIP's own tensors, paired by name; the model's additions stay as fine-tuned.
  nn::StateDict a, bft;
  for (const auto& [name, t] : finetuned) {
    if (name.rfind("clip.", 0) != 0) continue;
    const std::string own = name.substr(5);
    const Tensor* p = pretrained.find(own);
    VC_CHECK(p, "weight-space ensembling: the pretrained CLIP has no tensor '", own, "' (model key '", name, "')");
    a.set(name, *p);
    bft.set(name, t);
  }
  for (const auto& [name, t] : pretrained)
    VC_CHECK(finetuned.contains("clip." + name), "weight-space ensembling: the pretrained CLIP's '", name,
             "' is not in the fine-tuned model");
  nn::StateDict mixed = nn::interpolate(a, bft, w);  // (1 − w) θ_CLIP + w θ_ft
  nn::StateDict out;
  for (const auto& [name, t] : finetuned) out.set(name, mixed.contains(name) ? mixed.at(name) : t.detach().clone());
  return out;
}

// ------------------------------------------------------------------ VP block

VideoPromptBlock::VideoPromptBlock(int64_t dim, int64_t heads, nn::Activation act, int64_t kv_dim)
    : Module("VideoPromptBlock") {
  attn = register_module("attn", std::make_shared<nn::MultiheadAttention>(dim, heads));
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(dim));
  ln_kv = register_module("ln_kv", std::make_shared<nn::LayerNorm>(kv_dim));
  mlp = register_module("mlp", std::make_shared<nn::MLP>(dim, 4 * dim, act));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(dim));
  if (kv_dim != dim) kv_in = register_module("kv_in", std::make_shared<nn::Linear>(kv_dim, dim, false));
}

Tensor VideoPromptBlock::forward(const Tensor& x, const Tensor& c) const {
  Tensor kv = ln_kv->forward(c);
  if (kv_in) kv = kv_in->forward(kv);
  Tensor h = add(x, attn->forward(ln_1->forward(x), kv, kv).out);  // cross-attention, no mask
  return add(h, mlp->forward(ln_2->forward(h)));
}

// ------------------------------------------------------------------ the model

TcClipModel::TcClipModel(const clip::ClipConfig& c, const TcClipOptions& opts)
    : VideoModel("TcClipModel", c, opts), options_(opts) {
  const int64_t L = c.vision_layers, N = c.grid() * c.grid(), H = c.vision_heads;
  k_ = opts.seed_selection == TcClipOptions::SeedSelection::All ? N : int64_t(opts.alpha * double(N) + 1e-9);
  const bool context = opts.reference == TcClipOptions::Reference::Context && k_ > 0;
  uses_context_.assign(size_t(L), false);
  if (opts.reference != TcClipOptions::Reference::None && (k_ > 0 || !context)) {
    if (opts.tc_layers == "all") {
      for (int64_t l = 1; l < L; ++l) uses_context_[size_t(l)] = true;
    } else {
      for (int64_t l : parse_layers(opts.tc_layers)) {
        VC_CHECK(l < L, "tcclip: tc_layers names layer ", l, " but the image encoder has ", L, " (0-based)");
        uses_context_[size_t(l)] = true;
      }
    }
  }
  if (opts.reference == TcClipOptions::Reference::Context && k_ == 0) uses_context_.assign(size_t(L), false);
  // Layer l summarises when layer l + 1 reads context; the last one when VP reads it.
  summarises_.assign(size_t(L), false);
  for (int64_t l = 0; l + 1 < L; ++l) summarises_[size_t(l)] = context && uses_context_[size_t(l + 1)];
  const bool vp_context = opts.vp && opts.vp_input == TcClipOptions::VpInput::Context;
  if (vp_context) {
    VC_CHECK(k_ > 0, "tcclip: VP reads context tokens but alpha = ", opts.alpha, " gives no seed (k = 0); set vp_input ",
             "cls or vp false");
    summarises_[size_t(L - 1)] = true;
  }
  // The token embedding only builds the prompt rows once per call (tcclip.md §3.1): frozen.
  clip_->freeze("^token_embedding\\.");

  const bool extra = opts.reference == TcClipOptions::Reference::Context ||
                     opts.reference == TcClipOptions::Reference::Cls;
  bias_.assign(size_t(L), Tensor());
  if (opts.local_global_bias && extra) {
    local_global_bias = register_module("local_global_bias", std::make_shared<nn::Module>("ParameterDict"));
    for (int64_t l = 0; l < L; ++l)
      if (uses_context_[size_t(l)])
        bias_[size_t(l)] = local_global_bias->register_parameter(std::to_string(l), Tensor::zeros({H, 2}));
  }
  if (opts.positional_embedding == TcClipOptions::PosEmb::Joint)
    joint_positional_embedding =
        register_parameter("joint_positional_embedding", Tensor::zeros({opts.num_frames, N + 1, c.vision_width}));
  if (opts.prompt_vectors > 0)
    prompt_offset = register_parameter("prompt_offset", Tensor::zeros({opts.prompt_vectors, c.text_width}));
  if (opts.vp)
    prompt_generation = register_module(
        "prompt_generation",
        std::make_shared<VideoPromptBlock>(c.text_width, c.text_heads, clip::activation_of(c), c.embed_dim));
}

std::vector<std::string> TcClipModel::new_module_names() const {
  // 10x LR for the prompt vectors and the VP block (the code, tcclip.md §9.7); the bias tables
  // and the joint table train at the base LR.
  std::vector<std::string> n;
  if (prompt_offset.defined()) n.push_back("prompt_offset");
  if (prompt_generation) n.push_back("prompt_generation");
  return n;
}

void TcClipModel::init_new_modules(Generator& gen) {
  if (options_.logit_scale_init > 0) nn::init::constant_(clip_->logit_scale, std::log(options_.logit_scale_init));
  for (const Tensor& t : bias_)
    if (t.defined()) nn::init::normal_(t, gen, 0, 0.02);  // trunc-normal(0.02) truncates at ±2: never reached
  if (joint_positional_embedding.defined()) {
    NoGradGuard g;
    const Tensor& pe = clip_->visual->positional_embedding;  // copied into every frame's row
    nn::copy_into(joint_positional_embedding,
                  pe.unsqueeze(0).expand(joint_positional_embedding.shape()).contiguous());
  }
  if (prompt_offset.defined()) nn::init::zeros_(prompt_offset);  // p = E(phrase) at the start
  if (prompt_generation) {
    // A copy of the last text layer; LN_kv a copy of its ln_1 (tcclip.md §2.8).
    const nn::ResidualAttentionBlock& last = clip_->transformer->block(clip_->transformer->layers() - 1);
    nn::StateDict src = last.state_dict(), dst;
    for (const auto& [name, t] : src)
      if (name.rfind("drop_path", 0) != 0) dst.set(name, t);
    if (prompt_generation->kv_in) {  // E ≠ D_t: LN_kv starts as the identity LayerNorm
      prompt_generation->kv_in->reset_parameters(gen);
      nn::init::ones_(prompt_generation->ln_kv->weight);
      nn::init::zeros_(prompt_generation->ln_kv->bias);
      for (const auto& [name, t] : prompt_generation->state_dict())
        if (!dst.contains(name)) dst.set(name, t.detach().clone());
    } else {
      dst.set("ln_kv.weight", src.at("ln_1.weight"));
      dst.set("ln_kv.bias", src.at("ln_1.bias"));
    }
    prompt_generation->load_state_dict(dst, /*strict=*/true);
  }
}

// ---- vision

Tensor TcClipModel::embed_frames(const Tensor& video) const {
  const clip::VisionTransformer& vis = *clip_->visual;
  Tensor frames = fold_frames(video);
  if (!joint_positional_embedding.defined()) return vis.embed(frames);  // §2.1 space
  // §2.1 joint: the same steps with a table per frame.
  const int64_t B = video.size(0), T = video.size(1), D = vis.width;
  Tensor patches = vis.patches(frames);
  Tensor cls = vis.class_embedding.reshape({1, 1, D}).expand({B * T, 1, D});
  Tensor x = concat({cls, patches}, 1);  // [B·T, N', D]
  const int64_t Np = x.size(1);
  x = add(x.reshape({B, T, Np, D}), joint_positional_embedding).reshape({B * T, Np, D});
  return vis.ln_pre->forward(x);
}

TcClipModel::LayerOutput TcClipModel::summarise(int64_t layer, const Tensor& xhat, const Tensor& scores,
                                                int64_t B) const {
  const int64_t BT = xhat.size(0), Np = xhat.size(1), D = xhat.size(2), T = BT / B, N = Np - 1;
  LayerOutput o;
  // §2.4: the k seed patches of every frame (no gradient through the choice).
  Tensor idx;
  if (options_.seed_selection == TcClipOptions::SeedSelection::All) {
    std::vector<int64_t> all(size_t(BT * N));
    for (int64_t i = 0; i < BT * N; ++i) all[size_t(i)] = i % N;
    idx = Tensor::from_vector(all, {BT, N}).to(xhat.device());
  } else {
    idx = select_seeds(scores, k_);
  }
  const int64_t k = idx.size(1), n = T * k, m = options_.context_tokens;
  std::vector<int64_t> r = idx.to_vector<int64_t>();
  for (int64_t& i : r) ++i;  // patch i is row 1 + i (row 0 the class token)
  Tensor rows = Tensor::from_vector(r, {BT, k}).to(xhat.device());
  Tensor U = gather(xhat, 1, rows.unsqueeze(2).expand({BT, k, D}).contiguous()).reshape({B, n, D});  // O3
  o.seeds = idx.reshape({B, n});
  // §2.5: the seeds into m groups, each context token the mean of its group.
  if (m >= n || options_.summarization == TcClipOptions::Summarization::None) {
    o.context = U;
    std::vector<int64_t> id(size_t(B * n));
    for (int64_t i = 0; i < B * n; ++i) id[size_t(i)] = i % n;
    o.groups = Tensor::from_vector(id, {B, n});
  } else if (options_.summarization == TcClipOptions::Summarization::Bipartite) {
    IterativeMerge merged = merge_to_count(U, m, options_.merge_step);
    o.context = merged.x;
    o.groups = merged.assign;
  } else {
    // Random: a fixed partition keyed by (seed, layer): a shuffle of the n seeds dealt into m
    // groups in turn (sizes differ by at most one), the same for every video.
    std::vector<int64_t> perm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = i;
    const uint64_t stream = 0x7463636C69700000ull ^ uint64_t(layer);  // "tcclip"
    for (int64_t i = n - 1; i > 0; --i) {
      double u = unit_open(philox_at(options_.seed, stream, uint64_t(i)).v[0]);
      std::swap(perm[size_t(i)], perm[size_t(std::min<int64_t>(i, int64_t(u * double(i + 1))))]);
    }
    std::vector<int64_t> g(size_t(B * n));
    std::vector<double> count(size_t(m), 0);
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t bb = 0; bb < B; ++bb) g[size_t(bb * n + perm[size_t(p)])] = p % m;
      count[size_t(p % m)] += 1;
    }
    o.groups = Tensor::from_vector(g, {B, n});
    Tensor sums = scatter_add(Tensor::zeros({B, m, D}, U.dtype(), U.device()), 1,
                              o.groups.to(U.device()).unsqueeze(2).expand({B, n, D}).contiguous(), U);
    o.context = div(sums, Tensor::from_vector(count, {1, m, 1}).to(U.dtype()).to(U.device()));
  }
  return o;
}

TcClipModel::LayerOutput TcClipModel::tc_layer(int64_t layer, const Tensor& x, const Tensor& context, int64_t B,
                                               bool summarise_here) const {
  const nn::ResidualAttentionBlock& block = clip_->visual->transformer->block(layer);
  const int64_t BT = x.size(0), Np = x.size(1), D = x.size(2), T = BT / B;
  const auto ref = options_.reference;
  LayerOutput o;
  if (ref == TcClipOptions::Reference::Joint && uses_context(layer)) {
    // §8.1 "all patches of all frames": full space-time attention over the clip.
    o.x = block.forward(x.reshape({B, T * Np, D})).reshape({BT, Np, D});
    return o;
  }
  // The extra keys/values: last layer's context tokens, or (§8.1 cls) this layer's class tokens.
  Tensor ref_tokens;
  if (uses_context(layer)) {
    if (ref == TcClipOptions::Reference::Context && context.defined()) ref_tokens = context;
    if (ref == TcClipOptions::Reference::Cls) ref_tokens = x.select(1, 0).reshape({B, T, D});
  }
  if (!ref_tokens.defined() && !summarise_here) {
    o.x = block.forward(x);  // plain frame-wise layer: the baseline's block, bit for bit
    return o;
  }
  Tensor h = block.ln_1->forward(x);
  nn::AttentionOptions ao;
  if (ref_tokens.defined()) {
    auto [ke, ve] = block.attn->project_kv(block.ln_1->forward(ref_tokens));  // [B, H, R, d_h]
    const int64_t H = ke.size(1), R = ke.size(2), dh = ke.size(3);
    auto per_frame = [&](const Tensor& t) {  // O7: every frame of a video sees the same tokens
      return t.unsqueeze(1).expand({B, T, H, R, dh}).contiguous().reshape({BT, H, R, dh});
    };
    ao.extra_k = per_frame(ke);
    ao.extra_v = per_frame(ve);
    const Tensor& bias = bias_[size_t(layer)];
    if (bias.defined()) {  // O8: b_loc on the frame's own keys, b_glob on the context keys
      ao.key_bias = bias.narrow(1, 0, 1).reshape({1, H, 1}).expand({1, H, Np});
      ao.extra_bias = bias.narrow(1, 1, 1).reshape({H});
    }
  }
  const bool cls_scores = summarise_here && options_.seed_selection == TcClipOptions::SeedSelection::ClsAttention;
  if (cls_scores) ao.prob_rows = {0};
  AttentionResult att = block.attn->forward(h, h, h, ao);
  Tensor xhat = add(x, att.out);  // the old context is dropped: no residual for it (§2.3)
  Tensor S;
  if (summarise_here) {
    Tensor scores;
    if (cls_scores) {
      // O2: the class row, mean over heads, patch columns only (the softmax included the
      // context columns and the bias, as in the code, tcclip.md §9.1).
      scores = mean(att.probs.select(2, 0), {1}).narrow(1, 1, Np - 1);
    } else if (options_.seed_selection == TcClipOptions::SeedSelection::KeyNorm) {
      NoGradGuard g;
      Tensor keys = block.attn->project_kv(h).first;  // [B·T, H, N', d_h]
      scores = mean(sqrt(sum(mul(keys, keys), {3})), {1}).narrow(1, 1, Np - 1);
    }
    LayerOutput s = summarise(layer, xhat, scores, B);
    S = s.context;
    o.seeds = s.seeds;
    o.groups = s.groups;
  }
  // The shared FFN on [Ẑ; Ŝ] (row-wise, so the two parts run apart).
  o.x = add(xhat, block.mlp->forward(block.ln_2->forward(xhat)));
  if (S.defined()) o.context = add(S, block.mlp->forward(block.ln_2->forward(S)));
  return o;
}

TcClipModel::VisionOutput TcClipModel::vision(const Tensor& video, bool keep_membership) const {
  const clip::VisionTransformer& vis = *clip_->visual;
  const int64_t B = video.size(0), T = video.size(1);
  VC_CHECK(T == options_.num_frames, "tcclip: the model takes ", options_.num_frames,
           " frames (num_frames), the clip has ", T);
  Tensor x = embed_frames(video);
  Tensor S;
  VisionOutput out;
  for (int64_t l = 0; l < vis.transformer->layers(); ++l) {
    LayerOutput o = tc_layer(l, x, S, B, summarises_[size_t(l)]);
    x = o.x;
    S = o.context;  // rebuilt in every layer; undefined where this layer made none
    if (keep_membership && o.seeds.defined()) {
      out.seeds.push_back(o.seeds);
      out.groups.push_back(o.groups);
    }
  }
  Tensor u = vis.head(x);
  out.u = u.reshape({B, T, u.size(1)});
  if (S.defined()) out.context = matmul(vis.ln_post->forward(S), vis.proj);  // [B, m, E]
  return out;
}

Tensor TcClipModel::frame_features(const Tensor& video) const { return vision(video).u; }

Tensor TcClipModel::vp_inputs(const VisionOutput& out) const {
  Tensor c = options_.vp_input == TcClipOptions::VpInput::Context ? out.context : out.u;
  return options_.vp_detach ? c.detach() : c;  // SG (tcclip.md §3.3)
}

Tensor TcClipModel::encode_video(const Tensor& video) const {
  VisionOutput out = vision(video);
  Tensor v = pool_frames(out.u).unsqueeze(1);  // [B, 1, E]
  if (!options_.vp) return v;
  return concat({v, vp_inputs(out)}, 1);  // [B, 1 + R, E]
}

// ---- text

Tensor TcClipModel::tokenize(const PromptSet& prompts, const clip::TextTokenizer& tokenizer) const {
  const int64_t P = options_.prompt_vectors;
  if (P == 0) return VideoModel::tokenize(prompts, tokenizer);
  // The phrase must be exactly P tokens: its rows become the prompt vectors.
  Tensor phrase = tokenizer.tokenize({options_.prompt_init}, clip_->config.context_length, false);
  int64_t n = 0;
  for (int64_t id : phrase.to_vector<int64_t>()) n += id != 0;
  VC_CHECK(n - 2 == P, "tcclip: prompt_init '", options_.prompt_init, "' is ", n - 2,
           " tokens, but prompt_vectors is ", P);
  PromptSet with_phrase = prompts;
  for (auto& v : with_phrase.texts)
    for (auto& t : v) t = options_.prompt_init + " " + t;
  return VideoModel::tokenize(with_phrase, tokenizer);
}

Tensor TcClipModel::embed_prompts(const Tensor& tokens) const {
  const int64_t L = tokens.size(1), P = options_.prompt_vectors, Dt = clip_->config.text_width;
  VC_CHECK(L >= P + 2, "tcclip: text tokens ", tokens.shape(), " are too short for ", P, " prompt vectors");
  Tensor x = clip_->token_embedding->forward(tokens);  // [N, L, D_t]
  if (P > 0) {
    // Rows 1..P: p = E(phrase) + δ (the phrase is every text's start, so rows 1..P match).
    std::vector<Tensor> parts = {Tensor::zeros({1, Dt}, x.dtype(), x.device()), prompt_offset};
    if (L - 1 - P > 0) parts.push_back(Tensor::zeros({L - 1 - P, Dt}, x.dtype(), x.device()));
    x = add(x, concat(parts, 0));
  }
  Tensor pos = clip_->positional_embedding.narrow(0, 0, L);
  return add(x, pos);
}

Tensor TcClipModel::text_head(const Tensor& states, const Tensor& eos) const {
  Tensor x = clip_->ln_final->forward(states);
  const int64_t N = x.size(0), Dt = x.size(2);
  Tensor pooled = gather(x, 1, eos.reshape({N, 1, 1}).expand({N, 1, Dt}).contiguous()).squeeze(1);
  return matmul(pooled, clip_->text_projection);
}

Tensor TcClipModel::class_features(const Tensor& prompt_tokens) const {
  VC_CHECK(prompt_tokens.dim() == 3, "tcclip: prompt tokens must be [M, K, context], got ", prompt_tokens.shape());
  const int64_t M = prompt_tokens.size(0), K = prompt_tokens.size(1), Dt = clip_->config.text_width;
  Tensor tokens = clip::trim_padding(prompt_tokens.reshape({M * K, prompt_tokens.size(2)}));
  const int64_t L = tokens.size(1);
  Tensor eos = argmax(tokens.to(DType::F64), 1);  // the end token has the highest id
  Tensor x = embed_prompts(tokens);
  const nn::Transformer& tf = *clip_->transformer;
  if (!options_.vp) {
    x = tf.forward(x, causal());
    return l2_normalize(text_head(x, eos), -1).reshape({M, K, -1});
  }
  for (int64_t i = 0; i + 1 < tf.layers(); ++i) x = tf.block(i).forward(x, causal());  // shared, once
  // Pack the end-token position as one more channel (1 there, 0 elsewhere).
  std::vector<double> flag(size_t(M * K * L), 0.0);
  std::vector<int64_t> e = eos.to_vector<int64_t>();
  for (int64_t i = 0; i < M * K; ++i) flag[size_t(i * L + e[size_t(i)])] = 1;
  Tensor f = Tensor::from_vector(flag, {M * K, L, 1}).to(x.dtype()).to(x.device());
  return concat({x, f}, 2).reshape({M, K, L, Dt + 1});
}

Tensor TcClipModel::prompt_states(const Tensor& prompt_tokens) const {
  Tensor shared = class_features(prompt_tokens);
  VC_CHECK(shared.dim() == 4, "tcclip: prompt_states needs vp on");
  const int64_t Dt = clip_->config.text_width, P = options_.prompt_vectors;
  return shared.select(0, 0).select(0, 0).narrow(0, 1, P).narrow(1, 0, Dt);
}

Tensor TcClipModel::conditioned_class_features(const Tensor& shared, const Tensor& c) const {
  const int64_t Dt = clip_->config.text_width, P = options_.prompt_vectors;
  VC_CHECK(shared.dim() == 4 && shared.size(3) == Dt + 1, "tcclip: shared text states must be [M, K, L, ", Dt + 1,
           "] (class_features with vp on), got ", shared.shape());
  const int64_t E = clip_->config.embed_dim;
  VC_CHECK(c.dim() == 3 && c.size(2) == E, "tcclip: VP inputs must be [B, R, ", E, "], got ", c.shape());
  const int64_t M = shared.size(0), K = shared.size(1), L = shared.size(2), MK = M * K, B = c.size(0);
  Tensor H = shared.narrow(3, 0, Dt).reshape({MK, L, Dt});
  Tensor eos = argmax(shared.narrow(3, Dt, 1).reshape({MK, L}), 1);
  // VP once per video: the prompt rows are the same in every class (causal mask, §3.2).
  Tensor xp = H.select(0, 0).narrow(0, 0 + 1, P);                                       // [P, D_t]
  Tensor y = prompt_generation->forward(xp.unsqueeze(0).expand({B, P, Dt}).contiguous(), c);  // [B, P, D_t]
  // Only the last layer per (video, class), with rows 1..P from VP.
  std::vector<Tensor> parts = {H.narrow(1, 0, 1).unsqueeze(0).expand({B, MK, 1, Dt}),
                               y.unsqueeze(1).expand({B, MK, P, Dt})};
  if (L - 1 - P > 0) parts.push_back(H.narrow(1, 1 + P, L - 1 - P).unsqueeze(0).expand({B, MK, L - 1 - P, Dt}));
  Tensor seq = concat(parts, 2).reshape({B * MK, L, Dt});
  const nn::Transformer& tf = *clip_->transformer;
  seq = tf.block(tf.layers() - 1).forward(seq, causal());
  Tensor e = eos.unsqueeze(0).expand({B, MK}).contiguous().reshape({B * MK});
  return l2_normalize(text_head(seq, e), -1).reshape({B, M, K, -1});
}

Tensor TcClipModel::class_features_naive(const Tensor& prompt_tokens, const Tensor& c) const {
  VC_CHECK(options_.vp, "tcclip: class_features_naive needs vp on");
  const int64_t M = prompt_tokens.size(0), K = prompt_tokens.size(1), P = options_.prompt_vectors;
  Tensor tokens = clip::trim_padding(prompt_tokens.reshape({M * K, prompt_tokens.size(2)}));
  const int64_t L = tokens.size(1), MK = M * K;
  Tensor eos = argmax(tokens.to(DType::F64), 1);
  const nn::Transformer& tf = *clip_->transformer;
  std::vector<Tensor> per_video;
  for (int64_t bb = 0; bb < c.size(0); ++bb) {  // every (video, class) through the whole tower
    Tensor x = embed_prompts(tokens);
    for (int64_t i = 0; i + 1 < tf.layers(); ++i) x = tf.block(i).forward(x, causal());
    Tensor cb = c.narrow(0, bb, 1).expand({MK, c.size(1), c.size(2)}).contiguous();
    Tensor y = prompt_generation->forward(x.narrow(1, 1, P).contiguous(), cb);  // each sequence's own rows
    std::vector<Tensor> parts = {x.narrow(1, 0, 1), y};
    if (L - 1 - P > 0) parts.push_back(x.narrow(1, 1 + P, L - 1 - P));
    x = tf.block(tf.layers() - 1).forward(concat(parts, 1), causal());
    per_video.push_back(l2_normalize(text_head(x, eos), -1).reshape({M, K, -1}));
  }
  return stack(per_video, 0);
}

// ---- scoring and training

Tensor TcClipModel::tc_logits(const Tensor& vf, const Tensor& c) const {
  const int64_t E = clip_->config.embed_dim;
  VC_CHECK(vf.dim() == 3 && vf.size(2) == E, "tcclip: video features must be [B, 1 + R, ", E,
           "] (encode_video), got ", vf.shape());
  const int64_t B = vf.size(0);
  Tensor v = vf.select(1, 0);  // [B, E]
  if (!options_.vp) {
    Tensor cc = c.dim() == 2 ? c.unsqueeze(0) : c;
    return logits(v, cc);  // [B, M, K]
  }
  Tensor feats = conditioned_class_features(c, vf.narrow(1, 1, vf.size(1) - 1));  // [B, M, K, E]
  Tensor z = sum(mul(feats, v.reshape({B, 1, 1, E})), {3});                       // ⟨v̄_b, c_bk⟩
  return mul(z, clip_->scale());
}

Tensor TcClipModel::score(const Tensor& vf, const Tensor& c) const {
  return score_from_logits(tc_logits(vf, c), options_.scoring);
}

VideoModel::LossOutput TcClipModel::training_loss(const Tensor& video, const Tensor& prompt_tokens,
                                                  const Tensor& targets, int64_t step) const {
  VC_CHECK(prompt_tokens.dim() == 3, "tcclip: prompt tokens must be [M, K, context], got ", prompt_tokens.shape());
  Tensor tokens = options_.prompts ? prompt_tokens : prompt_tokens.narrow(0, 0, 1);
  const int64_t M = tokens.size(0), K = tokens.size(1), B = video.size(0);
  LossOutput out;
  for (int64_t m = 0; m < M; ++m) out.variants.push_back(m);  // every variant (one template in the configs)
  Tensor vf = encode_video(video);
  out.logits = tc_logits(vf, class_features(tokens));  // [B, M, K]
  Tensor z = out.logits.reshape({B * M, K});
  Tensor t;
  if (targets.dtype() == DType::I64) {
    VC_CHECK(targets.dim() == 1 && targets.size(0) == B, "tcclip: labels ", targets.shape(), " for a batch of ", B);
    t = targets.unsqueeze(1).expand({B, M}).reshape({B * M});
  } else {
    VC_CHECK(targets.dim() == 2 && targets.size(0) == B && targets.size(1) == K, "tcclip: soft targets ",
             targets.shape(), " for a batch of ", B, " and ", K, " classes");
    t = targets.to(z.dtype()).unsqueeze(1).expand({B, M, K}).reshape({B * M, K});
  }
  out.loss = cross_entropy(z, t);
  (void)step;
  return out;
}

void TcClipModel::ensemble_with(const nn::StateDict& pretrained_clip, double w) {
  load_state_dict(weight_space_ensemble(state_dict(), pretrained_clip, w), /*strict=*/true);
}

}  // namespace vc::models
