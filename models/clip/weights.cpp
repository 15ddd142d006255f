// CLIP configs, parameter counts and OpenAI <-> Hugging Face state-dict conversion.
#include "models/clip/weights.h"

#include <cmath>
#include <set>
#include <sstream>

#include "engine/autograd/autograd.h"
#include "engine/core/error.h"
#include "engine/ops/index.h"

namespace vc::clip {

// ---------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------

ClipConfig ClipConfig::preset(const std::string& name) {
  ClipConfig c;  // defaults are ViT-B/32
  c.name = name;
  if (name == "ViT-B/32") return c;
  if (name == "ViT-B/16") {
    c.patch_size = 16;
    return c;
  }
  if (name == "ViT-L/14" || name == "ViT-L/14@336") {
    c.embed_dim = 768;
    c.image_size = name == "ViT-L/14" ? 224 : 336;
    c.patch_size = 14;
    c.vision_width = 1024, c.vision_layers = 24, c.vision_heads = 16;
    c.text_width = 768, c.text_layers = 12, c.text_heads = 12;
    return c;
  }
  if (name == "tiny") {
    // The Fashion-Motion CLIP (`verbclip pretrain-clip`), sized to pretrain in minutes on 2
    // CPU cores: 32x32 crops in patches of 8 (4x4 grid, 17 tokens) over a conv stem; widths of 64 keep
    // OpenAI's heads = width / 64 rule, so the config can be inferred from the weights;
    // 32 tokens hold every generated caption and prompt. The vocabulary is the dataset's
    // own (text/vocab.txt): pretrain-clip sets vocab_size from it; 1024 is a placeholder.
    c.embed_dim = 64;
    // Patches of 8, not 4 (issue 12): a step costs a third (64 against 187 ms in
    // bench_vision_learning, 1 thread) for 1.6 points less supervised noun accuracy at equal
    // steps (54.9 against 56.5%), while 4x the steps gave 13-24 points of zero-shot. So the
    // main job buys steps: 4,800 steps of patch 8 gave 62.7% zero-shot and 9,600 gave 70.5%
    // (seed 1), against 48.1% for its 1,200 steps of patch 4, and on 17 tokens per frame the
    // five video models train in 6:51 instead of 15:07.
    c.image_size = 32, c.patch_size = 8;
    c.vision_width = 64, c.vision_layers = 3, c.vision_heads = 1;
    // A 3x3 conv stem of 32 channels before the patches (issue 12): from scratch, the tower
    // learns shape much faster with local filters than from raw 4x4 pixel patches. Measured
    // (800 steps, main-job captions): zero-shot 44.1 / 46.9% (seeds 1 / 2) with the stem at
    // lr 1.5e-3, against 37.9 / 32.7% without it; the supervised noun head of
    // bench_vision_learning (600 steps): 35.9% without, 43.7% with 16, 48.2% with 32 channels.
    c.vision_stem = 32;
    c.context_length = 32, c.vocab_size = 1024;
    c.text_width = 64, c.text_layers = 2, c.text_heads = 1;
    return c;
  }
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  fail("clip config: unknown model '", name, "' (known: ", known, ")");
}

std::vector<std::string> ClipConfig::preset_names() {
  return {"ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336", "tiny"};
}

bool operator==(const ClipConfig& a, const ClipConfig& b) {
  return a.embed_dim == b.embed_dim && a.image_size == b.image_size &&
         a.patch_size == b.patch_size && a.vision_width == b.vision_width &&
         a.vision_layers == b.vision_layers && a.vision_heads == b.vision_heads &&
         a.vision_stem == b.vision_stem &&
         a.context_length == b.context_length && a.vocab_size == b.vocab_size &&
         a.text_width == b.text_width && a.text_layers == b.text_layers &&
         a.text_heads == b.text_heads && a.quick_gelu == b.quick_gelu;
}

namespace {

void add_block_shapes(std::map<std::string, Shape>& s, const std::string& p, int64_t w) {
  s[p + "attn.in_proj_weight"] = {3 * w, w};  // rows q, k, v
  s[p + "attn.in_proj_bias"] = {3 * w};
  s[p + "attn.out_proj.weight"] = {w, w};
  s[p + "attn.out_proj.bias"] = {w};
  s[p + "ln_1.weight"] = {w};
  s[p + "ln_1.bias"] = {w};
  s[p + "mlp.c_fc.weight"] = {4 * w, w};
  s[p + "mlp.c_fc.bias"] = {4 * w};
  s[p + "mlp.c_proj.weight"] = {w, 4 * w};
  s[p + "mlp.c_proj.bias"] = {w};
  s[p + "ln_2.weight"] = {w};
  s[p + "ln_2.bias"] = {w};
}

}  // namespace

std::map<std::string, Shape> expected_shapes(const ClipConfig& c) {
  VC_CHECK(c.patch_size > 0 && c.image_size % c.patch_size == 0, "clip config: image size ",
           c.image_size, " is not a multiple of the patch size ", c.patch_size);
  std::map<std::string, Shape> s;
  const int64_t w = c.vision_width;
  if (c.vision_stem > 0) {
    s["visual.stem.weight"] = {c.vision_stem, 3, 3, 3};
    s["visual.stem.bias"] = {c.vision_stem};
  }
  s["visual.conv1.weight"] = {w, c.vision_stem > 0 ? c.vision_stem : 3, c.patch_size, c.patch_size};  // no bias
  s["visual.class_embedding"] = {w};
  s["visual.positional_embedding"] = {c.vision_tokens(), w};
  s["visual.ln_pre.weight"] = {w};
  s["visual.ln_pre.bias"] = {w};
  for (int64_t l = 0; l < c.vision_layers; ++l)
    add_block_shapes(s, "visual.transformer.resblocks." + std::to_string(l) + ".", w);
  s["visual.ln_post.weight"] = {w};
  s["visual.ln_post.bias"] = {w};
  s["visual.proj"] = {w, c.embed_dim};

  const int64_t t = c.text_width;
  s["token_embedding.weight"] = {c.vocab_size, t};
  s["positional_embedding"] = {c.context_length, t};
  for (int64_t l = 0; l < c.text_layers; ++l)
    add_block_shapes(s, "transformer.resblocks." + std::to_string(l) + ".", t);
  s["ln_final.weight"] = {t};
  s["ln_final.bias"] = {t};
  s["text_projection"] = {t, c.embed_dim};
  s["logit_scale"] = {};
  return s;
}

ParamCount count_parameters(const ClipConfig& config) {
  ParamCount n;
  for (const auto& [key, shape] : expected_shapes(config)) {
    int64_t k = numel_of(shape);
    if (key.rfind("visual.", 0) == 0) {
      n.vision += k;
    } else if (key != "logit_scale") {
      n.text += k;
    }
    n.total += k;
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Name mapping
// ---------------------------------------------------------------------------------------

namespace {

struct KeyPair {
  const char* openai;
  const char* hf;
  bool transpose;  // HF Linear stores [out, in]; OpenAI's projections are x @ P, [in, out]
};

const KeyPair kTopLevel[] = {
    {"visual.class_embedding", "vision_model.embeddings.class_embedding", false},
    {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", false},
    // The tiny preset's conv stem has no Hugging Face counterpart; it keeps the same place.
    {"visual.stem.weight", "vision_model.embeddings.stem.weight", false},
    {"visual.stem.bias", "vision_model.embeddings.stem.bias", false},
    {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", false},
    {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", false},  // sic, "layrnorm"
    {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", false},
    {"visual.ln_post.weight", "vision_model.post_layernorm.weight", false},
    {"visual.ln_post.bias", "vision_model.post_layernorm.bias", false},
    {"visual.proj", "visual_projection.weight", true},
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight", false},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight", false},
    {"ln_final.weight", "text_model.final_layer_norm.weight", false},
    {"ln_final.bias", "text_model.final_layer_norm.bias", false},
    {"text_projection", "text_projection.weight", true},
    {"logit_scale", "logit_scale", false},
};

// Residual-block prefixes (followed by "N.") and the sub-keys inside a block.
const KeyPair kBlockPrefixes[] = {
    {"visual.transformer.resblocks.", "vision_model.encoder.layers.", false},
    {"transformer.resblocks.", "text_model.encoder.layers.", false},
};
const KeyPair kBlockKeys[] = {
    {"attn.out_proj.weight", "self_attn.out_proj.weight", false},
    {"attn.out_proj.bias", "self_attn.out_proj.bias", false},
    {"ln_1.weight", "layer_norm1.weight", false},
    {"ln_1.bias", "layer_norm1.bias", false},
    {"mlp.c_fc.weight", "mlp.fc1.weight", false},
    {"mlp.c_fc.bias", "mlp.fc1.bias", false},
    {"mlp.c_proj.weight", "mlp.fc2.weight", false},
    {"mlp.c_proj.bias", "mlp.fc2.bias", false},
    {"ln_2.weight", "layer_norm2.weight", false},
    {"ln_2.bias", "layer_norm2.bias", false},
};
const char* const kQkv[] = {"q", "k", "v"};  // row thirds of in_proj, in this order

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& x) {
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

Tensor transposed(const Tensor& t, const std::string& key) {
  VC_CHECK(t.dim() == 2, "clip weights: '", key, "' should be 2-d to transpose, got ", t.shape());
  return t.transpose(0, 1).contiguous();
}

// Splits "prefix" + "N." + "rest"; false when key is not under prefix or N is not a number.
bool split_block_key(const std::string& key, const std::string& prefix, std::string& layer,
                     std::string& rest) {
  if (!starts_with(key, prefix)) return false;
  size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return false;
  layer = key.substr(prefix.size(), dot - prefix.size());
  if (layer.find_first_not_of("0123456789") != std::string::npos) return false;
  rest = key.substr(dot + 1);
  return true;
}

[[noreturn]] void unknown_key(const std::string& key, const char* from) {
  fail("clip weights: '", key, "' is not a CLIP parameter in ", from,
       " naming (pass keep_unknown to carry extra keys through)");
}

void put(StateDict& out, const std::string& key, const Tensor& t) {
  VC_CHECK(out.emplace(key, t).second, "clip weights: two keys map to '", key, "'");
}

}  // namespace

Naming detect_naming(const StateDict& sd) {
  for (const auto& kv : sd)
    if (starts_with(kv.first, "text_model.") || starts_with(kv.first, "vision_model.") ||
        starts_with(kv.first, "visual_projection."))
      return Naming::HuggingFace;
  return Naming::OpenAI;
}

StateDict strip_module_prefix(const StateDict& sd) {
  StateDict out;
  for (const auto& [key, t] : sd) {
    std::string k = key;
    while (starts_with(k, "module.")) k = k.substr(7);
    put(out, k, t);
  }
  return out;
}

StateDict openai_to_hf(const StateDict& sd, bool keep_unknown) {
  NoGradGuard no_grad;
  StateDict out;
  for (const auto& [key, t] : sd) {
    bool done = false;
    for (const KeyPair& m : kTopLevel)
      if (key == m.openai) {
        put(out, m.hf, m.transpose ? transposed(t, key) : t);
        done = true;
      }
    std::string layer, rest;
    for (const KeyPair& p : kBlockPrefixes) {
      if (done || !split_block_key(key, p.openai, layer, rest)) continue;
      std::string hf = std::string(p.hf) + layer + ".";
      if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") {
        VC_CHECK(t.dim() >= 1 && t.size(0) % 3 == 0, "clip weights: '", key,
                 "' should have 3·width rows (q, k, v), got ", t.shape());
        std::vector<Tensor> qkv = chunk(t, 3, 0);
        const char* kind = rest == "attn.in_proj_weight" ? "weight" : "bias";
        for (int i = 0; i < 3; ++i)
          put(out, hf + "self_attn." + kQkv[i] + "_proj." + kind, qkv[size_t(i)].contiguous());
        done = true;
      }
      for (const KeyPair& b : kBlockKeys)
        if (!done && rest == b.openai) {
          put(out, hf + b.hf, t);
          done = true;
        }
      if (!done && !keep_unknown) unknown_key(key, "OpenAI");
    }
    if (!done) {
      if (!keep_unknown) unknown_key(key, "OpenAI");
      put(out, key, t);
    }
  }
  return out;
}

StateDict hf_to_openai(const StateDict& sd, bool keep_unknown) {
  NoGradGuard no_grad;
  StateDict out;
  std::map<std::string, std::vector<Tensor>> in_proj;  // OpenAI key -> [q, k, v]
  for (const auto& [key, t] : sd) {
    if (ends_with(key, "position_ids")) continue;  // int64 buffers of older exports
    bool done = false;
    for (const KeyPair& m : kTopLevel)
      if (key == m.hf) {
        put(out, m.openai, m.transpose ? transposed(t, key) : t);
        done = true;
      }
    std::string layer, rest;
    for (const KeyPair& p : kBlockPrefixes) {
      if (done || !split_block_key(key, p.hf, layer, rest)) continue;
      std::string oa = std::string(p.openai) + layer + ".";
      for (int i = 0; i < 3 && !done; ++i)
        for (const char* kind : {"weight", "bias"})
          if (rest == std::string("self_attn.") + kQkv[i] + "_proj." + kind) {
            auto& parts = in_proj[oa + "attn.in_proj_" + kind];
            parts.resize(3);
            parts[size_t(i)] = t;
            done = true;
          }
      for (const KeyPair& b : kBlockKeys)
        if (!done && rest == b.hf) {
          put(out, oa + b.openai, t);
          done = true;
        }
      if (!done && !keep_unknown) unknown_key(key, "Hugging Face");
    }
    if (!done) {
      if (!keep_unknown) unknown_key(key, "Hugging Face");
      put(out, key, t);
    }
  }
  for (auto& [key, parts] : in_proj) {
    for (int i = 0; i < 3; ++i)
      VC_CHECK(parts[size_t(i)].defined(), "clip weights: '", key, "' needs q, k and v; the ",
               kQkv[i], "_proj part is missing");
    VC_CHECK(parts[0].shape() == parts[1].shape() && parts[0].shape() == parts[2].shape(),
             "clip weights: q/k/v shapes differ for '", key, "': ", parts[0].shape(), ", ",
             parts[1].shape(), ", ", parts[2].shape());
    put(out, key, concat(parts, 0));
  }
  return out;
}

StateDict to_openai(const StateDict& sd, bool keep_unknown) {
  StateDict s = strip_module_prefix(sd);
  if (detect_naming(s) == Naming::HuggingFace) return hf_to_openai(s, keep_unknown);
  StateDict out;
  for (const auto& [key, t] : s) {
    // build_model deletes these scalar entries of the OpenAI archives
    if (key == "input_resolution" || key == "context_length" || key == "vocab_size") continue;
    if (ends_with(key, "position_ids")) continue;
    out.emplace(key, t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Config inference and strict checking
// ---------------------------------------------------------------------------------------

namespace {

const Tensor& need(const StateDict& sd, const std::string& key, int64_t dims) {
  auto it = sd.find(key);
  VC_CHECK(it != sd.end(), "clip config: the state dict has no '", key,
           "' (is it a CLIP state dict in OpenAI naming? see to_openai)");
  VC_CHECK(it->second.dim() == dims, "clip config: '", key, "' should be ", dims, "-d, got ",
           it->second.shape());
  return it->second;
}

// Number of residual blocks: the in_proj_weight keys under prefix, which must be 0..L-1.
int64_t count_layers(const StateDict& sd, const std::string& prefix) {
  std::set<int64_t> layers;
  std::string layer, rest;
  for (const auto& kv : sd)
    if (split_block_key(kv.first, prefix, layer, rest) && rest == "attn.in_proj_weight")
      layers.insert(std::stoll(layer));
  VC_CHECK(!layers.empty(), "clip config: no '", prefix, "N.attn.in_proj_weight' keys");
  VC_CHECK(*layers.rbegin() + 1 == int64_t(layers.size()), "clip config: '", prefix,
           "' blocks are not numbered 0..", layers.size() - 1);
  return int64_t(layers.size());
}

int64_t heads_of(int64_t width, const char* tower) {
  VC_CHECK(width % 64 == 0, "clip config: ", tower, " width ", width,
           " is not a multiple of 64, so heads = width / 64 cannot be inferred");
  return width / 64;
}

}  // namespace

ClipConfig infer_config(const StateDict& sd) {
  ClipConfig c;
  const Tensor& conv = need(sd, "visual.conv1.weight", 4);
  if (sd.count("visual.stem.weight")) c.vision_stem = need(sd, "visual.stem.weight", 4).size(0);
  const int64_t conv_in = c.vision_stem > 0 ? c.vision_stem : 3;
  VC_CHECK(conv.size(1) == conv_in && conv.size(2) == conv.size(3), "clip config: visual.conv1.weight ",
           conv.shape(), " should be [width, ", conv_in, ", patch, patch]");
  c.vision_width = conv.size(0);
  c.patch_size = conv.size(3);
  const Tensor& vpos = need(sd, "visual.positional_embedding", 2);
  int64_t grid = std::llround(std::sqrt(double(vpos.size(0) - 1)));
  VC_CHECK(grid * grid + 1 == vpos.size(0) && vpos.size(1) == c.vision_width,
           "clip config: visual.positional_embedding ", vpos.shape(), " should be [grid² + 1, ",
           c.vision_width, "]");
  c.image_size = grid * c.patch_size;
  c.vision_layers = count_layers(sd, "visual.transformer.resblocks.");
  c.vision_heads = heads_of(c.vision_width, "vision");

  const Tensor& tok = need(sd, "token_embedding.weight", 2);
  const Tensor& tpos = need(sd, "positional_embedding", 2);
  c.text_width = need(sd, "ln_final.weight", 1).size(0);
  c.vocab_size = tok.size(0);
  c.context_length = tpos.size(0);
  VC_CHECK(tok.size(1) == c.text_width && tpos.size(1) == c.text_width, "clip config: text width ",
           c.text_width, " (ln_final) disagrees with token_embedding ", tok.shape(),
           " or positional_embedding ", tpos.shape());
  c.text_layers = count_layers(sd, "transformer.resblocks.");
  c.text_heads = heads_of(c.text_width, "text");

  const Tensor& tproj = need(sd, "text_projection", 2);
  const Tensor& vproj = need(sd, "visual.proj", 2);
  c.embed_dim = tproj.size(1);
  VC_CHECK(vproj.size(1) == c.embed_dim, "clip config: visual.proj ", vproj.shape(),
           " and text_projection ", tproj.shape(), " disagree on the embedding size");

  c.name = "custom";
  for (const auto& n : ClipConfig::preset_names())
    if (ClipConfig::preset(n) == c) c.name = n;
  return c;
}

void check_state_dict(const StateDict& sd, const ClipConfig& config) {
  auto expected = expected_shapes(config);
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [key, shape] : expected) {
    auto it = sd.find(key);
    if (it == sd.end()) {
      missing.push_back(key);
    } else if (it->second.shape() != shape) {
      mismatched.push_back(key + " " + shape_str(it->second.shape()) + " vs expected " +
                           shape_str(shape));
    }
  }
  for (const auto& kv : sd)
    if (!expected.count(kv.first)) unexpected.push_back(kv.first);
  if (missing.empty() && unexpected.empty() && mismatched.empty()) return;
  std::ostringstream msg;
  msg << "clip weights: state dict does not match config '" << config.name << "'";
  auto list = [&](const char* what, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    msg << "; " << keys.size() << " " << what << ":";
    // A few names per list keep the error one readable line; the counts say the rest.
    for (size_t i = 0; i < keys.size() && i < 5; ++i)
      msg << " " << keys[i] << (i + 1 < keys.size() ? "," : "");
    if (keys.size() > 5) msg << " ...";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("with the wrong shape", mismatched);
  throw Error(msg.str());
}

}  // namespace vc::clip
