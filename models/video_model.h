// VideoModel: what every CLIP-based video classifier of verbclip offers the apps.
//
// A model owns a CLIP (registered as the child "clip", so its state-dict keys are OpenAI's
// under "clip.") plus the modules its paper adds (registered at the top level, e.g.
// "temporal_embedding", "temporal_transformer.*"; those get the higher learning rate).
//
// The life of a model in an app:
//   auto m = create_model("claver", clip_config, kv_options);      // models/registry.h
//   m->init_from_clip(openai_weights, gen);   // or init_random(gen), or load_state_dict(ckpt)
//   Tensor prompts = m->tokenize(make_prompts(names, templates, sentences), tokenizer);
//   train:  auto out = m->training_loss(video, prompts, targets, step);  out.loss.backward();
//   eval:   Tensor c = m->class_features(prompts);                       // [M, K, E], once
//           Tensor s = m->score(m->encode_video(video), c);              // [B, K], sum views
//
// Conventions shared by every model (claver.md §2.1 step 12, §3, §4):
//   - the video feature v is pooled from per-frame projected class tokens u_t [B, T, E]:
//     "frame_norm_mean" (the CLAVER code's rule, default): v = (1/T) Σ_t u_t/‖u_t‖, not
//     re-normalised; "mean_norm" (the paper's Eq. 2-3): v = mean_t(u_t)/‖mean_t(u_t)‖;
//   - class features c_{m,k} are L2-normalised text features of variant m of class k;
//   - logits z = s·⟨v, c⟩ with s = exp(logit_scale) clamped at 100 (CLIP::scale).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "models/clip/clip.h"
#include "models/clip/text_tokenizer.h"
#include "nn/optim.h"

namespace vc::models {

// ------------------------------------------------------------------ options from strings

// Model options as flat key/value strings (the apps' YAML "model.*" keys without the prefix).
using KeyValues = std::map<std::string, std::string>;
// A double as an option value that reads back to the same bits (17 significant digits).
std::string format_number(double x);

// Reads typed values out of KeyValues; finish() throws on any key nobody asked for, naming
// it and the known keys. Booleans: true/false/1/0/yes/no/on/off.
class OptionReader {
 public:
  OptionReader(const KeyValues& kv, std::string what) : kv_(kv), what_(std::move(what)) {}
  void read(const std::string& key, bool& out);
  void read(const std::string& key, int64_t& out);
  void read(const std::string& key, uint64_t& out);
  void read(const std::string& key, double& out);
  void read(const std::string& key, std::string& out);
  // A string that must be one of `allowed`.
  void read_choice(const std::string& key, std::string& out, const std::vector<std::string>& allowed);
  void finish() const;

 private:
  const std::string* find(const std::string& key);
  const KeyValues& kv_;
  std::string what_;
  std::set<std::string> known_;
};

// The options every model has. Keys (defaults in brackets):
//   num_frames [8]            T; the temporal embedding has this many rows
//   train_image [true]        false freezes clip.visual.* (claver.md §9.2 "freeze switch")
//   train_text [true]         false freezes the text tower; its features then carry no grad
//   prompts [true]            use all M prompt variants; false: variant 0 only (label-only ablation)
//   prompts_per_step [5]      S variants sampled per training step, with replacement; 0: all M
//   pooling [frame_norm_mean] frame_norm_mean (code) | mean_norm (paper)
//   scoring [mean_prob]       mean_prob (code: mean_m softmax_k) | sum_log_prob (paper Eq. 10)
//   new_lr_mult [10]          LR multiplier of the new modules (the papers' 10x)
//   seed [0]                  keys the prompt sampling: variants of step n = f(seed, n)
//   truncate_text [false]     over-long prompts: false throws naming the text (CLAVER's
//                             tokenizer), true cuts them keeping the end token
struct VideoModelOptions {
  enum class Pooling { FrameNormMean, MeanNorm };
  enum class Scoring { MeanProb, SumLogProb };
  int64_t num_frames = 8;
  bool train_image = true, train_text = true;
  bool prompts = true;
  int64_t prompts_per_step = 5;
  Pooling pooling = Pooling::FrameNormMean;
  Scoring scoring = Scoring::MeanProb;
  double new_lr_mult = 10;
  uint64_t seed = 0;
  bool truncate_text = false;

  void read(OptionReader& r);
  void write(KeyValues& kv) const;
};

// ------------------------------------------------------------------ prompts

// texts[k][m] = variant m of class k. Every class has the same number M of variants, and
// variant m is "aligned" across classes (same template for template slots).
struct PromptSet {
  std::vector<std::vector<std::string>> texts;
  int64_t classes() const { return int64_t(texts.size()); }
  int64_t variants() const { return texts.empty() ? 0 : int64_t(texts[0].size()); }
};

// CLAVER's interpretive prompts (claver.md §3): the class name in each template ("{}" marks
// it), then the class's own sentences (decomposition, synonyms, body parts...). Templates
// come first (m = 0..), so variant 0 is the first template. `sentences` may be empty (templates
// only); otherwise it has one list per class, all of the same length (checked, named).
PromptSet make_prompts(const std::vector<std::string>& class_names,
                       const std::vector<std::string>& templates,
                       const std::vector<std::vector<std::string>>& sentences = {});

// Label smoothing as CLAVER folds it into the targets: on = 1 − ε + ε/K, off = ε/K.
// labels int64 [B] -> float [B, K]. Mixup/cutmix blend these rows afterwards.
Tensor soft_targets(const Tensor& labels, int64_t classes, double smoothing, DType dtype = DType::F32);

// Draws S indices from {0..M-1} uniformly with replacement, keyed only by (seed, step).
std::vector<int64_t> sample_variants(int64_t M, int64_t S, uint64_t seed, int64_t step);

// Inference scores from logits z [B, M, K] (claver.md §4): mean_m softmax_k (code) or
// Σ_m log_softmax_k (paper). [B, K]. Views are summed by the caller.
Tensor score_from_logits(const Tensor& z, VideoModelOptions::Scoring rule);

// ------------------------------------------------------------------ the model

class VideoModel : public nn::Module {
 public:
  VideoModel(std::string type_name, const clip::ClipConfig& config, const VideoModelOptions& opts);

