#include "data/fashion_motion.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "data/annotations.h"
#include "data/rng.h"
#include "data/util.h"
#include "data/video.h"

namespace vc::data::fm {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- Fashion-MNIST

std::vector<uint8_t> read_idx(const std::string& path, int expected_dims, std::vector<int64_t>& dims) {
  gzFile f = gzopen(path.c_str(), "rb");  // also reads uncompressed files
  if (!f) fail("cannot open ", path);
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  bool bad = n < 0 || (err != Z_OK && err != Z_STREAM_END);
  std::string why = bad ? msg : "";
  gzclose(f);
  if (bad) fail(path, " is corrupt: ", why);
  auto be32 = [&](size_t off) {
    return (uint32_t(bytes[off]) << 24) | (uint32_t(bytes[off + 1]) << 16) |
           (uint32_t(bytes[off + 2]) << 8) | uint32_t(bytes[off + 3]);
  };
  size_t header = 4 + 4 * size_t(expected_dims);
  if (bytes.size() < header) fail(path, " is too short for an IDX file");
  uint32_t magic = be32(0);
  if (magic != 0x800u + uint32_t(expected_dims))
    fail(path, ": not an IDX file of ", expected_dims, " unsigned-byte dimensions (magic ", magic, ")");
  dims.clear();
  size_t total = 1;
  for (int d = 0; d < expected_dims; ++d) dims.push_back(be32(4 + 4 * size_t(d))), total *= size_t(dims.back());
  if (bytes.size() != header + total)
    fail(path, ": holds ", bytes.size() - header, " bytes of data, its header promises ", total);
  return std::vector<uint8_t>(bytes.begin() + long(header), bytes.end());
}

Mnist read_fashion_mnist(const std::string& dir, bool train) {
  std::string prefix = train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const std::string& name : {stem + ".gz", stem})
      if (path_exists(join_path(dir, name))) return join_path(dir, name);
    fail("Fashion-MNIST not found: no ", join_path(dir, stem + ".gz"),
         ". Install it with `apt-get install dataset-fashion-mnist` (it goes to ",
         kDebianFashionMnist, ") or pass --fashion-mnist DIR with the four IDX files");
  };
  Mnist m;
  std::vector<int64_t> dims;
  m.pixels = read_idx(find(prefix + "-images-idx3-ubyte"), 3, dims);
  m.count = dims[0], m.rows = dims[1], m.cols = dims[2];
  m.labels = read_idx(find(prefix + "-labels-idx1-ubyte"), 1, dims);
  if (dims[0] != m.count) fail("Fashion-MNIST in ", dir, ": ", m.count, " images but ", dims[0], " labels");
  for (uint8_t l : m.labels)
    if (l > 9) fail("Fashion-MNIST in ", dir, ": label ", int(l), " is not 0..9");
  return m;
}

// ---------------------------------------------------------------- tables

const std::vector<ClassInfo>& classes() {
  static const std::vector<ClassInfo> c = {
      {0, "moving left", Family::C},          {1, "moving right", Family::C},
      {2, "moving up", Family::C},            {3, "moving down", Family::C},
      {4, "growing", Family::C},              {5, "shrinking", Family::C},
      {6, "turning clockwise", Family::C},    {7, "turning counterclockwise", Family::C},
      {8, "fading in", Family::C},            {9, "fading out", Family::C},
      {10, "flickering", Family::B},          {11, "standing still", Family::B},
      {12, "lying on its side", Family::A},   {13, "hanging upside down", Family::A},
      {14, "moving up and left", Family::D},  {15, "moving up and right", Family::D},
      {16, "moving down and left", Family::D}, {17, "moving down and right", Family::D},
  };
  return c;
}

const std::array<const char*, 10>& nouns() {
  static const std::array<const char*, 10> n = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
  return n;
}

const std::array<const char*, 3>& postures() {
  static const std::array<const char*, 3> p = {"standing upright", "lying on its side", "hanging upside down"};
  return p;
}

