// verbclip make-data: writes the built-in Fashion-Motion dataset (specs/synthetic-dataset.md).
#include <cxxopts.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "apps/commands.h"
#include "data/fashion_motion.h"
#include "data/util.h"

namespace verbclip {

namespace {

std::vector<int> parse_class_list(const std::string& s) {
  // "0,1,10" or ranges "0-13,15".
  std::vector<int> ids;
  for (const std::string& part : vc::data::split_char(s, ',')) {
    std::string p = vc::data::trim(part);
    size_t dash = p.find('-', 1);
    int64_t a, b;
    if (dash != std::string::npos) {
      if (!vc::data::parse_int(p.substr(0, dash), a) || !vc::data::parse_int(p.substr(dash + 1), b) || b < a)
        vc::fail("--classes: '", p, "' is not a range like 0-13");
      for (int64_t i = a; i <= b; ++i) ids.push_back(int(i));
    } else {
      if (!vc::data::parse_int(p, a)) vc::fail("--classes: '", p, "' is not a class id");
      ids.push_back(int(a));
    }
  }
  return ids;
}

}  // namespace

int cmd_make_data(int argc, char** argv) {
  namespace fm = vc::data::fm;
  cxxopts::Options o(argv[0], "Generate Fashion-Motion: Fashion-MNIST items whose motions are the classes,\n"
                              "written as rawframes (or video files) + list files + labels, with text assets, protocol\n"
                              "splits and a captions set for CLIP pretraining.");
  fm::Options d;
  o.add_options()
      ("o,out", "output folder (written to a temporary sibling, renamed when complete)",
       cxxopts::value<std::string>()->default_value("data/fashion-motion"))
      ("fashion-mnist", "folder with the Fashion-MNIST IDX files (Debian: apt-get install dataset-fashion-mnist)",
       cxxopts::value<std::string>()->default_value(fm::kDebianFashionMnist))
      ("seed", "dataset seed (same seed, same bytes)", cxxopts::value<uint64_t>()->default_value("1"))
      ("train-per-class", "train videos per class", cxxopts::value<int64_t>()->default_value("300"))
      ("val-per-class", "val videos per class", cxxopts::value<int64_t>()->default_value("50"))
      ("test-per-class", "test videos per class", cxxopts::value<int64_t>()->default_value("100"))
      ("frames", "frames stored per video", cxxopts::value<int64_t>()->default_value("16"))
      ("size", "frame side in pixels", cxxopts::value<int64_t>()->default_value("40"))
      ("classes", "class ids to generate, e.g. 0-13 or 0,1,10 (relabelled 0.. in this order); default all 18",
       cxxopts::value<std::string>()->default_value(""))
      ("captions", "caption images for CLIP pretraining (10% of them val)", cxxopts::value<int64_t>()->default_value("8000"))
      ("jpeg-quality", "JPEG quality 1-100", cxxopts::value<int>()->default_value("95"))
      ("format", "rawframes (JPEG folders), or video files: mp4 (H.264 RGB, lossless), avi or mkv (FFV1, lossless), "
                 "webm (VP9, lossless), with video lists",
       cxxopts::value<std::string>()->default_value("rawframes"))
      ("threads", "worker threads (0 = all cores)", cxxopts::value<int>()->default_value("0"))
      ("force", "replace the output folder if it exists")
      ("q,quiet", "no progress line")
      ("h,help", "show this help");
  auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::cout << o.help() << "\nClasses:\n";
    for (const auto& c : fm::classes()) std::cout << "  " << c.id << "  " << c.name << "\n";
    return 0;
  }
  if (!r.unmatched().empty()) vc::fail("unexpected argument '", r.unmatched()[0], "'");
  d.out_dir = r["out"].as<std::string>();
  d.fashion_mnist_dir = r["fashion-mnist"].as<std::string>();
  d.seed = r["seed"].as<uint64_t>();
  d.train_per_class = r["train-per-class"].as<int64_t>();
  d.val_per_class = r["val-per-class"].as<int64_t>();
  d.test_per_class = r["test-per-class"].as<int64_t>();
  d.frames = r["frames"].as<int64_t>();
  d.size = r["size"].as<int64_t>();
  if (!r["classes"].as<std::string>().empty()) d.class_ids = parse_class_list(r["classes"].as<std::string>());
  d.captions = r["captions"].as<int64_t>();
  d.jpeg_quality = r["jpeg-quality"].as<int>();
  d.format = r["format"].as<std::string>();
  d.threads = r["threads"].as<int>();
  d.force = r.count("force") > 0;
  const bool quiet = r.count("quiet") > 0;

  auto progress = [&](const fm::Progress& p) {
    if (quiet) return;
    double rate = p.seconds > 0 ? double(p.done) / p.seconds : 0;
    double eta = rate > 0 ? double(p.total - p.done) / rate : 0;
    std::fprintf(stderr, "\rmake-data: %lld/%lld items (%3.0f%%)  %6.0f items/s  ETA %4.0fs ",
                 (long long)p.done, (long long)p.total, 100.0 * double(p.done) / double(std::max<int64_t>(p.total, 1)),
                 rate, eta);
    std::fflush(stderr);
  };
  fm::Summary s = fm::generate(d, progress);
  if (!quiet) std::fprintf(stderr, "\n");
  std::cout << "wrote " << s.videos << " videos (" << s.frames << " frames) and " << s.captions
            << " caption images to " << d.out_dir << "\n";
  return 0;
}

}  // namespace verbclip
