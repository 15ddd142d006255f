// Video files (data/video.h): frames written through libavcodec come back equal (exactly for
// the lossless encoders) at any indices, in any order, across seeks; frame count, fps and
// duration; every bad-input case names the file; the dataset and loader on video lists.
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>

#include "data/loader.h"
#include "data/sampling.h"
#include "data/util.h"
#include "data/video.h"
#include "data_testing.h"

using namespace vc::data;
using namespace vc::data::testing;

namespace {

// n frames of h×w whose every pixel depends on (frame, y, x): a frame decoded in the wrong
// place or with the wrong colours cannot pass for another.
std::vector<Image> pattern_frames(int n, int h, int w, int salt = 0) {
  std::vector<Image> out;
  for (int f = 0; f < n; ++f) {
    Image img;
    img.height = h, img.width = w;
    img.pixels.resize(size_t(h) * w * 3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        uint8_t* p = img.at(y, x);
        p[0] = uint8_t(f * 4 + salt);
        p[1] = uint8_t(x * 7 + y * 3 + f);
        p[2] = uint8_t((x * y * 13 + f * 29 + salt) & 255);
      }
    out.push_back(img);
  }
  return out;
}

// Largest absolute difference between two images of one size.
int max_diff(const Image& a, const Image& b) {
  REQUIRE(a.height == b.height);
  REQUIRE(a.width == b.width);
  int m = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

void write_wav(const std::string& path) {
  std::string s = "RIFF";
  auto le = [&](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += char((v >> (8 * i)) & 0xFF);
  };
  const uint32_t samples = 1600, rate = 16000;
  le(36 + samples * 2, 4);
  s += "WAVEfmt ";
  le(16, 4), le(1, 2), le(1, 2), le(rate, 4), le(rate * 2, 4), le(2, 2), le(16, 2);
  s += "data";
  le(samples * 2, 4);
  for (uint32_t i = 0; i < samples; ++i) le((i * 37) & 0x7FFF, 2);
  write(path, s);
}

}  // namespace

#define REQUIRE_VIDEO()                                                  \
  if (!video_support()) {                                                \
    MESSAGE("SKIPPED: verbclip built without FFmpeg (VERBCLIP_FFMPEG)"); \
    return;                                                              \
  }

TEST_CASE("video: lossless mp4/avi/mkv decode to the written frames at any indices, across seeks") {
  REQUIRE_VIDEO();
  TempDir d("video_exact");
  const int N = 60, H = 26, W = 34;
  const auto frames = pattern_frames(N, H, W);
  VideoWriterOptions wo;
  wo.fps = 16;
  wo.gop = 10;  // 6 key frames: reading late frames seeks
  for (const std::string ext : {"mp4", "avi", "mkv"}) {
    CAPTURE(ext);
    const std::string path = d / ("v." + ext);
    VideoEncoderChoice enc = write_video(path, frames, wo);
    CHECK(enc.lossless);
    CHECK(!fs::exists(fs::path(path).parent_path() / (".tmp-" + std::to_string(::getpid()) + "-v." + ext)));
    VideoReader r(path);
    const VideoInfo& in = r.info();
    CHECK(in.frames == N);
    CHECK(in.fps == doctest::Approx(16.0));
    CHECK(in.duration == doctest::Approx(N / 16.0).epsilon(0.02));
    CHECK(in.width == W);
    CHECK(in.height == H);
    // mp4 and avi hold a frame count; matroska does not, so it is counted.
    CHECK(in.count_source == (ext == "mkv" ? VideoInfo::CountSource::PacketCount : VideoInfo::CountSource::Container));
    // Out of order, repeated, first and last: each equals the frame written there.
    const std::vector<int64_t> idx = {57, 3, 3, 30, 12, 59, 0, 31};
    std::vector<Image> got = r.read(idx);
    REQUIRE(got.size() == idx.size());
    for (size_t i = 0; i < idx.size(); ++i) CHECK(max_diff(got[i], frames[size_t(idx[i])]) == 0);
    // A second read that goes back to the start and jumps forward over key frames.
    got = r.read({1, 45, 46});
    CHECK(max_diff(got[0], frames[1]) == 0);
    CHECK(max_diff(got[1], frames[45]) == 0);
    CHECK(max_diff(got[2], frames[46]) == 0);
    if (ext == "mp4") CHECK(r.stats().seeks >= 2);
    // Every frame, in order.
    int64_t n = r.decode_all([&](int64_t i, const Image& img) {
      REQUIRE(i < N);
      CHECK(max_diff(img, frames[size_t(i)]) == 0);
    });
    CHECK(n == N);
  }
}

TEST_CASE("video: seeking decodes less than reading from the start; sampler indices in order or not") {
  REQUIRE_VIDEO();
  TempDir d("video_seek");
  const int N = 120;
  const auto frames = pattern_frames(N, 16, 16, 5);
  VideoWriterOptions wo;
  wo.gop = 12;
  write_video(d / "long.mp4", frames, wo);
  {
    VideoReader r(d / "long.mp4");
    auto got = r.read({110});
    CHECK(max_diff(got[0], frames[110]) == 0);
    CHECK(r.stats().seeks == 1);
    CHECK(r.stats().decoded < 40);  // from the key frame at 108 (plus the decoder's delay), not from 0
  }
  // TSN test and train indices; decoded in sorted order and in the sampler's order (two
  // fresh readers, and one reader asked per index, back and forth) give the same frames.
  SamplerOptions so;
  so.num_segments = 8;
  SampleRng rng(3, 0, 0, RngPurpose::Sampling, 0);
  for (bool train : {false, true}) {
    std::vector<int64_t> pos = sample_frames(N, so, train, rng);
    std::vector<int64_t> shuffled(pos.rbegin(), pos.rend());
    VideoReader a(d / "long.mp4"), b(d / "long.mp4"), c(d / "long.mp4");
    auto fa = a.read(pos), fb = b.read(shuffled);
    for (size_t i = 0; i < pos.size(); ++i) {
      CHECK(max_diff(fa[i], frames[size_t(pos[i])]) == 0);
      CHECK(max_diff(fb[pos.size() - 1 - i], fa[i]) == 0);
      CHECK(max_diff(c.read({shuffled[i]})[0], frames[size_t(shuffled[i])]) == 0);
    }
  }
}

TEST_CASE("video: near-lossless mpeg4 and lossless webm") {
  REQUIRE_VIDEO();
  TempDir d("video_codecs");
  // Fashion-Motion-like content: a dark background and a moving bright square of one colour.
  std::vector<Image> smooth;
  for (int f = 0; f < 20; ++f) {
    Image img;
    img.height = 24, img.width = 32;
    img.pixels.assign(24 * 32 * 3, 8);
    for (int y = 6; y < 18; ++y)
      for (int x = f / 2 + 4; x < f / 2 + 16; ++x) {
        uint8_t* p = img.at(y, x);
        p[0] = 220, p[1] = 120, p[2] = 40;
      }
    smooth.push_back(img);
  }
  VideoWriterOptions wo;
  wo.codec = "mpeg4";
  VideoEncoderChoice e = write_video(d / "q1.mp4", smooth, wo);
  CHECK(e.codec == "mpeg4");
  CHECK(!e.lossless);
  VideoReader r(d / "q1.mp4");
  CHECK(r.info().frames == 20);
  // qscale 1 and 4:2:0 chroma: edges of the square blur in colour, the rest is within a few
  // levels. The bound fails a wrong colour matrix, range or frame.
  double sum = 0;
  const std::vector<int64_t> at = {0, 7, 19};
  auto got = r.read(at);
  for (size_t i = 0; i < at.size(); ++i)
    for (size_t k = 0; k < got[i].pixels.size(); ++k)
      sum += std::abs(int(got[i].pixels[k]) - int(smooth[size_t(at[i])].pixels[k]));
  const double mean = sum / (double(at.size()) * double(smooth[0].pixels.size()));
  MESSAGE("mpeg4 qscale 1 (4:2:0) on a moving square: mean |error| " << mean << " levels");
  CHECK(mean < 4);
  const auto frames = pattern_frames(20, 24, 32, 9);
  wo.codec = "";
  VideoEncoderChoice w = write_video(d / "v.webm", frames, wo);
  CHECK(w.lossless);
  VideoReader rw(d / "v.webm");
  CHECK(rw.info().frames == 20);
  CHECK(rw.info().count_source == VideoInfo::CountSource::PacketCount);
  auto gw = rw.read({19, 2});
  CHECK(max_diff(gw[0], frames[19]) == 0);
  CHECK(max_diff(gw[1], frames[2]) == 0);
}

// Typical downloaded .mp4 files: lossy 4:2:0 H.264 with B-frames, whose presentation order
// differs from decoding order. Any index read alone, or with others in any order, gives the
// frame that decoding the whole file in order gives there, and costs at most about one
// key-frame interval of decoding (a seek that misses must not fall back to frame 0).
TEST_CASE("video: lossy H.264 with B-frames reads any index as sequential decoding does") {
  REQUIRE_VIDEO();
  TempDir d("video_bframes");
  const int N = 96, gop = 12;
  const auto frames = pattern_frames(N, 32, 48, 3);
  VideoWriterOptions wo;
  wo.codec = "libx264";
  wo.gop = gop;
  VideoEncoderChoice e = write_video(d / "b.mp4", frames, wo);
  CHECK(e.codec == "libx264");
  CHECK(!e.lossless);
  std::vector<Image> all;
  VideoReader full(d / "b.mp4");
  CHECK(full.info().frames == N);
  CHECK(full.decode_all([&](int64_t i, const Image& img) {
    CHECK(i == int64_t(all.size()));
    all.push_back(img);
  }) == N);
  REQUIRE(all.size() == size_t(N));
  int64_t worst = 0;
  for (int64_t i = 0; i < N; ++i) {
    VideoReader r(d / "b.mp4");
    auto got = r.read({i});
    CHECK_MESSAGE(max_diff(got[0], all[size_t(i)]) == 0, "frame " << i);
    worst = std::max(worst, r.stats().decoded);
  }
  MESSAGE("lossy H.264, key frame every " << gop << ": at most " << worst << " frames decoded to read one");
  CHECK(worst <= 2 * gop);
  VideoReader r(d / "b.mp4");
  const std::vector<int64_t> at = {95, 13, 12, 11, 50, 0, 49, 94, 23, 24};
  auto got = r.read(at);
  for (size_t i = 0; i < at.size(); ++i) CHECK(max_diff(got[i], all[size_t(at[i])]) == 0);
}

TEST_CASE("video: the same frames give the same bytes") {
  REQUIRE_VIDEO();
  TempDir d("video_det");
  const auto frames = pattern_frames(12, 16, 16);
  for (const std::string ext : {"mp4", "avi"}) {
    write_video(d / ("a." + ext), frames);
    write_video(d / ("b." + ext), frames);
    CHECK(slurp(d / ("a." + ext)) == slurp(d / ("b." + ext)));
  }
}

TEST_CASE("video: every bad file is named with its reason") {
  REQUIRE_VIDEO();
  TempDir d("video_bad");
  const auto frames = pattern_frames(30, 16, 16);
  VideoWriterOptions wo;
  wo.gop = 5;
  // Missing.
  std::string m = error_of([&] { VideoReader r(d / "nope.mp4"); });
  CHECK(contains(m, d / "nope.mp4"));
  CHECK(contains(m, "not found"));
  // Not a video.
  write(d / "text.mp4", "this is not a video\n");
  m = error_of([&] { VideoReader r(d / "text.mp4"); });
  CHECK(contains(m, d / "text.mp4"));
  CHECK(contains(m, "not a video file"));
  // No video stream: an audio file.
  write_wav(d / "audio.wav");
  m = error_of([&] { VideoReader r(d / "audio.wav"); });
  CHECK(contains(m, d / "audio.wav"));
  CHECK(contains(m, "no video stream"));
  // Zero frames: a stream with no packets.
  {
    VideoWriter w(d / "empty.avi", 16, 16);
    w.finish();
  }
  m = error_of([&] { VideoReader r(d / "empty.avi"); });
  CHECK(contains(m, d / "empty.avi"));
  CHECK(contains(m, "no frames"));
  // Truncated: the avi header promises 30 frames, the file ends after about half of them.
  write_video(d / "full.avi", frames, wo);
  std::string bytes = slurp(d / "full.avi");
  write(d / "cut.avi", bytes.substr(0, bytes.size() / 2));
  VideoReader cut(d / "cut.avi");
  CHECK(cut.info().frames == 30);
  CHECK(max_diff(cut.read({2})[0], frames[2]) == 0);  // the start still decodes
  m = error_of([&] { cut.read({29}); });
  CHECK(contains(m, d / "cut.avi"));
  CHECK(contains(m, "truncated"));
  // Damage mid-file: bytes overwritten in the middle of the frame data (ffv1's slice CRCs).
  std::string bad = bytes;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 64; ++i) bad[i] = char(bad[i] ^ 0x5A);
  write(d / "damaged.avi", bad);
  VideoReader dm(d / "damaged.avi");
  m = error_of([&] { dm.decode_all(); });
  MESSAGE(m);
  CHECK(contains(m, d / "damaged.avi"));
  CHECK(contains(m, "decode error"));
  // An index past the end.
  VideoReader ok(d / "full.avi");
  m = error_of([&] { ok.read({30}); });
  CHECK(contains(m, "frame 30 requested"));
}

