// verbclip embed: L2-normalised CLIP embeddings of images and texts, and their similarity
// matrix; printed, and saved with --out (.safetensors or .json).
#include <cxxopts.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/common/clip_data.h"
#include "apps/common/clip_weights.h"
#include "data/image.h"
#include "data/util.h"
#include "engine/engine.h"

namespace verbclip {

namespace {

// "--image a.png b.png --text "x" "y"": the values after --image / --text up to the next
// flag. Taken out before cxxopts, which would split texts at commas.
std::vector<char*> take_lists(int argc, char** argv, std::vector<std::string>& images,
                              std::vector<std::string>& texts) {
  std::vector<char*> rest = {argv[0]};
  std::vector<std::string>* into = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--image" || a == "--text") {
      into = a == "--image" ? &images : &texts;
      if (i + 1 >= argc) vc::fail(a, " needs a value");
      continue;
    }
    if (a.rfind("--image=", 0) == 0) { images.push_back(a.substr(8)); into = nullptr; continue; }
    if (a.rfind("--text=", 0) == 0) { texts.push_back(a.substr(7)); into = nullptr; continue; }
    if (into && a.rfind("--", 0) != 0) {
      into->push_back(a);
      continue;
    }
    into = nullptr;
    rest.push_back(argv[i]);
  }
  return rest;
}

void print_matrix(const char* title, const std::vector<float>& m, int64_t rows, int64_t cols,
                  const std::vector<std::string>& row_names, const std::vector<std::string>& col_names) {
  std::printf("%s (rows: images, columns: texts)\n", title);
  for (int64_t j = 0; j < cols; ++j) std::printf("  text %lld: %s\n", (long long)j, col_names[size_t(j)].c_str());
  std::printf("%-28s", "");
  for (int64_t j = 0; j < cols; ++j) std::printf(" %8s", ("text " + std::to_string(j)).c_str());
  std::printf("\n");
  for (int64_t i = 0; i < rows; ++i) {
    std::string n = row_names[size_t(i)];
    if (n.size() > 27) n = "..." + n.substr(n.size() - 24);
    std::printf("%-28s", n.c_str());
    for (int64_t j = 0; j < cols; ++j) std::printf(" %8.4f", m[size_t(i * cols + j)]);
    std::printf("\n");
  }
}

}  // namespace