const std::array<NamedColor, 8>& palette() {
  static const std::array<NamedColor, 8> p = {{{"red", {230, 40, 40}},
                                               {"green", {40, 200, 60}},
                                               {"blue", {50, 90, 240}},
                                               {"yellow", {240, 220, 40}},
                                               {"cyan", {40, 220, 230}},
                                               {"magenta", {220, 50, 220}},
                                               {"orange", {250, 140, 30}},
                                               {"white", {235, 235, 235}}}};
  return p;
}

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Val: return "val";
    case Split::Test: return "test";
    case Split::Captions: return "captions";
  }
  return "?";
}

// ---------------------------------------------------------------- rendering

namespace {

constexpr auto kPlanStream = RngPurpose(16);
constexpr auto kLookStream = RngPurpose(17);
constexpr double kBaseObjectPx = 16;  // at 40 px frames; scales with the frame size

int64_t video_key(int class_id, int64_t n) { return (int64_t(class_id) << 20) | n; }

// Bilinear sample of the 28×28 item at source pixel coordinates (0 outside).
float sample_item(const uint8_t* img, int64_t rows, int64_t cols, double x, double y) {
  double fx = std::floor(x), fy = std::floor(y);
  int64_t x0 = int64_t(fx), y0 = int64_t(fy);
  double ax = x - fx, ay = y - fy;
  auto px = [&](int64_t yy, int64_t xx) -> double {
    return (xx < 0 || yy < 0 || xx >= cols || yy >= rows) ? 0.0 : img[yy * cols + xx];
  };
  double top = px(y0, x0) * (1 - ax) + px(y0, x0 + 1) * ax;
  double bot = px(y0 + 1, x0) * (1 - ax) + px(y0 + 1, x0 + 1) * ax;
  return float(top * (1 - ay) + bot * ay);
}

struct Look {
  double bg[3];
  double noise_sigma;
  double size_jitter;
};

Look draw_look(SampleRng& r) {
  Look l;
  double base = r.uniform(10, 28);
  for (double& c : l.bg) c = base + r.uniform(-3, 3);
  l.noise_sigma = r.uniform(2, 5);
  l.size_jitter = r.uniform(0.9, 1.1);
  return l;
}

void draw_frame(Image& img, const FrameState& st, const Look& look, const uint8_t* item,
                int64_t rows, int64_t cols, double object_px, uint64_t seed, uint64_t stream,
                uint64_t& counter) {
  const int64_t H = img.height, W = img.width;
  const double th = st.angle_deg * M_PI / 180.0, c = std::cos(th), s = std::sin(th);
  const double k = object_px * st.scale / double(cols);  // frame pixels per item pixel
  const auto& col = palette()[size_t(st.color)].rgb;
  float noise[2];
  int have = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      double dx = x + 0.5 - st.cx, dy = y + 0.5 - st.cy;
      // Inverse of a clockwise screen rotation (y points down).
      double ox = (c * dx + s * dy) / k, oy = (-s * dx + c * dy) / k;
      double alpha = sample_item(item, rows, cols, ox + cols / 2.0 - 0.5, oy + rows / 2.0 - 0.5) / 255.0;
      alpha *= st.brightness;
      uint8_t* p = img.at(int(y), int(x));
      if (have == 0) {
        // Two approximately normal numbers per Philox call (Irwin-Hall of 4 uniforms):
        // mild sensor-like grain needs no exact tails, and this keeps generation fast.
        Philox4 r = philox_at(seed, stream, counter++);
        for (int h = 0; h < 2; ++h) {
          uint32_t a = r.v[2 * h], b = r.v[2 * h + 1];
          double sum = (a & 0xFFFF) + (a >> 16) + (b & 0xFFFF) + (b >> 16);
          noise[h] = float((sum / 65536.0 - 2.0) * std::sqrt(3.0));
        }
        have = 2;
      }
      const double grain = look.noise_sigma * noise[--have];  // one value per pixel, grey
      for (int ch = 0; ch < 3; ++ch) {
        double bg = look.bg[ch] + grain;
        double v = bg + (col[size_t(ch)] - bg) * alpha;
        p[ch] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
      }
    }
}

}  // namespace