namespace {

DatasetOptions video_options(const TempDir& d) {
  DatasetOptions o;
  o.root = d.path.string();
  o.frame_template = "img_{:05d}.png";
  o.sampler.num_segments = 4;
  o.transform = TransformOptions::fashion_motion();
  o.transform.input_size = 12;
  o.num_classes = 3;
  o.quiet = true;
  return o;
}

}  // namespace

TEST_CASE("dataset: a video list gives the same samples as rawframes of the same frames") {
  REQUIRE_VIDEO();
  TempDir d("video_ds");
  std::string vlist, rlist;
  fs::create_directories(d.path / "videos");
  for (int v = 0; v < 3; ++v) {
    const auto frames = pattern_frames(10 + 3 * v, 16, 16, 40 * v);
    const std::string name = "v" + std::to_string(v);
    fs::create_directories(d.path / "frames" / name);
    write_video(d / ("videos/" + name + (v == 1 ? ".avi" : ".mp4")), frames);
    for (size_t f = 0; f < frames.size(); ++f)
      write_image(d / ("frames/" + name + "/" + format_frame_name("img_{:05d}.png", int64_t(f) + 1)), frames[f]);
    vlist += name + (v == 1 ? ".avi " : ".mp4 ") + std::to_string(v) + "\n";
    rlist += name + " " + std::to_string(frames.size()) + " " + std::to_string(v) + "\n";
  }
  write(d / "videos.txt", vlist);
  write(d / "frames.txt", rlist);
  DatasetOptions vo = video_options(d), ro = video_options(d);
  vo.root = d / "frames_none";
  vo.video_root = d / "videos";
  ro.root = d / "frames";
  VideoDataset vds = VideoDataset::from_list(d / "videos.txt", vo);
  VideoDataset rds = VideoDataset::from_list(d / "frames.txt", ro);
  REQUIRE(vds.size() == 3);
  CHECK(vds.is_video(0));
  CHECK(!rds.is_video(0));
  CHECK(vds.total_frames(2) == 16);
  const int64_t per = 4 * 3 * 12 * 12;
  for (bool train : {true, false})
    for (int64_t i = 0; i < 3; ++i) {
      std::vector<float> a(static_cast<size_t>(per)), b(static_cast<size_t>(per));
      vds.get(i, train, 7, 1, 0, a.data());
      rds.get(i, train, 7, 1, 0, b.data());
      CHECK(a == b);
    }
  // The loader over the video list: batches equal for 0 and 2 workers.
  auto batches = [&](int workers) {
    LoaderOptions lo;
    lo.batch_size = 2;
    lo.workers = workers;
    lo.seed = 3;
    lo.drop_last = false;
    Loader l(vds, lo);
    l.start_epoch(0);
    std::vector<float> all;
    Batch b;
    while (l.next(b)) {
      auto v = b.video.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  CHECK(batches(0) == batches(2));
}

TEST_CASE("dataset: bad video files fail in eval and are skipped, warned and counted in train") {
  REQUIRE_VIDEO();
  TempDir d("video_ds_bad");
  write_video(d / "good.mp4", pattern_frames(8, 16, 16));
  write(d / "text.mp4", "not a video");
  write(d / "list.txt", "good.mp4 0\nmissing.mp4 1\ntext.mp4 2\n");
  DatasetOptions o = video_options(d);
  // Fail: the missing file at construction, naming the list line and the file.
  std::string m = error_of([&] { VideoDataset::from_list(d / "list.txt", o); });
  CHECK(contains(m, "list.txt:2"));
  CHECK(contains(m, d / "missing.mp4"));
  write(d / "list2.txt", "good.mp4 0\ntext.mp4 2\n");
  VideoDataset ds = VideoDataset::from_list(d / "list2.txt", o);
  LoaderOptions lo;
  lo.batch_size = 2;
  lo.workers = 1;
  lo.train = false;
  {
    Loader l(ds, lo);
    l.start_epoch(0);
    Batch b;
    m = error_of([&] { l.next(b); });
    CHECK(contains(m, d / "text.mp4"));
    CHECK(contains(m, "not a video file"));
    CHECK(contains(m, "list2.txt:2"));
  }
  // Skip: the missing file is dropped at construction, the unreadable one replaced in its batch.
  o.bad_input = BadInput::Skip;
  VideoDataset sk = VideoDataset::from_list(d / "list.txt", o);
  CHECK(sk.size() == 2);
  CHECK(sk.problems().count() == 1);
  lo.train = true;
  lo.shuffle = false;
  lo.drop_last = false;
  Loader l(sk, lo);
  l.start_epoch(0);
  Batch b;
  REQUIRE(l.next(b));
  CHECK(b.indices == std::vector<int64_t>{0, 0});  // text.mp4 replaced by the next readable one
  CHECK(l.skipped() == 1);
  CHECK(contains(l.skip_messages()[0], d / "text.mp4"));
}
