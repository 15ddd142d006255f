// `verbclip report`: one self-contained HTML page (no network: inline SVG, PNG/JPEG/SVG files
// as base64 data URIs) built from finished run folders.
//
// What a RUN_DIR may be (each is searched in itself and one level of subfolders):
//   eval folder    eval_<protocol>.json written by `verbclip eval` (and, optional beside it,
//                  confusion_<protocol>[_<run>].svg, attention[_<run>].png and, from
//                  `eval --save-scores`, scores_<protocol>.json: the per-video scores the
//                  "one clip per family" section ranks)
//   train folder   log.jsonl with training events and config.yaml (`verbclip train`,
//                  `verbclip pretrain-clip`); optional predict_*.png / predict.txt pictures
//   main-job folder (scripts/main.sh): all of the above as subfolders
// A folder that exists but holds none of these is an error naming it; every optional piece
// that is missing is skipped with a line under "Notes" on the page.
//
// The page, for a researcher: the headline table (supervised eval; rev-flip C from an eval
// of the same weights with --reverse-frames; noun zero-shot), synthetic-dataset.md's expected
// pattern beside the measured one (each cell confirmed or not, by the rules of
// fashion_motion_verdict), the other protocols' tables, per-family grouped bars, training
// curves, one test clip per family with every model's top-3, each model's own pictures, the
// confusion matrices, the configs. The output depends only on the input files (no clock).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace verbclip {

// One expectation of synthetic-dataset.md ("What a correct result looks like" and the family
// definitions), for one model and one metric.
struct Expectation {
  std::string metric;  // "A" (family-A top-1), "B-pair", "within-pair C"
  enum class Claim { Near100, High, Chance, None } claim = Claim::None;
  std::string source;  // the spec's sentence, quoted
};

// The expectation for `model` ("baseline", "claver", "stdd", "alt", "tcclip") and `metric`,
// given the run's config (flattened keys such as "MODEL.TEMPORAL_EMBEDDING" -> "true";
// missing keys take the shipped configs' values). Claim::None when the spec claims nothing.
Expectation fashion_motion_expectation(const std::string& model, const std::string& metric,
                                       const std::vector<std::pair<std::string, std::string>>& config);

// The rule for "confirmed": Near100: measured >= 90; High: >= 80; Chance (50% for the pair
// metrics): |measured - 50| <= max(10, 2 * 50 / sqrt(n)) with n the videos judged (two binomial
// standard errors at p = 0.5, at least 10 points).
enum class Verdict { Confirmed, NotConfirmed, NotMeasured, NoClaim };
Verdict fashion_motion_verdict(Expectation::Claim claim, double measured, int64_t videos);
extern const char* const kVerdictRule;

// Builds the page from the run folders; throws vc::Error naming the folder or file when a
// folder is missing, holds nothing usable, or a JSON file is malformed.
std::string build_report_html(const std::vector<std::string>& run_dirs);

// build_report_html, written to `out` atomically (temporary file + rename).
void write_report(const std::string& out, const std::vector<std::string>& run_dirs);

}  // namespace verbclip
