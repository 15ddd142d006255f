// TC-CLIP (Temporally Contextualized CLIP with Video-conditional Prompting; ECCV 2024,
// tcclip.md): CLIP's image encoder on every frame, fully fine-tuned, where each layer also
// summarises the clip into m context tokens (seed patches per frame, chosen by the class
// token's attention, merged across frames by bipartite soft matching) that the next layer's
// frames attend to as extra keys/values with a learned local/global bias; the text side is a
// CoOp prompt whose P learnable vectors read the video's (detached) context tokens through a
// cross-attention block placed before the last text layer (VP), so class features are per video.
//
// State dict: "clip.*" (OpenAI's names; the token embedding is frozen, tcclip.md §3.1),
// "local_global_bias.{l}" [H, 2] for every layer l that reads context tokens (base LR),
// "joint_positional_embedding" [T, N', D] with the joint option (base LR), and the 10x-LR new
// modules "prompt_offset" [P, D_t] and "prompt_generation.*" (the VP block: attn, ln_1 = LN_a,
// ln_kv, ln_2, mlp — the reference's "prompt_learner"/"prompt_generation").
//
// How the prompt vectors are held: the prompt text starts with the phrase (option prompt_init,
// put in front of every class text by tokenize()), and p = E(phrase) + prompt_offset with the
// frozen token embedding E and the offset starting at zero. That is a learnable p initialised
// from the phrase's embedding (the gradient and the Adam step are the same), without the model
// needing the tokenizer at initialisation; weight decay pulls p towards the phrase, not zero.
//
// The apps' interface (video_model.h) carries the per-video text side like this:
//   encode_video(video)      -> [B, 1 + R, E]: row 0 the pooled video feature v̄, rows 1..R the
//                               projected VP input (R = m context tokens, or T class tokens with
//                               vp_input cls; R = 0 with vp off), already detached;
//   class_features(tokens)   -> with VP: the text states after layers 1..L_t−1, run once,
//                               [M, K, L, D_t + 1] (last channel: 1 at the end token, else 0);
//                               without VP: the usual [M, K, E];
//   score(video_features, c) -> VP once per video, then only the last text layer per
//                               (video, class) — the cheap exact order of tcclip.md §3.3.
//
// Zero-shot models come from weight_space_ensemble() below (tcclip.md §4, WiSE-FT), reached
// from the command line as `verbclip eval --wise-ft W` (MODEL.PRETRAINED is the CLIP).
#pragma once
#include "models/video_model.h"
#include "nn/checkpoint.h"

namespace vc::models {

// Keys on top of VideoModelOptions (defaults in brackets; tcclip.md §2, §3, §5, §8, §9):
//   alpha [0.3]                 seeds per frame k = floor(alpha·N); 0: no context (= baseline)
//   context_tokens [96]         m context tokens per video (m >= T·k: every seed, no merge)
//   merge_step [100]            r, tokens merged per bipartite step (schedule of §2.5)
//   tc_layers [all]             layers whose attention reads context tokens: all (2..L_v) |
//                               comma list of 0-based layer indices >= 1 (the "§" variant: 3,7,11)
//   positional_embedding [space] space: CLIP's table on every frame (released) | joint: a
//                               per-frame table [T, N', D] initialised by copying CLIP's
//   local_global_bias [true]    the learned per-head logit bias b_loc (own keys) / b_glob (context)
//   reference [context]         §8.1: context | none (frame-wise) | cls (the T class tokens of the
//                               layer input as extra keys/values) | joint (all tokens of all
//                               frames, full space-time attention)
//   seed_selection [cls_attention] §8.3(a): cls_attention (head-averaged class-token attention) |
//                               key_norm (head-averaged key norm) | all (every patch is a seed)
//   summarization [bipartite]   §8.3(b): bipartite (iterated soft matching) | none (every seed is
//                               a context token) | random (a fixed random partition into m groups)
//   vp [true]                   video-conditional prompting; false: the learnable prompts alone
//   vp_input [context]          §8.5: context (last-layer context tokens) | cls (frame class tokens)
//   vp_detach [true]            stop-gradient on the VP input (the released code)
//   prompt_vectors [4]          P learnable prompt vectors; 0: hand-written prompts only
//   prompt_init [a photo of a]  the phrase the P vectors start from (must be P tokens long)
//   logit_scale_init [0]        > 0: start exp(θ_s) at this value (trainable, clamped at 100 as
//                               CLIP); 0: the checkpoint's. OpenAI's CLIPs hold 100 (tcclip.md §4)
//   wise_ft [0.7]               the paper's w of weight_space_ensemble (eval --wise-ft W)
// TC-CLIP scores every prompt variant (prompts_per_step is not used); pooling defaults to
// mean_norm (v = mean_t u_t, normalised, as the code).
struct TcClipOptions : VideoModelOptions {
  enum class PosEmb { Space, Joint };
  enum class Reference { Context, None, Cls, Joint };
  enum class SeedSelection { ClsAttention, KeyNorm, All };
  enum class Summarization { Bipartite, None, Random };
  enum class VpInput { Context, Cls };
  TcClipOptions() { pooling = Pooling::MeanNorm; }
  double alpha = 0.3;
  int64_t context_tokens = 96;
  int64_t merge_step = 100;
  std::string tc_layers = "all";
  PosEmb positional_embedding = PosEmb::Space;
  bool local_global_bias = true;
  Reference reference = Reference::Context;
  SeedSelection seed_selection = SeedSelection::ClsAttention;
  Summarization summarization = Summarization::Bipartite;
  bool vp = true;
  VpInput vp_input = VpInput::Context;
  bool vp_detach = true;
  int64_t prompt_vectors = 4;
  std::string prompt_init = "a photo of a";
  double logit_scale_init = 0;
  double wise_ft = 0.7;

