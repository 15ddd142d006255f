// verbclip check-videos: scans the video files of a list (as mmaction2's "check videos"
// tool does) before a run finds them one by one. Every file is opened and fully decoded;
// one line per bad file (missing, not a video, no video stream, zero frames, truncated,
// decode error, fewer decodable frames than the container says), then a summary.
// Exit code 1 when any file is bad.
#include <cxxopts.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "apps/commands.h"
#include "data/annotations.h"
#include "data/util.h"
#include "data/video.h"

namespace verbclip {

namespace {

struct Result {
  bool done = false;
  std::string error;  // empty: good
  int64_t frames = 0;
};

// Opens and decodes one file; the error names the file.
Result check_one(const std::string& path, bool quick) {
  Result r;
  try {
    vc::data::VideoReader reader(path);
    const int64_t n = reader.info().frames;
    if (quick) {
      reader.read({0, n - 1});
      r.frames = n;
    } else {
      r.frames = reader.decode_all();
      if (r.frames != n)
        vc::fail(path, ": ", r.frames, " decodable frames but the ", reader.info().count_source_name(), " says ", n,
                 " (the sampler would ask for frames that are not there)");
    }
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

}  // namespace

int cmd_check_videos(int argc, char** argv) {
  cxxopts::Options o(argv[0],
                     "Check every video file of a list: open it and decode all its frames. Prints one line per bad\n"
                     "file and a summary; exits with 1 when any file is bad.");
  o.add_options()
      ("root", "folder the list's paths are relative to (default: the list's folder)", cxxopts::value<std::string>())
      ("threads", "files checked at once", cxxopts::value<int>()->default_value("2"))
      ("quick", "open each file and decode its first and last frame only")
      ("good-list", "also write the list's good lines to this file", cxxopts::value<std::string>())
      ("q,quiet", "no progress line")
      ("list", "video list file (`path [label]` lines)", cxxopts::value<std::string>())
      ("h,help", "show this help");
  o.parse_positional({"list"});
  o.positional_help("LIST");
  auto r = o.parse(argc, argv);
  if (r.count("help")) return std::cout << o.help(), 0;
  if (!r.unmatched().empty()) vc::fail("unexpected argument '", r.unmatched()[0], "'");
  if (!r.count("list")) vc::fail("no list: give the video list file (verbclip check-videos LIST)");
  const std::string list = r["list"].as<std::string>();
  VC_CHECK(vc::data::path_exists(list), "list file '", list, "' does not exist");
  const std::string root = r.count("root") ? r["root"].as<std::string>()
                                           : std::filesystem::path(list).parent_path().string();
  VC_CHECK(root.empty() || vc::data::is_directory(root), "--root: folder '", root, "' does not exist");
  const int threads = r["threads"].as<int>();
  VC_CHECK(threads >= 1, "--threads ", threads, " must be at least 1");
  const bool quick = r.count("quick") > 0, quiet = r.count("quiet") > 0;
  if (!vc::data::video_support())
    vc::fail("verbclip was built without FFmpeg: it cannot check video files (install libavformat-dev "
             "libavcodec-dev libswscale-dev libavutil-dev and rebuild)");

  vc::data::ListOptions lo;
  lo.require_label = false;  // inference lists too
  const std::vector<vc::data::VideoRecord> records = vc::data::read_list(list, lo);
  VC_CHECK(!records.empty(), "list '", list, "' names no videos");
  for (const auto& rec : records)
    if (rec.total_frames >= 0)
      vc::fail(rec.source, ": '", vc::data::format_record(rec), "' is a rawframe line (frame folder and count); ",
               "check-videos checks video lists ('path label')");

  const int64_t N = int64_t(records.size());
  std::vector<Result> results(static_cast<size_t>(N));
  std::atomic<int64_t> next{0};
  std::mutex mu;
  auto work = [&] {
    for (int64_t i; (i = next++) < N;) {
      Result res = check_one(vc::data::join_path(root, records[size_t(i)].path), quick);
      std::lock_guard<std::mutex> lock(mu);
      results[size_t(i)] = res;
      results[size_t(i)].done = true;
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < std::min<int64_t>(threads, N); ++t) pool.emplace_back(work);

  // Lines in list order as soon as every earlier file is done; the progress line in between.
  int64_t printed = 0, bad = 0, frames = 0;
  std::string good;
  auto flush = [&](bool final_pass) {
    std::lock_guard<std::mutex> lock(mu);
    int64_t finished = 0;
    for (const auto& x : results) finished += x.done;
    while (printed < N && results[size_t(printed)].done) {
      const Result& x = results[size_t(printed)];
      const auto& rec = records[size_t(printed)];
      if (!x.error.empty()) {
        ++bad;
        if (!quiet) std::fprintf(stderr, "\r\033[K");
        std::printf("%s: %s\n", rec.source.c_str(), x.error.c_str());
        std::fflush(stdout);
      } else {
        frames += x.frames;
        good += vc::data::format_record(rec) + "\n";
      }
      ++printed;
    }
    if (!quiet) {
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double rate = s > 0 ? double(finished) / s : 0;
      std::fprintf(stderr, "\rcheck-videos: %lld/%lld videos (%3.0f%%), %lld bad, %5.1f videos/s, ETA %4.0fs ",
                   (long long)finished, (long long)N, 100.0 * double(finished) / double(N), (long long)bad, rate,
                   rate > 0 ? double(N - finished) / rate : 0.0);
      if (final_pass) std::fprintf(stderr, "\n");
      std::fflush(stderr);
    }
  };
  while (printed < N) {
    flush(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : pool) t.join();
  flush(true);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("checked %lld videos of %s: %lld bad, %lld good (%lld frames %s) in %.1fs\n", (long long)N, list.c_str(),
              (long long)bad, (long long)(N - bad), (long long)frames, quick ? "by count" : "decoded", secs);
  if (r.count("good-list")) {
    // A temporary name, renamed: an interrupted run leaves no half list.
    const std::string out = r["good-list"].as<std::string>();
    const std::string tmp = out + ".tmp";
    vc::data::write_text_file(tmp, good);
    std::filesystem::rename(tmp, out);
    std::printf("good lines: %s\n", out.c_str());
  }
  return bad > 0 ? 1 : 0;
}

}  // namespace verbclip
