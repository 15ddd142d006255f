// The `verbclip` command: subcommand table, help, errors, make-data end to end.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "tests/apps/run_verbclip.h"

namespace fs = std::filesystem;

namespace {

const std::string kBinary = VERBCLIP_BINARY_DIR "/bin/verbclip";

using Result = verbclip::testing::RunResult;

Result run(const std::string& args) {
  return verbclip::testing::run_command(kBinary + " " + args + " 2>&1");
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("verbclip_apps_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Uncompressed IDX files of a fake Fashion-MNIST (20 items).
void fake_fmnist(const fs::path& dir) {
  fs::create_directories(dir);
  auto be = [](std::string& s, uint32_t v) {
    for (int sh = 24; sh >= 0; sh -= 8) s += char((v >> sh) & 0xFF);
  };
  for (std::string prefix : {"train", "t10k"}) {
    std::string img, lab;
    be(img, 0x803), be(img, 20), be(img, 28), be(img, 28);
    be(lab, 0x801), be(lab, 20);
    for (int i = 0; i < 20; ++i) {
      lab += char(i % 10);
      for (int k = 0; k < 784; ++k) img += char((k / 28 > 6 && k / 28 < 22 && k % 28 > 9 && k % 28 < 19) ? 220 : 0);
    }
    std::ofstream(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary) << img;
    std::ofstream(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary) << lab;
  }
}

std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) {
      std::ifstream in(e.path(), std::ios::binary);
      out[fs::relative(e.path(), root).string()] = std::string(std::istreambuf_iterator<char>(in), {});
    }
  return out;
}

}  // namespace

TEST_CASE("verbclip --help lists the subcommands; unknown ones fail clearly") {
  Result h = run("--help");
  CHECK(h.code == 0);
  CHECK(has(h.output, "make-data"));
  Result none = run("");
  CHECK(none.code == 1);
  Result u = run("frobnicate");
  CHECK(u.code == 1);
  CHECK(has(u.output, "unknown subcommand 'frobnicate'"));
}

TEST_CASE("make-data: --help, unknown option, bad values, missing Fashion-MNIST") {
  Result h = run("make-data --help");
  CHECK(h.code == 0);
  CHECK(has(h.output, "--train-per-class"));
  CHECK(has(h.output, "moving down and right"));
  Result bad = run("make-data --no-such-flag");
  CHECK(bad.code == 1);
  CHECK(has(bad.output, "no-such-flag"));
  fs::path d = scratch("missing");
  Result miss = run("make-data --fashion-mnist " + (d / "nowhere").string() + " -o " + (d / "out").string());
  CHECK(miss.code == 1);
  CHECK(has(miss.output, "apt-get install dataset-fashion-mnist"));
  CHECK(!fs::exists(d / "out"));
  Result cls = run("make-data --classes 0,99 --fashion-mnist " + d.string() + " -o " + (d / "o2").string());
  CHECK(cls.code == 1);
  CHECK(has(cls.output, "class id 99"));
  fs::remove_all(d);
}

TEST_CASE("make-data: a tiny dataset, byte-identical for a seed, never half-written") {
  fs::path d = scratch("tiny");
  fake_fmnist(d / "fm");
  std::string common = "--fashion-mnist " + (d / "fm").string() +
                       " --train-per-class 2 --val-per-class 1 --test-per-class 1 --frames 4 --captions 6 -q --seed 5 ";
  Result a = run("make-data " + common + "-o " + (d / "a").string() + " --threads 1");
  REQUIRE_MESSAGE(a.code == 0, a.output);
  CHECK(has(a.output, "wrote 72 videos"));
  Result b = run("make-data " + common + "-o " + (d / "b").string() + " --threads 2");
  REQUIRE_MESSAGE(b.code == 0, b.output);
  auto ta = tree(d / "a"), tb = tree(d / "b");
  CHECK(ta.size() == tb.size());
  CHECK(ta == tb);
  for (const char* f : {"train.txt", "val.txt", "test.txt", "labels.csv", "README.md", "text/templates.txt",
                        "text/interpretive.json", "text/askg.json", "text/corpus.tsv", "text/vocab.txt",
                        "captions/train.tsv", "splits/b2n_val_novel.txt", "splits/zeroshot_train.txt"})
    CHECK_MESSAGE(ta.count(f) == 1, f);
  CHECK(has(ta["README.md"], "--seed 5"));
  // An existing folder is not replaced without --force.
  Result again = run("make-data " + common + "-o " + (d / "a").string());
  CHECK(again.code == 1);
  CHECK(has(again.output, "--force"));
  for (auto& e : fs::directory_iterator(d)) CHECK(!has(e.path().filename().string(), ".tmp-"));
  fs::remove_all(d);
}

TEST_CASE("make-data with Debian's Fashion-MNIST, when installed") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    MESSAGE("SKIPPED: dataset-fashion-mnist is not installed");
    return;
  }
  fs::path d = scratch("debian");
  Result r = run("make-data -q --train-per-class 1 --val-per-class 0 --test-per-class 1 --frames 2 --captions 2 --classes 0-1 -o " +
                 (d / "fm").string());
  CHECK(r.code == 0);
  CHECK(fs::exists(d / "fm/rawframes/test_000001/img_00002.jpg"));
  fs::remove_all(d);
}
