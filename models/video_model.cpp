// The parts every video model shares: option parsing, prompts and their sampling, text
// features, logits, the training loss and the inference score (claver.md §3-4).
#include "models/video_model.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <cstdlib>
#include <sstream>

#include "engine/engine.h"
#include "engine/rng/philox.h"

namespace vc::models {

// ------------------------------------------------------------------ OptionReader

const std::string* OptionReader::find(const std::string& key) {
  known_.insert(key);
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

void OptionReader::read(const std::string& key, bool& out) {
  const std::string* v = find(key);
  if (!v) return;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "true" || s == "1" || s == "yes" || s == "on") out = true;
  else if (s == "false" || s == "0" || s == "no" || s == "off") out = false;
  else fail(what_, ": option '", key, "' must be true or false, got '", *v, "'");
}

void OptionReader::read(const std::string& key, int64_t& out) {
  const std::string* v = find(key);
  if (!v) return;
  size_t used = 0;
  try {
    out = std::stoll(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  VC_CHECK(used > 0 && used == v->size(), what_, ": option '", key, "' must be an integer, got '",
           *v, "'");
}

void OptionReader::read(const std::string& key, uint64_t& out) {
  int64_t x = int64_t(out);
  read(key, x);
  VC_CHECK(x >= 0, what_, ": option '", key, "' must not be negative, got ", x);
  out = uint64_t(x);
}

void OptionReader::read(const std::string& key, double& out) {
  const std::string* v = find(key);
  if (!v) return;
  size_t used = 0;
  try {
    out = std::stod(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  VC_CHECK(used > 0 && used == v->size(), what_, ": option '", key, "' must be a number, got '",
           *v, "'");
}

void OptionReader::read(const std::string& key, std::string& out) {
  if (const std::string* v = find(key)) out = *v;
}

void OptionReader::read_choice(const std::string& key, std::string& out,
                               const std::vector<std::string>& allowed) {
  const std::string* v = find(key);
  if (!v) return;
  if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(what_, ": option '", key, "' is '", *v, "', expected one of: ", list);
  }
  out = *v;
}

void OptionReader::finish() const {
  for (const auto& [key, value] : kv_) {
    if (known_.count(key)) continue;
    std::string list;
    for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
    fail(what_, ": unknown option '", key, "' (known: ", list, ")");
  }
}

std::string format_number(double x) {
  // The shortest of 15 or 17 significant digits that reads back to x (0.1, not 0.10000000000000001).
  for (int digits : {15, 17}) {
    std::ostringstream s;
    s << std::setprecision(digits) << x;
    if (digits == 17 || std::strtod(s.str().c_str(), nullptr) == x) return s.str();
  }
  return {};
}

namespace {

const char* boolstr(bool b) { return b ? "true" : "false"; }

}  // namespace

void VideoModelOptions::read(OptionReader& r) {
  r.read("num_frames", num_frames);
  r.read("train_image", train_image);
  r.read("train_text", train_text);
  r.read("prompts", prompts);
  r.read("prompts_per_step", prompts_per_step);
  std::string p = pooling == Pooling::FrameNormMean ? "frame_norm_mean" : "mean_norm";
  r.read_choice("pooling", p, {"frame_norm_mean", "mean_norm"});
  pooling = p == "frame_norm_mean" ? Pooling::FrameNormMean : Pooling::MeanNorm;
  std::string s = scoring == Scoring::MeanProb ? "mean_prob" : "sum_log_prob";
  r.read_choice("scoring", s, {"mean_prob", "sum_log_prob"});
  scoring = s == "mean_prob" ? Scoring::MeanProb : Scoring::SumLogProb;
  r.read("new_lr_mult", new_lr_mult);
  r.read("seed", seed);
  r.read("truncate_text", truncate_text);
  VC_CHECK(num_frames >= 1, "model options: num_frames must be >= 1, got ", num_frames);
  VC_CHECK(prompts_per_step >= 0, "model options: prompts_per_step must be >= 0, got ",
           prompts_per_step);
  VC_CHECK(new_lr_mult > 0, "model options: new_lr_mult must be > 0, got ", new_lr_mult);
}

void VideoModelOptions::write(KeyValues& kv) const {
  kv["num_frames"] = std::to_string(num_frames);
  kv["train_image"] = boolstr(train_image);
  kv["train_text"] = boolstr(train_text);
  kv["prompts"] = boolstr(prompts);
  kv["prompts_per_step"] = std::to_string(prompts_per_step);
  kv["pooling"] = pooling == Pooling::FrameNormMean ? "frame_norm_mean" : "mean_norm";
  kv["scoring"] = scoring == Scoring::MeanProb ? "mean_prob" : "sum_log_prob";
  kv["new_lr_mult"] = format_number(new_lr_mult);
  kv["seed"] = std::to_string(seed);
  kv["truncate_text"] = boolstr(truncate_text);
}

// ------------------------------------------------------------------ prompts

PromptSet make_prompts(const std::vector<std::string>& class_names,
                       const std::vector<std::string>& templates,
                       const std::vector<std::vector<std::string>>& sentences) {
  VC_CHECK(!class_names.empty(), "prompts: no class names");
  VC_CHECK(!templates.empty(), "prompts: no templates (use \"{}\" for the bare label)");
  VC_CHECK(sentences.empty() || sentences.size() == class_names.size(), "prompts: ",
           sentences.size(), " sentence lists for ", class_names.size(), " classes");
  PromptSet p;
  for (size_t k = 0; k < class_names.size(); ++k) {
    std::vector<std::string> v;
    for (const std::string& t : templates) {
      size_t at = t.find("{}");
      VC_CHECK(at != std::string::npos, "prompts: template '", t, "' has no {} for the class name");
      v.push_back(t.substr(0, at) + class_names[k] + t.substr(at + 2));
    }
    if (!sentences.empty()) {
      // Every class needs the same M: variant m is one slot across all classes.
      VC_CHECK(sentences[k].size() == sentences[0].size(), "prompts: class '", class_names[k],
               "' has ", sentences[k].size(), " sentences, class '", class_names[0], "' has ",
               sentences[0].size(), " (every class needs the same number)");
      v.insert(v.end(), sentences[k].begin(), sentences[k].end());
    }
    p.texts.push_back(std::move(v));
  }
  return p;
}

Tensor soft_targets(const Tensor& labels, int64_t K, double eps, DType dtype) {
  VC_CHECK(labels.dim() == 1 && labels.dtype() == DType::I64, "soft_targets: labels must be int64 [B], got ",
           dtype_name(labels.dtype()), " ", labels.shape());
  VC_CHECK(eps >= 0 && eps < 1, "soft_targets: label smoothing must be in [0, 1), got ", eps);
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  std::vector<double> t(y.size() * size_t(K), eps / double(K));
  for (size_t b = 0; b < y.size(); ++b) {
    VC_CHECK(y[b] >= 0 && y[b] < K, "soft_targets: label ", y[b], " of row ", b, " is outside [0, ", K, ")");
    t[b * K + y[b]] = 1 - eps + eps / double(K);
  }
  return Tensor::from_vector(t, {int64_t(y.size()), K}).to(dtype);
}

std::vector<int64_t> sample_variants(int64_t M, int64_t S, uint64_t seed, int64_t step) {
  VC_CHECK(M >= 1 && S >= 1, "sample_variants: need M >= 1 and S >= 1, got M = ", M, ", S = ", S);
  // A Philox stream of its own per step, so the draw depends on (seed, step) only: resuming
  // at step n gives the same variants as never stopping.
  const uint64_t stream = 0x70726F6D70740000ull ^ uint64_t(step);  // "prompt"
  std::vector<int64_t> idx(S);
  for (int64_t i = 0; i < S; ++i) {
    double u = unit_open(philox_at(seed, stream, uint64_t(i)).v[0]);
    idx[i] = std::min<int64_t>(M - 1, int64_t(u * double(M)));
  }
  return idx;
}

Tensor score_from_logits(const Tensor& z, VideoModelOptions::Scoring rule) {
  VC_CHECK(z.dim() == 3, "score: expected logits [B, M, K], got ", z.shape());
  if (rule == VideoModelOptions::Scoring::MeanProb) return mean(softmax(z, -1), {1});  // code
  return sum(log_softmax(z, -1), {1});                                                 // paper Eq. 10
}

// ------------------------------------------------------------------ VideoModel

VideoModel::VideoModel(std::string type_name, const clip::ClipConfig& config,
                       const VideoModelOptions& opts)
    : Module(std::move(type_name)), opts_(opts) {
  clip_ = register_module("clip", std::make_shared<clip::CLIP>(config));
  if (!opts_.train_image) clip_->freeze("^visual\\.");
  if (!opts_.train_text)
    clip_->freeze("^(transformer|token_embedding|positional_embedding|ln_final|text_projection)(\\.|$)");
}

void VideoModel::init_random(Generator& gen) {
  clip::init_clip(*clip_, gen);
  init_new_modules(gen);
}

void VideoModel::init_from_clip(const clip::StateDict& weights, Generator& gen) {
  clip::StateDict sd = clip::to_openai(weights);
  clip::check_state_dict(sd, clip_->config);
  nn::StateDict dict;
  for (const auto& [k, t] : sd) dict.set(k, t);
  clip_->load_state_dict(dict, /*strict=*/true);
  init_new_modules(gen);
}

Tensor VideoModel::fold_frames(const Tensor& video) const {
  const auto& c = clip_->config;
  VC_CHECK(video.dim() == 5 && video.size(2) == 3 && video.size(3) == c.image_size &&
               video.size(4) == c.image_size,
           name(), ": expected video [B, T, 3, ", c.image_size, ", ", c.image_size, "], got ",
           video.shape());
  return video.reshape({video.size(0) * video.size(1), 3, c.image_size, c.image_size});
}

Tensor VideoModel::pool_frames(const Tensor& u) const {
  if (opts_.pooling == VideoModelOptions::Pooling::FrameNormMean)
    return mean(l2_normalize(u, -1), {1});  // code: (1/T) Σ_t u_t/‖u_t‖, not re-normalised
  return l2_normalize(mean(u, {1}), -1);    // paper Eq. 2-3: cosine of the mean
}

Tensor VideoModel::encode_video(const Tensor& video) const { return pool_frames(frame_features(video)); }

Tensor VideoModel::attention_map(const Tensor& video) const {
  NoGradGuard no_grad;
  const clip::VisionTransformer& vis = *clip_->visual;
  const int64_t B = video.size(0), T = video.size(1), g = clip_->config.grid();
  Tensor x = vis.embed(fold_frames(video));
  const int64_t n = vis.transformer->layers();
  VC_CHECK(n >= 1, name(), ": attention_map needs at least one vision block");
  for (int64_t i = 0; i + 1 < n; ++i) x = vis.transformer->block(i).forward(x);
  const nn::ResidualAttentionBlock& last = vis.transformer->block(n - 1);
  Tensor h = last.ln_1->forward(x);
  nn::AttentionOptions o;
  o.prob_rows = {0};  // the class token's row
  Tensor p = last.attn->forward(h, h, h, o).probs;  // [B·T, H, 1, L]
  p = mean(p.select(2, 0), {1});                    // [B·T, L]
  return p.narrow(1, 1, g * g).reshape({B, T, g, g});
}

Tensor VideoModel::tokenize(const PromptSet& prompts, const clip::TextTokenizer& tokenizer) const {
  const int64_t K = prompts.classes(), M = opts_.prompts ? prompts.variants() : 1;
  VC_CHECK(K >= 1 && prompts.variants() >= 1, name(), ": empty prompt set");
  std::vector<std::string> flat;  // [m][k] order: variant-major, as texts[m, k, :] in the code
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      VC_CHECK(int64_t(prompts.texts[k].size()) == prompts.variants(), name(), ": class ", k,
               " has ", prompts.texts[k].size(), " prompt variants, class 0 has ", prompts.variants());
      flat.push_back(prompts.texts[k][m]);
    }
  const int64_t ctx = clip_->config.context_length;
  return tokenizer.tokenize(flat, ctx, opts_.truncate_text).reshape({M, K, ctx});
}

Tensor VideoModel::encode_text(const Tensor& tokens) const {
  const int64_t ctx = clip_->config.context_length;
  VC_CHECK(tokens.dim() >= 2 && tokens.size(-1) == ctx && tokens.dtype() == DType::I64, name(),
           ": text tokens must be int64 [..., ", ctx, "], got ", dtype_name(tokens.dtype()), " ",
           tokens.shape());
  Shape out_shape(tokens.shape().begin(), tokens.shape().end() - 1);
  out_shape.push_back(clip_->config.embed_dim);
  // Trailing padding is cut first: the same features (causal mask), fewer tokens to run.
  auto run = [&] {
    return l2_normalize(clip_->encode_text(clip::trim_padding(tokens.reshape({-1, ctx}))), -1);
  };
  if (!opts_.train_text) {
    NoGradGuard frozen;  // a frozen tower needs no tape
    return run().reshape(out_shape);
  }
  return run().reshape(out_shape);
}

Tensor VideoModel::class_features(const Tensor& prompt_tokens) const {
  VC_CHECK(prompt_tokens.dim() == 3, name(), ": prompt tokens must be [M, K, context], got ",
           prompt_tokens.shape());
  return encode_text(prompt_tokens);
}

Tensor VideoModel::logits(const Tensor& v, const Tensor& c) const {
  const int64_t E = clip_->config.embed_dim;
  VC_CHECK(v.dim() == 2 && v.size(1) == E && (c.dim() == 2 || c.dim() == 3) && c.size(-1) == E,
           name(), ": logits of video features ", v.shape(), " and class features ", c.shape(),
           " (expected [B, ", E, "] and [K, ", E, "] or [M, K, ", E, "])");
  Tensor flat = c.reshape({-1, E});
  Tensor z = mul(matmul(v, flat.transpose(0, 1)), clip_->scale());  // z = s·⟨v, c⟩
  if (c.dim() == 2) return z;
  return z.reshape({v.size(0), c.size(0), c.size(1)});
}

Tensor VideoModel::score(const Tensor& v, const Tensor& c) const {
  Tensor z = logits(v, c);
  if (z.dim() == 2) z = z.unsqueeze(1);
  return score_from_logits(z, opts_.scoring);
}

VideoModel::LossOutput VideoModel::training_loss(const Tensor& video, const Tensor& prompt_tokens,
                                                 const Tensor& targets, int64_t step) const {
  VC_CHECK(prompt_tokens.dim() == 3, name(), ": prompt tokens must be [M, K, context], got ",
           prompt_tokens.shape());
  const int64_t M = opts_.prompts ? prompt_tokens.size(0) : 1, K = prompt_tokens.size(1);
  const int64_t B = video.size(0);
  LossOutput out;
  // S of the M variants, with replacement (claver.md §3); S = 0 means all M, in order.
  if (!opts_.prompts) {
    out.variants = {0};  // label-only ablation: one variant, nothing to sample
  } else if (opts_.prompts_per_step == 0) {
    for (int64_t m = 0; m < M; ++m) out.variants.push_back(m);
  } else {
    out.variants = sample_variants(M, opts_.prompts_per_step, opts_.seed, step);
  }
  const int64_t S = int64_t(out.variants.size());
  Tensor idx = Tensor::from_vector(out.variants, {S});
  Tensor c = encode_text(index_select(prompt_tokens, 0, idx));  // [S, K, E]
  Tensor v = encode_video(video);                               // [B, E]
  out.logits = logits(v, c);                                    // [B, S, K]
  // The same target for every variant; CE is averaged over the B·S rows (paper Eq. 9).
  Tensor z = out.logits.reshape({B * S, K});
  Tensor t;
  if (targets.dtype() == DType::I64) {
    VC_CHECK(targets.dim() == 1 && targets.size(0) == B, name(), ": labels ", targets.shape(),
             " for a batch of ", B);
    t = targets.unsqueeze(1).expand({B, S}).reshape({B * S});
  } else {
    VC_CHECK(targets.dim() == 2 && targets.size(0) == B && targets.size(1) == K, name(),
             ": soft targets ", targets.shape(), " for a batch of ", B, " and ", K, " classes");
    t = targets.to(z.dtype()).unsqueeze(1).expand({B, S, K}).reshape({B * S, K});
  }
  out.loss = cross_entropy(z, t);
  return out;
}

std::vector<nn::GroupSpec> VideoModel::group_specs() const {
  std::vector<std::string> names = new_module_names();
  if (names.empty()) return {};
  std::string alt;
  for (const auto& n : names) alt += (alt.empty() ? "" : "|") + n;
  return {{"new", "^(" + alt + ")(\\.|$)", opts_.new_lr_mult}};
}

std::vector<nn::ParamGroup> VideoModel::param_groups(double weight_decay) const {
  return nn::make_param_groups(*this, weight_decay, group_specs(), no_decay);
}

bool VideoModel::no_decay(const std::string& name, const Tensor& p) {
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return p.dim() <= 1 || ends_with(".bias") || name.find("positional_embedding") != std::string::npos;
}

}  // namespace vc::models
