// verbclip report: one self-contained HTML page from finished runs (apps/common/report.h).
//
//   verbclip report runs/main --out runs/main/report.html
//   verbclip report runs/a/eval runs/b/eval runs/a runs/b --out compare.html
#include <cxxopts.hpp>
#include <filesystem>
#include <iostream>

#include "apps/commands.h"
#include "apps/common/report.h"
#include "engine/core/error.h"

namespace verbclip {

int cmd_report(int argc, char** argv) {
  cxxopts::Options o(argv[0],
                     "Build one self-contained HTML page (inline SVG, pictures as data URIs, no network) from finished\n"
                     "runs: a main-job folder (scripts/main.sh), eval folders (eval_<protocol>.json) or training runs\n"
                     "(log.jsonl + config.yaml), each searched in itself and one level of subfolders. Optional\n"
                     "pieces (eval --save-scores' scores_*.json, predict_*.png, a --reverse-frames eval) are shown\n"
                     "when present and listed under \"Notes\" when not.");
  o.add_options()
      ("out", "the HTML file (default: <first RUN_DIR>/report.html)", cxxopts::value<std::string>())
      ("runs", "run folders", cxxopts::value<std::vector<std::string>>())
      ("h,help", "show this help");
  o.parse_positional({"runs"});
  o.positional_help("RUN_DIR...");
  auto r = o.parse(argc, argv);
  if (r.count("help")) return std::cout << o.help(), 0;
  if (!r.count("runs")) vc::fail("no run folder given (verbclip report RUN_DIR... [--out FILE])");
  const auto runs = r["runs"].as<std::vector<std::string>>();
  const std::string out = r.count("out") ? r["out"].as<std::string>() : runs[0] + "/report.html";
  write_report(out, runs);
  std::cout << "report: " << out << " (" << std::filesystem::file_size(out) << " bytes)\n";
  return 0;
}

}  // namespace verbclip
