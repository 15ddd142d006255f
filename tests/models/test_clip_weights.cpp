// CLIP configs, parameter counts (against specs/ecosystem.md §3.1), config inference, and
// the OpenAI <-> Hugging Face state-dict mapping on a synthetic tiny CLIP built here.
#include <cmath>

#include "models/clip/clip.h"
#include "models/clip/weights.h"
#include "tests/common/testing.h"

using namespace vc;
using namespace vc::clip;
using vc::testing::hash_bits;

namespace {

// CLIP's parameter count written out: a pre-LN block has in_proj 3W²+3W, out_proj W²+W,
// c_fc 4W²+4W, c_proj 4W²+W and two LayerNorms 4W, i.e. 12W² + 13W.
int64_t formula_params(const ClipConfig& c, int64_t* vision_out = nullptr) {
  auto block = [](int64_t w) { return 12 * w * w + 13 * w; };
  int64_t w = c.vision_width, g = c.image_size / c.patch_size, t = c.text_width;
  // A conv stem of s channels: 3x3x3 weights and a bias per channel; conv1 then reads s channels.
  int64_t s = c.vision_stem, conv_in = s > 0 ? s : 3;
  int64_t vision = s * 27 + s + w * conv_in * c.patch_size * c.patch_size + w + (g * g + 1) * w + 2 * w +
                   c.vision_layers * block(w) + 2 * w + w * c.embed_dim;
  int64_t text =
      c.vocab_size * t + c.context_length * t + c.text_layers * block(t) + 2 * t + t * c.embed_dim;
  if (vision_out) *vision_out = vision;
  return vision + text + 1;  // + logit_scale
}

double millions(int64_t n) {
  return std::round(double(n) / 1e4) / 100;
}  // 2 decimals, like the spec

// A tiny OpenAI-named CLIP written out key by key from §3.2: vision width 64, 2 blocks,
// patch 4 on 8x8 images (5 tokens); text width 64, 2 blocks, context 7, vocab 11; embed 16.
StateDict tiny_openai() {
  StateDict sd;
  uint64_t seed = 1;
  auto add = [&](const std::string& key, const Shape& shape) {
    sd[key] = vc::testing::randn(shape, seed++, DType::F32);
  };
  auto block = [&](const std::string& p, int64_t w) {
    add(p + "attn.in_proj_weight", {3 * w, w});
    add(p + "attn.in_proj_bias", {3 * w});
    add(p + "attn.out_proj.weight", {w, w});
    add(p + "attn.out_proj.bias", {w});
    add(p + "ln_1.weight", {w});
    add(p + "ln_1.bias", {w});
    add(p + "mlp.c_fc.weight", {4 * w, w});
    add(p + "mlp.c_fc.bias", {4 * w});
    add(p + "mlp.c_proj.weight", {w, 4 * w});
    add(p + "mlp.c_proj.bias", {w});
    add(p + "ln_2.weight", {w});
    add(p + "ln_2.bias", {w});
  };
  add("visual.class_embedding", {64});
  add("visual.positional_embedding", {5, 64});
  add("visual.proj", {64, 16});
  add("visual.conv1.weight", {64, 3, 4, 4});
  add("visual.ln_pre.weight", {64});
  add("visual.ln_pre.bias", {64});
  add("visual.ln_post.weight", {64});
  add("visual.ln_post.bias", {64});
  for (int l = 0; l < 2; ++l) block("visual.transformer.resblocks." + std::to_string(l) + ".", 64);
  add("positional_embedding", {7, 64});
  add("text_projection", {64, 16});
  add("token_embedding.weight", {11, 64});
  add("ln_final.weight", {64});
  add("ln_final.bias", {64});
  for (int l = 0; l < 2; ++l) block("transformer.resblocks." + std::to_string(l) + ".", 64);
  sd["logit_scale"] = Tensor::scalar(4.6052);
  return sd;
}

ClipConfig tiny_config() {
  ClipConfig c;
  c.embed_dim = 16;
  c.image_size = 8, c.patch_size = 4;
  c.vision_width = 64, c.vision_layers = 2, c.vision_heads = 1;
  c.context_length = 7, c.vocab_size = 11;
  c.text_width = 64, c.text_layers = 2, c.text_heads = 1;
  return c;
}

void check_same(const StateDict& a, const StateDict& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [key, t] : a) {
    auto it = b.find(key);
    REQUIRE_MESSAGE(it != b.end(), "missing key " << key);
    CHECK_MESSAGE(t.shape() == it->second.shape(), key);
    CHECK_MESSAGE(hash_bits(t) == hash_bits(it->second), key);
  }
}

