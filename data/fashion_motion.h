// Fashion-Motion, the built-in dataset (specs/synthetic-dataset.md): Fashion-MNIST items
// whose verbs (motions) are the classes. Written in the on-disk format of real datasets.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.h"

namespace vc::data::fm {

// ---------------------------------------------------------------- Fashion-MNIST
constexpr const char* kDebianFashionMnist = "/usr/share/datasets/fashion-mnist";

struct Mnist {
  int64_t count = 0, rows = 28, cols = 28;
  std::vector<uint8_t> pixels;  // count × rows × cols
  std::vector<uint8_t> labels;  // count
  const uint8_t* image(int64_t i) const { return pixels.data() + i * rows * cols; }
};
// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from `dir`. When absent, the
// error says to install dataset-fashion-mnist or pass the folder.
Mnist read_fashion_mnist(const std::string& dir, bool train);
// Decodes one IDX file (gzip or plain); checks magic number and sizes.
std::vector<uint8_t> read_idx(const std::string& path, int expected_dims, std::vector<int64_t>& dims);

// ---------------------------------------------------------------- classes
enum class Family { A, B, C, D };
struct ClassInfo {
  int id;
  const char* name;
  Family family;
};
const std::vector<ClassInfo>& classes();      // the 18 verbs, table of the spec
const std::array<const char*, 10>& nouns();   // Fashion-MNIST label names
const std::array<const char*, 3>& postures(); // the caption postures: upright, on its side, upside down
struct NamedColor {
  const char* name;
  std::array<uint8_t, 3> rgb;
};
const std::array<NamedColor, 8>& palette();

// ---------------------------------------------------------------- rendering
enum class Split : uint32_t { Train = 0, Val = 1, Test = 2, Captions = 3 };
const char* split_name(Split s);

// What one video shows, per frame (returned for tests and captions).
struct FrameState {
  double cx = 0, cy = 0;   // object centre, pixels
  double scale = 1;        // multiplier of the ~16 px base size
  double angle_deg = 0;    // clockwise on screen
  double brightness = 1;   // 0 = invisible (fading), 1 = full
  int color = 0;           // palette index
};
struct VideoSpec {
  int class_id = 0;
  int noun = 0;
  int64_t image_index = 0;  // into the split's Fashion-MNIST set
  std::vector<FrameState> frames;
};

struct RenderOptions {
  uint64_t seed = 0;
  int64_t frames = 16;
  int64_t size = 40;
};

// The per-video seed comes from (seed, split, class, n): a video is the same whichever
// other classes or counts are generated. `by_noun` lists image indices per noun.
VideoSpec plan_video(const RenderOptions& opt, Split split, int class_id, int64_t n,
                     const std::array<std::vector<int64_t>, 10>& by_noun);
std::vector<Image> render_video(const RenderOptions& opt, Split split, int64_t key,
                                const VideoSpec& spec, const Mnist& src);
// Draws one caption image: (image, caption) for CLIP pretraining.
std::pair<Image, std::string> render_caption(const RenderOptions& opt, Split split, int64_t n,
                                             const Mnist& src,
                                             const std::array<std::vector<int64_t>, 10>& by_noun);

// ---------------------------------------------------------------- text assets
std::vector<std::string> templates();
std::string interpretive_json();                    // class → sentences
std::string askg_json();                            // class → ASKG triples and clauses
std::string corpus_tsv();                           // ALT corpus
// Word-level vocabulary of every text given, one token per line (see README).
std::string build_vocab(const std::vector<std::string>& texts);
// The tokenisation rule the vocabulary assumes: lower case, runs of [a-z0-9] and single
// punctuation characters.
std::vector<std::string> word_tokens(const std::string& text);

// ---------------------------------------------------------------- the whole dataset
constexpr double kVideoFps = 16;  // frame rate of the video files make-data writes
struct Options {
  std::string out_dir;
  std::string fashion_mnist_dir = kDebianFashionMnist;
  int64_t train_per_class = 300, val_per_class = 50, test_per_class = 100;
  int64_t frames = 16, size = 40;
  uint64_t seed = 1;
  std::vector<int> class_ids;  // empty = all 18; otherwise relabelled 0.. in this order
  int64_t captions = 8000;     // caption images (10% of them val)
  int threads = 0;             // 0 = hardware concurrency
  int jpeg_quality = 95;
  // rawframes (rawframes/<id>/img_00001.jpg), or video files videos/<id>.<format> with
  // video lists (mp4, avi, mkv, webm; lossless encoders, see data/video.h).
  std::string format = "rawframes";
  bool force = false;          // replace an existing out_dir
  std::string command_line;    // for the README (content options only)
};
struct Progress {
  int64_t done = 0, total = 0;
  double seconds = 0;
};
struct Summary {
  int64_t videos = 0, frames = 0, captions = 0, files = 0;
};
// Generates into out_dir + ".tmp-<pid>" and renames it into place when complete.
Summary generate(const Options& opt, const std::function<void(const Progress&)>& progress = {});
// The command line that regenerates the same content (no output folder, no threads).
std::string canonical_command(const Options& opt);

}  // namespace vc::data::fm
