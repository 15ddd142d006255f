// Reliability (issue 20): a corpus of hostile inputs, generated here, each of which must give
// one clear line naming the thing (a vc::Error whose message is a single line of valid UTF-8
// under 600 bytes; through the binary: a non-zero exit and one "error" line) and no crash;
// kill-and-resume of `verbclip train` and `pretrain-clip` at fixed points (nn/faults.h);
// a full disk and a read-only folder during a checkpoint write.
#include <doctest/doctest.h>
#include <stb_image_write.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "apps/common/clip_weights.h"
#include "apps/common/config.h"
#include "apps/common/run_log.h"
#include "apps/common/video_run.h"
#include "data/annotations.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/util.h"
#include "engine/engine.h"
#include "models/clip/text_tokenizer.h"
#include "models/clip/tokenizer.h"
#include "models/clip/weights.h"
#include "nn/safetensors.h"
#include "tests/apps/run_verbclip.h"

using namespace verbclip;
namespace fs = std::filesystem;
namespace data = vc::data;

namespace {

using testing::RunResult;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("verbclip-reliability-" + tag + "-" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// One line of valid UTF-8 without control characters, short enough to read.
// (Weights errors list up to 8 names of each kind: up to 1200 bytes.)
void check_clear_message(const std::string& msg, const std::string& must_contain, size_t max_bytes = 600) {
  CAPTURE(msg.substr(0, 300));
  CHECK(msg.find(must_contain) != std::string::npos);
  CHECK(msg.size() < max_bytes);
  CHECK(vc::data::excerpt(msg, std::string::npos) == msg);  // no control or invalid bytes
}

// `f` must throw vc::Error (not another exception, not a crash) with a clear message.
int hostile_count = 0;
void check_refused(const std::string& what, const std::function<void()>& f, const std::string& must_contain,
                   size_t max_bytes = 600) {
  CAPTURE(what);
  ++hostile_count;
  bool threw = false;
  try {
    f();
  } catch (const vc::Error& e) {
    threw = true;
    check_clear_message(e.what(), must_contain, max_bytes);
  } catch (const std::exception& e) {
    FAIL("not a vc::Error: " << e.what());
  }
  CHECK_MESSAGE(threw, "accepted: " << what);
}

// Through the binary: non-zero exit, exactly one "error" line, naming the thing.
void check_one_clear_error(const RunResult& r, const std::string& must_contain) {
  CAPTURE(r.output.substr(0, 2000));
  ++hostile_count;
  CHECK(r.code > 0);  // an exit status, not a signal
  CHECK(r.output.find(must_contain) != std::string::npos);
  std::istringstream in(r.output);
  std::string line;
  int errors = 0;
  while (std::getline(in, line)) {
    errors += line.find("error") != std::string::npos;
    CHECK(line.size() < 1000);
  }
  CHECK(errors == 1);
}

data::Image gradient(int w, int h) {
  data::Image img;
  img.width = w, img.height = h;
  img.pixels.resize(size_t(w) * size_t(h) * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(y, x);
      p[0] = uint8_t(x * 7), p[1] = uint8_t(y * 5), p[2] = uint8_t((x + y) * 3);
    }
  return img;
}

// GCC 12 -O3 reports the default crop scales' initializer_list "may be used uninitialized"
// where DatasetOptions is built inline (a false positive; see tests/data/test_transforms.cpp):
// built here, once, out of line.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((noinline)) data::DatasetOptions dataset_options(const std::string& root) {
  data::DatasetOptions o;
  o.root = root;
  return o;
}
#pragma GCC diagnostic pop

std::string as_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

// A valid PNG whose IHDR is rewritten to declare w x h (CRC fixed, so only the size is a lie).
std::string png_declaring(uint32_t w, uint32_t h) {
  std::string png = as_string(data::encode_png(gradient(2, 2)));
  REQUIRE(png.substr(12, 4) == "IHDR");
  for (int i = 0; i < 4; ++i) {
    png[size_t(16 + i)] = char((w >> (24 - 8 * i)) & 0xFF);
    png[size_t(20 + i)] = char((h >> (24 - 8 * i)) & 0xFF);
  }
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(png.data() + 12), 17);
  for (int i = 0; i < 4; ++i) png[size_t(29 + i)] = char((crc >> (24 - 8 * i)) & 0xFF);
  return png;
}

