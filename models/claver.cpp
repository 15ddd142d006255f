// CLAVER's video encoder, step by step as in claver.md §2.1 (symbols: B batch, T frames,
// L = N + 1 tokens per frame, D width, E embedding, L_V image-encoder depth, L_K KMT depth).
//
//   x      = ViT_{1..L_V}(ln_pre([c; X_p W_pe] + e_pos))      per frame      [B·T, L, D]   (1-6)
//   x_t,l  = x_t,l + e_tem[t]                                   all l          [B, T, L, D]  (7)
//   z      = KMT_{1..L_K}(x flattened, i = t·L + l; mask M)                    [B, T·L, D]   (8-9)
//   u_t    = proj(ln_post(z_{t, l=0}))                                         [B, T, E]     (10-11)
//   v      = (1/T) Σ_t u_t / ‖u_t‖    (code; the paper normalises the mean)   [B, E]        (12)
//
// with the additive Kronecker mask M = bin(Π) in every KMT block (Eq. 6 and 8):
//   KMTA  Π = I_T ⊗ (J_L − I_L)                      key (t',l') hidden iff t' = t and l' ≠ l
//   KMCTA Π = I_T ⊗ (J_L − I_L) + (U_T − I_T) ⊗ J_L  also hidden iff t' > t
// applied by the tiled attention op from the Kronecker factors, so no T·L × T·L mask exists.
// Attention scales by 1/√d_h (claver.md §9.10).
#include "models/claver.h"

#include "engine/engine.h"
#include "nn/init.h"