  virtual std::string name() const = 0;  // the registry name
  // Every option as key/value strings (what a checkpoint stores; parses back to the same).
  virtual KeyValues options_kv() const = 0;

  // ---- set-up (construction leaves zeros) ----
  // Fresh weights: CLIP's own initialisation, then the new modules'.
  void init_random(Generator& gen);
  // CLIP's weights (OpenAI names, checked strictly), then the new modules from gen (some
  // initialisations copy CLIP blocks, so CLIP comes first).
  void init_from_clip(const clip::StateDict& openai_weights, Generator& gen);

  // ---- video ----
  // Per-frame projected class tokens u [B, T, E] (before the pooling rule).
  virtual Tensor frame_features(const Tensor& video) const = 0;
  // [B, T, 3, H, W] -> v [B, E] by the pooling rule.
  // (STDD overrides it: its frames stay apart, [B, T, E].)
  virtual Tensor encode_video(const Tensor& video) const;
  // The class token's attention over its frame's patches in the last spatial block, mean over
  // heads: [B, T, grid, grid] (no gradient). For the predict app's picture.
  Tensor attention_map(const Tensor& video) const;

  // ---- text ----
  // int64 [M, K, context] (M = 1 when prompts are off: variant 0 only). TC-CLIP overrides it
  // to put its prompt phrase in front.
  virtual Tensor tokenize(const PromptSet& prompts, const clip::TextTokenizer& tokenizer) const;
  // Tokens [..., context] -> L2-normalised features [..., E]; no gradient when the text tower
  // is frozen.
  Tensor encode_text(const Tensor& tokens) const;
  // All variants: tokens [M, K, context] -> c [M, K, E]. Compute once for evaluation.
  // (TC-CLIP overrides it: its class features depend on the video, see tcclip.h.)
  virtual Tensor class_features(const Tensor& prompt_tokens) const;

  // ---- scoring ----
  // v [B, E] against c [K, E] -> [B, K], or c [M, K, E] -> [B, M, K]: s·⟨v, c⟩.
  Tensor logits(const Tensor& video_features, const Tensor& class_features) const;
  // Inference scores [B, K] by the scoring option (c [M, K, E] or [K, E]).
  virtual Tensor score(const Tensor& video_features, const Tensor& class_features) const;
  // What score() returns: class probabilities (mean_prob), log-probabilities (sum_log_prob)
  // or logits (STDD under mean_prob, which sums logits over views as its code does).
  enum class ScoreKind { Probabilities, LogProbabilities, Logits };
  virtual ScoreKind score_kind() const {
    return opts_.scoring == VideoModelOptions::Scoring::MeanProb ? ScoreKind::Probabilities
                                                                 : ScoreKind::LogProbabilities;
  }

  // ---- training ----
  struct LossOutput {
    Tensor loss;                    // scalar: CE averaged over B·S rows (paper Eq. 9)
    Tensor logits;                  // [B, S, K]
    std::vector<int64_t> variants;  // the S variant indices used
    std::map<std::string, double> metrics;  // extra per-step figures to log (STDD: kd_cosine)
  };
  // The training objective with prompt sampling (claver.md §3-4): S variants drawn by
  // (seed, step), their S·K texts encoded with gradient (unless frozen), logits [B, S, K],
  // cross-entropy against targets repeated over S. targets: int64 labels [B] (one-hot) or
  // float [B, K] soft targets (soft_targets + mixup).
  virtual LossOutput training_loss(const Tensor& video, const Tensor& prompt_tokens,
                                   const Tensor& targets, int64_t step) const;

  // ---- optimiser ----
  // Top-level names of the modules/parameters the paper adds (empty for the baseline).
  virtual std::vector<std::string> new_module_names() const { return {}; }
  // {"new", "^(name1|name2)(\.|$)", new_lr_mult} when there are new modules.
  std::vector<nn::GroupSpec> group_specs() const;
  // Every trainable parameter in groups "default"/"new" (+ ".no_decay"), with no_decay below.
  std::vector<nn::ParamGroup> param_groups(double weight_decay) const;
  // CLAVER's decay rule (claver.md §5): no decay for tensors of rank ≤ 1 (biases, LayerNorm,
  // class embedding, logit_scale), names ending ".bias", and positional embeddings; decay
  // does reach the temporal embedding and the token embedding, as in the code.
  static bool no_decay(const std::string& name, const Tensor& param);

  clip::CLIP& clip() const { return *clip_; }
  const clip::ClipConfig& clip_config() const { return clip_->config; }
  const VideoModelOptions& options() const { return opts_; }

 protected:
  // The new modules' initialisation; CLIP's weights are already in place.
  virtual void init_new_modules(Generator& gen) {}
  // Step 12 of claver.md §2.1: u [B, T, E] -> v [B, E].
  Tensor pool_frames(const Tensor& u) const;
  // [B, T, 3, H, W] checked against the config -> [B·T, 3, H, W].
  Tensor fold_frames(const Tensor& video) const;

  std::shared_ptr<clip::CLIP> clip_;
  VideoModelOptions opts_;
};

}  // namespace vc::models
