// `verbclip report`: the page built from a run folder the test writes itself (the numbers on
// the page equal the JSON's), the expectation rules, errors, and a headless-browser check
// (chromium: no console errors, every figure non-empty; skipped when chromium is absent).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "apps/common/report.h"
#include "data/fashion_motion.h"
#include "data/image.h"
#include "tests/apps/run_verbclip.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using verbclip::Expectation;
using verbclip::Verdict;

namespace {

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("verbclip_report_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

void write_picture(const fs::path& p, int w, int h) {
  vc::data::Image im;
  im.width = w, im.height = h;
  im.pixels.assign(size_t(w * h * 3), 0);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = uint8_t((i * 37) % 251);
  fs::create_directories(p.parent_path());
  vc::data::write_image(p.string(), im);
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The families' report of one model: distinctive numbers so the page can be searched for them.
json test_report(double base) {
  json t;
  t["list"] = "test.txt";
  t["videos"] = 36;
  t["classes"] = 18;
  t["top1"] = base + 0.111;
  t["top5"] = base + 10.222;
  t["mean_class_accuracy"] = base + 0.333;
  t["families"] = {{"A", {{"top1", 95.0 + base / 100}, {"videos", 4}}},
                   {"B", {{"top1", base + 1.444}, {"videos", 4}}},
                   {"C", {{"top1", base + 2.555}, {"videos", 20}}},
                   {"D", {{"top1", base + 3.666}, {"videos", 8}}}};
  t["within_pair_C"] = 50.0 + base / 10;
  t["within_pair_videos"] = 20;
  t["b_pair"] = 25.0 + base / 10;
  t["b_pair_videos"] = 4;
  return t;
}

// A main-job folder in miniature: two trained models (folders with log.jsonl, config.yaml),
// an eval with scores and pictures, the reversed eval, a dataset list with frames, a CLIP run.
fs::path write_tiny_run(const std::string& name) {
  const fs::path root = scratch(name);
  const auto& cls = vc::data::fm::classes();
  // Dataset: one test clip per class, 4 frames each.
  std::string list;
  for (size_t c = 0; c < cls.size(); ++c) {
    const std::string id = "test_" + std::to_string(c);
    list += id + " 4 " + std::to_string(c) + "\n";
    for (int f = 1; f <= 4; ++f) write_picture(root / "fm" / "rawframes" / id / ("img_0000" + std::to_string(f) + ".jpg"), 8, 8);
  }
  write(root / "fm" / "test.txt", list);
  const std::vector<std::pair<std::string, double>> models = {{"baseline", 11.0}, {"claver", 22.0}};
  json eval, rev, scores;
  eval["protocol"] = rev["protocol"] = "supervised";
  eval["views"] = rev["views"] = {{"clips", 1}, {"crops", 1}, {"aggregation", "sum of per-view class probabilities"}};
  eval["reverse_frames"] = false, rev["reverse_frames"] = true;
  eval["runs"] = rev["runs"] = scores["lists"] = json::array();
  std::vector<std::string> names;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < cls.size(); ++c) names.push_back(cls[c].name), labels.push_back(int64_t(c));
  for (const auto& [m, base] : models) {
    const fs::path dir = root / m;
    const std::string w = (dir / "checkpoint_best.safetensors").string();
    json run = {{"weights", w}, {"model", m}, {"test", test_report(base)},
                {"noun_zero_shot", {{"accuracy", base + 0.777}, {"images", 100}, {"prompt", "a photo of a {}"}}}};
    eval["runs"].push_back(run);
    json rt = test_report(base + 1);
    rt["reversal_flip"] = base + 0.888;
    rev["runs"].push_back({{"weights", w}, {"model", m}, {"test", rt}});
    // Scores: model `base` puts the true class second for every clip (class c+1 first).
    json rows = json::array();
    for (size_t c = 0; c < cls.size(); ++c) {
      std::vector<double> p(cls.size(), 0.01);
      p[(c + 1) % cls.size()] = 0.5, p[c] = 0.29;
      rows.push_back(p);
    }
    scores["lists"].push_back({{"weights", w}, {"list", (root / "fm" / "test.txt").string()}, {"classes", names},
                               {"labels", labels}, {"scores", rows}});
    // The training run: 2 epochs.
    std::string log = json({{"event", "start"}, {"step", 0}, {"model", m}}).dump() + "\n";
    for (int e = 1; e <= 2; ++e) {
      log += json({{"event", "train"}, {"step", e * 5}, {"epoch", e}, {"epoch_progress", 1.0}, {"loss", 3.0 - e}}).dump() + "\n";
      log += json({{"event", "val"}, {"step", e * 5}, {"epoch", e}, {"top1", 10.0 * e}, {"within_pair_C", 50.0 + e},
                   {"b_pair", 50.0 - e}}).dump() + "\n";
    }
    write(dir / "log.jsonl", log);
    // CLAVER without its temporal embedding: the spec expects C at chance (KMTA).
    write(dir / "config.yaml", m == "claver" ? "MODEL:\n  NAME: claver\n  MASK: kmta\n  TEMPORAL_EMBEDDING: false\n"
                                             : "MODEL:\n  NAME: baseline\n");
    write(root / "eval" / ("confusion_supervised_" + m + ".svg"),
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"60\" height=\"40\"><rect width=\"60\" height=\"40\" fill=\"#88f\"/></svg>\n");
    write_picture(root / "eval" / ("attention_" + m + ".png"), 16, 8);
  }
  write_picture(root / "claver" / "predict_attention.png", 32, 16);
  write(root / "claver" / "predict.txt", "clip: 4 frame(s)\n  1. moving left  10.00%\n");
  write(root / "eval" / "eval_supervised.json", eval.dump(2));
  write(root / "eval" / "scores_supervised.json", scores.dump());
  write(root / "eval_reversed" / "eval_supervised.json", rev.dump(2));
  // The CLIP pretraining run.
  std::string clog = json({{"event", "start"}, {"step", 0}, {"model", {{"width", 64}}}}).dump() + "\n";
  for (int s = 1; s <= 3; ++s)
    clog += json({{"event", "train"}, {"step", s * 10}, {"epoch", 1}, {"loss", 4.0 / s}}).dump() + "\n" +
            json({{"event", "val"}, {"step", s * 10}, {"epoch", 1}, {"val_loss", 4.5 / s}, {"val_accuracy", 20.0 * s}}).dump() + "\n";
  clog += json({{"event", "zero_shot"}, {"accuracy", 28.125}, {"images", 1000}}).dump() + "\n";
  write(root / "clip" / "log.jsonl", clog);
  write(root / "clip" / "config.yaml", "TRAIN:\n  STEPS: 30\n");
  return root;
}

// The text of the table row whose first cell is `name`.
std::string table_row(const std::string& page, const std::string& name) {
  const size_t at = page.find("<tr><td class=\"name\">" + name + "</td>");
  if (at == std::string::npos) return "";
  return page.substr(at, page.find("</tr>", at) - at);
}

std::string two(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

}  // namespace

TEST_CASE("report: the expectation rules of synthetic-dataset.md") {
  using C = Expectation::Claim;
  CHECK(verbclip::fashion_motion_expectation("baseline", "A", {}).claim == C::Near100);
  CHECK(verbclip::fashion_motion_expectation("baseline", "B-pair", {}).claim == C::Chance);
  CHECK(verbclip::fashion_motion_expectation("baseline", "within-pair C", {}).claim == C::Chance);
  CHECK(verbclip::fashion_motion_expectation("claver", "within-pair C", {}).claim == C::High);
  CHECK(verbclip::fashion_motion_expectation("claver", "within-pair C", {{"MODEL.TEMPORAL_EMBEDDING", "false"}}).claim ==
        C::Chance);
  CHECK(verbclip::fashion_motion_expectation("claver", "within-pair C",
                                             {{"MODEL.TEMPORAL_EMBEDDING", "false"}, {"MODEL.MASK", "kmcta"}})
            .claim == C::High);
  CHECK(verbclip::fashion_motion_expectation("alt", "within-pair C", {}).claim == C::High);
  CHECK(verbclip::fashion_motion_expectation("alt", "within-pair C", {{"MODEL.TEMPORAL_CONV", "false"}}).claim == C::Chance);
  CHECK(verbclip::fashion_motion_expectation("tcclip", "within-pair C", {}).claim == C::Chance);
  CHECK(verbclip::fashion_motion_expectation("tcclip", "within-pair C", {{"MODEL.POSITIONAL_EMBEDDING", "joint"}}).claim ==
        C::None);
  CHECK(verbclip::fashion_motion_expectation("tcclip", "B-pair", {}).claim == C::High);
  CHECK(verbclip::fashion_motion_expectation("alt", "B-pair", {}).claim == C::None);
  CHECK(has(verbclip::fashion_motion_expectation("stdd", "within-pair C", {}).source, "channel shifts carry order"));

  CHECK(verbclip::fashion_motion_verdict(C::Near100, 90.0, 40) == Verdict::Confirmed);
  CHECK(verbclip::fashion_motion_verdict(C::Near100, 89.9, 40) == Verdict::NotConfirmed);
  CHECK(verbclip::fashion_motion_verdict(C::High, 80.0, 40) == Verdict::Confirmed);
  CHECK(verbclip::fashion_motion_verdict(C::High, 79.0, 40) == Verdict::NotConfirmed);
  // Chance: at least 10 points; with 4 videos two standard errors are 50 points.
  CHECK(verbclip::fashion_motion_verdict(C::Chance, 59.0, 400) == Verdict::Confirmed);
  CHECK(verbclip::fashion_motion_verdict(C::Chance, 61.0, 400) == Verdict::NotConfirmed);
  CHECK(verbclip::fashion_motion_verdict(C::Chance, 0.0, 4) == Verdict::Confirmed);
  CHECK(verbclip::fashion_motion_verdict(C::Chance, 0.0, 100) == Verdict::NotConfirmed);
  CHECK(verbclip::fashion_motion_verdict(C::High, NAN, 0) == Verdict::NotMeasured);
  CHECK(verbclip::fashion_motion_verdict(C::None, 50.0, 10) == Verdict::NoClaim);
}

TEST_CASE("report: the page shows the JSON's numbers, expectations, curves, clips and pictures") {
  const fs::path root = write_tiny_run("page");
  const std::string page = verbclip::build_report_html({root.string()});
  const json eval = json::parse(std::ifstream(root / "eval" / "eval_supervised.json"));
  const json rev = json::parse(std::ifstream(root / "eval_reversed" / "eval_supervised.json"));
  for (size_t i = 0; i < 2; ++i) {
    const json& r = eval["runs"][i];
    const json& t = r["test"];
    const std::string row = table_row(page, r["model"].get<std::string>());
    INFO("row of " << r["model"] << ": " << row);
    REQUIRE(!row.empty());
    // The headline row: every number of the JSON, in the table's column order.
    std::vector<double> want = {t["top1"], t["top5"], t["mean_class_accuracy"]};
    for (const char* f : {"A", "B", "C", "D"}) want.push_back(t["families"][f]["top1"]);
    want.push_back(t["within_pair_C"]);
    want.push_back(t["b_pair"]);
    want.push_back(rev["runs"][i]["test"]["reversal_flip"]);
    want.push_back(r["noun_zero_shot"]["accuracy"]);
    std::vector<std::string> cells;
    std::regex td("<td>([^<]*)</td>");
    for (auto it = std::sregex_iterator(row.begin(), row.end(), td); it != std::sregex_iterator(); ++it)
      cells.push_back((*it)[1]);
    REQUIRE(cells.size() == want.size());
    for (size_t k = 0; k < want.size(); ++k) CHECK(cells[k] == two(want[k]));
  }
  // Rows in the eval's order.
  CHECK(page.find(">baseline</td>") < page.find(">claver</td>"));
  // Expectations: baseline A 95.11 >= 90 confirmed; CLAVER without temporal embedding (KMTA):
  // C expected at chance, 52.20 with 20 videos -> confirmed; its B-pair 27.20 (n = 4) is
  // expected high -> not confirmed.
  CHECK(has(page, "≈ 100 → <b>95.11</b>"));
  CHECK(has(page, "chance (≈ 50) → <b>52.20</b> <span class=\"small\">(n=20)</span><br>✓ confirmed"));
  CHECK(has(page, "high (≥ 80) → <b>27.20</b> <span class=\"small\">(n=4)</span><br>✗ not confirmed"));
  CHECK(has(page, "With the temporal embedding removed, KMTA falls back to about 50% on C"));
  // Figures: the grouped bars, curves (4 video charts + 2 CLIP charts), CLIP's zero-shot.
  CHECK(has(page, "Per-family top-1"));
  CHECK(has(page, "validation within-pair C"));
  CHECK(has(page, "noun zero-shot after pretraining: 28.12%"));
  // One clip per family with top-3: family A's first clip is "lying on its side" (12); each
  // model ranks class 13 first (0.5 / 0.95 = 52.6%), the true class second (0.29 / 0.95 = 30.5%).
  CHECK(has(page, "family A: lying on its side"));
  CHECK(has(page, "<td>hanging upside down 52.6%</td><td class=\"hit\">lying on its side 30.5%</td>"));
  CHECK(has(page, "class=\"frame\""));
  // Pictures: CLAVER's attention from predict, eval's confusion matrices as data URIs.
  CHECK(has(page, "(predict_attention.png)"));
  CHECK(has(page, "clip: 4 frame(s)"));
  CHECK(has(page, "data:image/svg+xml;base64,"));
  CHECK(has(page, "data:image/png;base64,"));
  // Self-contained: nothing fetched.
  std::string stripped = std::regex_replace(page, std::regex("http://www\\.w3\\.org/2000/svg"), "");
  CHECK(!has(stripped, "http:"));  // only SVG namespaces
  CHECK(!has(stripped, "https:"));
  CHECK(!has(page, "<script"));
  // Notes name what is missing: the STDD-style pictures are not expected of these models, but
  // nothing else is missing here.
  CHECK(has(page, "notes (0)"));
  // Deterministic.
  CHECK(verbclip::build_report_html({root.string()}) == page);

  // Without the optional pieces the page still builds, and says what it skipped.
  fs::remove(root / "eval" / "scores_supervised.json");
  fs::remove(root / "claver" / "predict_attention.png");
  fs::remove_all(root / "eval_reversed");
  const std::string lean = verbclip::build_report_html({(root / "eval").string()});
  CHECK(has(lean, "run eval with --save-scores"));
  CHECK(has(lean, "no predict_attention.png (claver's own picture"));
  CHECK(has(lean, "no reversed-frames eval"));
  CHECK(table_row(lean, "baseline").find("<td>–</td>") != std::string::npos);  // rev-flip empty
  fs::remove_all(root);
}

TEST_CASE("report: errors name the folder or file") {
  const fs::path root = scratch("errors");
  auto message = [](const std::vector<std::string>& dirs) {
    try {
      verbclip::build_report_html(dirs);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(has(message({(root / "missing").string()}), (root / "missing").string() + "' does not exist"));
  fs::create_directories(root / "empty" / "sub");
  CHECK(has(message({(root / "empty").string()}), "not a finished verbclip run"));
  write(root / "bad" / "eval_supervised.json", "{\"protocol\": \"supervised\", \"runs\": [");
  CHECK(has(message({(root / "bad").string()}), (root / "bad" / "eval_supervised.json").string()));
  write(root / "bad2" / "eval_supervised.json", "{\"protocol\": \"supervised\"}");
  CHECK(has(message({(root / "bad2").string()}), "is not an eval result"));
  fs::remove_all(root);
}

TEST_CASE("report: verbclip report writes the page; user errors exit 1") {
  const fs::path root = write_tiny_run("cli");
  auto r = verbclip::testing::run_verbclip({"report", root.string(), "--out", (root / "r.html").string()});
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(fs::file_size(root / "r.html") > 1000);
  r = verbclip::testing::run_verbclip({"report", (root / "nope").string()});
  CHECK(r.code == 1);
  CHECK(has(r.output, "nope' does not exist"));
  r = verbclip::testing::run_verbclip({"report"});
  CHECK(r.code == 1);
  CHECK(has(r.output, "no run folder given"));
  r = verbclip::testing::run_verbclip({"report", root.string(), "--out", (root / "no" / "such" / "r.html").string()});
  CHECK(r.code == 1);
  CHECK(has(r.output, "does not exist"));
  fs::remove_all(root);
}

// The browser test of issue 17: chromium headless loads a report built from a tiny run; a
// script added to a copy of the page measures every <figure> and <img> on load and writes
// the result into the title, which --dump-dom prints; console messages (errors, uncaught
// exceptions) appear on stderr as "CONSOLE" lines. A screenshot is taken too.
TEST_CASE("report: chromium loads the page with no console errors and every figure non-empty") {
  std::string chromium;
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(c)) chromium = c;
  if (chromium.empty()) {
    MESSAGE("SKIPPED: chromium is not installed (apt-get install chromium; .ci/run installs it)");
    return;
  }
  const fs::path root = write_tiny_run("browser");
  std::string page = verbclip::build_report_html({root.string()});
  const std::string probe =
      "<script>window.addEventListener('load',function(){var bad=[],n=0;"
      "document.querySelectorAll('figure').forEach(function(f,i){var b=f.getBoundingClientRect();n++;"
      "if(!(b.width>0&&b.height>0))bad.push('figure '+i);});"
      "Array.prototype.forEach.call(document.images,function(im,i){if(!(im.complete&&im.naturalWidth>0))"
      "bad.push('img '+i+' '+im.alt);});"
      "document.title='PROBE figures='+n+' bad=['+bad.join(';')+']';});</script></body>";
  page.replace(page.rfind("</body>"), 7, probe);
  write(root / "page.html", page);
  const std::string flags = " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
                            "--disable-component-update --disable-sync --disable-quic --user-data-dir=";
  const std::string url = "file://" + (root / "page.html").string();
  auto dom = verbclip::testing::run_command(
      "timeout 120 " + chromium + flags + verbclip::testing::shell_quote((root / "profile1").string()) +
      " --enable-logging=stderr --v=0 --dump-dom " + url + " 2>" + (root / "stderr.txt").string());
  REQUIRE(dom.code == 0);
  std::ifstream es(root / "stderr.txt");
  const std::string err((std::istreambuf_iterator<char>(es)), {});
  std::smatch m;
  REQUIRE(std::regex_search(dom.output, m, std::regex("PROBE figures=([0-9]+) bad=\\[([^\\]]*)\\]")));
  INFO("figures: " << m[1] << ", bad: " << m[2]);
  CHECK(std::stoi(m[1].str()) >= 10);
  CHECK(m[2].str() == "");
  std::string console;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);)
    if (has(line, ":CONSOLE")) console += line + "\n";
  CHECK_MESSAGE(console.empty(), "console messages:\n" << console);
  // The screenshot (issue 17: "loads ... and takes a screenshot").
  auto shot = verbclip::testing::run_command(
      "cd " + verbclip::testing::shell_quote(root.string()) + " && timeout 120 " + chromium + flags +
      verbclip::testing::shell_quote((root / "profile2").string()) + " --window-size=1400,2000 --screenshot=" +
      (root / "shot.png").string() + " " + url + " >/dev/null 2>&1");
  CHECK(shot.code == 0);
  CHECK((fs::exists(root / "shot.png") && fs::file_size(root / "shot.png") > 10000));
  fs::remove_all(root);
}
