// Loader throughput (clips/s) with 1 and 2 workers, rawframes (JPEG) against video files made
// of the same frames, side by side in one run (the machine is shared: read the ratios):
//  - fm:  the default Fashion-Motion config (8 of 16 frames of 40×40 → 8×3×32×32); JPEG
//         rawframes vs .mp4 as `make-data --format mp4` writes it (H.264 RGB lossless, key
//         frame every 8 frames).
//  - big: 8×224×224 with the X-CLIP training pipeline (multi-scale crop, flip, colour jitter,
//         grayscale) from 240-frame videos of 320×426 (320-pixel short side, Kinetics-style):
//         JPEG rawframes vs .mp4 lossless RGB (key frame every 16) vs .mp4 lossy 4:2:0 H.264
//         (crf 23, x264's default key-frame interval of 250: one key frame per video, the
//         common case for downloaded files and the worst case for seeking).
//  - memory: peak RSS of decoding one long video (1000, 4000, 8000 frames: lossless 40×40 and
//         lossy 320×426), read
//         sequentially, at random indices and by decode_all (check-videos), each measurement in
//         its own process (VmHWM of /proc/self/status, which starts fresh at exec).
// Usage: bench_loader [--parts fm,big,memory] [--memory-frames 1000,4000,8000]. Prints JSON.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/loader.h"
#include "data/util.h"
#include "data/video.h"
#include "engine/rng/philox.h"

using namespace vc::data;
namespace fs = std::filesystem;

namespace {

using FrameFn = Image (*)(int v, int f, int h, int w);

// Noise over a ramp (the original benchmark's frames): decoding cost, not content, matters.
Image noise_frame(int v, int f, int h, int w) {
  Image img;
  img.height = h, img.width = w;
  img.pixels.resize(size_t(h) * w * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    img.pixels[i] = uint8_t((i / 3 % size_t(w)) + (vc::philox_at(v, f, i / 16).v[0] & 63));
  return img;
}

// Smooth moving texture and a moving square: large frames that a lossless codec can hold in
// a few hundred kB (noise would make a 240-frame lossless mp4 tens of MB).
Image smooth_frame(int v, int f, int h, int w) {
  static std::vector<uint8_t> lut = [] {
    std::vector<uint8_t> t(256);
    for (int i = 0; i < 256; ++i) t[size_t(i)] = uint8_t(128 + 100 * std::sin(i * 2 * M_PI / 256));
    return t;
  }();
  Image img;
  img.height = h, img.width = w;
  img.pixels.resize(size_t(h) * w * 3);
  const int sx = (f * 3 + v * 17) % std::max(1, w - 40), sy = (f * 2 + v * 29) % std::max(1, h - 40);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[(size_t(y) * w + x) * 3];
      const bool square = x >= sx && x < sx + 40 && y >= sy && y < sy + 40;
      p[0] = square ? 250 : lut[size_t((x * 3 + f * 5 + v * 11) & 255)];
      p[1] = square ? 20 : lut[size_t((y * 2 + x - f * 3) & 255)];
      p[2] = square ? 60 : lut[size_t((y * 5 + f * 7 + v) & 255)];
    }
  return img;
}

std::string make_rawframes(const fs::path& root, int videos, int frames, int h, int w, FrameFn gen) {
  std::string list;
  for (int v = 0; v < videos; ++v) {
    fs::path dir = root / ("v" + std::to_string(v));
    fs::create_directories(dir);
    for (int f = 0; f < frames; ++f)
      write_image((dir / format_frame_name("img_{:05d}.jpg", f + 1)).string(), gen(v, f, h, w));
    list += "v" + std::to_string(v) + " " + std::to_string(frames) + " " + std::to_string(v % 18) + "\n";
  }
  write_text_file((root / "list.txt").string(), list);
  return (root / "list.txt").string();
}

// The same frames as video files (a video list, `path label`).
std::string make_video_files(const fs::path& root, int videos, int frames, int h, int w, FrameFn gen,
                             const VideoWriterOptions& vo) {
  fs::create_directories(root);
  std::string list;
  for (int v = 0; v < videos; ++v) {
    const std::string name = "v" + std::to_string(v) + ".mp4";
    VideoWriter wr((root / name).string(), w, h, vo);
    for (int f = 0; f < frames; ++f) wr.add(gen(v, f, h, w));
    wr.finish();
    list += name + " " + std::to_string(v % 18) + "\n";
  }
  write_text_file((root / "list.txt").string(), list);
  return (root / "list.txt").string();
}

double clips_per_second(const VideoDataset& ds, int workers, int64_t batch, int epochs) {
  LoaderOptions lo;
  lo.batch_size = batch;
  lo.workers = workers;
  lo.seed = 1;
  Loader l(ds, lo);
  int64_t clips = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int e = 0; e < epochs; ++e) {
    l.start_epoch(uint64_t(e));
    Batch b;
    while (l.next(b)) clips += b.size();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(clips) / s;
}

// Frames the decoder produces per training clip (sampled frames plus those decoded through to
// reach them), over one epoch of samples: what the video's key-frame interval costs.
double decoded_per_clip(const VideoDataset& ds) {
  int64_t decoded = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    VideoReader r(ds.frame_path(i, 0));
    r.read(ds.frame_indices(i, true, 1, 0, 0, 0));
    decoded += r.stats().decoded;
  }
  return double(decoded) / double(ds.size());
}

