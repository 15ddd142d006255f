// The engine is meant to stay small enough to audit: report its lines per folder and keep
// the whole engine (CPU and, later, CUDA) under 10000 lines.
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/common/testing.h"

namespace fs = std::filesystem;

TEST_CASE("line count of engine/ per folder") {
  fs::path root = fs::path(VERBCLIP_SOURCE_DIR) / "engine";
  REQUIRE(fs::is_directory(root));
  std::map<std::string, int64_t> per_folder;
  int64_t total = 0, files = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    if (ext != ".h" && ext != ".cpp" && ext != ".cu" && ext != ".cuh") continue;
    std::ifstream in(e.path());
    int64_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    std::string folder = fs::relative(e.path().parent_path(), root.parent_path()).string();
    per_folder[folder] += lines;
    total += lines;
    ++files;
  }
  std::string report = "engine lines per folder:\n";
  for (const auto& [folder, lines] : per_folder)
    report += "  " + folder + ": " + std::to_string(lines) + "\n";
  report += "  total: " + std::to_string(total) + " in " + std::to_string(files) + " files";
  MESSAGE(report);
  CHECK(files > 10);  // the walk found the sources
  CHECK(total < 10000);
}
