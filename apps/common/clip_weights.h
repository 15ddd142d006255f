// CLIP weights on disk, for every app that starts from them (embed, pretrain-clip, train,
// eval, predict).
//
// Loading accepts a safetensors file in OpenAI or Hugging Face naming (with or without
// DDP "module." prefixes; fp16/bf16 are upcast by nn's reader), converts it to OpenAI
// naming, decides the config and the activation, and loads strictly: any missing,
// unexpected or mis-shaped key is an error naming the file and the keys.
//
//   config      the --model preset when given (checked against the shapes); else the
//               "config" entry of verbclip's own metadata; else inferred from the shapes
//               (OpenAI's build_model rules).
//   activation  --activation when given; else the "activation" metadata entry; else
//               QuickGELU, OpenAI's — and the loader says so in `notes` (apps print them),
//               because open_clip's LAION weights use the same names with exact GELU.
//               A flag that contradicts the file's metadata is an error.
//
// Saving writes OpenAI naming (float32) with metadata: format, config (JSON), activation
// and the tokenizer description (TextTokenizer::describe()), so train/eval/predict find
// the right tokenizer without being told. Written to a temporary file and renamed.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/clip/clip.h"
#include "models/clip/text_tokenizer.h"
#include "nn/safetensors.h"

namespace verbclip {

// Metadata keys of verbclip's CLIP weight files.
constexpr const char* kClipWeightsFormat = "verbclip-clip-1";

struct ClipLoadOptions {
  std::string model;       // preset name ("ViT-B/32", "tiny", ...); empty: metadata or shapes
  std::string activation;  // "quick_gelu" | "gelu"; empty: metadata, else OpenAI's QuickGELU
};

struct LoadedClip {
  std::shared_ptr<vc::clip::CLIP> model;  // in eval mode, float32, on the CPU
  vc::clip::ClipConfig config;
  vc::clip::Naming naming = vc::clip::Naming::OpenAI;  // as found in the file
  std::string tokenizer;                  // the description from metadata; empty if none
  vc::nn::Metadata metadata;              // the file's metadata, as is
  std::vector<std::string> notes;         // what was assumed (print these to the user)
};

// Parses "quick_gelu" / "gelu" (also "quickgelu", "QuickGELU"); anything else throws.
bool parse_quick_gelu(const std::string& activation_name);
const char* activation_string(const vc::clip::ClipConfig& config);  // "quick_gelu" | "gelu"

// Config <-> JSON text (the "config" metadata entry; also written to logs).
std::string config_to_json(const vc::clip::ClipConfig& config);
vc::clip::ClipConfig config_from_json(const std::string& json, const std::string& where);

// The file's tensors in OpenAI naming (module. stripped, HF converted, stray buffers
// dropped), float32. `naming` receives what the file used. Errors name the path.
vc::clip::StateDict read_clip_state_dict(const std::string& path, vc::nn::Metadata* metadata = nullptr,
                                         vc::clip::Naming* naming = nullptr);

LoadedClip load_clip_weights(const std::string& path, const ClipLoadOptions& options = {});

// The tokenizer the weights were trained with: the metadata's description; "openai-bpe"
// (or no description) needs bpe_path; an explicit bpe_path always means OpenAI's BPE.
std::unique_ptr<vc::clip::TextTokenizer> tokenizer_for(const LoadedClip& loaded,
                                                       const std::string& bpe_path = "");

// Writes `model` with verbclip's metadata (+ `extra` entries), in OpenAI naming unless
// asked for Hugging Face's (an export for other tools; the loader reads both).
void save_clip_weights(const std::string& path, const vc::clip::CLIP& model,
                       const std::string& tokenizer_description,
                       const vc::nn::Metadata& extra = {},
                       vc::clip::Naming naming = vc::clip::Naming::OpenAI);

// nn's ordered dict <-> the name map of models/clip/weights.h.
vc::clip::StateDict to_clip_dict(const vc::nn::StateDict& sd);
vc::nn::StateDict to_nn_dict(const vc::clip::StateDict& sd);

}  // namespace verbclip