namespace vc::models {

namespace {

const std::vector<std::pair<std::string, ClaverOptions::Mask>>& mask_names() {
  using M = ClaverOptions::Mask;
  static const std::vector<std::pair<std::string, M>> names = {
      {"kmta", M::KMTA},   {"kmcta", M::KMCTA},       {"joint", M::Joint},
      {"pipeline", M::Pipeline}, {"class_token_only", M::ClassTokenOnly}, {"spatial", M::Spatial}};
  return names;
}

const char* init_name(ClaverOptions::KmtInit i) {
  switch (i) {
    case ClaverOptions::KmtInit::PyTorch: return "pytorch";
    case ClaverOptions::KmtInit::ClipStd: return "clip_std";
    case ClaverOptions::KmtInit::CopyLast: return "copy_last";
  }
  return "?";
}

}  // namespace

const char* mask_name(ClaverOptions::Mask m) {
  for (const auto& [n, v] : mask_names())
    if (v == m) return n.c_str();
  return "?";
}

KronMask kron_mask(ClaverOptions::Mask m, int64_t T, int64_t L) {
  switch (m) {
    case ClaverOptions::Mask::KMTA: return KronMask::kmta(T, L);
    case ClaverOptions::Mask::KMCTA: return KronMask::kmcta(T, L);
    case ClaverOptions::Mask::Joint: return KronMask::joint(T, L);
    case ClaverOptions::Mask::Pipeline: return KronMask::pipeline(T, L);
    case ClaverOptions::Mask::ClassTokenOnly: return KronMask::class_token_only(T, L);
    case ClaverOptions::Mask::Spatial: return KronMask::spatial(T, L);
  }
  fail("claver: unknown mask kind");
}

ClaverOptions ClaverOptions::parse(const KeyValues& kv) {
  ClaverOptions o;
  OptionReader r(kv, "claver");
  o.read(r);
  std::string m = mask_name(o.mask);
  r.read_choice("mask", m,
                {"kmta", "kmcta", "kmt", "kmct", "joint", "pipeline", "class_token_only", "spatial"});
  if (m == "kmt") m = "kmta";
  if (m == "kmct") m = "kmcta";
  for (const auto& [n, v] : mask_names())
    if (n == m) o.mask = v;
  r.read("temporal_embedding", o.temporal_embedding);
  r.read("kmt_depth", o.kmt_depth);
  VC_CHECK(o.kmt_depth >= 0, "claver: kmt_depth must be >= 0 (0 = a third of the vision depth), got ",
           o.kmt_depth);
  std::string init = init_name(o.kmt_init);
  r.read_choice("kmt_init", init, {"pytorch", "clip_std", "copy_last"});
  o.kmt_init = init == "pytorch" ? KmtInit::PyTorch : init == "clip_std" ? KmtInit::ClipStd : KmtInit::CopyLast;
  r.finish();
  return o;
}

KeyValues ClaverOptions::to_kv() const {
  KeyValues kv;
  write(kv);
  kv["mask"] = mask_name(mask);
  kv["temporal_embedding"] = temporal_embedding ? "true" : "false";
  kv["kmt_depth"] = std::to_string(kmt_depth);
  kv["kmt_init"] = init_name(kmt_init);
  return kv;
}

int64_t ClaverModel::kmt_depth_for(int64_t vision_layers, int64_t requested) {
  if (requested > 0) return requested;
  return std::max<int64_t>(1, vision_layers / 3);  // code: layers // 3 (claver.md §9.1)
}

int64_t ClaverModel::count_parameters(const clip::ClipConfig& c, const ClaverOptions& o) {
  const int64_t D = c.vision_width, LK = kmt_depth_for(c.vision_layers, o.kmt_depth);
  // A pre-LN block: in_proj 3D² + 3D, out_proj D² + D, c_fc 4D² + 4D, c_proj 4D² + D, 2 LNs 4D.
  const int64_t block = 12 * D * D + 13 * D;
  return clip::count_parameters(c).total + LK * block + (o.temporal_embedding ? o.num_frames * D : 0);
}

ClaverModel::ClaverModel(const clip::ClipConfig& c, const ClaverOptions& opts)
    : VideoModel("ClaverModel", c, opts), options_(opts) {
  const int64_t D = c.vision_width;
  if (opts.temporal_embedding)
    temporal_embedding = register_parameter("temporal_embedding", Tensor::zeros({1, opts.num_frames, D}));
  // Same width and heads as the ViT (heads = D/64 in CLIP), same activation.
  temporal_transformer = register_module(
      "temporal_transformer",
      std::make_shared<nn::Transformer>(D, kmt_depth_for(c.vision_layers, opts.kmt_depth),
                                        c.vision_heads, clip::activation_of(c)));
}

std::vector<std::string> ClaverModel::new_module_names() const {
  if (temporal_embedding.defined()) return {"temporal_embedding", "temporal_transformer"};
  return {"temporal_transformer"};
}

void ClaverModel::init_new_modules(Generator& gen) {
  // e_tem ~ trunc_normal(std 0.02) in the code; timm truncates at ±2 (absolute), i.e. 100σ,
  // so a plain normal draw is the same distribution.
  if (temporal_embedding.defined()) nn::init::normal_(temporal_embedding, gen, 0, 0.02);
  const clip::VisionTransformer& vis = *clip_->visual;
  switch (options_.kmt_init) {
    case ClaverOptions::KmtInit::PyTorch:
      // The released code never calls its init_weights, so the blocks keep PyTorch's
      // defaults: Xavier in-proj, U(±1/√fan_in) Linears, zero in/out-proj biases, LN (1, 0).
      temporal_transformer->reset_parameters(gen);
      for (int64_t i = 0; i < kmt_depth(); ++i)
        nn::init::zeros_(temporal_transformer->block(i).attn->out_proj->bias);
      break;
    case ClaverOptions::KmtInit::ClipStd:
      temporal_transformer->reset_parameters(gen);
      nn::init::clip_transformer_(*temporal_transformer, gen);
      break;
    case ClaverOptions::KmtInit::CopyLast: {
      const int64_t LV = vis.transformer->layers(), LK = kmt_depth();
      VC_CHECK(LK <= LV, "claver: kmt_init copy_last needs kmt_depth (", LK,
               ") <= the vision depth (", LV, ")");
      for (int64_t i = 0; i < LK; ++i)
        temporal_transformer->block(i).load_state_dict(vis.transformer->block(LV - LK + i).state_dict());
      break;
    }
  }
}

Tensor ClaverModel::spatial_tokens(const Tensor& video) const {
  const clip::VisionTransformer& vis = *clip_->visual;
  Tensor x = vis.embed(fold_frames(video));  // (1-5) [B·T, L, D]: patches, c, e_pos, ln_pre
  x = vis.transformer->forward(x);           // (6) L_V blocks, attention within each frame
  return x.reshape({video.size(0), video.size(1), x.size(1), x.size(2)});
}

nn::AttentionOptions ClaverModel::kmt_attention(int64_t T, int64_t L) const {
  nn::AttentionOptions o;
  o.mask = AttentionMask::kronecker(kron_mask(options_.mask, T, L));
  return o;
}

Tensor ClaverModel::temporal(const Tensor& tokens, const nn::AttentionOptions& attention) const {
  const int64_t B = tokens.size(0), T = tokens.size(1), L = tokens.size(2), D = tokens.size(3);
  Tensor x = tokens;
  if (temporal_embedding.defined()) {
    VC_CHECK(T == options_.num_frames, "claver: the temporal embedding has ", options_.num_frames,
             " frames, the clip has ", T);
    x = add(x, temporal_embedding.reshape({1, T, 1, D}));  // (7) e_tem[t] on every token l
  }
  x = x.reshape({B, T * L, D});                        // (8) i = t·L + l
  return temporal_transformer->forward(x, attention);  // (9) L_K KMT blocks, mask M
}

Tensor ClaverModel::head(const Tensor& z, int64_t T) const {
  const int64_t B = z.size(0), D = z.size(2), L = z.size(1) / T;
  // (10) keep l = 0 of each frame, (11) ln_post then proj: VisionTransformer::head does both.
  Tensor u = clip_->visual->head(z.reshape({B * T, L, D}));  // [B·T, E]
  return u.reshape({B, T, u.size(1)});
}

Tensor ClaverModel::frame_features(const Tensor& video) const {
  Tensor x = spatial_tokens(video);
  const int64_t T = x.size(1), L = x.size(2);
  return head(temporal(x, kmt_attention(T, L)), T);
}

}  // namespace vc::models