VideoSpec plan_video(const RenderOptions& opt, Split split, int class_id, int64_t n,
                     const std::array<std::vector<int64_t>, 10>& by_noun) {
  SampleRng r(opt.seed, uint64_t(split), 0, kPlanStream, uint64_t(video_key(class_id, n)));
  VideoSpec v;
  v.class_id = class_id;
  v.noun = int(r.randint(10));
  const auto& pool = by_noun[size_t(v.noun)];
  VC_CHECK(!pool.empty(), "Fashion-MNIST has no image of ", nouns()[size_t(v.noun)]);
  v.image_index = pool[size_t(r.randint(int64_t(pool.size())))];
  const int64_t F = opt.frames;
  const double S = double(opt.size), u = S / 40.0;  // all distances are given at 40 px
  const int color = int(r.randint(8));
  int color2 = int(r.randint(7));
  if (color2 >= color) ++color2;  // a different colour for flickering
  // Posture: upright with a small tilt, on its side, or upside down.
  double angle = r.uniform(-15, 15);
  if (class_id == 12) angle = (r.bernoulli(0.5) ? 90 : -90) + r.uniform(-10, 10);
  if (class_id == 13) angle = 180 + r.uniform(-10, 10);
  // Translation: per-axis displacement over the clip, start chosen so that the whole path
  // keeps the centre within [6, 34] (at 40 px): the object stays mostly in frame.
  int dxs = 0, dys = 0;
  switch (class_id) {
    case 0: dxs = -1; break;
    case 1: dxs = 1; break;
    case 2: dys = -1; break;
    case 3: dys = 1; break;
    case 14: dxs = -1, dys = -1; break;
    case 15: dxs = 1, dys = -1; break;
    case 16: dxs = -1, dys = 1; break;
    case 17: dxs = 1, dys = 1; break;
  }
  const bool diagonal = dxs != 0 && dys != 0;
  const double lo = 6 * u, hi = 34 * u;
  auto axis = [&](int dir, double& start, double& total) {
    if (dir == 0) {
      start = r.uniform(12 * u, 28 * u);
      total = 0;
      return;
    }
    double speed = diagonal ? r.uniform(0.7, 1.1) : r.uniform(0.8, 1.5);  // px per frame at 40 px
    total = std::min(speed * u * double(F - 1), hi - lo);
    double a = dir < 0 ? lo + total : lo, b = dir < 0 ? hi : hi - total;
    start = r.uniform(a, b);
    total *= dir;
  };
  double x0, y0, tx, ty;
  axis(dxs, x0, tx);
  axis(dys, y0, ty);
  if (class_id >= 4 && class_id <= 9) {  // in-place changes stay near the centre
    x0 = r.uniform(15 * u, 25 * u), y0 = r.uniform(15 * u, 25 * u);
  }
  const double turn = r.uniform(90, 180);
  for (int64_t t = 0; t < F; ++t) {
    double a = F > 1 ? double(t) / double(F - 1) : 0;  // 0 → 1 over the clip
    FrameState st;
    st.cx = x0 + tx * a, st.cy = y0 + ty * a;
    st.angle_deg = angle;
    st.color = color;
    switch (class_id) {
      case 4: st.scale = 0.6 + 0.8 * a; break;
      case 5: st.scale = 1.4 - 0.8 * a; break;
      case 6: st.angle_deg = angle + turn * a; break;
      case 7: st.angle_deg = angle - turn * a; break;
      case 8: st.brightness = a; break;
      case 9: st.brightness = 1 - a; break;
      // The colour holds for two stored frames: flipping every frame, all 8 TSN test centres of
      // the 16 frames (1, 3, 5, ...) would land on the same colour and the flicker would vanish.
      case 10: st.color = (t / 2) % 2 == 0 ? color : color2; break;
      default: break;
    }
    v.frames.push_back(st);
  }
  return v;
}

std::vector<Image> render_video(const RenderOptions& opt, Split split, int64_t key,
                                const VideoSpec& spec, const Mnist& src) {
  SampleRng r(opt.seed, uint64_t(split), 0, kLookStream, uint64_t(key));
  Look look = draw_look(r);
  const double object_px = kBaseObjectPx * double(opt.size) / 40.0 * look.size_jitter;
  const uint64_t stream = (uint64_t(split) << 32) | 18u;  // the noise stream
  uint64_t counter = uint64_t(key) << 24;
  std::vector<Image> frames;
  for (const FrameState& st : spec.frames) {
    Image img;
    img.height = int(opt.size), img.width = int(opt.size);
    img.pixels.resize(size_t(opt.size * opt.size * 3));
    draw_frame(img, st, look, src.image(spec.image_index), src.rows, src.cols, object_px,
               opt.seed, stream, counter);
    frames.push_back(std::move(img));
  }
  return frames;
}