  static TcClipOptions parse(const KeyValues& kv);
  KeyValues to_kv() const;
};

// Seed selection (tcclip.md §2.4): scores [R, N] -> the k best patch indices per row, int64
// [R, k], by descending score, ties to the lower index.
Tensor select_seeds(const Tensor& scores, int64_t k);

// Weight-space ensembling (WiSE-FT, tcclip.md §4): θ = (1 − w)·θ_CLIP + w·θ_ft for every
// "clip.*" tensor of the fine-tuned model's state dict (the CLIP's own parameters, taken from
// `pretrained`, OpenAI names without "clip."), through nn::interpolate; every other tensor (the
// local/global bias tables, prompt offset, VP block, joint positional table) is the fine-tuned
// one unchanged. Names, shapes and dtypes must match (named on error).
nn::StateDict weight_space_ensemble(const nn::StateDict& finetuned, const nn::StateDict& pretrained, double w);

// The VP block (tcclip.md §3.3): x ← x + MHA(LN_a(x), LN_kv(c)); x ← x + MLP(LN_b(x)).
// The reference has E = D_t (512); with E ≠ D_t (kdim ≠ d_model, §6 O10) LN_kv is over E and
// a bias-free Linear "kv_in" (E -> D_t) maps the tokens to the attention's width.
class VideoPromptBlock : public nn::Module {
 public:
  VideoPromptBlock(int64_t dim, int64_t heads, nn::Activation act, int64_t kv_dim);
  // x [B, P, D_t], c [B, R, E] -> [B, P, D_t].
  Tensor forward(const Tensor& x, const Tensor& c) const;
  std::shared_ptr<nn::MultiheadAttention> attn;
  std::shared_ptr<nn::LayerNorm> ln_1, ln_kv;
  std::shared_ptr<nn::MLP> mlp;
  std::shared_ptr<nn::LayerNorm> ln_2;
  std::shared_ptr<nn::Linear> kv_in;  // only when E ≠ D_t
};

class TcClipModel : public VideoModel {
 public:
  TcClipModel(const clip::ClipConfig& config, const TcClipOptions& opts = {});
  std::string name() const override { return "tcclip"; }
  KeyValues options_kv() const override { return options_.to_kv(); }
  const TcClipOptions& tc_options() const { return options_; }

