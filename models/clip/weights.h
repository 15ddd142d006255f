// CLIP configs and state-dict conversion (specs/ecosystem.md §3.1–3.3). Pure key/shape work
// on name -> tensor maps: no files here (safetensors reading is nn's job) and no modules.
//
// Canonical naming is OpenAI's (`visual.transformer.resblocks.N.attn.in_proj_weight`, ...):
// the towers use it and weights are saved in it. Hugging Face `CLIPModel` names are mapped
// in and out; q/k/v are the row thirds of in_proj, and HF's Linear projections are the
// transposes of OpenAI's `visual.proj` / `text_projection`.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace vc::clip {

using StateDict = std::map<std::string, Tensor>;

struct ClipConfig {
  std::string name;
  int64_t embed_dim = 512;
  // vision tower
  int64_t image_size = 224, patch_size = 32;
  int64_t vision_width = 768, vision_layers = 12, vision_heads = 12;
  // Channels of a 3x3 convolutional stem run before the patch embedding (0: none, as in
  // OpenAI's CLIP). With a stem, visual.conv1 patchifies the stem's output, not the pixels.
  int64_t vision_stem = 0;
  // text tower
  int64_t context_length = 77, vocab_size = 49408;
  int64_t text_width = 512, text_layers = 12, text_heads = 8;
  // QuickGELU x·sigmoid(1.702x) for OpenAI weights, exact GELU otherwise. Not visible in
  // the shapes, so inference from a state dict keeps the default (OpenAI's).
  bool quick_gelu = true;

  int64_t grid() const { return image_size / patch_size; }
  int64_t vision_tokens() const { return grid() * grid() + 1; }  // + class token

  // "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336", "tiny".
  static ClipConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();
};

bool operator==(const ClipConfig& a, const ClipConfig& b);  // all sizes (not the name)

// Every parameter of a config, OpenAI naming, with its shape (logit_scale is []).
std::map<std::string, Shape> expected_shapes(const ClipConfig& config);

struct ParamCount {
  int64_t vision = 0;  // visual.*
  int64_t text = 0;    // token/positional embeddings, transformer, ln_final, text_projection
  int64_t total = 0;   // vision + text + logit_scale
};
ParamCount count_parameters(const ClipConfig& config);

enum class Naming { OpenAI, HuggingFace };
// HF when any key starts with "text_model." / "vision_model." / "visual_projection."; else
// OpenAI. Call after strip_module_prefix.
Naming detect_naming(const StateDict& sd);

// Strips leading "module." (DDP wrappers, repeated ones too).
StateDict strip_module_prefix(const StateDict& sd);
// HF CLIPModel -> OpenAI. Drops position_ids buffers. A key outside the mapping throws
// (naming it), unless keep_unknown, which passes it through unchanged.
StateDict hf_to_openai(const StateDict& sd, bool keep_unknown = false);
// OpenAI -> HF CLIPModel (no position_ids). Same rule for unknown keys.
StateDict openai_to_hf(const StateDict& sd, bool keep_unknown = false);
// Whatever a user hands over -> OpenAI naming: strips "module.", converts HF, drops
// position_ids and the OpenAI archives' scalar metadata (input_resolution, context_length,
// vocab_size).
StateDict to_openai(const StateDict& sd, bool keep_unknown = false);

// The config from an OpenAI-named state dict's shapes (OpenAI's build_model rules: heads =
// width / 64, layers = number of in_proj_weight keys). Throws naming the missing key or the
// inconsistent shape.
ClipConfig infer_config(const StateDict& openai_sd);

// Strict check of an OpenAI-named state dict against a config: lists missing keys,
// unexpected keys and shape mismatches in one error.
void check_state_dict(const StateDict& openai_sd, const ClipConfig& config);

}  // namespace vc::clip