void append_bytes(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size_t(size));
}

// A 3x2 PNG of `comp` channels (1 grey, 2 grey+alpha, 4 RGBA): pixel (x, y) has grey level
// 40 * (x + 3y) and alpha 255.
std::string png_with_channels(int comp) {
  std::vector<uint8_t> px;
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < comp; ++c)
      px.push_back(uint8_t((comp == 2 && c == 1) || (comp == 4 && c == 3) ? 255 : 40 * i));
  std::string out;
  REQUIRE(stbi_write_png_to_func(append_bytes, &out, 3, 2, comp, px.data(), 3 * comp) != 0);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- hostile inputs

TEST_CASE("reliability: hostile images are refused with one clear line, odd channel counts converted") {
  TempDir tmp("images");
  write_bytes(tmp / "zero.png", "");
  check_refused("0-byte PNG", [&] { data::read_image(tmp / "zero.png"); }, "zero.png");
  const std::string jpg = as_string(data::encode_jpeg(gradient(64, 48)));
  const std::string png = as_string(data::encode_png(gradient(64, 48)));
  for (size_t keep : {size_t(2), size_t(20), jpg.size() / 2}) {
    write_bytes(tmp / "cut.jpg", jpg.substr(0, keep));
    check_refused("JPEG cut to " + std::to_string(keep) + " bytes", [&] { data::read_image(tmp / "cut.jpg"); },
                  "cut.jpg");
  }
  for (size_t keep : {size_t(8), size_t(30), png.size() / 2, png.size() - 13}) {
    write_bytes(tmp / "cut.png", png.substr(0, keep));
    check_refused("PNG cut to " + std::to_string(keep) + " bytes", [&] { data::read_image(tmp / "cut.png"); },
                  "cut.png");
  }
  // A decompression bomb: refused from the header (it would be 30 GB of pixels).
  write_bytes(tmp / "bomb.png", png_declaring(100000, 100000));
  check_refused("PNG declaring 100000x100000", [&] { data::read_image(tmp / "bomb.png"); }, "100000x100000");
  write_bytes(tmp / "wide.png", png_declaring(1u << 24, 8));
  check_refused("PNG declaring 16777216x8", [&] { data::read_image(tmp / "wide.png"); }, "wide.png");
  // Not an image at all; a folder where a frame should be.
  write_bytes(tmp / "text.jpg", "this is not a JPEG\n");
  check_refused("text named .jpg", [&] { data::read_image(tmp / "text.jpg"); }, "text.jpg");
  fs::create_directories(tmp / "img_00001.jpg");
  check_refused("folder as a frame", [&] { data::read_image(tmp / "img_00001.jpg"); }, "img_00001.jpg");
  check_refused("missing frame", [&] { data::read_image(tmp / "none.jpg"); }, "none.jpg");
  // Channel counts other than 3 are converted to RGB, pixel for pixel.
  for (int comp : {1, 2, 4}) {
    CAPTURE(comp);
    write_bytes(tmp / "c.png", png_with_channels(comp));
    data::Image img = data::read_image(tmp / "c.png");
    REQUIRE(img.width == 3);
    REQUIRE(img.height == 2);
    for (int i = 0; i < 6; ++i)
      for (int c = 0; c < 3; ++c) CHECK(int(img.pixels[size_t(3 * i + c)]) == 40 * i);
  }
  // Through the dataset: a corrupt frame names the frame and the list line.
  fs::create_directories(tmp / "root/v1");
  for (int i = 1; i <= 4; ++i) write_bytes(tmp / ("root/v1/img_0000" + std::to_string(i) + ".jpg"), jpg);
  write_bytes(tmp / "root/v1/img_00003.jpg", jpg.substr(0, jpg.size() / 3));
  write_bytes(tmp / "root/list.txt", "v1 4 0\n");
  data::DatasetOptions o = dataset_options(tmp / "root");
  o.num_classes = 1;
  data::VideoDataset ds = data::VideoDataset::from_list(tmp / "root/list.txt", o);
  check_refused("corrupt frame in a video", [&] { ds.load_frames(0, {0, 1, 2, 3}); }, "img_00003.jpg");
}