  // ---- vision (tcclip.md §2) ----
  struct VisionOutput {
    Tensor u;        // per-frame projected class tokens [B, T, E]
    Tensor context;  // LN_post(S^{L}) W_vis [B, m, E] (undefined when the last layer made none)
    // Per layer that summarised: the seed patch index of every seed, frame-major [B, T·k]
    // (patch index 0..N−1 within its frame), and the context token it went to [B, T·k].
    std::vector<Tensor> seeds, groups;
  };
  VisionOutput vision(const Tensor& video, bool keep_membership = false) const;
  Tensor frame_features(const Tensor& video) const override;
  Tensor encode_video(const Tensor& video) const override;

  // One TC layer on x [B·T, N', D] with the previous context tokens S [B, m', D] (undefined:
  // plain frame-wise attention); `summarise` builds the new context Ŝ. Returns the new x and
  // the new context (after the shared FFN), and the seeds' membership.
  struct LayerOutput {
    Tensor x, context, seeds, groups;
  };
  LayerOutput tc_layer(int64_t layer, const Tensor& x, const Tensor& context, int64_t B, bool summarise) const;
  // Context summarisation (tcclip.md §2.4-2.5) from the post-attention stream x̂ [B·T, N', D]
  // and the class-token attention (head mean, patch columns) [B·T, N].
  LayerOutput summarise(int64_t layer, const Tensor& xhat, const Tensor& cls_scores, int64_t B) const;
  int64_t seeds_per_frame() const { return k_; }
  bool uses_context(int64_t layer) const { return uses_context_.at(size_t(layer)); }

  // ---- text (tcclip.md §3) ----
  // Puts prompt_init in front of every text, then tokenizes (checks the phrase is P tokens).
  Tensor tokenize(const PromptSet& prompts, const clip::TextTokenizer& tokenizer) const override;
  // The token embeddings with p = E(phrase) + prompt_offset in rows 1..P, plus positions:
  // tokens [N, L] -> [N, L, D_t].
  Tensor embed_prompts(const Tensor& tokens) const;
  Tensor class_features(const Tensor& prompt_tokens) const override;
  // The cheap order: shared states [M, K, L, D_t + 1] and VP inputs [B, R, E] -> normalised
  // class features per video [B, M, K, E].
  Tensor conditioned_class_features(const Tensor& shared, const Tensor& vp_inputs) const;
  // The reference's order, for tests: the whole text tower per (video, class) with VP before
  // the last layer. tokens [M, K, L], vp_inputs [B, R, E] -> [B, M, K, E].
  Tensor class_features_naive(const Tensor& prompt_tokens, const Tensor& vp_inputs) const;
  // The prompt states after text layers 1..L_t−1 [P, D_t] (identical for every class).
  Tensor prompt_states(const Tensor& prompt_tokens) const;

  // ---- scoring ----
  // v_packed [B, 1 + R, E] against c from class_features -> logits [B, M, K].
  Tensor tc_logits(const Tensor& video_features, const Tensor& class_features) const;
  Tensor score(const Tensor& video_features, const Tensor& class_features) const override;
  LossOutput training_loss(const Tensor& video, const Tensor& prompt_tokens, const Tensor& targets,
                           int64_t step) const override;

  // Zero-shot weights: this model's state ensembled with the pretrained CLIP's state dict
  // (OpenAI names, e.g. clip::CLIP::state_dict()) at w, loaded in place.
  void ensemble_with(const nn::StateDict& pretrained_clip, double w);

  std::vector<std::string> new_module_names() const override;

  std::shared_ptr<nn::Module> local_global_bias;  // children's parameters "{l}" [H, 2]
  Tensor joint_positional_embedding;              // [T, N', D] with the joint option
  Tensor prompt_offset;                           // [P, D_t]
  std::shared_ptr<VideoPromptBlock> prompt_generation;

 protected:
  void init_new_modules(Generator& gen) override;

 private:
  Tensor embed_frames(const Tensor& video) const;  // [B·T, N', D] after ln_pre
  Tensor vp_inputs(const VisionOutput& out) const;  // [B, R, E], detached when vp_detach
  Tensor text_head(const Tensor& states, const Tensor& eos) const;  // [N, L, D_t] -> [N, E]

  TcClipOptions options_;
  int64_t k_ = 0;
  std::vector<bool> uses_context_, summarises_;
  std::vector<Tensor> bias_;  // per layer (undefined where unused)
};

}  // namespace vc::models
