// CLAVER (Kronecker mask and interpretive prompts; ICLR 2025, claver.md): CLIP's image
// encoder on every frame, then a few transformer blocks over all T·L tokens of the clip with
// a Kronecker-structured attention mask (KMTA: a token sees itself and every token of every
// other frame; KMCTA: itself and every token of earlier frames), class-token pooling, and
// many text variants per class ("interpretive prompts", see video_model.h: make_prompts,
// training_loss, score).
//
// State dict: "clip.*" (OpenAI's CLIP names), "temporal_embedding" [1, T, D] (when on) and
// "temporal_transformer.resblocks.{i}.{attn,ln_1,mlp,ln_2}.*". As in the code, the substring
// "temporal_" marks the new modules: they form the 10x LR group.
#pragma once
#include "models/video_model.h"

namespace vc::models {

// Keys on top of VideoModelOptions (defaults in brackets):
//   mask [kmta]               kmta | kmcta (the paper's two) | joint | pipeline |
//                             class_token_only | spatial (the ablation baselines of Tab. 7);
//                             "kmt" / "kmct" are accepted as the code's names
//   temporal_embedding [true] e_tem added to all L tokens of each frame (step 7)
//   kmt_depth [0]             L_K; 0 means L_V / 3, at least 1 (claver.md §9.1)
//   kmt_init [pytorch]        pytorch: what the released code ends up with (PyTorch defaults,
//                             claver.md §2.5) | clip_std: OpenAI CLIP's normal stds |
//                             copy_last: a copy of the last L_K blocks of the image encoder
struct ClaverOptions : VideoModelOptions {
  enum class Mask { KMTA, KMCTA, Joint, Pipeline, ClassTokenOnly, Spatial };
  enum class KmtInit { PyTorch, ClipStd, CopyLast };
  Mask mask = Mask::KMTA;
  bool temporal_embedding = true;
  int64_t kmt_depth = 0;
  KmtInit kmt_init = KmtInit::PyTorch;

  static ClaverOptions parse(const KeyValues& kv);
  KeyValues to_kv() const;
};

const char* mask_name(ClaverOptions::Mask m);
// The visibility pattern of a mask kind over T frames × L tokens (claver.md §2.2).
KronMask kron_mask(ClaverOptions::Mask m, int64_t T, int64_t L);

class ClaverModel : public VideoModel {
 public:
  ClaverModel(const clip::ClipConfig& config, const ClaverOptions& opts = {});
  std::string name() const override { return "claver"; }
  KeyValues options_kv() const override { return options_.to_kv(); }
  const ClaverOptions& claver_options() const { return options_; }

  // Steps 1-11 of claver.md §2.1: [B, T, 3, H, W] -> u [B, T, E].
  Tensor frame_features(const Tensor& video) const override;

  // The pieces, in order (public so tests can swap the mask for a dense one):
  // steps 1-6, the image encoder on each frame: -> [B, T, L, D];
  Tensor spatial_tokens(const Tensor& video) const;
  // steps 7-9, temporal embedding and the KMT blocks under `attention`: -> [B, T·L, D];
  Tensor temporal(const Tensor& tokens, const nn::AttentionOptions& attention) const;
  // steps 10-11, per-frame class tokens through ln_post and proj: [B, T·L, D] -> [B, T, E].
  Tensor head(const Tensor& kmt_out, int64_t T) const;
  // The structured mask of the KMT blocks (never a dense T·L × T·L tensor).
  nn::AttentionOptions kmt_attention(int64_t T, int64_t L) const;

  int64_t kmt_depth() const { return temporal_transformer->layers(); }
  static int64_t kmt_depth_for(int64_t vision_layers, int64_t requested);
  // Parameter count without building the model: CLIP + L_K blocks of 12D² + 13D + T·D.
  static int64_t count_parameters(const clip::ClipConfig& config, const ClaverOptions& opts);

  std::vector<std::string> new_module_names() const override;

  Tensor temporal_embedding;  // e_tem [1, T, D]; undefined when the option is off
  std::shared_ptr<nn::Transformer> temporal_transformer;

 protected:
  void init_new_modules(Generator& gen) override;

 private:
  ClaverOptions options_;
};

}  // namespace vc::models
