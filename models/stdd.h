// STDD (Spatiotemporal Dynamic Duo; AAAI 2025, stdd.md): CLIP's image encoder, fully
// fine-tuned, with a parameter-free space-time cross attention (STCA) inside its blocks —
// window shift masking, multi-scale channel shift-mixing through the block's own attention,
// padding back into the residual, the MLP short-cut — and frames scored one by one against
// many knowledge-graph prompts per class (ASKG), half "each frame's best prompt" and half
// "each prompt's best frame". A frozen copy of the CLIP image encoder keeps the frame
// features close to CLIP's (FROSTER-style distillation).
//
// State dict: "clip.*" (OpenAI's names; STCA adds nothing), and with distillation on
// "kd_projector.{0,2}.weight" (the loss-only projector g) and "kd_teacher.*" (the frozen
// CLIP image encoder, kept so a resumed run distils towards the same teacher).
#pragma once
#include "models/video_model.h"
#include "engine/ops/temporal_shift.h"

namespace vc::models {

// Keys on top of VideoModelOptions (defaults in brackets; stdd.md §5 and §9):
//   stca_blocks [all]        vision blocks with STCA: all | none (the plain-block control) |
//                            a comma list of block indices
//   wsm [true]               step 1, window shift masking (off: every token is visible)
//   mask_ratio [0.5]         r; r·w² must be an integer (0.25, 0.5, 0.75 for w = 2)
//   window [2]               w; the patch grid must divide by it
//   temporal_shuffle [true]  training: a random frame permutation of the mask patterns
//   spatial_repeat [true]    one phase for all windows; false: a phase per window (§9.2)
//   mcm [true]               step 2, channel shift-mixing (off: the masked branch unshifted)
//   scales [1,2]             temporal scales S of the mixing
//   channel_fold [32]        F: d0 = D / F channels from the past and d0 from the future
//   mixing [continual]       continual (the code) | separate (the paper's Eq. 5, ablation)
//   padding [true]           step 3: masked positions take the full attention's output
//                            (off: they keep the block input, skipping this attention)
//   shortcut [true]          step 4: the MLP reads the full-branch Y (off: it reads Z)
//   frame_scoring [fine]     fine: stdd.md §4 frame<->prompt score | mean: cosine of the
//                            mean frame feature to the mean prompt feature (the ablation)
//   logit_scale [100]        τ, fixed (stdd.md §9.11); 0: the CLIP's own exp(logit_scale)
//   kd_weight [2]            λ of the frozen-CLIP distillation; 0: off (no teacher kept)
//   kd_alpha [0.1]           α of h = ẑ + α g(ẑ)
//   kd_detach [false]        true: the released code's no-gradient distillation (no effect)
// STDD scores every prompt of a class, so prompts_per_step is not used.
struct StddOptions : VideoModelOptions {
  enum class Mixing { Continual, Separate };
  enum class FrameScoring { Fine, Mean };
  std::string stca_blocks = "all";
  bool wsm = true;
  double mask_ratio = 0.5;
  int64_t window = 2;
  bool temporal_shuffle = true, spatial_repeat = true;
  bool mcm = true;
  std::vector<int64_t> scales = {1, 2};
  int64_t channel_fold = 32;
  Mixing mixing = Mixing::Continual;
  bool padding = true, shortcut = true;
  FrameScoring frame_scoring = FrameScoring::Fine;
  double logit_scale = 100;
  double kd_weight = 2, kd_alpha = 0.1;
  bool kd_detach = false;

  static StddOptions parse(const KeyValues& kv);
  KeyValues to_kv() const;
};

// The ASKG prompt set of stdd.md §3 (the code's "xmix"): for each template τ and class c,
// {τ(c)} ∪ {τ(c + ", " + clause)} over the class's clauses (object-object, action-object,
// action-action, in that order), duplicates dropped; then every class padded to the longest
// list by cycling its own prompts. A clause's final "." is dropped (the template has its own).
PromptSet make_askg_prompts(const std::vector<std::string>& class_names,
                            const std::vector<std::string>& templates,
                            const std::vector<std::vector<std::string>>& clauses);

// The fine-grained score of stdd.md §4 from similarities s [B, T, M, K] (M prompts per
// class): ½ (mean_t max_m s + mean_m max_t s) -> [B, K].
Tensor frame_prompt_score(const Tensor& similarities);

class StddModel : public VideoModel {
 public:
  StddModel(const clip::ClipConfig& config, const StddOptions& opts = {});
  std::string name() const override { return "stdd"; }
  KeyValues options_kv() const override { return options_.to_kv(); }
  const StddOptions& stdd_options() const { return options_; }

