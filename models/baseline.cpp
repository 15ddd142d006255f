// Baseline: frame-wise CLIP + mean pooling.
//
//   u_{b,t} = proj(ln_post(ViT(x_{b,t}))_cls)        each frame alone, CLIP unchanged
//   v_b     = (1/T) Σ_t u_{b,t}/‖u_{b,t}‖             pooling option "frame_norm_mean" (default),
//             or mean_t(u_{b,t}) normalised            "mean_norm" (ViFi-CLIP's / the paper's)
//   z_{b,k} = s·⟨v_b, c_k⟩                             c_k: normalised text feature of class k
#include "models/baseline.h"

#include "engine/engine.h"

namespace vc::models {

BaselineOptions BaselineOptions::parse(const KeyValues& kv) {
  BaselineOptions o;
  OptionReader r(kv, "baseline");
  o.read(r);
  r.finish();
  return o;
}

KeyValues BaselineOptions::to_kv() const {
  KeyValues kv;
  write(kv);
  return kv;
}

BaselineModel::BaselineModel(const clip::ClipConfig& config, const BaselineOptions& opts)
    : VideoModel("BaselineModel", config, opts), options_(opts) {}

Tensor BaselineModel::frame_features(const Tensor& video) const {
  Tensor frames = fold_frames(video);                   // [B·T, 3, H, W]
  Tensor u = clip_->visual->forward(frames);            // [B·T, E]
  return u.reshape({video.size(0), video.size(1), -1});  // [B, T, E]
}

}  // namespace vc::models
