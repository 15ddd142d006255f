// STDD's video encoder and objective, step by step as in stdd.md §2-4 (symbols: B videos,
// T frames, G grid side, N = G² patches, L = N + 1, D width, E embedding; w window side,
// J = w², n_mask = r·J masked per window, N' = (G/w)²(J − n_mask) visible, L' = N' + 1;
// d0 = D / F mixed channels each way; S the temporal scales; M prompts per class).
//
//   X      = ln_pre([c; X_p W_pe] + e_pos)                 per frame      [B·T, L, D]   (§2.1)
//   in every STCA block (the block's own ln_1, attn, ln_2, mlp; no new weights):
//   Y      = X + MHA(LN1(X))                               full branch    [B·T, L, D]   (a)
//   X'     = [X_cls; X_{1+q_t(n)}]                         WSM gather     [B·T, L', D]  (b)
//   M_s    = Shift_s(X')   (class row unshifted)           channel mixing [B·T, L', D]  (c)
//   U_s    = M_s + MHA(LN1(M_s)),   Ū = (1/|S|) Σ_s U_s    shared weights [B·T, L', D]  (c)
//   Z      = Y with its class row and visible rows from Ū  padding        [B·T, L, D]   (d)
//   Out    = Z + MLP(LN2(Y))                               short-cut      [B·T, L, D]   (e)
//   ẑ_bt   = proj(ln_post(Out_cls)) / ‖·‖                  frame features [B, T, E]     (§2.5)
//   s_btmk = τ ⟨ẑ_bt, c_mk⟩                                 c: frozen prompt features     (§4)
//   S_bk   = ½ ((1/T) Σ_t max_m s + (1/M) Σ_m max_t s)                    [B, K]
//   L      = CE(S, y) + λ (1 − mean_bt cos(ẑ + α g(ẑ), ẑ⁰))  ẑ⁰: the frozen CLIP's frame
//
// The masks q_t(n) are drawn per block and video in training (phase, frame permutation) and
// fixed at inference (phase 0, identity), stdd.md §9.2; the shift tables follow the code's
// boundary rule (§2.4, §9.3). The WSM gather, channel shift and padding merge are engine ops
// (engine/ops/temporal_shift.h) with their scatter backwards; the shared attention's
// gradients add up over its 1 + |S| uses by the tape.
#include "models/stdd.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "engine/engine.h"
#include "nn/init.h"