int cmd_embed(int argc, char** argv) {
  std::vector<std::string> images, texts;
  std::vector<char*> args = take_lists(argc, argv, images, texts);
  cxxopts::Options o(argv[0], "L2-normalised CLIP embeddings of images and texts and their cosine similarities.\n"
                              "usage: verbclip embed --weights W --image A.png B.png --text \"a red bag\" \"a shoe\" [--out FILE]");
  o.add_options()
      ("weights", "CLIP safetensors (OpenAI or Hugging Face naming)", cxxopts::value<std::string>())
      ("image", "image files (PNG, JPEG, ...), one or more")
      ("text", "texts, one or more (quote each)")
      ("bpe", "OpenAI's bpe_simple_vocab_16e6.txt.gz, for OpenAI / Hugging Face weights", cxxopts::value<std::string>())
      ("model", "preset to check the weights against (default: from the file)", cxxopts::value<std::string>())
      ("activation", "quick_gelu or gelu, for weights that do not record it", cxxopts::value<std::string>())
      ("resize", "resize the short side to this before the centre crop (default: from the weights, "
                 "else the input size; 0 = never)", cxxopts::value<int64_t>())
      ("out", "write embeddings and similarities to FILE (.safetensors or .json)", cxxopts::value<std::string>())
      ("print-embeddings", "also print the embedding vectors")
      ("threads", "CPU threads (0 = all)", cxxopts::value<int>()->default_value("0"))
      ("h,help", "show this help");
  auto r = o.parse(int(args.size()), args.data());
  if (r.count("help")) {
    std::cout << o.help();
    return 0;
  }
  if (!r.unmatched().empty()) vc::fail("unexpected argument '", r.unmatched()[0], "'");
  if (!r.count("weights")) vc::fail("--weights FILE is required");
  if (images.empty() && texts.empty()) vc::fail("give at least one --image or --text");
  std::string out;
  if (r.count("out")) {
    out = r["out"].as<std::string>();
    if (!vc::data::ends_with(out, ".safetensors") && !vc::data::ends_with(out, ".json"))
      vc::fail("--out '", out, "': the name must end in .safetensors or .json");
  }
  if (r["threads"].as<int>() > 0) vc::set_num_threads(r["threads"].as<int>());

  ClipLoadOptions lo;
  if (r.count("model")) lo.model = r["model"].as<std::string>();
  if (r.count("activation")) lo.activation = r["activation"].as<std::string>();
  LoadedClip clip = load_clip_weights(r["weights"].as<std::string>(), lo);
  for (const auto& n : clip.notes) std::cerr << "note: " << n << "\n";
  const int64_t input = clip.config.image_size;
  const int64_t resize = r.count("resize") ? r["resize"].as<int64_t>() : default_resize_short(clip.metadata, input);

  vc::NoGradGuard no_grad;
  vc::Tensor img_emb, txt_emb;
  if (!images.empty()) {
    std::vector<vc::Tensor> batch;
    for (const auto& path : images) batch.push_back(preprocess_image(vc::data::read_image(path), input, resize, path));
    img_emb = vc::l2_normalize(clip.model->encode_image(vc::stack(batch, 0)), -1);
  }
  if (!texts.empty()) {
    auto tok = tokenizer_for(clip, r.count("bpe") ? r["bpe"].as<std::string>() : "");
    txt_emb = text_features(*clip.model, *tok, texts);
  }

  const int64_t D = clip.config.embed_dim;
  std::printf("weights: %s (%s, embedding dim %lld)\n", r["weights"].as<std::string>().c_str(),
              clip.config.name.c_str(), (long long)D);
  auto print_emb = [&](const char* what, const vc::Tensor& e, const std::vector<std::string>& names) {
    std::vector<float> v = e.to_vector<float>();
    for (size_t i = 0; i < names.size(); ++i) {
      std::printf("%s %zu (%s):", what, i, names[i].c_str());
      for (int64_t k = 0; k < D; ++k) std::printf(" %.6f", v[i * size_t(D) + size_t(k)]);
      std::printf("\n");
    }
  };
  if (r.count("print-embeddings")) {
    if (img_emb.defined()) print_emb("image", img_emb, images);
    if (txt_emb.defined()) print_emb("text", txt_emb, texts);
  }
  vc::Tensor sim, probs;
  if (img_emb.defined() && txt_emb.defined()) {
    sim = vc::matmul(img_emb, txt_emb.transpose(0, 1)).contiguous();  // cosine similarities
    probs = vc::softmax(vc::mul(sim, clip.model->scale()), 1);
    const int64_t N = int64_t(images.size()), M = int64_t(texts.size());
    print_matrix("cosine similarity", sim.to_vector<float>(), N, M, images, texts);
    std::printf("\n");
    print_matrix("probabilities (softmax of logit_scale x similarity over the texts)", probs.to_vector<float>(), N,
                 M, images, texts);
  } else {
    std::printf("%zu %s embedded (give both --image and --text for similarities)\n",
                images.empty() ? texts.size() : images.size(), images.empty() ? "texts" : "images");
  }

  if (!out.empty()) {
    if (vc::data::ends_with(out, ".safetensors")) {
      vc::nn::StateDict sd;
      if (img_emb.defined()) sd.set("image_embeds", img_emb.contiguous());
      if (txt_emb.defined()) sd.set("text_embeds", txt_emb.contiguous());
      if (sim.defined()) sd.set("similarity", sim), sd.set("probabilities", probs.contiguous());
      vc::nn::Metadata meta;
      meta["images"] = nlohmann::json(images).dump();
      meta["texts"] = nlohmann::json(texts).dump();
      meta["weights"] = r["weights"].as<std::string>();
      vc::nn::save_safetensors(out, sd, meta);
    } else {
      auto rows = [](const vc::Tensor& t) {
        nlohmann::json j = nlohmann::json::array();
        std::vector<float> v = t.to_vector<float>();
        for (int64_t i = 0; i < t.size(0); ++i)
          j.push_back(std::vector<float>(v.begin() + i * t.size(1), v.begin() + (i + 1) * t.size(1)));
        return j;
      };
      nlohmann::ordered_json j;
      j["weights"] = r["weights"].as<std::string>();
      j["images"] = images;
      j["texts"] = texts;
      if (img_emb.defined()) j["image_embeds"] = rows(img_emb);
      if (txt_emb.defined()) j["text_embeds"] = rows(txt_emb);
      if (sim.defined()) j["similarity"] = rows(sim), j["probabilities"] = rows(probs);
      std::string s = j.dump(1) + "\n";
      vc::nn::write_file_atomically(out, [&](std::FILE* f) {
        VC_CHECK(std::fwrite(s.data(), 1, s.size(), f) == s.size(), "cannot write '", out, "'");
      });
    }
    std::printf("wrote %s\n", out.c_str());
  }
  return 0;
}

}  // namespace verbclip