TEST_CASE("reliability: hostile list and label files are refused with one clear line naming file and line") {
  TempDir tmp("lists");
  data::ListOptions lo;
  lo.num_classes = 3;
  struct Case {
    std::string name, text, must;
  };
  const std::string mb10(10 << 20, '7');
  const std::vector<Case> bad = {
      {"neg.txt", "a 5 1\nb 5 -1\n", "neg.txt:2: negative label -1"},
      {"big.txt", "a 5 3\n", "big.txt:1: label 3 out of range for 3 classes"},
      {"frames.txt", "a five 1\n", "frames.txt:1: total_frames 'five' is not an integer"},
      {"zero.txt", "a 0 1\n", "zero.txt:1: total_frames must be positive"},
      {"long_label.txt", "a 5 " + mb10 + "\n", "long_label.txt:1: label"},
      {"long_line.txt", mb10 + "\n", "long_line.txt:1"},
      {"bytes.txt", "a\xff 5 1\xfe\n", "bytes.txt:1: label '1\\xFE' is not an integer"},
      {"nul.txt", std::string("a 5 1\0x\n", 8), "nul.txt:1"},
      {"cols.txt", "a 5 1\nb 5 1 2 3 4\n", "cols.txt:2"},
  };
  for (const Case& c : bad) {
    write_bytes(tmp / c.name, c.text);
    check_refused(c.name, [&] { data::read_list(tmp / c.name, lo); }, c.must);
  }
  // CRLF lists parse as LF ones.
  write_bytes(tmp / "crlf.txt", "a 5 1\r\nb 6 2\r\n");
  auto recs = data::read_list(tmp / "crlf.txt", lo);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].path == "a");
  CHECK(recs[1].total_frames == 6);
  CHECK(recs[1].label() == 2);
  // An empty list (or one of blank lines) is an error of the dataset naming the file.
  for (const std::string& text : {std::string(), std::string("\n\r\n  \n")}) {
    write_bytes(tmp / "empty.txt", text);
    CHECK(data::read_list(tmp / "empty.txt", lo).empty());
    data::DatasetOptions o = dataset_options(tmp.path.string());
    check_refused("empty list", [&] { data::VideoDataset::from_list(tmp / "empty.txt", o); }, "empty.txt holds no videos");
  }
  check_refused("missing list", [&] { data::read_list(tmp / "none.txt", lo); }, "none.txt");
  fs::create_directories(tmp / "dir.txt");
  check_refused("folder as a list", [&] { data::read_list(tmp / "dir.txt", lo); }, "dir.txt");
  // A 10 MB path is a valid line; the dataset's "not found" does not echo all of it.
  write_bytes(tmp / "long_path.txt", std::string(10 << 20, 'p') + " 5 1\n");
  {
    data::DatasetOptions o = dataset_options(tmp.path.string());
    check_refused("10 MB path", [&] { data::VideoDataset::from_list(tmp / "long_path.txt", o); }, "long_path.txt:1");
  }
  // Label files.
  const std::vector<Case> labels = {
      {"empty.csv", "", "empty.csv holds no classes"},
      {"blank_name.csv", "id,name\n0,run\n1,\n", "blank_name.csv:3: class 1 has an empty name"},
      {"neg.csv", "id,name\n-1,run\n", "neg.csv"},
      {"gap.csv", "id,name\n0,run\n2,walk\n", "id 1 is missing"},
      {"dup.txt", "run\nrun\n", "dup.txt:2"},
      {"bad.json", "{\"0\": \"run\", \"x\xff\": \"walk\"}", "bad.json"},
      {"quote.csv", "id,name\n0,\"run\n", "quote.csv:2: quoted field is never closed"},
      {"long.csv", "id,name\n" + mb10 + ",run\n", "long.csv:2: class id"},
  };
  for (const Case& c : labels) {
    write_bytes(tmp / c.name, c.text);
    check_refused(c.name, [&] { data::read_labels(tmp / c.name); }, c.must);
  }
}