  // [B, T, 3, H, W] -> u [B, T, E]: the STDD encoder at inference (phase 0, no shuffle).
  Tensor frame_features(const Tensor& video) const override;
  // The same with the training-time masks of `step` (a fresh draw per block and video).
  Tensor frame_features_at(const Tensor& video, int64_t step) const;
  // STDD keeps frames apart: the "video feature" is the L2-normalised ẑ [B, T, E].
  Tensor encode_video(const Tensor& video) const override;
  // ẑ [B, T, E] against c [M, K, E] (or [K, E]) -> the logits S [B, K] of stdd.md §4; under
  // scoring sum_log_prob, log_softmax(S).
  Tensor score(const Tensor& video_features, const Tensor& class_features) const override;
  ScoreKind score_kind() const override {
    return options_.scoring == VideoModelOptions::Scoring::SumLogProb ? ScoreKind::LogProbabilities : ScoreKind::Logits;
  }
  // S [B, K] from ẑ and every prompt (stdd.md §4).
  Tensor stdd_logits(const Tensor& frames, const Tensor& class_features) const;
  // CE on S over all prompts (frozen text: encoded once and cached) + λ·L_KD.
  LossOutput training_loss(const Tensor& video, const Tensor& prompt_tokens, const Tensor& targets,
                           int64_t step) const override;

  // One vision block with STCA (stdd.md §2.2 (a)-(e)) on x [B·T, L, D], B videos of T frames;
  // `visible` the WSM patch ids [B, T, N'] (undefined when WSM is off).
  Tensor stca_block(const nn::ResidualAttentionBlock& block, const Tensor& x, int64_t B,
                    const Tensor& visible) const;
  // The WSM patch ids of block `layer` for B videos: training with step >= 0 draws them from
  // (seed, step, layer), otherwise the fixed pattern. Undefined when WSM is off.
  Tensor visible_patches(int64_t B, int64_t layer, int64_t step) const;
  bool stca_in_block(int64_t layer) const;
  const ShiftTable& shift_table(size_t scale_index) const { return shift_tables_[scale_index]; }
  int64_t mixed_channels() const { return d0_; }  // d0

  // L_KD = 1 - mean cos(ẑ + α g(ẑ), ẑ⁰) over B·T frames (stdd.md §4), and the plain mean
  // cos(ẑ, ẑ⁰) (no gradient) — how far the frames have moved from the frozen CLIP's.
  struct Distillation {
    Tensor loss;
    double mean_cosine = 0;
  };
  Distillation distillation(const Tensor& video, const Tensor& frames) const;

  std::vector<std::string> new_module_names() const override;

  std::shared_ptr<nn::Module> kd_projector;             // g: Linear-GELU-Linear, no biases
  std::shared_ptr<clip::VisionTransformer> kd_teacher;  // frozen copy of clip.visual

 protected:
  void init_new_modules(Generator& gen) override;
  void state_loaded() override;  // drops the frozen-text cache

 private:
  Tensor encode_frames(const Tensor& video, int64_t step) const;
  Tensor frame_scale() const;
  Tensor cached_class_features(const Tensor& prompt_tokens) const;

  StddOptions options_;
  std::vector<bool> stca_layers_;
  std::vector<ShiftTable> shift_tables_;  // one per scale
  int64_t d0_ = 0, n_mask_ = 0;
  std::shared_ptr<nn::Linear> kd_fc1_, kd_fc2_;
  // Frozen-text class features for training, keyed by the prompt tokens they came from
  // (weights loaded into the model, not into its CLIP alone, drop them: state_loaded()).
  mutable std::vector<int64_t> cached_tokens_;
  mutable Tensor cached_features_;
};

}  // namespace vc::models
