// Loader throughput (clips/s) with 1 and 2 workers, at the default Fashion-Motion config
// (8 of 16 frames of 40×40 JPEGs → 8×3×32×32) and at 8×224×224 (frames 256×340, X-CLIP
// training pipeline: multi-scale crop, flip, colour jitter, grayscale). Prints JSON.
// The frames are synthetic noise JPEGs written to a temporary folder: decoding cost is what
// matters here, not content.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "data/image.h"
#include "data/loader.h"
#include "data/util.h"
#include "engine/rng/philox.h"

using namespace vc::data;
namespace fs = std::filesystem;

static std::string make_videos(const fs::path& root, int videos, int frames, int h, int w) {
  std::string list;
  for (int v = 0; v < videos; ++v) {
    fs::path dir = root / ("v" + std::to_string(v));
    fs::create_directories(dir);
    for (int f = 0; f < frames; ++f) {
      Image img;
      img.height = h, img.width = w;
      img.pixels.resize(size_t(h) * w * 3);
      for (size_t i = 0; i < img.pixels.size(); ++i)
        img.pixels[i] = uint8_t((i / 3 % size_t(w)) + (vc::philox_at(v, f, i / 16).v[0] & 63));
      write_image((dir / format_frame_name("img_{:05d}.jpg", f + 1)).string(), img);
    }
    list += "v" + std::to_string(v) + " " + std::to_string(frames) + " " + std::to_string(v % 18) + "\n";
  }
  write_text_file((root / "list.txt").string(), list);
  return (root / "list.txt").string();
}

static double clips_per_second(const VideoDataset& ds, int workers, int64_t batch, int epochs) {
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

int main() {
  fs::path root = fs::temp_directory_path() / ("verbclip_bench_loader_" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::printf("{\n  \"benchmark\": \"loader\",\n  \"results\": [\n");
  bool first = true;
  auto report = [&](const char* config, int workers, double cps, int64_t t, int64_t s) {
    std::printf("%s    {\"config\": \"%s\", \"frames\": %lld, \"size\": %lld, \"workers\": %d, \"clips_per_s\": %.1f}",
                first ? "" : ",\n", config, (long long)t, (long long)s, workers, cps);
    first = false;
    std::fflush(stdout);
  };

  {  // Fashion-Motion default
    std::string list = make_videos(root / "fm", 256, 16, 40, 40);
    DatasetOptions o = DatasetOptions::fashion_motion(root.string());
    o.root = (root / "fm").string();
    VideoDataset ds = VideoDataset::from_list(list, o);
    for (int w : {1, 2}) report("fashion-motion 8x32x32 (from 16x40x40)", w, clips_per_second(ds, w, 32, 3), 8, 32);
  }
  {  // 8 x 224 x 224, X-CLIP augmentation
    std::string list = make_videos(root / "big", 24, 16, 256, 340);
    DatasetOptions o;
    o.root = (root / "big").string();
    o.sampler.num_segments = 8;
    o.transform = TransformOptions::xclip(224);
    VideoDataset ds = VideoDataset::from_list(list, o);
    for (int w : {1, 2}) report("xclip 8x224x224 (from 256x340 JPEG)", w, clips_per_second(ds, w, 4, 2), 8, 224);
  }
  std::printf("\n  ]\n}\n");
  fs::remove_all(root);
  return 0;
}