// Rows [begin, end) of a 2-d (or 1-d) tensor, as a fresh tensor.
Tensor rows(const Tensor& t, int64_t begin, int64_t end) {
  return t.narrow(0, begin, end - begin).contiguous();
}

}  // namespace

TEST_CASE("clip config: presets and parameter counts match the spec") {
  ParamCount b32 = count_parameters(ClipConfig::preset("ViT-B/32"));
  CHECK(b32.total == 151277313);
  CHECK(millions(b32.vision) == doctest::Approx(87.85));
  CHECK(millions(b32.text) == doctest::Approx(63.43));
  CHECK(b32.vision + b32.text + 1 == b32.total);
  CHECK(millions(count_parameters(ClipConfig::preset("ViT-B/16")).total) ==
        doctest::Approx(149.62));
  CHECK(millions(count_parameters(ClipConfig::preset("ViT-L/14")).total) ==
        doctest::Approx(427.62));
  // 336 px: only the positional embedding grows, from 257 to 577 rows of 1024.
  CHECK(count_parameters(ClipConfig::preset("ViT-L/14@336")).total ==
        count_parameters(ClipConfig::preset("ViT-L/14")).total + (577 - 257) * 1024);
  for (const auto& name : ClipConfig::preset_names()) {
    ClipConfig c = ClipConfig::preset(name);
    int64_t vision = 0;
    CHECK_MESSAGE(count_parameters(c).total == formula_params(c, &vision), name);
    CHECK_MESSAGE(count_parameters(c).vision == vision, name);
    CHECK(c.vision_heads * 64 == c.vision_width);
    CHECK(c.text_heads * 64 == c.text_width);
  }
  ClipConfig b16 = ClipConfig::preset("ViT-B/16");
  CHECK(b16.vision_tokens() == 197);
  CHECK(ClipConfig::preset("ViT-L/14").vision_tokens() == 257);
  CHECK(ClipConfig::preset("ViT-B/32").vision_tokens() == 50);
  CHECK(ClipConfig::preset("ViT-L/14").text_heads == 12);
  CHECK_THROWS_WITH_AS(ClipConfig::preset("ViT-H/14"), doctest::Contains("ViT-H/14"), Error);
}

TEST_CASE("clip config: expected shapes of ViT-B/32 are the spec's") {
  auto s = expected_shapes(ClipConfig::preset("ViT-B/32"));
  CHECK(s.at("positional_embedding") == Shape{77, 512});
  CHECK(s.at("text_projection") == Shape{512, 512});
  CHECK(s.at("logit_scale") == Shape{});
  CHECK(s.at("token_embedding.weight") == Shape{49408, 512});
  CHECK(s.at("transformer.resblocks.11.attn.in_proj_weight") == Shape{1536, 512});
  CHECK(s.at("transformer.resblocks.0.mlp.c_fc.weight") == Shape{2048, 512});
  CHECK(s.at("transformer.resblocks.0.mlp.c_proj.weight") == Shape{512, 2048});
  CHECK(s.at("visual.class_embedding") == Shape{768});
  CHECK(s.at("visual.positional_embedding") == Shape{50, 768});
  CHECK(s.at("visual.proj") == Shape{768, 512});
  CHECK(s.at("visual.conv1.weight") == Shape{768, 3, 32, 32});
  CHECK(s.at("visual.transformer.resblocks.11.attn.in_proj_weight") == Shape{2304, 768});
  CHECK(s.at("visual.transformer.resblocks.0.mlp.c_fc.weight") == Shape{3072, 768});
  CHECK(s.count("visual.conv1.bias") == 0);
  CHECK(s.count("visual.transformer.resblocks.12.ln_1.weight") == 0);
  // 12 keys per block, 24 blocks, 8 vision and 6 text/top-level others.
  CHECK(s.size() == 24 * 12 + 8 + 6);
}

