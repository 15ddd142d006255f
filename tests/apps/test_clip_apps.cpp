// The CLIP apps end to end: the weights loader (both namings, fp16, errors), `verbclip
// info`, `verbclip embed` and `verbclip pretrain-clip` (loss goes down; exact resume).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "apps/common/clip_data.h"
#include "apps/common/clip_weights.h"
#include "apps/common/config.h"
#include "apps/common/run_log.h"
#include "data/image.h"
#include "engine/engine.h"
#include "models/clip/weights.h"
#include "tests/apps/run_verbclip.h"

using namespace vc;
using namespace verbclip;
namespace fs = std::filesystem;

namespace {

using testing::RunResult;
using testing::run_verbclip;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("verbclip-clip-apps-" + std::to_string(getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

// Widths of 64 keep heads = width / 64, so the config can be inferred from the shapes.
clip::ClipConfig small_config() {
  clip::ClipConfig c = clip::ClipConfig::preset("tiny");
  c.name = "small";
  c.embed_dim = 16;
  c.image_size = 16, c.patch_size = 8;
  c.vision_width = 64, c.vision_layers = 1, c.vision_heads = 1;
  c.text_width = 64, c.text_layers = 1, c.text_heads = 1;
  c.context_length = 8, c.vocab_size = 11;  // kVocab's size
  return c;
}

const char* kVocab = "<pad>\n<unk>\na\nred\nblue\nbag\nshoe\nphoto\nof\n<|startoftext|>\n<|endoftext|>\n";

std::shared_ptr<clip::CLIP> random_clip(clip::ClipConfig c, uint64_t seed) {
  auto m = std::make_shared<clip::CLIP>(c);
  Generator g{seed, 0};
  clip::init_clip(*m, g);
  m->eval();
  return m;
}

void check_same_weights(const clip::CLIP& a, const clip::CLIP& b) {
  auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (const auto& [k, t] : sa) {
    CAPTURE(k);
    REQUIRE(sb.contains(k));
    CHECK(t.to_vector<float>() == sb.at(k).to_vector<float>());
  }
}

// The one error line of a failed run (notes may come before it).
void check_one_clear_error(const RunResult& r, const std::string& must_contain) {
  CAPTURE(r.output);
  CHECK(r.code != 0);
  CHECK(r.output.find(must_contain) != std::string::npos);
  std::istringstream in(r.output);
  std::string line;
  int errors = 0;
  while (std::getline(in, line)) errors += line.find("error") != std::string::npos;
  CHECK(errors == 1);
}

void write_png(const std::string& path, int size, uint8_t r, uint8_t g, uint8_t b) {
  data::Image img;
  img.height = img.width = size;
  img.pixels.resize(size_t(size * size * 3));
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      uint8_t* p = img.at(y, x);
      p[0] = uint8_t(r * (x + 1) / size), p[1] = uint8_t(g * (y + 1) / size), p[2] = b;
    }
  data::write_image(path, img);
}

std::vector<nlohmann::json> events(const std::string& out, const std::string& event) {
  return read_jsonl_events(out + "/log.jsonl", event);
}

}  // namespace

TEST_CASE("clip-apps: weights round trip in OpenAI and Hugging Face naming through the loader") {
  TempDir tmp;
  clip::ClipConfig c = small_config();
  c.quick_gelu = false;  // recorded in the metadata, so the loader must pick GELU
  auto model = random_clip(c, 3);
  const std::string desc = std::string("word\n") + kVocab;
  for (auto naming : {clip::Naming::OpenAI, clip::Naming::HuggingFace}) {
    bool hf = naming == clip::Naming::HuggingFace;
    CAPTURE(hf);
    std::string path = tmp / (hf ? "hf.safetensors" : "openai.safetensors");
    save_clip_weights(path, *model, desc, {{"resize_short", "0"}}, naming);
    nn::Metadata meta;
    auto raw = nn::load_safetensors(path, &meta);
    CHECK(raw.contains(hf ? "text_model.encoder.layers.0.self_attn.q_proj.weight"
                          : "transformer.resblocks.0.attn.in_proj_weight"));
    LoadedClip l = load_clip_weights(path);
    CHECK(l.naming == naming);
    CHECK(l.config == c);
    CHECK_FALSE(l.config.quick_gelu);
    CHECK(l.notes.empty());
    CHECK(l.tokenizer == desc);
    CHECK(l.metadata.at("resize_short") == "0");
    check_same_weights(*model, *l.model);
    auto tok = tokenizer_for(l);
    CHECK(tok->vocab_size() == c.vocab_size);
  }
  SUBCASE("no metadata, fp16, DDP prefix: config from the shapes, QuickGELU said out loud") {
    nn::StateDict sd;
    nn::SafetensorsSaveOptions so;
    for (const auto& [k, t] : clip::openai_to_hf(to_clip_dict(model->state_dict()))) {
      sd.set("module." + k, t);
      so.store_as["module." + k] = "F16";
    }
    std::string path = tmp / "fp16.safetensors";
    nn::save_safetensors(path, sd, {}, so);
    LoadedClip l = load_clip_weights(path);
    CHECK(l.naming == clip::Naming::HuggingFace);
    clip::ClipConfig want = c;
    want.quick_gelu = true;
    CHECK(l.config == want);
    REQUIRE(l.notes.size() == 1);
    CHECK(l.notes[0].find("QuickGELU") != std::string::npos);
    for (const auto& [k, t] : model->state_dict()) {
      CAPTURE(k);
      std::vector<float> a = t.to_vector<float>(), b = l.model->get(k).to_vector<float>();
      for (size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 1e-3 * std::abs(a[i]) + 1e-7);
    }
    // The flag decides when the file does not; a flag against the metadata is an error.
    CHECK_FALSE(load_clip_weights(path, {"", "gelu"}).config.quick_gelu);
    CHECK_THROWS_WITH_AS(load_clip_weights(tmp / "openai.safetensors", {"", "quick_gelu"}),
                         doctest::Contains("--activation quick_gelu"), Error);
    CHECK_THROWS_WITH_AS(tokenizer_for(l), doctest::Contains("--bpe"), Error);
    // A preset that does not fit is the strict error, naming keys.
    CHECK_THROWS_WITH_AS(load_clip_weights(path, {"tiny", ""}), doctest::Contains("wrong shape"), Error);
  }
}

TEST_CASE("clip-apps: info prints the known CLIP parameter counts") {
  RunResult r = run_verbclip({"info", "--model", "ViT-B/32"});
  CAPTURE(r.output);
  CHECK(r.code == 0);
  CHECK(r.output.find("total     151,277,313") != std::string::npos);
  CHECK(r.output.find("vision     87,849,216") != std::string::npos);
  CHECK(r.output.find("text       63,428,096") != std::string::npos);
  CHECK(r.output.find("width 768, layers 12, heads 12") != std::string::npos);
  RunResult l14 = run_verbclip({"info", "--model", "ViT-L/14"});
  CHECK(l14.output.find("427,616,513") != std::string::npos);

  TempDir tmp;
  auto model = random_clip(small_config(), 4);
  save_clip_weights(tmp / "w.safetensors", *model, std::string("word\n") + kVocab);
  RunResult w = run_verbclip({"info", "--weights", tmp / "w.safetensors"});
  CAPTURE(w.output);
  CHECK(w.code == 0);
  int64_t total = clip::count_parameters(small_config()).total;
  std::string with_commas = std::to_string(total);
  for (int i = int(with_commas.size()) - 3; i > 0; i -= 3) with_commas.insert(size_t(i), ",");
  CHECK(w.output.find("total   " + std::string(13 - with_commas.size(), ' ') + with_commas) != std::string::npos);
  CHECK(w.output.find("word-level vocabulary") != std::string::npos);
}

TEST_CASE("clip-apps: embed on a tiny random-weights CLIP") {
  TempDir tmp;
  clip::ClipConfig c = small_config();
  auto model = random_clip(c, 5);
  const std::string weights = tmp / "w.safetensors";
  save_clip_weights(weights, *model, std::string("word\n") + kVocab, {{"resize_short", "0"}});
  write_png(tmp / "a.png", 20, 200, 30, 30);
  write_png(tmp / "b.png", 20, 20, 40, 220);
  const std::vector<std::string> texts = {"a red bag", "a photo of a blue shoe, of a bag"};
  RunResult r = run_verbclip({"embed", "--weights", weights, "--image", tmp / "a.png", tmp / "b.png",
                              "--text", texts[0], texts[1], "--out", tmp / "e.json"});
  CAPTURE(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("cosine similarity") != std::string::npos);
  std::ifstream in(tmp / "e.json");
  nlohmann::json j = nlohmann::json::parse(in);
  CHECK(j["texts"].get<std::vector<std::string>>() == texts);  // the comma did not split it
  auto img = j["image_embeds"].get<std::vector<std::vector<double>>>();
  auto txt = j["text_embeds"].get<std::vector<std::vector<double>>>();
  auto sim = j["similarity"].get<std::vector<std::vector<double>>>();
  REQUIRE(img.size() == 2);
  REQUIRE(txt.size() == 2);
  for (const auto* rows : {&img, &txt})
    for (const auto& e : *rows) {
      REQUIRE(int64_t(e.size()) == c.embed_dim);
      double n2 = 0;
      for (double v : e) n2 += v * v;
      CHECK(std::sqrt(n2) == doctest::Approx(1).epsilon(1e-5));
    }
  for (size_t i = 0; i < 2; ++i)
    for (size_t k = 0; k < 2; ++k) {
      double dot = 0;
      for (size_t d = 0; d < img[i].size(); ++d) dot += img[i][d] * txt[k][d];
      CHECK(sim[i][k] == doctest::Approx(dot).epsilon(1e-5));
    }
  // In-process reference: centre crop 16 of the 20x20 image, CLIP normalisation.
  {
    NoGradGuard ng;
    data::Image a = data::read_image(tmp / "a.png");
    std::vector<float> planes(size_t(3 * 16 * 16));
    const float mean[3] = {0.48145466f * 255, 0.4578275f * 255, 0.40821073f * 255};
    const float stdv[3] = {0.26862954f * 255, 0.26130258f * 255, 0.27577711f * 255};
    for (int ch = 0; ch < 3; ++ch)
      for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 16; ++x)
          planes[size_t((ch * 16 + y) * 16 + x)] = (float(a.at(y + 2, x + 2)[ch]) - mean[ch]) / stdv[ch];
    Tensor e = l2_normalize(model->encode_image(Tensor::from_vector(planes, {1, 3, 16, 16})), -1);
    std::vector<float> v = e.to_vector<float>();
    for (size_t d = 0; d < v.size(); ++d) CHECK(img[0][d] == doctest::Approx(v[d]).epsilon(1e-4));
  }
  RunResult s = run_verbclip({"embed", "--weights", weights, "--image", tmp / "a.png", "--text", "a bag",
                              "--out", tmp / "e.safetensors"});
  CHECK(s.code == 0);
  auto st = nn::load_safetensors(tmp / "e.safetensors");
  CHECK(st.at("similarity").shape() == Shape{1, 1});
  CHECK(st.at("image_embeds").shape() == Shape{1, c.embed_dim});
  // Texts alone are fine too; nothing at all is an error.
  CHECK(run_verbclip({"embed", "--weights", weights, "--text", "a shoe"}).code == 0);
  check_one_clear_error(run_verbclip({"embed", "--weights", weights}), "--image or --text");
}

