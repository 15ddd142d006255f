// Video files end to end: make-data --format avi writes video lists, train reads them,
// check-videos names each bad file with a summary and exit code, predict --video.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "data/video.h"
#include "run_verbclip.h"

namespace fs = std::filesystem;
using verbclip::testing::RunResult;
using verbclip::testing::run_verbclip;

TEST_CASE("video files: make-data --format avi, train on the video list, check-videos, predict --video") {
  if (!vc::data::video_support()) {
    MESSAGE("SKIPPED: verbclip built without FFmpeg");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("verbclip-video-files-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string data = (dir / "fm").string();
  RunResult g = run_verbclip({"make-data", "--out", data, "--format", "avi", "--classes", "0,1", "--train-per-class",
                              "3", "--val-per-class", "1", "--test-per-class", "1", "--captions", "10", "--quiet"});
  REQUIRE_MESSAGE(g.code == 0, g.output);
  CHECK(fs::exists(dir / "fm/videos/train_000000.avi"));
  std::ifstream tl(dir / "fm/train.txt");
  std::string first;
  std::getline(tl, first);
  CHECK(first == "train_000000.avi 0");

  // A list with good and broken files: a non-video, a missing file, a truncated one.
  std::ofstream(dir / "fm/videos/junk.avi") << "not a video";
  {
    std::ifstream in(dir / "fm/videos/test_000000.avi", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir / "fm/videos/cut.avi", std::ios::binary) << bytes.substr(0, bytes.size() * 2 / 3);
  }
  std::ofstream(dir / "mixed.txt") << "test_000000.avi 0\njunk.avi 1\nmissing.avi 0\ntest_000001.avi 1\ncut.avi 0\n";
  RunResult c = run_verbclip({"check-videos", (dir / "mixed.txt").string(), "--root", data + "/videos", "--quiet",
                              "--good-list", (dir / "good.txt").string()});
  CAPTURE(c.output);
  CHECK(c.code == 1);
  CHECK(c.output.find("mixed.txt:2: " + data + "/videos/junk.avi: not a video file") != std::string::npos);
  CHECK(c.output.find("mixed.txt:3: " + data + "/videos/missing.avi: video file not found") != std::string::npos);
  CHECK(c.output.find("mixed.txt:5: " + data + "/videos/cut.avi: ") != std::string::npos);
  CHECK(c.output.find("mixed.txt:1:") == std::string::npos);
  CHECK(c.output.find("checked 5 videos of") != std::string::npos);
  CHECK(c.output.find("3 bad, 2 good (32 frames decoded)") != std::string::npos);
  std::ifstream gl(dir / "good.txt");
  std::string good((std::istreambuf_iterator<char>(gl)), {});
  CHECK(good == "test_000000.avi 0\ntest_000001.avi 1\n");
  RunResult ok = run_verbclip({"check-videos", data + "/test.txt", "--root", data + "/videos", "--quiet"});
  CHECK(ok.code == 0);

  // Train one epoch on the video lists (random CLIP, tiny), then predict one file.
  RunResult t = run_verbclip({"train", "--config", VERBCLIP_SOURCE_DIR "/models/configs/fm_tiny_base.yaml", "--output",
                              (dir / "run").string(), "--quiet", "--opts", "DATA.ROOT", data, "TRAIN.EPOCHS", "1",
                              "TRAIN.BATCH_SIZE", "2"});
  REQUIRE_MESSAGE(t.code == 0, t.output);
  const std::string ckpt = (dir / "run/checkpoint_last.safetensors").string();
  RunResult p = run_verbclip({"predict", "--weights", ckpt, "--labels", data + "/labels.csv", "--video",
                              data + "/videos/test_000001.avi", "--topk", "2"});
  CAPTURE(p.output);
  CHECK(p.code == 0);
  CHECK(p.output.find("16 frames (container), 16.00 fps, 1.00 s, 40x40 ffv1; 8 used") != std::string::npos);
  RunResult bad = run_verbclip({"predict", "--weights", ckpt, "--labels", data + "/labels.csv", "--video",
                                data + "/videos/junk.avi"});
  CHECK(bad.code != 0);
  CHECK(bad.output.find("junk.avi: not a video file") != std::string::npos);
  fs::remove_all(dir);
}
