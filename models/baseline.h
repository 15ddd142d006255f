// The baseline (ViFi-CLIP style, "CLIP + temporal mean pooling" in claver.md Tab. 6): the
// CLIP image encoder on every frame on its own, the per-frame projected class tokens pooled
// over time, cosine-style logits against the class text features. No new modules: every
// parameter is a CLIP parameter ("clip.*"), all trained at the base LR unless frozen.
//
// Its video feature is invariant to the order of the frames by construction, which is what
// makes it the control for the order-dependent classes of Fashion-Motion (family C).
#pragma once
#include "models/video_model.h"

namespace vc::models {

// Only the common keys (VideoModelOptions).
struct BaselineOptions : VideoModelOptions {
  static BaselineOptions parse(const KeyValues& kv);
  KeyValues to_kv() const;
};

class BaselineModel : public VideoModel {
 public:
  BaselineModel(const clip::ClipConfig& config, const BaselineOptions& opts = {});
  std::string name() const override { return "baseline"; }
  KeyValues options_kv() const override { return options_.to_kv(); }
  // [B, T, 3, H, W] -> u [B, T, E]: CLIP's image encoder on each of the B·T frames.
  Tensor frame_features(const Tensor& video) const override;

 private:
  BaselineOptions options_;
};

}  // namespace vc::models