std::pair<Image, std::string> render_caption(const RenderOptions& opt, Split split, int64_t n,
                                             const Mnist& src,
                                             const std::array<std::vector<int64_t>, 10>& by_noun) {
  SampleRng r(opt.seed, uint64_t(split), 0, kPlanStream, uint64_t(n));
  VideoSpec v;
  v.noun = int(r.randint(10));
  const auto& pool = by_noun[size_t(v.noun)];
  v.image_index = pool[size_t(r.randint(int64_t(pool.size())))];
  static const char* rows[] = {"top", "middle", "bottom"};
  static const char* cols[] = {"left", "centre", "right"};
  int posture = int(r.randint(3)), row = int(r.randint(3)), col = int(r.randint(3));
  FrameState st;
  st.color = int(r.randint(8));
  st.angle_deg = posture == 0 ? r.uniform(-15, 15)
                 : posture == 1 ? (r.bernoulli(0.5) ? 90 : -90) + r.uniform(-10, 10)
                                : 180 + r.uniform(-10, 10);
  const double u = double(opt.size) / 40.0;
  st.cx = (10 + 10 * col) * u + r.uniform(-2, 2) * u;
  st.cy = (10 + 10 * row) * u + r.uniform(-2, 2) * u;
  st.scale = r.uniform(0.85, 1.15);
  v.frames = {st};
  Image img = render_video(opt, split, n, v, src)[0];
  std::string where;
  if (row == 1 && col == 1) where = "in the centre";
  else if (row == 1) where = std::string("near the ") + cols[col];
  else if (col == 1) where = std::string("near the ") + rows[row];
  else where = std::string("near the ") + rows[row] + " " + cols[col];
  std::string caption = std::string("a ") + palette()[size_t(st.color)].name + " " +
                        nouns()[size_t(v.noun)] + " " + postures()[size_t(posture)] + " " + where;
  return {std::move(img), caption};
}

// ---------------------------------------------------------------- the dataset on disk

std::string canonical_command(const Options& o) {
  std::ostringstream s;
  s << "verbclip make-data --seed " << o.seed << " --train-per-class " << o.train_per_class
    << " --val-per-class " << o.val_per_class << " --test-per-class " << o.test_per_class
    << " --frames " << o.frames << " --size " << o.size << " --captions " << o.captions;
  if (!o.class_ids.empty()) {
    s << " --classes ";
    for (size_t i = 0; i < o.class_ids.size(); ++i) s << (i ? "," : "") << o.class_ids[i];
  }
  if (o.jpeg_quality != 95) s << " --jpeg-quality " << o.jpeg_quality;
  if (o.format != "rawframes") s << " --format " << o.format;
  return s.str();
}

namespace {

struct Video {
  Split split;
  int class_id;   // the spec's id (0..17)
  int64_t label;  // position in the generated class list
  int64_t n;      // index within (split, class)
  std::string id;
};

std::string pad(int64_t v, int width) {
  std::string s = std::to_string(v);
  return std::string(size_t(std::max<int>(0, width - int(s.size()))), '0') + s;
}

// "<video_id> <frames> <label>" under rawframes/, or "<video_id>.<ext> <label>" under videos/.
std::string line_of(const Video& v, int64_t frames, const std::string& format, int64_t label) {
  if (format != "rawframes") return v.id + "." + format + " " + std::to_string(label) + "\n";
  return v.id + " " + std::to_string(frames) + " " + std::to_string(label) + "\n";
}

}  // namespace