TEST_CASE("clip config: inferred from the shapes of every preset") {
  for (const auto& name : ClipConfig::preset_names()) {
    ClipConfig want = ClipConfig::preset(name);
    // Shape-only stand-ins: a single zero expanded to each shape, no real memory.
    StateDict sd;
    for (const auto& [key, shape] : expected_shapes(want))
      sd[key] =
          shape.empty() ? Tensor::scalar(0) : Tensor::zeros(Shape(shape.size(), 1)).expand(shape);
    ClipConfig got = infer_config(sd);
    CHECK_MESSAGE(got == want, name);
    CHECK(got.name == name);
    CHECK_NOTHROW(check_state_dict(sd, want));
  }
  // A conv stem (not an OpenAI layout) is read back from visual.stem.weight, and the module
  // built from the config registers exactly the expected names and shapes.
  for (int64_t stem : {0, 8}) {
    ClipConfig want = ClipConfig::preset("tiny");
    want.vision_stem = stem;
    StateDict sd;
    for (const auto& [key, shape] : expected_shapes(want))
      sd[key] = shape.empty() ? Tensor::scalar(0) : Tensor::zeros(Shape(shape.size(), 1)).expand(shape);
    CHECK(sd.count("visual.stem.weight") == (stem > 0 ? 1 : 0));
    if (stem > 0) CHECK(sd.at("visual.conv1.weight").shape() == Shape{64, 8, want.patch_size, want.patch_size});
    CHECK(infer_config(sd) == want);
    CLIP model(want);
    nn::TensorDict built = model.state_dict();
    CHECK(built.size() == sd.size());
    for (const auto& key : built.keys()) {
      REQUIRE_MESSAGE(sd.count(key) == 1, key);
      CHECK_MESSAGE(sd.at(key).shape() == built.at(key).shape(), key);
    }
  }
  ClipConfig tiny = infer_config(tiny_openai());
  CHECK(tiny == tiny_config());
  CHECK(tiny.name == "custom");
  CHECK(tiny.grid() == 2);
}

TEST_CASE("clip weights: OpenAI -> Hugging Face names, splits and transposes") {
  StateDict oa = tiny_openai();
  StateDict hf = openai_to_hf(oa);
  // Per block: 12 OpenAI keys become 16 (in_proj weight/bias -> q, k, v).
  CHECK(hf.size() == oa.size() + 4 * 4);
  CHECK(detect_naming(hf) == Naming::HuggingFace);
  CHECK(detect_naming(oa) == Naming::OpenAI);
  for (const char* key :
       {"text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight", "text_model.final_layer_norm.bias",
        "vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
        "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
        "vision_model.post_layernorm.bias", "logit_scale",
        "vision_model.encoder.layers.1.layer_norm2.weight",
        "text_model.encoder.layers.0.mlp.fc1.bias", "text_model.encoder.layers.1.mlp.fc2.weight",
        "vision_model.encoder.layers.0.self_attn.out_proj.weight"})
    CHECK_MESSAGE(hf.count(key) == 1, key);
  CHECK(hash_bits(hf.at("vision_model.pre_layrnorm.weight")) ==
        hash_bits(oa.at("visual.ln_pre.weight")));
  CHECK(hash_bits(hf.at("text_model.encoder.layers.1.mlp.fc2.weight")) ==
        hash_bits(oa.at("transformer.resblocks.1.mlp.c_proj.weight")));

  // q, k, v are the row thirds of in_proj.
  const Tensor& w = oa.at("visual.transformer.resblocks.1.attn.in_proj_weight");
  const Tensor& b = oa.at("transformer.resblocks.0.attn.in_proj_bias");
  const char* parts[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    const Tensor& hw =
        hf.at("vision_model.encoder.layers.1.self_attn." + std::string(parts[i]) + "_proj.weight");
    const Tensor& hb =
        hf.at("text_model.encoder.layers.0.self_attn." + std::string(parts[i]) + "_proj.bias");
    CHECK(hw.shape() == Shape{64, 64});
    CHECK(hb.shape() == Shape{64});
    CHECK(hash_bits(hw) == hash_bits(rows(w, 64 * i, 64 * (i + 1))));
    CHECK(hash_bits(hb) == hash_bits(rows(b, 64 * i, 64 * (i + 1))));
  }
  // HF Linear projections are [out, in]: element (e, d) of the HF weight is proj[d][e].
  const Tensor& vp = hf.at("visual_projection.weight");
  const Tensor& tp = hf.at("text_projection.weight");
  REQUIRE(vp.shape() == Shape{16, 64});
  REQUIRE(tp.shape() == Shape{16, 64});
  for (int64_t e = 0; e < 16; e += 5)
    for (int64_t d = 0; d < 64; d += 7) {
      CHECK(vc::testing::at(vp, {e, d}) == vc::testing::at(oa.at("visual.proj"), {d, e}));
      CHECK(vc::testing::at(tp, {e, d}) == vc::testing::at(oa.at("text_projection"), {d, e}));
    }
}