std::vector<int> int_list(const std::string& s) {
  std::vector<int> out;
  for (const std::string& t : split_char(s, ',')) out.push_back(std::stoi(t));
  return out;
}

int64_t status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0) return std::stoll(line.substr(n + 1));
  return -1;
}

// One memory measurement in this (fresh) process: prints a JSON object.
int memory_child(const std::string& path, const std::string& mode) {
  const int64_t rss_start = status_kib("VmRSS");
  auto t0 = std::chrono::steady_clock::now();
  VideoReader r(path);
  const int64_t rss_open = status_kib("VmRSS");
  const int64_t n = r.info().frames;
  int64_t reads = 0, checksum = 0;
  if (mode == "sequential") {  // consecutive 16-frame clips through the whole video, one reader
    for (int64_t s = 0; s < n; s += 16, ++reads) {
      std::vector<int64_t> at;
      for (int64_t i = s; i < std::min(n, s + 16); ++i) at.push_back(i);
      for (const Image& im : r.read(at)) checksum += im.pixels[0];
    }
  } else if (mode == "random") {  // 8 random indices per read, in random order, one reader
    for (; reads < 20; ++reads) {
      std::vector<int64_t> at;
      for (int k = 0; k < 8; ++k) at.push_back(int64_t(vc::philox_at(7, uint64_t(reads), uint64_t(k)).v[0] % uint64_t(n)));
      for (const Image& im : r.read(at)) checksum += im.pixels[0];
    }
  } else if (mode == "decode_all") {  // check-videos: every frame converted to RGB
    reads = 1;
    r.decode_all([&](int64_t, const Image& im) { checksum += im.pixels[0]; });
  } else {
    std::fprintf(stderr, "bench_loader: unknown memory mode '%s' (sequential, random, decode_all)\n", mode.c_str());
    return 2;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"rss_start_kib\": %lld, \"rss_after_open_kib\": %lld, \"peak_rss_kib\": %lld, "
              "\"reads\": %lld, \"decoded\": %lld, \"seeks\": %lld, \"seconds\": %.2f, \"checksum\": %lld}",
              (long long)rss_start, (long long)rss_open, (long long)status_kib("VmHWM"), (long long)reads,
              (long long)r.stats().decoded, (long long)r.stats().seeks, s, (long long)checksum);
  return 0;
}