TEST_CASE("reliability: hostile configs are refused with one clear line naming the file or key") {
  TempDir tmp("configs");
  struct Case {
    std::string name, text, must;
  };
  const std::vector<Case> files = {
      {"type.yaml", "TRAIN:\n  LR: fast\n", "TRAIN.LR"},
      {"type2.yaml", "TRAIN:\n  EPOCHS: [1, 2]\n", "TRAIN.EPOCHS"},
      {"scalar.yaml", "TRAIN: 5\n", "'TRAIN'"},
      {"list.yaml", "- a\n- b\n", "list.yaml"},
      {"bad.yaml", "TRAIN: {LR: [\n", "bad.yaml"},
      {"key_map.yaml", "? {a: 1}\n: 2\n", "key_map.yaml"},
      {"missing_base.yaml", "BASE: nowhere.yaml\n", "nowhere.yaml"},
      {"base_map.yaml", "BASE: {a: 1}\n", "base_map.yaml: BASE must be"},
      {"self.yaml", "BASE: ./self.yaml\n", "BASE includes itself"},
      {"loop0.yaml", "BASE: loop1.yaml\n", "BASE includes itself"},
      {"bytes.yaml", "TRAIN:\n  L\xff\xfeR: 1\n", "bytes.yaml"},
  };
  write_bytes(tmp / "loop1.yaml", "BASE: sub/../loop2.yaml\n");
  fs::create_directories(tmp / "sub");
  write_bytes(tmp / "loop2.yaml", "BASE: [" + (tmp / "loop0.yaml") + "]\n");
  for (const Case& c : files) {
    write_bytes(tmp / c.name, c.text);
    check_refused(c.name, [&] {
      Config cfg = video_config_defaults();
      cfg.load_yaml_file(tmp / c.name);
      cfg.number("TRAIN.LR"), cfg.integer("TRAIN.EPOCHS");
    }, c.must);
  }
  // A deep chain without a loop is fine up to its limit, then refused (not a stack overflow).
  for (int i = 0; i < 80; ++i)
    write_bytes(tmp / ("deep" + std::to_string(i) + ".yaml"),
                i == 79 ? std::string("TRAIN:\n  LR: 0.5\n") : "BASE: deep" + std::to_string(i + 1) + ".yaml\n");
  {
    Config cfg = video_config_defaults();
    cfg.load_yaml_file(tmp / "deep40.yaml");
    CHECK(cfg.number("TRAIN.LR") == 0.5);
  }
  check_refused("BASE chain of 80", [&] { video_config_defaults().load_yaml_file(tmp / "deep0.yaml"); }, "deeper than");
  // --opts: a value of the wrong type is named when read.
  check_refused("--opts wrong type", [&] {
    Config cfg = video_config_defaults();
    cfg.apply_opts({"TRAIN.BATCH_SIZE", "4.5"});
    cfg.integer("TRAIN.BATCH_SIZE");
  }, "TRAIN.BATCH_SIZE");
}

TEST_CASE("reliability: hostile text into the tokenizers, and weights of another preset") {
  // The byte-level BPE: invalid UTF-8 is read as U+FFFD, never a crash; text far past the
  // context length is an error naming the text, or cut with truncate.
  auto bpe = vc::clip::Tokenizer::from_merges({{"a", "b"}, {"ab", "c</w>"}, {"r", "u"}, {"ru", "n</w>"}});
  for (const std::string& text : {std::string("\xff\xfe run \xc3"), std::string("\xed\xa0\x80 abc"),
                                  std::string("\xf4\x90\x80\x80"), std::string("a\0b", 3), std::string()}) {
    CAPTURE(vc::data::excerpt(text));
    auto ids = bpe.encode(text);
    for (int64_t id : ids) CHECK((id >= 0 && id < bpe.vocab_size()));
    vc::Tensor t = bpe.tokenize({text}, 77, true);
    CHECK(t.shape() == vc::Shape{1, 77});
  }
  std::string novel;
  for (int i = 0; i < 20000; ++i) novel += "run abc ";
  check_refused("160 KB of text", [&] { bpe.tokenize({novel}, 77, false); }, "more than the context length 77");
  vc::Tensor cut = bpe.tokenize({novel}, 77, true);
  CHECK(cut.to_vector<int64_t>()[76] == bpe.eot());
  // The word tokenizer (tiny CLIPs): the same.
  vc::clip::WordTokenizer words("<pad>\n<unk>\nrun\n<|startoftext|>\n<|endoftext|>\n");
  CHECK(words.tokenize({"\xff\xfe run"}, 8).shape() == vc::Shape{1, 8});
  CHECK(words.tokenize({""}, 8).shape() == vc::Shape{1, 8});
  check_refused("word tokenizer, long text", [&] { words.tokenize({novel}, 8, false); }, "more than the context length 8");
  // Weights of another preset: refused, naming the file and the preset.
  TempDir tmp("weights");
  vc::clip::ClipConfig c = vc::clip::ClipConfig::preset("tiny");
  c.vocab_size = 5, c.context_length = 8;
  auto model = std::make_shared<vc::clip::CLIP>(c);
  vc::Generator g{3, 0};
  vc::clip::init_clip(*model, g);
  save_clip_weights(tmp / "tiny.safetensors", *model, "word\n<pad>\n<unk>\nrun\n<|startoftext|>\n<|endoftext|>\n");
  ClipLoadOptions lo;
  lo.model = "ViT-B/32";
  check_refused("tiny weights as ViT-B/32", [&] { load_clip_weights(tmp / "tiny.safetensors", lo); }, "tiny.safetensors",
                1200);
}