namespace vc::models {

namespace {

std::string join_ints(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// "1,2" -> {1, 2}; every entry an integer >= lo.
std::vector<int64_t> parse_ints(const std::string& key, const std::string& text, int64_t lo) {
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
    VC_CHECK(used > 0 && used == item.size() && v >= lo, "stdd: option '", key, "' = '", text,
             "' must be a comma list of integers >= ", lo);
    out.push_back(v);
  }
  VC_CHECK(!out.empty(), "stdd: option '", key, "' is empty");
  return out;
}

std::string fill(const std::string& tpl, const std::string& text) {
  size_t at = tpl.find("{}");
  VC_CHECK(at != std::string::npos, "prompts: template '", tpl, "' has no {} for the class name");
  return tpl.substr(0, at) + text + tpl.substr(at + 2);
}

}  // namespace

// ------------------------------------------------------------------ options

StddOptions StddOptions::parse(const KeyValues& kv) {
  StddOptions o;
  OptionReader r(kv, "stdd");
  o.read(r);
  r.read("stca_blocks", o.stca_blocks);
  if (o.stca_blocks != "all" && o.stca_blocks != "none") parse_ints("stca_blocks", o.stca_blocks, 0);
  r.read("wsm", o.wsm);
  r.read("mask_ratio", o.mask_ratio);
  r.read("window", o.window);
  r.read("temporal_shuffle", o.temporal_shuffle);
  r.read("spatial_repeat", o.spatial_repeat);
  r.read("mcm", o.mcm);
  std::string scales = join_ints(o.scales);
  r.read("scales", scales);
  o.scales = parse_ints("scales", scales, 1);
  r.read("channel_fold", o.channel_fold);
  std::string mixing = o.mixing == Mixing::Continual ? "continual" : "separate";
  r.read_choice("mixing", mixing, {"continual", "separate"});
  o.mixing = mixing == "continual" ? Mixing::Continual : Mixing::Separate;
  r.read("padding", o.padding);
  r.read("shortcut", o.shortcut);
  std::string fs = o.frame_scoring == FrameScoring::Fine ? "fine" : "mean";
  r.read_choice("frame_scoring", fs, {"fine", "mean"});
  o.frame_scoring = fs == "fine" ? FrameScoring::Fine : FrameScoring::Mean;
  r.read("logit_scale", o.logit_scale);
  r.read("kd_weight", o.kd_weight);
  r.read("kd_alpha", o.kd_alpha);
  r.read("kd_detach", o.kd_detach);
  r.finish();
  VC_CHECK(o.window >= 1, "stdd: option 'window' must be >= 1, got ", o.window);
  VC_CHECK(o.mask_ratio >= 0 && o.mask_ratio < 1, "stdd: option 'mask_ratio' must be in [0, 1), got ",
           o.mask_ratio);
  const double masked = o.mask_ratio * double(o.window * o.window);
  VC_CHECK(std::fabs(masked - std::round(masked)) < 1e-9, "stdd: option 'mask_ratio' = ", o.mask_ratio,
           " masks ", masked, " of the ", o.window * o.window, " positions of a window (must be an integer)");
  VC_CHECK(o.channel_fold >= 1, "stdd: option 'channel_fold' must be >= 1, got ", o.channel_fold);
  VC_CHECK(o.logit_scale >= 0, "stdd: option 'logit_scale' must be >= 0 (0: the CLIP's own), got ",
           o.logit_scale);
  VC_CHECK(o.kd_weight >= 0, "stdd: option 'kd_weight' must be >= 0 (0: off), got ", o.kd_weight);
  return o;
}

KeyValues StddOptions::to_kv() const {
  KeyValues kv;
  write(kv);
  auto b = [](bool x) { return std::string(x ? "true" : "false"); };
  kv["stca_blocks"] = stca_blocks;
  kv["wsm"] = b(wsm);
  kv["mask_ratio"] = format_number(mask_ratio);
  kv["window"] = std::to_string(window);
  kv["temporal_shuffle"] = b(temporal_shuffle);
  kv["spatial_repeat"] = b(spatial_repeat);
  kv["mcm"] = b(mcm);
  kv["scales"] = join_ints(scales);
  kv["channel_fold"] = std::to_string(channel_fold);
  kv["mixing"] = mixing == Mixing::Continual ? "continual" : "separate";
  kv["padding"] = b(padding);
  kv["shortcut"] = b(shortcut);
  kv["frame_scoring"] = frame_scoring == FrameScoring::Fine ? "fine" : "mean";
  kv["logit_scale"] = format_number(logit_scale);
  kv["kd_weight"] = format_number(kd_weight);
  kv["kd_alpha"] = format_number(kd_alpha);
  kv["kd_detach"] = b(kd_detach);
  return kv;
}

// ------------------------------------------------------------------ prompts and scoring

PromptSet make_askg_prompts(const std::vector<std::string>& class_names,
                            const std::vector<std::string>& templates,
                            const std::vector<std::vector<std::string>>& clauses) {
  VC_CHECK(!class_names.empty(), "askg prompts: no class names");
  VC_CHECK(!templates.empty(), "askg prompts: no templates");
  VC_CHECK(clauses.size() == class_names.size(), "askg prompts: ", clauses.size(), " clause lists for ",
           class_names.size(), " classes");
  PromptSet p;
  size_t longest = 0;
  for (size_t k = 0; k < class_names.size(); ++k) {
    std::vector<std::string> v;
    std::set<std::string> seen;
    auto add = [&](const std::string& s) {
      if (seen.insert(s).second) v.push_back(s);
    };
    for (const std::string& t : templates) {
      add(fill(t, class_names[k]));
      for (std::string c : clauses[k]) {
        while (!c.empty() && (c.back() == '.' || c.back() == ' ')) c.pop_back();  // the template ends it
        if (!c.empty()) add(fill(t, class_names[k] + ", " + c));
      }
    }
    longest = std::max(longest, v.size());
    p.texts.push_back(std::move(v));
  }
  for (auto& v : p.texts)  // cyclic padding: the repeats count again in the prompt mean (§3)
    for (size_t i = 0, n = v.size(); v.size() < longest; ++i) v.push_back(v[i % n]);
  return p;
}

Tensor frame_prompt_score(const Tensor& s) {
  VC_CHECK(s.dim() == 4, "stdd: similarities must be [B, T, M, K], got ", s.shape());
  Tensor v2t = mean(max(s, 2).values, {1});  // each frame's best prompt, averaged over frames
  Tensor t2v = mean(max(s, 1).values, {1});  // each prompt's best frame, averaged over prompts
  return mul(add(v2t, t2v), 0.5);
}

// ------------------------------------------------------------------ the model

StddModel::StddModel(const clip::ClipConfig& c, const StddOptions& opts)
    : VideoModel("StddModel", c, opts), options_(opts) {
  const int64_t layers = c.vision_layers, D = c.vision_width, E = c.embed_dim, G = c.grid();
  stca_layers_.assign(size_t(layers), opts.stca_blocks == "all");
  if (opts.stca_blocks != "all" && opts.stca_blocks != "none")
    for (int64_t i : parse_ints("stca_blocks", opts.stca_blocks, 0)) {
      VC_CHECK(i < layers, "stdd: stca_blocks names block ", i, " but the image encoder has ", layers);
      stca_layers_[size_t(i)] = true;
    }
  const bool any = std::find(stca_layers_.begin(), stca_layers_.end(), true) != stca_layers_.end();
  if (any && opts.wsm) {
    VC_CHECK(G % opts.window == 0, "stdd: the ", G, "x", G, " patch grid does not divide into ", opts.window, "x",
             opts.window, " windows (option 'window')");
    n_mask_ = std::llround(opts.mask_ratio * double(opts.window * opts.window));
  }
  if (any && opts.mcm) {
    d0_ = D / opts.channel_fold;
    VC_CHECK(d0_ >= 1, "stdd: channel_fold ", opts.channel_fold, " leaves no channel to mix at width ", D);
    VC_CHECK(opts.num_frames >= 2, "stdd: channel mixing needs at least 2 frames, got ", opts.num_frames);
    for (int64_t s : opts.scales)
      shift_tables_.push_back(opts.mixing == StddOptions::Mixing::Continual
                                  ? mcm_shift_table(opts.num_frames, d0_, s)
                                  : tsm_shift_table(opts.num_frames, d0_, s));
  }
  // A fixed τ (stdd.md §9.11) leaves CLIP's own logit scale unused: frozen, not silently idle.
  if (opts.logit_scale > 0) clip_->freeze("^logit_scale$");
  if (opts.kd_weight > 0) {
    // g = Linear(E, E) -> GELU -> Linear(E, E), no biases, named as nn.Sequential would.
    kd_projector = register_module("kd_projector", std::make_shared<nn::Module>("Sequential"));
    kd_fc1_ = kd_projector->register_module("0", std::make_shared<nn::Linear>(E, E, false));
    kd_fc2_ = kd_projector->register_module("2", std::make_shared<nn::Linear>(E, E, false));
    kd_teacher = register_module(
        "kd_teacher", std::make_shared<clip::VisionTransformer>(c.image_size, c.patch_size, D, layers,
                                                                c.vision_heads, E, clip::activation_of(c),
                                                                c.vision_stem));
    freeze("^kd_teacher\\.");
  }
}

std::vector<std::string> StddModel::new_module_names() const {
  if (kd_projector) return {"kd_projector"};
  return {};
}

void StddModel::init_new_modules(Generator& gen) {
  if (!kd_projector) return;
  kd_teacher->load_state_dict(clip_->visual->state_dict());  // the CLIP before fine-tuning
  nn::init::kaiming_normal_(kd_fc1_->weight, gen);
  nn::init::zeros_(kd_fc2_->weight);  // h = ẑ at step 0
}

bool StddModel::stca_in_block(int64_t layer) const { return stca_layers_.at(size_t(layer)); }

Tensor StddModel::visible_patches(int64_t B, int64_t layer, int64_t step) const {
  if (!options_.wsm) return Tensor();
  const int64_t T = options_.num_frames, G = clip_->config.grid(), w = options_.window;
  const bool training = is_training() && step >= 0;
  const int64_t cells = options_.spatial_repeat ? 1 : (G / w) * (G / w);
  // A stream per (step, block): a fresh draw in every block call (§2.3).
  const uint64_t stream = 0x5354434100000000ull ^ (uint64_t(std::max<int64_t>(step, 0)) << 10) ^ uint64_t(layer);
  std::vector<int64_t> offsets =
      window_mask_offsets(B, T, w, training, options_.temporal_shuffle, options_.seed, stream, cells);
  return window_mask_indices(offsets, B, T, G, w, n_mask_);
}

Tensor StddModel::stca_block(const nn::ResidualAttentionBlock& block, const Tensor& x, int64_t B,
                             const Tensor& visible) const {
  const int64_t BT = x.size(0), D = x.size(2), T = BT / B;
  auto attend = [&](const Tensor& h) { return add(h, block.attn->forward(block.ln_1->forward(h))); };
  Tensor y = attend(x);                                                // (a) full branch
  Tensor xv = visible.defined() ? window_mask_gather(x, visible) : x;  // (b) WSM
  const int64_t Lv = xv.size(1);
  Tensor ubar;
  if (!options_.mcm) {
    ubar = attend(xv);
  } else {
    for (const ShiftTable& table : shift_tables_) {  // (c) per scale, shared LN1 + MHA
      Tensor m = temporal_shift(xv.reshape({B, T, Lv, D}), table, /*keep_first_token=*/true).reshape({BT, Lv, D});
      Tensor u = attend(m);  // the residual is the mixed M_s
      ubar = ubar.defined() ? add(ubar, u) : u;
    }
    if (shift_tables_.size() > 1) ubar = mul(ubar, 1.0 / double(shift_tables_.size()));
  }
  // (d) padding: class row and visible rows from Ū; masked rows from Y (or, off, from X).
  Tensor z = visible.defined() ? window_mask_scatter(options_.padding ? y : x, ubar, visible) : ubar;
  // (e) short-cut: the MLP reads the full branch, the residual carries the STCA result.
  return add(z, block.mlp->forward(block.ln_2->forward(options_.shortcut ? y : z)));
}

Tensor StddModel::encode_frames(const Tensor& video, int64_t step) const {
  const clip::VisionTransformer& vis = *clip_->visual;
  const int64_t B = video.size(0), T = video.size(1);
  VC_CHECK(T == options_.num_frames, "stdd: the model takes ", options_.num_frames, " frames (num_frames), the clip has ",
           T);
  Tensor x = vis.embed(fold_frames(video));  // [B·T, L, D]
  for (int64_t i = 0; i < vis.transformer->layers(); ++i) {
    const nn::ResidualAttentionBlock& block = vis.transformer->block(i);
    x = stca_layers_[size_t(i)] ? stca_block(block, x, B, visible_patches(B, i, step)) : block.forward(x);
  }
  Tensor u = vis.head(x);  // ln_post of the class token, proj: [B·T, E]
  return u.reshape({B, T, u.size(1)});
}

Tensor StddModel::frame_features(const Tensor& video) const { return encode_frames(video, -1); }
Tensor StddModel::frame_features_at(const Tensor& video, int64_t step) const { return encode_frames(video, step); }

Tensor StddModel::encode_video(const Tensor& video) const { return l2_normalize(frame_features(video), -1); }

Tensor StddModel::frame_scale() const {
  Tensor own = clip_->scale();  // exp(logit_scale), in the model's dtype and device
  if (options_.logit_scale > 0) return Tensor::scalar(options_.logit_scale, own.dtype(), own.device());
  return own;
}

Tensor StddModel::stdd_logits(const Tensor& z, const Tensor& c_in) const {
  const int64_t E = clip_->config.embed_dim;
  VC_CHECK(z.dim() == 3 && z.size(2) == E && (c_in.dim() == 2 || c_in.dim() == 3) && c_in.size(-1) == E,
           "stdd: logits of frame features ", z.shape(), " and prompt features ", c_in.shape(), " (expected [B, T, ", E,
           "] and [M, K, ", E, "] or [K, ", E, "])");
  Tensor c = c_in.dim() == 2 ? c_in.unsqueeze(0) : c_in;
  const int64_t B = z.size(0), T = z.size(1), M = c.size(0), K = c.size(1);
  Tensor scale = frame_scale();
  if (options_.frame_scoring == StddOptions::FrameScoring::Mean) {  // ablation: pooled, one vector per class
    Tensor v = l2_normalize(mean(z, {1}), -1);
    Tensor ck = l2_normalize(mean(c, {0}), -1);
    return mul(matmul(v, ck.transpose(0, 1)), scale);
  }
  Tensor s = matmul(z.reshape({B * T, E}), c.reshape({M * K, E}).transpose(0, 1));  // [B·T, M·K]
  return frame_prompt_score(mul(s, scale).reshape({B, T, M, K}));
}

Tensor StddModel::score(const Tensor& v, const Tensor& c) const {
  Tensor s = stdd_logits(v, c);  // views are summed by the caller: the code's sum of logits
  if (options_.scoring == VideoModelOptions::Scoring::SumLogProb) return log_softmax(s, -1);
  return s;
}

Tensor StddModel::cached_class_features(const Tensor& tokens) const {
  if (options_.train_text) return encode_text(tokens);
  // Frozen text: the prompt bank is a constant (stdd.md §3), encoded once per prompt set;
  // state_loaded() drops it when new weights arrive.
  std::vector<int64_t> key = tokens.contiguous().to_vector<int64_t>();
  if (!cached_features_.defined() || key != cached_tokens_) {
    cached_features_ = encode_text(tokens).detach();
    cached_tokens_ = std::move(key);
  }
  return cached_features_;
}

void StddModel::state_loaded() {
  cached_features_ = Tensor();
  cached_tokens_.clear();
}

StddModel::Distillation StddModel::distillation(const Tensor& video, const Tensor& z) const {
  VC_CHECK(kd_teacher, "stdd: distillation needs kd_weight > 0");
  const int64_t E = z.size(-1);
  Tensor z0;
  {
    NoGradGuard frozen;
    z0 = l2_normalize(kd_teacher->forward(fold_frames(video)), -1);  // ẑ⁰ [B·T, E]
  }
  Tensor zf = z.reshape({-1, E});
  auto loss = [&] {
    Tensor h = add(zf, mul(kd_fc2_->forward(gelu(kd_fc1_->forward(zf))), options_.kd_alpha));
    return rsub(1.0, mean(sum(mul(l2_normalize(h, -1), z0), {1})));  // 1 − mean cos(h, ẑ⁰)
  };
  Distillation d;
  if (options_.kd_detach) {
    NoGradGuard released_code;  // the released code computes h under no_grad (stdd.md §9.1)
    d.loss = loss();
  } else {
    d.loss = loss();
  }
  d.mean_cosine = mean(sum(mul(zf.detach(), z0), {1})).item();
  return d;
}

VideoModel::LossOutput StddModel::training_loss(const Tensor& video, const Tensor& prompt_tokens,
                                                const Tensor& targets, int64_t step) const {
  VC_CHECK(prompt_tokens.dim() == 3, "stdd: prompt tokens must be [M, K, context], got ", prompt_tokens.shape());
  const int64_t M = options_.prompts ? prompt_tokens.size(0) : 1, K = prompt_tokens.size(1), B = video.size(0);
  LossOutput out;
  for (int64_t m = 0; m < M; ++m) out.variants.push_back(m);  // every prompt is scored (§4)
  Tensor c = cached_class_features(options_.prompts ? prompt_tokens : prompt_tokens.narrow(0, 0, 1));
  Tensor z = l2_normalize(frame_features_at(video, step), -1);  // ẑ [B, T, E]
  Tensor s = stdd_logits(z, c);                                 // S [B, K]
  if (targets.dtype() == DType::I64)
    VC_CHECK(targets.dim() == 1 && targets.size(0) == B, "stdd: labels ", targets.shape(), " for a batch of ", B);
  else
    VC_CHECK(targets.dim() == 2 && targets.size(0) == B && targets.size(1) == K, "stdd: soft targets ",
             targets.shape(), " for a batch of ", B, " and ", K, " classes");
  out.loss = cross_entropy(s, targets.dtype() == DType::I64 ? targets : targets.to(s.dtype()));
  if (kd_teacher) {
    Distillation d = distillation(video, z);
    out.loss = add(out.loss, mul(d.loss, options_.kd_weight));
    out.metrics["kd_cosine"] = d.mean_cosine;
  }
  out.logits = s.unsqueeze(1);  // [B, 1, K]
  return out;
}

}  // namespace vc::models