TEST_CASE("clip weights: HF <-> OpenAI round trip, prefixes and stray buffers") {
  StateDict oa = tiny_openai();
  StateDict hf = openai_to_hf(oa);
  check_same(hf_to_openai(hf), oa);
  check_same(openai_to_hf(hf_to_openai(hf)), hf);

  // What a user hands over: DDP prefixes and position_ids buffers.
  StateDict wrapped;
  for (const auto& [k, t] : hf) wrapped["module." + k] = t;
  wrapped["module.text_model.embeddings.position_ids"] = Tensor::arange(7).reshape({1, 7});
  wrapped["module.vision_model.embeddings.position_ids"] = Tensor::arange(5).reshape({1, 5});
  StateDict back = to_openai(wrapped);
  check_same(back, oa);
  CHECK_NOTHROW(check_state_dict(back, tiny_config()));
  CHECK(infer_config(back) == tiny_config());

  // OpenAI archives: scalar metadata entries are dropped, prefixes stripped.
  StateDict archive;
  for (const auto& [k, t] : oa) archive["module.module." + k] = t;
  archive["input_resolution"] = Tensor::scalar(8, DType::I64);
  archive["context_length"] = Tensor::scalar(7, DType::I64);
  archive["vocab_size"] = Tensor::scalar(11, DType::I64);
  check_same(to_openai(archive), oa);
}

TEST_CASE("clip weights: errors name the key") {
  StateDict hf = openai_to_hf(tiny_openai());

  StateDict extra = hf;
  extra["prompt_learner.ctx"] = Tensor::zeros({4, 64});
  CHECK_THROWS_WITH_AS(hf_to_openai(extra), doctest::Contains("prompt_learner.ctx"), Error);
  CHECK(hf_to_openai(extra, /*keep_unknown=*/true).count("prompt_learner.ctx") == 1);
  StateDict odd_block = hf;
  odd_block["text_model.encoder.layers.0.adapter.weight"] = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(hf_to_openai(odd_block), doctest::Contains("adapter"), Error);

  StateDict no_v = hf;
  no_v.erase("vision_model.encoder.layers.1.self_attn.v_proj.weight");
  CHECK_THROWS_WITH_AS(hf_to_openai(no_v), doctest::Contains("v_proj"), Error);

  StateDict oa = tiny_openai();
  StateDict mit = oa;
  mit["mit.positional_embedding"] = Tensor::zeros({8, 16});
  CHECK_THROWS_WITH_AS(openai_to_hf(mit), doctest::Contains("mit.positional_embedding"), Error);

  StateDict no_conv = oa;
  no_conv.erase("visual.conv1.weight");
  CHECK_THROWS_WITH_AS(infer_config(no_conv), doctest::Contains("visual.conv1.weight"), Error);
  StateDict gap = oa;
  gap.erase("transformer.resblocks.0.attn.in_proj_weight");
  CHECK_THROWS_WITH_AS(infer_config(gap), doctest::Contains("transformer.resblocks."), Error);
  CHECK_THROWS_WITH_AS(check_state_dict(gap, tiny_config()),
                       doctest::Contains("transformer.resblocks.0.attn.in_proj_weight"), Error);

  StateDict bad_shape = oa;
  bad_shape["ln_final.weight"] = Tensor::zeros({63});
  CHECK_THROWS_WITH_AS(check_state_dict(bad_shape, tiny_config()),
                       doctest::Contains("ln_final.weight"), Error);
  CHECK_THROWS_WITH_AS(check_state_dict(oa, ClipConfig::preset("ViT-B/32")),
                       doctest::Contains("ViT-B/32"), Error);
}