TEST_CASE("reliability: hostile inputs through the binary exit non-zero with one error line") {
  TempDir tmp("binary");
  vc::clip::ClipConfig c = vc::clip::ClipConfig::preset("tiny");
  c.image_size = 16, c.patch_size = 8, c.vocab_size = 5, c.context_length = 8;
  c.vision_width = c.text_width = 64, c.vision_layers = c.text_layers = 1, c.vision_heads = c.text_heads = 1;
  c.embed_dim = 16;
  auto model = std::make_shared<vc::clip::CLIP>(c);
  vc::Generator g{3, 0};
  vc::clip::init_clip(*model, g);
  const std::string w = tmp / "w.safetensors";
  save_clip_weights(w, *model, "word\n<pad>\n<unk>\nrun\n<|startoftext|>\n<|endoftext|>\n", {{"resize_short", "0"}});
  write_bytes(tmp / "zero.png", "");
  write_bytes(tmp / "bomb.png", png_declaring(100000, 100000));
  const std::string jpg = as_string(data::encode_jpeg(gradient(20, 20)));
  write_bytes(tmp / "cut.jpg", jpg.substr(0, jpg.size() / 2));
  fs::create_directories(tmp / "dir.png");
  for (const char* name : {"zero.png", "bomb.png", "cut.jpg", "dir.png"})
    check_one_clear_error(testing::run_verbclip({"embed", "--weights", w, "--image", tmp / name}), name);
  // Text past the context length is cut (embed truncates); invalid UTF-8 reads as unknown words.
  RunResult ok = testing::run_verbclip({"embed", "--weights", w, "--text", "\xff\xfe run"});
  CAPTURE(ok.output);
  CHECK(ok.code == 0);
  // Configs through train: a BASE loop and a missing BASE.
  write_bytes(tmp / "a.yaml", "BASE: ./b.yaml\n");
  write_bytes(tmp / "b.yaml", "BASE: ../" + tmp.path.filename().string() + "/a.yaml\n");
  check_one_clear_error(testing::run_verbclip({"train", "--config", tmp / "a.yaml", "--output", tmp / "o"}),
                        "BASE includes itself");
  write_bytes(tmp / "c.yaml", "BASE: gone.yaml\n");
  check_one_clear_error(testing::run_verbclip({"train", "--config", tmp / "c.yaml", "--output", tmp / "o"}),
                        "gone.yaml");
  // The weights of another preset.
  check_one_clear_error(testing::run_verbclip({"embed", "--weights", w, "--model", "ViT-B/16", "--text", "run"}),
                        "w.safetensors");
  MESSAGE("hostile inputs tried: " << hostile_count);
}

// ---------------------------------------------------------------- kill and resume