TEST_CASE("clip-apps: errors give one clear message and a non-zero exit") {
  TempDir tmp;
  check_one_clear_error(run_verbclip({"embed", "--weights", tmp / "missing.safetensors", "--text", "a"}),
                        "missing.safetensors");
  check_one_clear_error(run_verbclip({"info", "--weights", tmp / "missing.safetensors"}), "missing.safetensors");
  // Wrong naming: not CLIP keys at all.
  nn::StateDict junk;
  junk.set("encoder.conv.weight", Tensor::zeros({4, 3}));
  nn::save_safetensors(tmp / "junk.safetensors", junk);
  check_one_clear_error(run_verbclip({"info", "--weights", tmp / "junk.safetensors"}), "visual.conv1.weight");
  // Truncated file.
  auto model = random_clip(small_config(), 6);
  save_clip_weights(tmp / "w.safetensors", *model, std::string("word\n") + kVocab);
  std::string bytes;
  {
    std::ifstream f(tmp / "w.safetensors", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  {
    std::ofstream f(tmp / "cut.safetensors", std::ios::binary);
    f.write(bytes.data(), long(bytes.size() / 2));
  }
  check_one_clear_error(run_verbclip({"info", "--weights", tmp / "cut.safetensors"}), "cut.safetensors");
  check_one_clear_error(run_verbclip({"info"}), "--model");
  check_one_clear_error(run_verbclip({"info", "--model", "ViT-X/99"}), "ViT-X/99");
  check_one_clear_error(run_verbclip({"pretrain-clip", "--out", tmp / "o"}), "--data");
  check_one_clear_error(run_verbclip({"pretrain-clip", "--data", tmp / "nowhere", "--out", tmp / "o"}), "nowhere");
  check_one_clear_error(run_verbclip({"pretrain-clip", "--out", tmp / "o2", "--resume"}), "checkpoint_last");
  check_one_clear_error(run_verbclip({"embed", "--weights", tmp / "w.safetensors", "--image", tmp / "none.png"}),
                        "none.png");
}

TEST_CASE("clip-apps: a config value that is not UTF-8 is refused; the stored config reloads equal (fuzz_config)") {
  // Before: the value loaded, and to_yaml() (logs, checkpoints) wrote U+FFFD for the bytes.
  Config c;
  c.declare("DATA.ROOT", "", "root");
  c.declare("TRAIN.NAME", "", "name");
  CHECK_THROWS_WITH_AS(c.load_yaml_text("DATA:\n  ROOT: /data/caf\xE9\n", "latin1.yaml"),
                       doctest::Contains("latin1.yaml: the value of 'DATA.ROOT' is not valid UTF-8"), vc::Error);
  CHECK_THROWS_AS(c.apply_opts({"DATA.ROOT", "\xFF"}), vc::Error);
  c.apply_opts({"DATA.ROOT", "/data/caf\xC3\xA9 \x01", "TRAIN.NAME", "a: b # c"});
  Config again;
  again.declare("DATA.ROOT", "", "root");
  again.declare("TRAIN.NAME", "", "name");
  again.load_yaml_text(c.to_yaml(), "to_yaml");
  CHECK(again.str("DATA.ROOT") == c.str("DATA.ROOT"));
  CHECK(again.str("TRAIN.NAME") == "a: b # c");
}

TEST_CASE("clip-apps: config keys, --opts overrides and unknown keys") {
  Config c;
  c.declare("TRAIN.LR", "1e-3", "learning rate");
  c.declare("TRAIN.EPOCHS", "3", "epochs");
  c.declare("DATA.ROOT", "", "root");
  TempDir tmp;
  {
    std::ofstream f(tmp / "base.yaml");
    f << "TRAIN:\n  LR: 5e-4\n  EPOCHS: 7\n";
  }
  {
    std::ofstream f(tmp / "run.yaml");
    f << "BASE: [base.yaml]\nTRAIN:\n  EPOCHS: 9\n";
  }
  c.load_yaml_file(tmp / "run.yaml");
  CHECK(c.number("TRAIN.LR") == 5e-4);
  CHECK(c.integer("TRAIN.EPOCHS") == 9);
  c.apply_opts({"TRAIN.EPOCHS", "11", "DATA.ROOT", "/x"});
  CHECK(c.integer("TRAIN.EPOCHS") == 11);
  CHECK(c.source("TRAIN.EPOCHS") == "--opts");
  CHECK_THROWS_WITH_AS(c.apply_opts({"TRAIN.EPOCH", "2"}), doctest::Contains("did you mean 'TRAIN.EPOCHS'"), Error);
  CHECK_THROWS_WITH_AS(c.apply_opts({"TRAIN.LR"}), doctest::Contains("KEY VALUE"), Error);
  c.set("TRAIN.LR", "fast", "test");
  CHECK_THROWS_WITH_AS(c.number("TRAIN.LR"), doctest::Contains("TRAIN.LR = 'fast'"), Error);
  // to_yaml reads back to the same values.
  c.set("TRAIN.LR", "0.002", "test");
  Config d;
  d.declare("TRAIN.LR", "1e-3", "");
  d.declare("TRAIN.EPOCHS", "3", "");
  d.declare("DATA.ROOT", "", "");
  d.load_yaml_text(c.to_yaml(), "dump");
  CHECK(d.number("TRAIN.LR") == 0.002);
  CHECK(d.integer("TRAIN.EPOCHS") == 11);
  CHECK(d.str("DATA.ROOT") == "/x");
  {
    std::ofstream f(tmp / "bad.yaml");
    f << "TRAIN:\n  LRR: 1\n";
  }
  CHECK_THROWS_WITH_AS(d.load_yaml_file(tmp / "bad.yaml"), doctest::Contains("TRAIN.LRR"), Error);
}

TEST_CASE("clip-apps: caption parts and the training-time caption augmentation") {
  CaptionParts p = parse_caption("a red ankle boot lying on its side near the top left");
  REQUIRE(p.ok);
  CHECK(p.colour == "red");
  CHECK(p.noun == "ankle boot");
  CHECK(p.posture == "lying on its side");
  CHECK(p.place == "near the top left");
  CaptionParts q = parse_caption("a white t-shirt standing upright in the centre");
  REQUIRE(q.ok);
  CHECK(q.noun == "t-shirt");  // not "shirt"
  CHECK(q.place == "in the centre");
  CHECK_FALSE(parse_caption("something else entirely").ok);
  CHECK_FALSE(parse_caption("a purple sneaker").ok);  // not a palette colour

  const std::string full = "a red ankle boot lying on its side near the top left";
  data::SampleRng r0(1, 0, 0, data::RngPurpose(24), 0);
  CHECK(augment_caption(full, p, CaptionAugment{}, r0) == full);  // keep everything, no prefix
  CaptionAugment noun_only{0.0, 0.0, 1.0};
  data::SampleRng r1(1, 0, 0, data::RngPurpose(24), 0);
  CHECK(augment_caption(full, p, noun_only, r1) == "a photo of a ankle boot");
  data::SampleRng r2(1, 0, 0, data::RngPurpose(24), 0);
  CHECK(augment_caption(full, p, CaptionAugment{0.0, 0.0, 0.0}, r2, /*strength=*/0.0) == full);
  // Unparsed captions stay as they are; the draws are the same either way.
  data::SampleRng r3(1, 0, 0, data::RngPurpose(24), 0);
  CHECK(augment_caption("a custom caption", CaptionParts{}, noun_only, r3) == "a custom caption");
  // A mix: some captions shortened, the same ones for the same (seed, epoch, index).
  CaptionAugment mix{0.5, 0.5, 0.5};
  int shorter = 0, photo = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    data::SampleRng a(7, 3, 0, data::RngPurpose(24), i), b(7, 3, 0, data::RngPurpose(24), i);
    std::string x = augment_caption(full, p, mix, a);
    CHECK(x == augment_caption(full, p, mix, b));
    CHECK(x.find("ankle boot") != std::string::npos);
    shorter += x.size() < full.size(), photo += x.rfind("a photo of a ", 0) == 0;
  }
  CHECK(shorter > 100);
  CHECK(photo > 60);
  CHECK(photo < 140);
}

TEST_CASE("clip-apps: bare captions and the attribute-swapped hard negatives") {
  const std::string full = "a red ankle boot lying on its side near the top left";
  CaptionParts p = parse_caption(full);
  REQUIRE(p.ok);
  CHECK(compose_caption(p, false) == full);
  // bare = 1 drops posture and place together; what was kept is reported.
  CaptionAugment bare{1.0, 1.0, 0.0, 1.0};
  data::SampleRng r0(1, 0, 0, data::RngPurpose(24), 0);
  KeptCaption kept;
  CHECK(augment_caption(full, p, bare, r0, 1.0, &kept) == "a red ankle boot");
  CHECK(kept.parts.ok);
  CHECK(kept.parts.posture.empty());
  CHECK(kept.parts.place.empty());
  // Swaps of the full caption: every noun but the true one, then both other postures, each
  // differing from the caption in exactly that attribute.
  KeptCaption k{p, true};
  data::SampleRng r1(1, 0, 0, data::RngPurpose(25), 0);
  std::vector<std::string> neg = swapped_captions(k, 9, 2, r1);
  REQUIRE(neg.size() == 11);
  std::set<std::string> nouns_seen, postures_seen;
  for (size_t i = 0; i < neg.size(); ++i) {
    CaptionParts q = parse_caption(neg[i].substr(std::string("a photo of ").size()));
    REQUIRE_MESSAGE(q.ok, neg[i]);
    CHECK(q.colour == "red");
    CHECK(q.place == "near the top left");
    if (i < 9) {
      CHECK(q.posture == p.posture);
      CHECK(q.noun != p.noun);
      nouns_seen.insert(q.noun);
    } else {
      CHECK(q.noun == p.noun);
      CHECK(q.posture != p.posture);
      postures_seen.insert(q.posture);
    }
  }
  CHECK(nouns_seen.size() == 9);
  CHECK(postures_seen.size() == 2);
  // Fewer swaps: a random subset, the same for the same stream; none for a caption without
  // a posture (posture swaps) or an unparsed one.
  data::SampleRng a(3, 1, 0, data::RngPurpose(25), 5), b(3, 1, 0, data::RngPurpose(25), 5);
  CHECK(swapped_captions(k, 3, 1, a) == swapped_captions(k, 3, 1, b));
  KeptCaption no_posture = kept;
  data::SampleRng c(3, 1, 0, data::RngPurpose(25), 6);
  CHECK(swapped_captions(no_posture, 2, 2, c).size() == 2);
  data::SampleRng d(3, 1, 0, data::RngPurpose(25), 7);
  CHECK(swapped_captions(KeptCaption{}, 2, 2, d).empty());
}

TEST_CASE("clip-apps: pretrain-clip lowers the loss, resumes exactly and tests zero-shot") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) {
    MESSAGE("SKIPPED: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  TempDir tmp;
  const std::string data = tmp / "fm";
  RunResult g = run_verbclip({"make-data", "--out", data, "--train-per-class", "1", "--val-per-class", "1",
                              "--test-per-class", "1", "--captions", "360", "--quiet", "--threads", "2"});
  REQUIRE_MESSAGE(g.code == 0, g.output);
  // A small model: one block per tower, 32x32 crops in 8x8 patches, batch 32, the default lr
  // (at 3e-3 the conv stem stalls: loss 3.48 -> 3.46 in 30 steps, against 3.48 -> 3.05 here).
  const std::vector<std::string> common = {
      "--data", data, "--batch-size", "32", "--steps", "30", "--lr", "1.5e-3", "--quiet", "--zero-shot-images", "0",
      "--opts", "DATA.INPUT_SIZE", "32", "MODEL.PATCH_SIZE", "8", "MODEL.VISION_WIDTH", "64", "MODEL.TEXT_WIDTH",
      "64", "MODEL.VISION_LAYERS", "1", "MODEL.TEXT_LAYERS", "1", "TRAIN.WARMUP_STEPS",
      "2", "PRINT_FREQ", "1"};
  auto with = [&](std::vector<std::string> head) {
    std::vector<std::string> a = {"pretrain-clip"};
    a.insert(a.end(), head.begin(), head.end());
    a.insert(a.end(), common.begin(), common.end());
    return a;
  };
  const std::string full = tmp / "full", half = tmp / "half", plain = tmp / "plain";
  // The loss on the captions as written (the default caption augmentation makes the texts
  // of a few steps harder as it ramps in, so it is off here).
  std::vector<std::string> no_aug = with({"--out", plain});
  for (const char* kv : {"TRAIN.CAPTION_KEEP_COLOUR", "1", "TRAIN.CAPTION_KEEP", "1", "TRAIN.CAPTION_PHOTO", "0",
                         "TRAIN.CAPTION_BARE", "0"})
    no_aug.push_back(kv);
  RunResult p = run_verbclip(no_aug);
  REQUIRE_MESSAGE(p.code == 0, p.output);
  CHECK(p.output.find("caption augmentation: off") != std::string::npos);
  auto train = events(plain, "train");
  REQUIRE(train.size() == 30);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += train[size_t(i)]["loss"].get<double>() / 5, last += train[size_t(25 + i)]["loss"].get<double>() / 5;
  CHECK_MESSAGE(last < first - 0.1, "loss ", first, " -> ", last);
  // The defaults (caption augmentation on): exact resume below.
  RunResult a = run_verbclip(with({"--out", full}));
  REQUIRE_MESSAGE(a.code == 0, a.output);
  CHECK(a.output.find("caption augmentation: keep") != std::string::npos);
  CHECK(fs::exists(full + "/clip.safetensors"));
  CHECK(fs::exists(full + "/checkpoint_last.safetensors"));
  CHECK(fs::exists(full + "/checkpoint_best.safetensors"));
  CHECK(fs::exists(full + "/loss.svg"));
  CHECK(fs::exists(full + "/log.txt"));

  // 13 steps (mid-epoch), stop; resume for the other 17: the final weights are bitwise the same.
  RunResult b1 = run_verbclip(with({"--out", half, "--stop-at", "13"}));
  REQUIRE_MESSAGE(b1.code == 0, b1.output);
  CHECK_FALSE(fs::exists(half + "/clip.safetensors"));
  RunResult again = run_verbclip(with({"--out", half}));
  check_one_clear_error(again, "--resume");
  RunResult b2 = run_verbclip(with({"--out", half, "--resume"}));
  REQUIRE_MESSAGE(b2.code == 0, b2.output);
  LoadedClip wa = load_clip_weights(full + "/clip.safetensors");
  LoadedClip wb = load_clip_weights(half + "/clip.safetensors");
  check_same_weights(*wa.model, *wb.model);
  CHECK(wa.tokenizer.rfind("word\n", 0) == 0);
  CHECK(wa.config.vocab_size == clip::WordTokenizer::from_file(data + "/text/vocab.txt")->vocab_size());
  CHECK(events(half, "train").size() == 30);

  // The zero-shot test runs on the saved weights' model and lands in the JSON log.
  RunResult z = run_verbclip({"pretrain-clip", "--data", data, "--out", tmp / "zs", "--steps", "1", "--batch-size",
                              "16", "--quiet", "--zero-shot-images", "50", "--opts", "DATA.INPUT_SIZE", "16",
                              "MODEL.PATCH_SIZE", "8", "MODEL.VISION_LAYERS", "1", "MODEL.TEXT_LAYERS", "1"});
  REQUIRE_MESSAGE(z.code == 0, z.output);
  auto zs = events(tmp / "zs", "zero_shot");
  REQUIRE(zs.size() == 1);
  CHECK(zs[0]["images"] == 50);
  CHECK(zs[0]["accuracy"].get<double>() >= 0);
  CHECK(z.output.find("zero-shot Fashion-MNIST") != std::string::npos);

  // The attribute probe: every val image (fewer than 120 here) is asked once per attribute,
  // among the values its attribute takes in the val captions.
  auto probe = events(tmp / "zs", "attribute_probe");
  REQUIRE(probe.size() == 1);
  int64_t val_images = 0;
  {
    std::ifstream f(data + "/captions/val.tsv");
    for (std::string line; std::getline(f, line);) val_images += !line.empty();
  }
  REQUIRE(val_images > 0);
  val_images = std::min<int64_t>(val_images, 120);
  for (const char* attr : {"colour", "noun", "posture", "place"}) {
    INFO(attr);
    REQUIRE(probe[0].contains(attr));
    CHECK(probe[0][attr]["images"].get<int64_t>() == val_images);
    const double acc = probe[0][attr]["accuracy"].get<double>(), chance = probe[0][attr]["chance"].get<double>();
    CHECK((acc >= 0 && acc <= 100));
    CHECK((chance > 0 && chance <= 100));
  }
  CHECK(z.output.find("attribute probe (") != std::string::npos);
}