Summary generate(const Options& opt, const std::function<void(const Progress&)>& progress) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  VC_CHECK(!opt.out_dir.empty(), "make-data: no output folder given");
  VC_CHECK(opt.frames >= 1 && opt.frames <= 1000, "make-data: --frames must be 1..1000, got ", opt.frames);
  VC_CHECK(opt.size >= 16 && opt.size <= 512, "make-data: --size must be 16..512, got ", opt.size);
  VC_CHECK(opt.train_per_class >= 1 && opt.val_per_class >= 0 && opt.test_per_class >= 1,
           "make-data: need at least 1 train and 1 test video per class");
  VC_CHECK(opt.train_per_class < (1 << 20) && opt.val_per_class < (1 << 20) && opt.test_per_class < (1 << 20),
           "make-data: at most 1048575 videos per class and split");
  VC_CHECK(opt.captions >= 0, "make-data: --captions must be >= 0");
  VC_CHECK(opt.jpeg_quality >= 1 && opt.jpeg_quality <= 100, "make-data: --jpeg-quality must be 1..100");
  const std::string& format = opt.format;
  VC_CHECK(format == "rawframes" || format == "mp4" || format == "avi" || format == "mkv" || format == "webm",
           "make-data: --format '", format, "': expected rawframes, mp4, avi, mkv or webm");
  const bool as_video = format != "rawframes";
  // The encoder before any work: a build without FFmpeg (or without the encoder) fails now.
  VideoEncoderChoice encoder;
  if (as_video) encoder = video_encoder_for("x." + format);
  auto line = [&](const Video& v, int64_t label) { return line_of(v, opt.frames, format, label); };

  std::vector<int> ids = opt.class_ids;
  if (ids.empty())
    for (const auto& c : classes()) ids.push_back(c.id);
  for (size_t i = 0; i < ids.size(); ++i) {
    VC_CHECK(ids[i] >= 0 && ids[i] < int(classes().size()), "make-data: class id ", ids[i],
             " is not one of 0..", classes().size() - 1);
    for (size_t j = 0; j < i; ++j) VC_CHECK(ids[j] != ids[i], "make-data: class ", ids[i], " given twice");
  }
  const bool all_classes = ids.size() == classes().size() &&
                           std::is_sorted(ids.begin(), ids.end());

  if (path_exists(opt.out_dir) && !opt.force)
    fail("make-data: ", opt.out_dir, " already exists (pass --force to replace it)");

  // Fashion-MNIST first: a missing package should fail before any work.
  Mnist train_src = read_fashion_mnist(opt.fashion_mnist_dir, true);
  Mnist test_src = read_fashion_mnist(opt.fashion_mnist_dir, false);
  auto bucket = [](const Mnist& m) {
    std::array<std::vector<int64_t>, 10> b;
    for (int64_t i = 0; i < m.count; ++i) b[m.labels[size_t(i)]].push_back(i);
    return b;
  };
  const auto train_nouns = bucket(train_src), test_nouns = bucket(test_src);

  // Everything is written below a temporary sibling and renamed at the end.
  fs::path out = fs::absolute(opt.out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  fs::path tmp = out;
  tmp += ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::create_directories(out.parent_path(), ec);
  fs::remove_all(tmp, ec);
  const fs::path media = tmp / (as_video ? "videos" : "rawframes");
  if (!fs::create_directories(media, ec)) fail("make-data: cannot create ", media.string(), ": ", ec.message());
  for (const char* d : {"text", "splits", "captions/images"}) fs::create_directories(tmp / d);

  try {
    RenderOptions ro{opt.seed, opt.frames, opt.size};
    std::vector<Video> videos;
    const std::pair<Split, int64_t> splits[] = {{Split::Train, opt.train_per_class},
                                                {Split::Val, opt.val_per_class},
                                                {Split::Test, opt.test_per_class}};
    for (auto [split, per_class] : splits)
      for (size_t c = 0; c < ids.size(); ++c)
        for (int64_t n = 0; n < per_class; ++n) {
          int64_t k = int64_t(c) * per_class + n;
          videos.push_back({split, ids[c], int64_t(c), n, std::string(split_name(split)) + "_" + pad(k, 6)});
        }

    const int64_t total = int64_t(videos.size()) + opt.captions;
    const int64_t val_captions = opt.captions / 10;
    std::vector<std::string> captions(size_t(opt.captions));
    std::atomic<int64_t> next{0}, done{0};
    std::mutex err_mu;
    std::string first_error;
    auto work = [&] {
      while (true) {
        int64_t j = next++;
        if (j >= total) return;
        try {
          if (j < int64_t(videos.size())) {
            const Video& v = videos[size_t(j)];
            const Mnist& src = v.split == Split::Train ? train_src : test_src;
            VideoSpec spec = plan_video(ro, v.split, v.class_id, v.n,
                                        v.split == Split::Train ? train_nouns : test_nouns);
            auto frames = render_video(ro, v.split, video_key(v.class_id, v.n), spec, src);
            if (as_video) {
              // 16 fps, a key frame every 8 frames (TSN's 8 of 16 then seeks inside a video).
              VideoWriterOptions wo;
              wo.fps = kVideoFps;
              wo.gop = 8;
              write_video((media / (v.id + "." + format)).string(), frames, wo);
            } else {
              fs::path dir = media / v.id;
              fs::create_directory(dir);
              for (size_t t = 0; t < frames.size(); ++t) {
                auto bytes = encode_jpeg(frames[t], opt.jpeg_quality);
                write_file_bytes((dir / format_frame_name("img_{:05d}.jpg", int64_t(t) + 1)).string(),
                                 bytes.data(), bytes.size());
              }
            }
          } else {
            int64_t n = j - int64_t(videos.size());
            bool val = n >= opt.captions - val_captions;  // the last 10% use unseen items
            auto [img, text] = render_caption(ro, val ? Split::Val : Split::Captions, n,
                                              val ? test_src : train_src, val ? test_nouns : train_nouns);
            auto bytes = encode_jpeg(img, opt.jpeg_quality);
            write_file_bytes((tmp / "captions/images" / (pad(n, 6) + ".jpg")).string(), bytes.data(), bytes.size());
            captions[size_t(n)] = text;
          }
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(err_mu);
          if (first_error.empty()) first_error = e.what();
          next = total;  // stop the others
        }
        ++done;
      }
    };
    int threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back(work);
    while (done.load() < total && first_error.empty()) {
      if (progress)
        progress({done.load(), total, std::chrono::duration<double>(clock::now() - t0).count()});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& t : pool) t.join();
    if (!first_error.empty()) fail("make-data: ", first_error);
    if (progress) progress({total, total, std::chrono::duration<double>(clock::now() - t0).count()});

    // ---- lists and labels
    LabelSet labels;
    for (int id : ids) labels.names.push_back(classes()[size_t(id)].name);
    write_labels_csv((tmp / "labels.csv").string(), labels);
    std::map<Split, std::string> lists;
    for (const auto& v : videos) lists[v.split] += line(v, v.label);
    write_text_file((tmp / "train.txt").string(), lists[Split::Train]);
    write_text_file((tmp / "val.txt").string(), lists[Split::Val]);
    write_text_file((tmp / "test.txt").string(), lists[Split::Test]);

    // ---- protocol splits
    std::vector<std::string> notes;
    auto of = [&](Split s, int64_t label) {
      std::vector<const Video*> r;
      for (const auto& v : videos)
        if (v.split == s && v.label == label) r.push_back(&v);
      return r;
    };
    // K videos of a class, drawn without replacement by (seed, K, sampling, class).
    auto pick = [&](std::vector<const Video*> pool, int64_t k, int sampling, int64_t label) {
      SampleRng r(opt.seed, uint64_t(k), uint64_t(sampling), RngPurpose::Shuffle, uint64_t(label));
      for (int64_t i = 0; i < k; ++i)
        std::swap(pool[size_t(i)], pool[size_t(i + r.randint(int64_t(pool.size()) - i))]);
      pool.resize(size_t(k));
      std::sort(pool.begin(), pool.end(), [](auto a, auto b) { return a->n < b->n; });
      return pool;
    };
    for (int64_t k : {2, 4, 8, 16}) {
      if (k > opt.train_per_class) {
        notes.push_back("fewshot_k" + std::to_string(k) + "_* not written: only " +
                        std::to_string(opt.train_per_class) + " train videos per class");
        continue;
      }
      for (int s = 1; s <= 3; ++s) {
        std::string text;
        for (int64_t c = 0; c < int64_t(ids.size()); ++c)
          for (const Video* v : pick(of(Split::Train, c), k, s, c)) text += line(*v, c);
        write_text_file((tmp / "splits" / ("fewshot_k" + std::to_string(k) + "_seed" + std::to_string(s) + ".txt")).string(), text);
      }
    }
    if (all_classes) {
      // Base-to-novel over classes 0–13: one of each time-reversal pair on each side,
      // so family C's novel half is the reverse of the base half.
      const std::vector<int> base = {0, 2, 4, 6, 8, 10, 12}, novel = {1, 3, 5, 7, 9, 11, 13};
      LabelSet bl, nl;
      for (int c : base) bl.names.push_back(classes()[size_t(c)].name);
      for (int c : novel) nl.names.push_back(classes()[size_t(c)].name);
      write_labels_csv((tmp / "splits/b2n_base_labels.csv").string(), bl);
      write_labels_csv((tmp / "splits/b2n_novel_labels.csv").string(), nl);
      if (opt.train_per_class >= 16) {
        for (int s = 1; s <= 3; ++s) {
          std::string text;
          for (size_t i = 0; i < base.size(); ++i)
            for (const Video* v : pick(of(Split::Train, base[i]), 16, 100 + s, base[i]))
              text += line(*v, int64_t(i));
          write_text_file((tmp / "splits" / ("b2n_train_seed" + std::to_string(s) + ".txt")).string(), text);
        }
      } else {
        notes.push_back("b2n_train_seed* not written: fewer than 16 train videos per class");
      }
      std::string vb, vn, zt, zs;
      for (size_t i = 0; i < base.size(); ++i)
        for (const Video* v : of(Split::Test, base[i])) vb += line(*v, int64_t(i));
      for (size_t i = 0; i < novel.size(); ++i)
        for (const Video* v : of(Split::Test, novel[i])) vn += line(*v, int64_t(i));
      write_text_file((tmp / "splits/b2n_val_base.txt").string(), vb);
      write_text_file((tmp / "splits/b2n_val_novel.txt").string(), vn);
      // Zero-shot: train on 0–13, test on the compositions 14–17 (labels 0–3 of their own file).
      LabelSet zl_train, zl_test;
      for (int c = 0; c < 14; ++c) {
        zl_train.names.push_back(classes()[size_t(c)].name);
        for (const Video* v : of(Split::Train, c)) zt += line(*v, c);
      }
      for (int c = 14; c < 18; ++c) {
        zl_test.names.push_back(classes()[size_t(c)].name);
        for (const Video* v : of(Split::Test, c)) zs += line(*v, c - 14);
      }
      write_labels_csv((tmp / "splits/zeroshot_train_labels.csv").string(), zl_train);
      write_labels_csv((tmp / "splits/zeroshot_test_labels.csv").string(), zl_test);
      write_text_file((tmp / "splits/zeroshot_train.txt").string(), zt);
      write_text_file((tmp / "splits/zeroshot_test.txt").string(), zs);
    } else {
      notes.push_back("base-to-novel and zero-shot splits not written: they need all 18 classes");
    }

    // ---- captions
    std::string cap_train, cap_val;
    for (int64_t n = 0; n < opt.captions; ++n)
      (n >= opt.captions - val_captions ? cap_val : cap_train) +=
          "images/" + pad(n, 6) + ".jpg\t" + captions[size_t(n)] + "\n";
    write_text_file((tmp / "captions/train.tsv").string(), cap_train);
    write_text_file((tmp / "captions/val.tsv").string(), cap_val);

    // ---- text assets and the vocabulary built from all of them
    std::string tpl;
    for (const auto& t : templates()) tpl += t + "\n";
    write_text_file((tmp / "text/templates.txt").string(), tpl);
    std::string interp = interpretive_json(), askg = askg_json(), corpus = corpus_tsv();
    write_text_file((tmp / "text/interpretive.json").string(), interp);
    write_text_file((tmp / "text/askg.json").string(), askg);
    write_text_file((tmp / "text/corpus.tsv").string(), corpus);
    // Caption texts only: image file names are no words of the vocabulary.
    std::vector<std::string> texts = {interp, askg, corpus};
    texts.insert(texts.end(), captions.begin(), captions.end());
    for (const auto& c : classes()) {
      texts.push_back(c.name);
      for (const auto& t : templates()) {
        std::string filled = t;
        filled.replace(filled.find("{}"), 2, c.name);
        texts.push_back(filled);
      }
    }
    for (const auto& p : palette()) texts.push_back(p.name);
    for (const auto& n : nouns()) texts.push_back(n);
    write_text_file((tmp / "text/vocab.txt").string(), build_vocab(texts));

    // ---- README
    std::ostringstream md;
    md << "# Fashion-Motion\n\nGenerated by verbclip (specs/synthetic-dataset.md). The same command "
          "writes byte-identical files.\n\n"
       << "    " << canonical_command(opt) << "\n\n"
       << "- seed: " << opt.seed << "\n"
       << "- classes: " << ids.size() << " (labels.csv, ids 0-based)\n"
       << "- videos: " << opt.train_per_class << " train, " << opt.val_per_class << " val, "
       << opt.test_per_class << " test per class (" << videos.size() << " in all), "
       << opt.frames << " frames of " << opt.size << "x" << opt.size << " RGB each\n"
       << "- caption images: " << opt.captions << " (" << val_captions << " in captions/val.tsv)\n\n"
       << "## Layout\n\n"
       << (as_video ? "- `videos/<video_id>." + format + "`: " + std::to_string(int64_t(kVideoFps)) + " fps, encoded with " +
                          encoder.codec + (encoder.lossless ? " (lossless)" : " (near-lossless)") +
                          "\n- `train.txt`, `val.txt`, `test.txt`: `<video_id>." + format +
                          " <label>` (mmaction2 video lists), relative to `videos/`\n"
                    : std::string("- `rawframes/<video_id>/img_00001.jpg ...` frames, start index 1 (mmaction2 rawframes)\n"
                                  "- `train.txt`, `val.txt`, `test.txt`: `<video_id> <num_frames> <label>`, relative to `rawframes/`\n"))
       << "- `labels.csv`: `id,name` with a header\n"
       << "- `splits/fewshot_k{K}_seed{S}.txt`: K train videos per class\n"
       << "- `splits/b2n_*`: base classes 0,2,...,12 and novel 1,3,...,13; each list's labels index its own CSV;\n"
       << "  `b2n_val_base.txt` / `b2n_val_novel.txt` partition the test videos of classes 0-13\n"
       << "- `splits/zeroshot_train.txt` (classes 0-13, labels as labels.csv) and `zeroshot_test.txt`\n"
       << "  (classes 14-17, labels 0-3 of `zeroshot_test_labels.csv`)\n"
       << "- `captions/{train,val}.tsv`: `<image>\\t<caption>` for CLIP pretraining on single frames\n"
       << "- `text/templates.txt`, `text/interpretive.json`, `text/askg.json`, `text/corpus.tsv`\n"
       << "- `text/vocab.txt`: word-level vocabulary, id = line number (0-based): `<pad>`, `<unk>`, the "
          "words, then `<|startoftext|>` and `<|endoftext|>` (highest id). Tokens are lower-cased runs "
          "of a-z0-9; every other non-space character is a token of its own.\n\n"
       << "Training uses random 32x32 crops of the 40x40 frames and testing a centre crop; horizontal "
          "flip must stay off (it turns \"moving left\" into \"moving right\").\n";
    if (!notes.empty()) {
      md << "\n## Not written\n\n";
      for (const auto& n : notes) md << "- " << n << "\n";
    }
    write_text_file((tmp / "README.md").string(), md.str());

    // ---- into place
    fs::path old;
    if (fs::exists(out)) {
      old = out;
      old += ".old-" + std::to_string(::getpid());
      fs::rename(out, old);
    }
    fs::rename(tmp, out);
    if (!old.empty()) fs::remove_all(old);
    Summary s;
    s.videos = int64_t(videos.size());
    s.frames = s.videos * opt.frames;
    s.captions = opt.captions;
    return s;
  } catch (...) {
    fs::remove_all(tmp, ec);  // nothing half-written stays behind
    throw;
  }
}

}  // namespace vc::data::fm