namespace {

// A tiny Fashion-Motion and a tiny pretrained CLIP, made once for the cases below.
struct Fixture {
  fs::path dir;
  std::string data, clip;
  bool ok = false;
  Fixture() {
    dir = fs::temp_directory_path() / ("verbclip-reliability-runs-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::all, fs::perm_options::add);  // the read-only case runs as nobody
    data = (dir / "fm").string();
    RunResult g = testing::run_verbclip({"make-data", "--out", data, "--classes", "0,1,2,3,11,12", "--train-per-class",
                                         "4", "--val-per-class", "1", "--test-per-class", "1", "--captions", "60",
                                         "--threads", "2", "--quiet"});
    if (g.code != 0) {
      MESSAGE(g.output);
      return;
    }
    RunResult p = testing::run_verbclip(pretrain_args((dir / "clip").string(), 2));
    if (p.code != 0) {
      MESSAGE(p.output);
      return;
    }
    clip = (dir / "clip" / "clip.safetensors").string();
    ok = true;
  }
  ~Fixture() { fs::remove_all(dir); }
  std::vector<std::string> pretrain_args(const std::string& out, int steps) const {
    return {"pretrain-clip", "--data", data, "--out", out, "--steps", std::to_string(steps), "--batch-size", "16",
            "--zero-shot-images", "0", "--quiet", "--opts", "MODEL.VISION_WIDTH", "64", "MODEL.VISION_LAYERS", "2",
            "MODEL.TEXT_WIDTH", "64", "MODEL.TEXT_LAYERS", "1", "MODEL.EMBED_DIM", "32", "MODEL.PATCH_SIZE", "8",
            "SAVE_FREQ", "1", "PRINT_FREQ", "1"};
  }
  // PRINT_FREQ 1 in both: a record is the mean over the steps since the previous one, and a
  // run resumed mid-window averages only the steps after its checkpoint (issue 20 note).
  // 2 epochs of 3 steps (24 videos, batches of 4, 2 accumulated), checkpoint_last every 2
  // steps and at each epoch's end, validation at each epoch's end: 6 steps, 4 checkpoints.
  std::vector<std::string> train_args(const std::string& out) const {
    return {"train", "--config", std::string(VERBCLIP_SOURCE_DIR) + "/models/configs/fm_tiny_baseline.yaml",
            "--output", out, "--quiet", "--opts", "DATA.ROOT", data, "MODEL.PRETRAINED", clip, "TRAIN.BATCH_SIZE",
            "4", "TRAIN.EPOCHS", "2", "TRAIN.MAX_STEPS", "0", "TRAIN.ACCUMULATION_STEPS", "2", "SAVE_FREQ", "2",
            "TEST.EVAL_EVERY", "1", "TEST.BATCH_SIZE", "8", "PRINT_FREQ", "1"};
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// `verbclip args...` with environment assignments in front ("NAME=value").
RunResult run_with_env(const std::vector<std::string>& env, const std::vector<std::string>& args,
                       const std::string& prefix = "") {
  std::string cmd = prefix + "env OMP_NUM_THREADS=2";
  for (const auto& e : env) cmd += " " + testing::shell_quote(e);
  cmd += " " + testing::shell_quote(VERBCLIP_BINARY_DIR "/bin/verbclip");
  for (const auto& a : args) cmd += " " + testing::shell_quote(a);
  std::string sh = "sh -c " + testing::shell_quote(cmd + "; echo \"[exit $?]\"") + " 2>&1";
  RunResult r = testing::run_command(sh);
  // The shell reports a signal as 128 + its number.
  size_t at = r.output.rfind("[exit ");
  REQUIRE(at != std::string::npos);
  r.code = std::stoi(r.output.substr(at + 6));
  r.output.resize(at);
  return r;
}

bool is_temporary(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

// Every file of a run folder is whole: checkpoints load, each log line is a complete record.
// Returns how many temporaries a killed write left.
int check_run_folder_whole(const std::string& out) {
  int temporaries = 0, checked = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string(), path = e.path().string();
    CAPTURE(path);
    if (!e.is_regular_file()) continue;
    if (is_temporary(name)) {
      ++temporaries;
      continue;
    }
    ++checked;
    if (e.path().extension() == ".safetensors") {
      vc::nn::SafetensorsFile f(path);
      CHECK(f.load_all().size() > 0);
    } else if (name == "log.jsonl") {
      const std::string text = read_bytes(path);
      CHECK((text.empty() || text.back() == '\n'));
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) CHECK(nlohmann::json::parse(line, nullptr, false).is_object());
    } else if (name == "log.txt") {
      const std::string text = read_bytes(path);
      CHECK((text.empty() || text.back() == '\n'));
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) CHECK(line.rfind("[20", 0) == 0);
    } else if (name == "config.yaml") {
      CHECK(YAML::Load(read_bytes(path)).IsMap());
    }
  }
  CHECK(checked >= 3);
  return temporaries;
}

// The float tensors of two checkpoints, bit for bit (and not vacuously).
void check_same_tensors(const std::string& a, const std::string& b) {
  CHECK(verbclip::testing::check_same_float_tensors(a, b) > 10);
}

// The log's records without their times, and the text log's lines without their stamps,
// leaving out what a resume adds ("resume" records, "resuming ..." lines).
std::vector<std::string> records(const std::string& out) {
  std::vector<std::string> r;
  std::istringstream in(read_bytes(out + "/log.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    const std::string ev = j.value("event", "");
    if (ev == "resume" || ev == "start" || ev == "memory") continue;
    j.erase("time");
    j.erase("clips_per_s");
    j.erase("items_per_s");
    j.erase("rss_mib");
    r.push_back(j.dump());
  }
  return r;
}

std::vector<std::string> text_lines(const std::string& out) {
  std::vector<std::string> r;
  std::istringstream in(read_bytes(out + "/log.txt"));
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(line.find("] ") + 2);
    for (size_t at; (at = line.find(out)) != std::string::npos;) line.replace(at, out.size(), "OUT");
    for (const char* skip : {"resuming ", "trained ", "memory: ", "train ", "schedule: ", "note: "})
      if (line.rfind(skip, 0) == 0) line.clear();
    if (line.rfind("epoch ", 0) == 0) line = line.substr(0, line.find(" ("));  // drops timings
    if (!line.empty()) r.push_back(line);
  }
  return r;
}

// Equal lists of records; the first difference is shown when not.
void check_same_records(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < got.size() && i < want.size(); ++i)
    if (got[i] != want[i]) {
      CHECK_MESSAGE(got[i] == want[i], "record " << i);
      return;
    }
}

std::string step_of(const std::string& checkpoint) {
  return vc::nn::SafetensorsFile(checkpoint).metadata().at("step");
}

}  // namespace

