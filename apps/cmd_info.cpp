// verbclip info: a CLIP config and its parameter counts, from a preset name or a weights file.
#include <cxxopts.hpp>
#include <cstdio>
#include <iostream>

#include "apps/commands.h"
#include "apps/common/clip_weights.h"

namespace verbclip {

namespace {

std::string thousands(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

void print_config(const vc::clip::ClipConfig& c) {
  std::printf("model: %s\n", c.name.c_str());
  std::printf("  embed dim    %lld\n", (long long)c.embed_dim);
  std::printf("  image        %lld px, patch %lld, grid %lldx%lld (%lld tokens with the class token)\n",
              (long long)c.image_size, (long long)c.patch_size, (long long)c.grid(), (long long)c.grid(),
              (long long)c.vision_tokens());
  std::printf("  vision       width %lld, layers %lld, heads %lld\n", (long long)c.vision_width,
              (long long)c.vision_layers, (long long)c.vision_heads);
  std::printf("  text         width %lld, layers %lld, heads %lld, context %lld, vocabulary %lld\n",
              (long long)c.text_width, (long long)c.text_layers, (long long)c.text_heads,
              (long long)c.context_length, (long long)c.vocab_size);
  std::printf("  activation   %s\n", activation_string(c));
}

}  // namespace

int cmd_info(int argc, char** argv) {
  cxxopts::Options o(argv[0], "Print a CLIP config and its parameter counts (vision, text, total).");
  o.add_options()
      ("model", "a preset: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336, tiny", cxxopts::value<std::string>())
      ("weights", "a CLIP safetensors file (OpenAI or Hugging Face naming)", cxxopts::value<std::string>())
      ("activation", "quick_gelu or gelu, for weights that do not record it", cxxopts::value<std::string>())
      ("h,help", "show this help");
  auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::cout << o.help();
    return 0;
  }
  if (!r.unmatched().empty()) vc::fail("unexpected argument '", r.unmatched()[0], "'");
  if (r.count("weights") == 0 && r.count("model") == 0) vc::fail("give --model NAME or --weights FILE");

  vc::clip::ClipConfig c;
  int64_t loaded_params = -1;
  if (r.count("weights")) {
    ClipLoadOptions lo;
    if (r.count("model")) lo.model = r["model"].as<std::string>();
    if (r.count("activation")) lo.activation = r["activation"].as<std::string>();
    LoadedClip l = load_clip_weights(r["weights"].as<std::string>(), lo);
    for (const auto& n : l.notes) std::cerr << "note: " << n << "\n";
    c = l.config;
    loaded_params = l.model->num_parameters();
    print_config(c);
    std::printf("  naming       %s\n", l.naming == vc::clip::Naming::OpenAI ? "OpenAI" : "Hugging Face");
    std::string tok = l.tokenizer.rfind("word\n", 0) == 0 ? "word-level vocabulary (in the file)"
                      : l.tokenizer.empty()                ? "not recorded (OpenAI's BPE for OpenAI/HF weights)"
                                                           : l.tokenizer;
    std::printf("  tokenizer    %s\n", tok.c_str());
  } else {
    c = vc::clip::ClipConfig::preset(r["model"].as<std::string>());
    print_config(c);
  }
  vc::clip::ParamCount n = vc::clip::count_parameters(c);
  std::printf("parameters:\n");
  std::printf("  vision  %13s\n", thousands(n.vision).c_str());
  std::printf("  text    %13s\n", thousands(n.text).c_str());
  std::printf("  total   %13s  (%.2f M; vision + text + logit_scale)\n", thousands(n.total).c_str(),
              double(n.total) / 1e6);
  if (loaded_params >= 0 && loaded_params != n.total)
    vc::fail("internal: the loaded model has ", loaded_params, " parameters, the config ", n.total);
  return 0;
}

}  // namespace verbclip
