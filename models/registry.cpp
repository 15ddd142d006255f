#include "models/registry.h"

#include <algorithm>
#include <cctype>

#include "models/alt.h"
#include "models/baseline.h"
#include "models/claver.h"
#include "models/stdd.h"
#include "models/tcclip.h"

namespace vc::models {

std::vector<std::string> model_names() { return {"baseline", "claver", "stdd",
          "alt", "tcclip"}; }

std::shared_ptr<VideoModel> create_model(const std::string& name, const clip::ClipConfig& config,
                                         const KeyValues& options) {
  if (name == "baseline") return std::make_shared<BaselineModel>(config, BaselineOptions::parse(options));
  if (name == "claver") return std::make_shared<ClaverModel>(config, ClaverOptions::parse(options));
  if (name == "stdd") return std::make_shared<StddModel>(config, StddOptions::parse(options));
  if (name == "alt") return std::make_shared<AltModel>(config, AltOptions::parse(options));
  if (name == "tcclip") return std::make_shared<TcClipModel>(config, TcClipOptions::parse(options));
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown model '", name, "' (known: ", known, ")");
}

namespace {

// One help line per key; the defaults come from the option structs themselves.
const std::map<std::string, std::string>& help_lines() {
  static const std::map<std::string, std::string> h = {
      {"num_frames", "frames per clip T (CLAVER's temporal embedding has T rows)"},
      {"train_image", "train the CLIP image encoder (false freezes clip.visual.*)"},
      {"train_text", "train the CLIP text encoder (false freezes it; class features carry no grad)"},
      {"prompts", "use all prompt variants (templates + sentences); false: variant 0 only"},
      {"prompts_per_step", "S: prompt variants sampled per training step, with replacement (0: all)"},
      {"pooling", "frame_norm_mean (CLAVER code: mean of normalised frames) | mean_norm (paper)"},
      {"scoring", "mean_prob (code: mean over variants of softmax) | sum_log_prob (paper Eq. 10)"},
      {"new_lr_mult", "learning-rate multiplier of the new modules (temporal_*)"},
      {"seed", "seed of the prompt sampling (variants of step n depend on seed and n only)"},
      {"truncate_text", "cut prompts longer than the context (false: error naming the text)"},
      {"mask", "KMT attention mask: kmta | kmcta | joint | pipeline | class_token_only | spatial"},
      {"temporal_embedding", "add the learned per-frame embedding to all tokens before the KMT blocks"},
      {"kmt_depth", "KMT blocks L_K (0: a third of the vision depth, at least 1)"},
      {"kmt_init", "KMT block init: pytorch (as the released code) | clip_std | copy_last"},
      {"stca_blocks", "vision blocks with space-time cross attention: all | none | comma list of indices"},
      {"wsm", "window shift masking, STCA step 1 (false: every token visible)"},
      {"mask_ratio", "r: masked share of each window (r * window^2 must be an integer)"},
      {"window", "w: side of the masking windows (the patch grid must divide by it)"},
      {"temporal_shuffle", "training: random frame permutation of the mask patterns"},
      {"spatial_repeat", "one mask phase for all windows (false: a phase per window)"},
      {"mcm", "multi-scale channel shift-mixing, STCA step 2"},
      {"scales", "temporal scales of the channel mixing (comma list)"},
      {"channel_fold", "F: width / F channels mixed from the past and as many from the future"},
      {"mixing", "continual (released code) | separate (paper Eq. 5)"},
      {"padding", "STCA step 3: masked positions take the full attention output (false: the block input)"},
      {"shortcut", "STCA step 4: the MLP reads the full-branch output (false: the padded tensor)"},
      {"frame_scoring", "fine (frame<->prompt max/mean score) | mean (pooled frames and prompts)"},
      {"logit_scale", "fixed logit scale tau (0: the CLIP's own learned scale)"},
      {"kd_weight", "lambda of the frozen-CLIP feature distillation (0: off, no teacher kept)"},
      {"kd_alpha", "alpha of the residual projector in the distillation"},
      {"kd_detach", "distillation without gradient, as the released code (no effect)"},
      // ALT (models/alt.h)
      {"merge_r", "ToMe: tokens merged in every vision block (0: no merging)"},
      {"merge_schedule", "constant (merge_r in every block) | comma list of one r per vision block"},
      {"prop_attn", "proportional attention: + log(token size) on every key logit"},
      {"queries", "corpus (entity picks, Eq. 4-6) | learnable (the no-corpus ablation)"},
      {"selection", "gumbel (noise in training + straight-through one-hot) | soft (softmax, the ablation)"},
      {"tau", "Gumbel-softmax temperature: softmax(cos/tau + g); the paper's 1 is near-uniform"},
      {"corpus_size", "K: entities in the corpus (TEXT.CORPUS), must match the file"},
      {"query_reduce", "entities -> one query per frame: flatten_linear | mean"},
      {"decoder_blocks", "M: video decoder blocks"},
      {"temporal_conv", "1-D convolution over the frames in every decoder block (off: order-blind)"},
      {"conv_kernel", "kernel of the temporal convolution (odd)"},
      {"conv_chain", "chain the convolution across blocks (false: Eq. 8, every block convolves X)"},
      // TC-CLIP (tcclip.md)
      {"alpha", "seeds per frame k = floor(alpha * patches); 0: no context tokens (the baseline)"},
      {"context_tokens", "m: context tokens per video (>= T*k: every seed, no merging)"},
      {"merge_step", "r: tokens merged per bipartite soft-matching step"},
      {"tc_layers", "vision layers whose attention reads context tokens: all | comma list of indices >= 1"},
      {"positional_embedding", "space (CLIP's table on every frame, released) | joint (a table per frame)"},
      {"local_global_bias", "learned per-head logit bias of own keys (local) vs context keys (global)"},
      {"reference", "extra keys/values: context | none (frame-wise) | cls (all frames' class tokens) | joint (space-time)"},
      {"seed_selection", "cls_attention (head-averaged class attention) | key_norm | all (every patch)"},
      {"summarization", "seeds -> context tokens: bipartite (soft matching) | none (every seed) | random"},
      {"vp", "video-conditional prompting before the last text layer (false: learnable prompts only)"},
      {"vp_input", "what VP reads: context (last-layer context tokens) | cls (frame class tokens)"},
      {"vp_detach", "stop-gradient on the VP input (the released code)"},
      {"prompt_vectors", "P learnable prompt vectors after the start token (0: none)"},
      {"prompt_init", "the phrase the prompt vectors start from; put before every class name, P tokens long"},
      {"logit_scale_init", "start the CLIP's logit scale exp(theta) at this value (0: the checkpoint's)"},
      {"wise_ft", "w of weight-space ensembling with the pretrained CLIP (eval --wise-ft)"},
  };
  return h;
}

}  // namespace

std::vector<OptionDoc> model_option_docs(const std::string& name) {
  KeyValues defaults;
  if (name == "baseline") defaults = BaselineOptions{}.to_kv();
  else if (name == "claver") defaults = ClaverOptions{}.to_kv();
  else if (name == "stdd") defaults = StddOptions{}.to_kv();
  else if (name == "alt") defaults = AltOptions{}.to_kv();
  else if (name == "tcclip") defaults = TcClipOptions{}.to_kv();
  else create_model(name, clip::ClipConfig{});  // throws naming the known models
  std::vector<OptionDoc> docs;
  for (const auto& [k, v] : defaults) docs.push_back({k, v, help_lines().at(k)});
  return docs;
}

KeyValues model_options_of(const KeyValues& config, const std::string& prefix,
                           const std::vector<std::string>& skip) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  const std::string p = lower(prefix);
  KeyValues out;
  for (const auto& [k, v] : config) {
    std::string lk = lower(k);
    if (lk.compare(0, p.size(), p) != 0) continue;
    std::string key = lk.substr(p.size());
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    out[key] = v;
  }
  return out;
}

}  // namespace vc::models