TEST_CASE("reliability: train killed at a step, a checkpoint write and an evaluation resumes bitwise") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string ref = (fx.dir / "train_ref").string();
  RunResult r = testing::run_verbclip(fx.train_args(ref));
  CAPTURE(r.output);
  REQUIRE(r.code == 0);
  const auto ref_records = records(ref);
  const auto ref_lines = text_lines(ref);
  REQUIRE(ref_records.size() == 8);  // 6 train + 2 val
  // Where to kill, and the step checkpoint_last holds after the kill.
  const std::vector<std::pair<std::string, std::string>> points = {
      {"train_step:5", "4"},                           // during step 5's optimizer update
      {"write:checkpoint_last.safetensors:2", "2"},    // writing step 3's (epoch end) checkpoint
      {"eval_batch:1", "2"},                           // during the first validation
      {"write:checkpoint_best.safetensors:1", "2"},    // writing the first best checkpoint
      {"renamed:checkpoint_last.safetensors:3", "4"},  // just after step 4's checkpoint landed
  };
  for (size_t i = 0; i < points.size(); ++i) {
    const std::string& point = points[i].first;
    const std::string& step = points[i].second;
    CAPTURE(point);
    const std::string out = (fx.dir / ("train_kill_" + std::to_string(i))).string();
    RunResult k = run_with_env({"VERBCLIP_TEST_KILL_AT=" + point}, fx.train_args(out));
    CAPTURE(k.output);
    REQUIRE(k.code == 128 + 9);  // SIGKILL
    const int temporaries = check_run_folder_whole(out);
    CHECK(temporaries == (point.rfind("write:", 0) == 0 ? 1 : 0));
    CHECK(step_of(out + "/checkpoint_last.safetensors") == step);
    RunResult res = testing::run_verbclip({"train", "--output", out, "--resume", "--quiet"});
    CAPTURE(res.output);
    REQUIRE(res.code == 0);
    CHECK(check_run_folder_whole(out) == 0);
    check_same_tensors(ref + "/checkpoint_last.safetensors", out + "/checkpoint_last.safetensors");
    check_same_tensors(ref + "/checkpoint_best.safetensors", out + "/checkpoint_best.safetensors");
    check_same_records(records(out), ref_records);  // no record lost, none twice
    check_same_records(text_lines(out), ref_lines);
  }
}

