#include "apps/common/clip_weights.h"

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace verbclip {

using vc::fail;
namespace clip = vc::clip;
namespace nn = vc::nn;

bool parse_quick_gelu(const std::string& a) {
  if (a == "quick_gelu" || a == "quickgelu" || a == "QuickGELU") return true;
  if (a == "gelu" || a == "GELU") return false;
  fail("activation '", a, "' is neither quick_gelu (OpenAI's weights) nor gelu");
}

const char* activation_string(const clip::ClipConfig& c) { return c.quick_gelu ? "quick_gelu" : "gelu"; }

std::string config_to_json(const clip::ClipConfig& c) {
  nlohmann::ordered_json j;
  j["name"] = c.name;
  j["embed_dim"] = c.embed_dim;
  j["image_size"] = c.image_size;
  j["patch_size"] = c.patch_size;
  j["vision_width"] = c.vision_width;
  j["vision_layers"] = c.vision_layers;
  j["vision_heads"] = c.vision_heads;
  if (c.vision_stem > 0) j["vision_stem"] = c.vision_stem;  // absent: no stem (older checkpoints too)
  j["context_length"] = c.context_length;
  j["vocab_size"] = c.vocab_size;
  j["text_width"] = c.text_width;
  j["text_layers"] = c.text_layers;
  j["text_heads"] = c.text_heads;
  j["activation"] = activation_string(c);
  return j.dump();
}

clip::ClipConfig config_from_json(const std::string& text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(where, ": the CLIP config is not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(where, ": the CLIP config is not a JSON object");
  clip::ClipConfig c;
  auto num = [&](const char* key, int64_t& out) {
    if (!j.contains(key) || !j[key].is_number_integer())
      fail(where, ": the CLIP config has no integer '", key, "'");
    out = j[key].get<int64_t>();
    if (out <= 0) fail(where, ": the CLIP config's '", key, "' = ", out, " must be positive");
  };
  c.name = j.value("name", std::string("custom"));
  num("embed_dim", c.embed_dim);
  num("image_size", c.image_size);
  num("patch_size", c.patch_size);
  num("vision_width", c.vision_width);
  num("vision_layers", c.vision_layers);
  num("vision_heads", c.vision_heads);
  if (j.contains("vision_stem")) num("vision_stem", c.vision_stem);
  num("context_length", c.context_length);
  num("vocab_size", c.vocab_size);
  num("text_width", c.text_width);
  num("text_layers", c.text_layers);
  num("text_heads", c.text_heads);
  if (!j.contains("activation") || !j["activation"].is_string())
    fail(where, ": the CLIP config has no 'activation'");
  try {
    c.quick_gelu = parse_quick_gelu(j["activation"].get<std::string>());
  } catch (const vc::Error& e) {
    fail(where, ": ", e.what());
  }
  return c;
}

clip::StateDict to_clip_dict(const nn::StateDict& sd) {
  clip::StateDict out;
  for (const auto& [k, t] : sd) out.emplace(k, t);
  return out;
}

nn::StateDict to_nn_dict(const clip::StateDict& sd) {
  nn::StateDict out;
  for (const auto& [k, t] : sd) out.set(k, t);
  return out;
}

clip::StateDict read_clip_state_dict(const std::string& path, nn::Metadata* metadata,
                                     clip::Naming* naming) {
  nn::Metadata meta;
  nn::StateDict raw = nn::load_safetensors(path, &meta);  // errors name the file
  VC_CHECK(!raw.empty(), "CLIP weights '", path, "' hold no tensors");
  clip::StateDict sd = clip::strip_module_prefix(to_clip_dict(raw));
  clip::Naming found = clip::detect_naming(sd);
  clip::StateDict out;
  try {
    out = clip::to_openai(sd);
  } catch (const vc::Error& e) {
    fail("CLIP weights '", path, "': ", e.what());
  }
  vc::NoGradGuard no_grad;
  for (auto& [k, t] : out) {
    VC_CHECK(vc::is_floating(t.dtype()), "CLIP weights '", path, "': tensor '", k, "' is ",
             vc::dtype_name(t.dtype()), ", not a float tensor");
    if (t.dtype() != vc::DType::F32) t = t.to(vc::DType::F32);
  }
  if (metadata) *metadata = meta;
  if (naming) *naming = found;
  return out;
}

LoadedClip load_clip_weights(const std::string& path, const ClipLoadOptions& opt) {
  LoadedClip r;
  clip::StateDict sd = read_clip_state_dict(path, &r.metadata, &r.naming);
  auto meta = [&](const char* key) -> std::string {
    auto it = r.metadata.find(key);
    return it == r.metadata.end() ? std::string() : it->second;
  };

  // ---- config
  clip::ClipConfig c;
  if (!opt.model.empty()) {
    c = clip::ClipConfig::preset(opt.model);
  } else if (!meta("config").empty()) {
    c = config_from_json(meta("config"), "CLIP weights '" + path + "'");
  } else {
    try {
      c = clip::infer_config(sd);
    } catch (const vc::Error& e) {
      fail("CLIP weights '", path, "': ", e.what());
    }
  }

  // ---- activation: flag, else metadata, else OpenAI's QuickGELU (said out loud)
  const std::string from_meta = meta("activation");
  if (!opt.activation.empty()) {
    c.quick_gelu = parse_quick_gelu(opt.activation);
    if (!from_meta.empty() && parse_quick_gelu(from_meta) != c.quick_gelu)
      fail("CLIP weights '", path, "' were trained with ", from_meta, " (metadata), but --activation ",
           opt.activation, " was given");
  } else if (!from_meta.empty()) {
    try {
      c.quick_gelu = parse_quick_gelu(from_meta);
    } catch (const vc::Error& e) {
      fail("CLIP weights '", path, "': metadata 'activation': ", e.what());
    }
  } else {
    c.quick_gelu = true;
    r.notes.push_back("'" + path + "' does not say its activation: using QuickGELU (OpenAI's "
                      "weights); pass --activation gelu for open_clip/LAION-trained weights");
  }

  // ---- strict load
  try {
    clip::check_state_dict(sd, c);
  } catch (const vc::Error& e) {
    fail("CLIP weights '", path, "': ", e.what());
  }
  r.config = c;
  r.model = std::make_shared<clip::CLIP>(c);
  r.model->load_state_dict(to_nn_dict(sd), /*strict=*/true);
  r.model->eval();
  r.tokenizer = meta("tokenizer");
  return r;
}

std::unique_ptr<clip::TextTokenizer> tokenizer_for(const LoadedClip& loaded, const std::string& bpe_path) {
  if (!bpe_path.empty()) return clip::openai_bpe_tokenizer(bpe_path);
  if (loaded.tokenizer.empty())
    fail("these weights do not name their tokenizer (OpenAI / Hugging Face weights use OpenAI's "
         "BPE): pass the path of bpe_simple_vocab_16e6.txt.gz with --bpe");
  auto tok = clip::tokenizer_from_description(loaded.tokenizer, bpe_path);
  VC_CHECK(tok->vocab_size() == loaded.config.vocab_size, "the weights' tokenizer has ",
           tok->vocab_size(), " tokens but the model's vocabulary has ", loaded.config.vocab_size);
  return tok;
}

void save_clip_weights(const std::string& path, const clip::CLIP& model,
                       const std::string& tokenizer_description, const nn::Metadata& extra,
                       clip::Naming naming) {
  nn::Metadata meta = extra;
  meta["format"] = "pt";  // what Hugging Face's writers put: tensors are in PyTorch layout
  meta["verbclip"] = kClipWeightsFormat;
  meta["config"] = config_to_json(model.config);
  meta["activation"] = activation_string(model.config);
  if (!tokenizer_description.empty()) meta["tokenizer"] = tokenizer_description;
  vc::NoGradGuard no_grad;
  clip::StateDict sd;
  for (const auto& [k, t] : model.state_dict()) sd.emplace(k, t.detach().to(vc::DType::F32).contiguous());
  if (naming == clip::Naming::HuggingFace) sd = clip::openai_to_hf(sd);
  nn::save_safetensors(path, to_nn_dict(sd), meta);
}

}  // namespace verbclip