std::string run_child(const std::string& self, const std::string& path, const std::string& mode) {
  const std::string cmd = "'" + self + "' --memory-child '" + path + "' " + mode;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) fail("bench_loader: cannot run ", cmd);
  std::string out;
  char buf[512];
  while (size_t k = fread(buf, 1, sizeof buf, p)) out.append(buf, k);
  if (pclose(p) != 0) fail("bench_loader: ", cmd, " failed: ", out);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string parts = "fm,big", memory_frames = "1000,4000,8000";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--memory-child" && i + 2 < argc) return memory_child(argv[i + 1], argv[i + 2]);
    if (a == "--parts" && i + 1 < argc) parts = argv[++i];
    else if (a == "--memory-frames" && i + 1 < argc) memory_frames = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_loader [--parts fm,big,memory] [--memory-frames 1000,4000,8000]\n");
      return 2;
    }
  }
  auto want = [&](const char* p) { return (',' + parts + ',').find(std::string(",") + p + ",") != std::string::npos; };
  const bool videos = video_support();
  if (!videos) std::fprintf(stderr, "bench_loader: built without FFmpeg: rawframes only\n");

  fs::path root = fs::temp_directory_path() / ("verbclip_bench_loader_" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::printf("{\n  \"benchmark\": \"loader\",\n  \"results\": [\n");
  bool first = true;
  std::string ratios;
  auto report = [&](const std::string& config, const char* source, int workers, double cps, int64_t t, int64_t s,
                    double decoded) {
    std::printf("%s    {\"config\": \"%s\", \"source\": \"%s\", \"frames\": %lld, \"size\": %lld, \"workers\": %d, "
                "\"clips_per_s\": %.1f",
                first ? "" : ",\n", config.c_str(), source, (long long)t, (long long)s, workers, cps);
    if (decoded > 0) std::printf(", \"decoded_frames_per_clip\": %.1f", decoded);
    std::printf("}");
    first = false;
    std::fflush(stdout);
  };
  struct Source {
    const char* name;
    VideoDataset ds;
    double decoded;
  };
  // Each worker count runs every source back to back, so that their ratios share the machine's
  // state of the moment.
  auto compare = [&](const std::string& config, std::vector<Source>& sources, int64_t batch, int epochs, int64_t t,
                     int64_t s) {
    for (int w : {1, 2}) {
      double raw = 0;
      for (Source& src : sources) {
        const double cps = clips_per_second(src.ds, w, batch, epochs);
        report(config, src.name, w, cps, t, s, src.decoded);
        if (src.decoded == 0) raw = cps;
        else {
          char line[256];
          std::snprintf(line, sizeof line, "%s    {\"config\": \"%s\", \"source\": \"%s\", \"workers\": %d, "
                        "\"video_over_rawframes\": %.2f}", ratios.empty() ? "" : ",\n", config.c_str(), src.name, w, cps / raw);
          ratios += line;
        }
      }
    }
  };

  if (want("fm")) {  // Fashion-Motion default
    const std::string config = "fashion-motion 8x32x32 (from 16x40x40)";
    DatasetOptions o = DatasetOptions::fashion_motion(root.string());
    o.root = (root / "fm").string();
    std::vector<Source> sources;
    sources.push_back({"rawframes jpeg", VideoDataset::from_list(make_rawframes(root / "fm", 256, 16, 40, 40, noise_frame), o), 0});
    if (videos) {
      VideoWriterOptions vo;
      vo.gop = 8;  // as make-data
      o.root = (root / "fm_mp4").string();
      o.video_root = "";  // the list names files in root
      VideoDataset ds = VideoDataset::from_list(make_video_files(root / "fm_mp4", 256, 16, 40, 40, noise_frame, vo), o);
      const double d = decoded_per_clip(ds);
      sources.push_back({"mp4 h264rgb lossless gop8", std::move(ds), d});
    }
    compare(config, sources, 32, 3, 8, 32);
  }
  if (want("big")) {  // 8 × 224 × 224, X-CLIP augmentation, from 320×426 frames
    const std::string config = "xclip 8x224x224 (from 240x320x426)";
    const int V = 12, F = 240, H = 320, W = 426;
    DatasetOptions o;
    o.sampler.num_segments = 8;
    o.transform = TransformOptions::xclip(224);
    o.root = (root / "big").string();
    std::vector<Source> sources;
    sources.push_back({"rawframes jpeg", VideoDataset::from_list(make_rawframes(root / "big", V, F, H, W, smooth_frame), o), 0});
    if (videos) {
      VideoWriterOptions vo;
      vo.fps = 24;
      vo.gop = 16;
      o.root = (root / "big_rgb").string();
      VideoDataset rgb = VideoDataset::from_list(make_video_files(root / "big_rgb", V, F, H, W, smooth_frame, vo), o);
      const double d1 = decoded_per_clip(rgb);
      sources.push_back({"mp4 h264rgb lossless gop16", std::move(rgb), d1});
      vo.codec = "libx264";
      vo.gop = 250;
      o.root = (root / "big_yuv").string();
      VideoDataset yuv = VideoDataset::from_list(make_video_files(root / "big_yuv", V, F, H, W, smooth_frame, vo), o);
      const double d2 = decoded_per_clip(yuv);
      sources.push_back({"mp4 h264 crf23 gop250", std::move(yuv), d2});
    }
    compare(config, sources, 4, 3, 8, 224);
  }
  std::printf("\n  ]");
  if (!ratios.empty()) std::printf(",\n  \"ratios\": [\n%s\n  ]", ratios.c_str());

  if (want("memory") && videos) {
    char self[4096];
    const ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) fail("bench_loader: cannot find its own executable");
    self[k] = 0;
    std::printf(",\n  \"memory\": [\n");
    bool mfirst = true;
    for (int frames : int_list(memory_frames)) {
      struct Kind {
        const char* name;
        const char* codec;
        int gop, H, W;
      };
      // Lossless RGB H.264 decodes slowly at 320×426 (see "big"), so it is measured at the
      // Fashion-Motion size; the lossy file is the realistic long video.
      for (const Kind& kind : {Kind{"mp4 h264rgb lossless gop8", "", 8, 40, 40},
                               Kind{"mp4 h264 crf23 gop250", "libx264", 250, 320, 426}}) {
        const int H = kind.H, W = kind.W;
        fs::create_directories(root / "long");
        const std::string path = (root / "long" / ("long_" + std::to_string(frames) + ".mp4")).string();
        VideoWriterOptions vo;
        vo.fps = 25;
        vo.gop = kind.gop;
        vo.codec = kind.codec;
        {
          VideoWriter wr(path, W, H, vo);
          for (int f = 0; f < frames; ++f) wr.add(smooth_frame(0, f, H, W));
          wr.finish();
        }
        for (const char* mode : {"sequential", "random", "decode_all"}) {
          std::printf("%s    {\"video\": \"%s\", \"frames\": %d, \"size\": \"%dx%d\", \"file_kib\": %lld, \"mode\": \"%s\", "
                      "\"result\": %s}",
                      mfirst ? "" : ",\n", kind.name, frames, H, W, (long long)(fs::file_size(path) / 1024), mode,
                      run_child(self, path, mode).c_str());
          mfirst = false;
          std::fflush(stdout);
        }
        fs::remove(path);
      }
    }
    std::printf("\n  ]");
  }
  std::printf("\n}\n");
  fs::remove_all(root);
  return 0;
}