TEST_CASE("reliability: pretrain-clip killed during a step and during a checkpoint write resumes bitwise") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string ref = (fx.dir / "pre_ref").string();
  REQUIRE(testing::run_verbclip(fx.pretrain_args(ref, 4)).code == 0);
  for (const std::string point : {"train_step:3", "write:checkpoint_last.safetensors:2"}) {
    CAPTURE(point);
    const std::string out = (fx.dir / ("pre_kill_" + std::to_string(point.size()))).string();
    RunResult k = run_with_env({"VERBCLIP_TEST_KILL_AT=" + point}, fx.pretrain_args(out, 4));
    CAPTURE(k.output);
    REQUIRE(k.code == 128 + 9);
    check_run_folder_whole(out);
    CHECK(step_of(out + "/checkpoint_last.safetensors") == (point == "train_step:3" ? "2" : "1"));
    RunResult res = testing::run_verbclip({"pretrain-clip", "--out", out, "--resume", "--quiet"});
    CAPTURE(res.output);
    REQUIRE(res.code == 0);
    CHECK(check_run_folder_whole(out) == 0);
    check_same_tensors(ref + "/checkpoint_last.safetensors", out + "/checkpoint_last.safetensors");
    check_same_tensors(ref + "/clip.safetensors", out + "/clip.safetensors");
    check_same_records(records(out), records(ref));
  }
}

// ---------------------------------------------------------------- no space, no permission

TEST_CASE("reliability: a full disk during a checkpoint write is a clear error; the previous checkpoint stays") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string out = (fx.dir / "full").string();
  RunResult r = run_with_env({"VERBCLIP_TEST_FAIL_WRITE=checkpoint_last.safetensors:2"}, fx.train_args(out));
  CAPTURE(r.output);
  CHECK(r.code == 1);
  CHECK(r.output.find("checkpoint_last.safetensors") != std::string::npos);
  CHECK(r.output.find("No space left on device") != std::string::npos);
  CHECK(check_run_folder_whole(out) == 0);  // the temporary is removed
  CHECK(step_of(out + "/checkpoint_last.safetensors") == "2");
  // And the run goes on from there.
  RunResult res = testing::run_verbclip({"train", "--output", out, "--resume", "--quiet"});
  CAPTURE(res.output);
  CHECK(res.code == 0);
  CHECK(step_of(out + "/checkpoint_last.safetensors") == "6");
}

TEST_CASE("reliability: a read-only output folder is a clear error and changes nothing") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  // root ignores permissions: run the binary as nobody then.
  std::string prefix;
  if (geteuid() == 0) {
    if (testing::run_command("setpriv --reuid=65534 --regid=65534 --clear-groups true 2>&1").code != 0) {
      MESSAGE("SKIPPED: running as root without setpriv");
      return;
    }
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    // nobody must reach the binary: a checkout under a private folder (mktemp -d) forbids it
    const std::string bin = VERBCLIP_BINARY_DIR "/bin/verbclip";
    if (testing::run_command(prefix + "test -x '" + bin + "' 2>&1").code != 0) {
      MESSAGE("SKIPPED: nobody (uid 65534) cannot run ", bin, ": a folder above it is private");
      return;
    }
  }
  const std::string out = (fx.dir / "readonly").string();
  auto half = fx.train_args(out);
  half.insert(half.begin() + 1, {"--stop-at", "2"});
  REQUIRE(testing::run_verbclip(half).code == 0);
  fs::permissions(out, fs::perms::owner_all | fs::perms::group_all | fs::perms::others_all, fs::perm_options::replace);
  std::map<std::string, std::string> before;
  for (const auto& e : fs::directory_iterator(out)) before[e.path().string()] = read_bytes(e.path().string());
  fs::permissions(out, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec,
                  fs::perm_options::replace);
  for (const auto& [p, bytes] : before)
    fs::permissions(p, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, fs::perm_options::replace);
  RunResult r = run_with_env({}, {"train", "--output", out, "--resume", "--quiet"}, prefix);
  CAPTURE(r.output);
  CHECK(r.code == 1);
  CHECK(r.output.find(out) != std::string::npos);
  CHECK(r.output.find("Permission denied") != std::string::npos);
  std::map<std::string, std::string> after;
  for (const auto& e : fs::directory_iterator(out)) after[e.path().string()] = read_bytes(e.path().string());
  CHECK(after == before);
  // A new run under a read-only folder.
  RunResult n = run_with_env({}, fx.train_args(out + "/sub"), prefix);
  CAPTURE(n.output);
  CHECK(n.code == 1);
  CHECK(n.output.find(out + "/sub") != std::string::npos);
  fs::permissions(out, fs::perms::owner_all, fs::perm_options::add);
}
