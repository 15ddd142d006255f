#include "apps/common/report.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "apps/common/run_log.h"
#include "apps/common/video_run.h"
#include "data/sampling.h"
#include "data/util.h"
#include "engine/core/error.h"
#include "nn/safetensors.h"

namespace verbclip {

namespace fs = std::filesystem;
using json = nlohmann::json;
using KV = std::vector<std::pair<std::string, std::string>>;

// ---------------------------------------------------------------- expectations

const char* const kVerdictRule =
    "confirmed when: \"≈ 100%\" measured ≥ 90; \"high\" measured ≥ 80; \"chance\" (50% for the pair "
    "metrics) |measured − 50| ≤ max(10, 2·50/√n), n the videos judged (two binomial standard errors "
    "at p = 0.5, at least 10 points). Family A is scored by its top-1 over all classes, B by the "
    "B-pair accuracy (flickering against standing still), C by the within-pair accuracy.";

namespace {

// The spec's sentences (../shared/specs/synthetic-dataset.md), quoted where a claim is made.
const char* const kSrcA = "A: decidable from any single frame. Every model should solve it.";
const char* const kSrcB =
    "B: ... Frame-wise encoding + mean pooling cannot separate them in expectation; any model whose frames "
    "exchange information (TC-CLIP's context tokens, CLAVER's KMT, STDD's shifts) can.";
const char* const kSrcBaseline = "Baseline (frame-wise + mean pooling): A ≈ 100%; B near chance; C about 50% within pairs.";
const char* const kSrcClaver = "CLAVER (KMT or KMCT): A, B, C high.";
const char* const kSrcClaverNoTe =
    "CLAVER ... With the temporal embedding removed, KMTA falls back to about 50% on C, KMCTA does not.";
const char* const kSrcStdd = "STDD: C high (channel shifts carry order).";
const char* const kSrcTcSpace = "TC-CLIP with spatial-only positional embedding: B high, C about 50% within pairs;";
const char* const kSrcTcJoint =
    "TC-CLIP ... with its joint (per-frame) positional embedding option, C can be learned.";
const char* const kSrcAlt = "ALT: C high only through its temporal convolution; removing it makes C about 50%.";

std::string lookup(const KV& config, const std::string& key, const std::string& fallback) {
  for (const auto& [k, v] : config)
    if (k == key) return vc::data::lower(v);
  return fallback;
}

}  // namespace

Expectation fashion_motion_expectation(const std::string& model, const std::string& metric, const KV& config) {
  using C = Expectation::Claim;
  Expectation e;
  e.metric = metric;
  auto set = [&](C c, const char* src) { e.claim = c, e.source = src; };
  if (metric == "A") {
    if (model == "baseline") set(C::Near100, kSrcBaseline);
    else if (model == "claver") set(C::High, kSrcClaver);
    else set(C::Near100, kSrcA);
  } else if (metric == "B-pair") {
    if (model == "baseline") set(C::Chance, kSrcBaseline);
    else if (model == "claver") set(C::High, kSrcClaver);
    else if (model == "stdd") set(C::High, kSrcB);
    else if (model == "tcclip") {
      if (lookup(config, "MODEL.POSITIONAL_EMBEDDING", "space") == "space") set(C::High, kSrcTcSpace);
      else set(C::High, kSrcB);
    }
  } else if (metric == "within-pair C") {
    if (model == "baseline") set(C::Chance, kSrcBaseline);
    else if (model == "claver") {
      const bool te = lookup(config, "MODEL.TEMPORAL_EMBEDDING", "true") == "true";
      const std::string mask = lookup(config, "MODEL.MASK", "kmta");
      if (!te && mask == "kmta") set(C::Chance, kSrcClaverNoTe);
      else if (!te && mask == "kmcta") set(C::High, kSrcClaverNoTe);
      else set(C::High, kSrcClaver);
    } else if (model == "stdd") set(C::High, kSrcStdd);
    else if (model == "alt") set(lookup(config, "MODEL.TEMPORAL_CONV", "true") == "true" ? C::High : C::Chance, kSrcAlt);
    else if (model == "tcclip") {
      if (lookup(config, "MODEL.POSITIONAL_EMBEDDING", "space") == "space") set(C::Chance, kSrcTcSpace);
      else e.source = kSrcTcJoint;  // "can be learned": no firm claim
    }
  }
  return e;
}

Verdict fashion_motion_verdict(Expectation::Claim claim, double m, int64_t videos) {
  using C = Expectation::Claim;
  if (claim == C::None) return Verdict::NoClaim;
  if (!std::isfinite(m) || videos <= 0) return Verdict::NotMeasured;
  bool ok = false;
  if (claim == C::Near100) ok = m >= 90;
  else if (claim == C::High) ok = m >= 80;
  else ok = std::fabs(m - 50) <= std::max(10.0, 2 * 50 / std::sqrt(double(videos)));
  return ok ? Verdict::Confirmed : Verdict::NotConfirmed;
}

namespace {

// ---------------------------------------------------------------- small helpers

std::string esc(const std::string& s) { return xml_escape(s); }

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  o.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    o += t[v >> 18], o += t[(v >> 12) & 63], o += t[(v >> 6) & 63], o += t[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    o += t[v >> 18], o += t[(v >> 12) & 63], o += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
    o += t[v >> 18], o += t[(v >> 12) & 63], o += t[(v >> 6) & 63], o += '=';
  }
  return o;
}

// A file as a data URI for <img src>; the type from its extension.
std::string data_uri(const std::string& path) {
  const std::string e = vc::data::lower(fs::path(path).extension().string());
  const char* type = e == ".png" ? "image/png" : e == ".svg" ? "image/svg+xml" : "image/jpeg";
  return std::string("data:") + type + ";base64," + base64(vc::data::read_file_bytes(path, "picture"));
}

// Percent with two decimals, as `verbclip eval` prints them; "–" when absent.
std::string pct(double d) { return std::isfinite(d) ? format_number("%.2f", d) : "–"; }

double num(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

json read_json(const std::string& path) {
  const std::string text = vc::data::read_file_bytes(path, "JSON file");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) vc::fail("report: '", path, "' is not a JSON object (truncated or not JSON)");
  return j;
}

std::string key_of(const std::string& path) { return fs::weakly_canonical(fs::path(path)).string(); }

std::vector<std::string> sorted_entries(const std::string& dir, bool dirs) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (dirs ? e.is_directory() : e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

void flatten_yaml(const YAML::Node& n, const std::string& prefix, KV& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) flatten_yaml(kv.second, (prefix.empty() ? "" : prefix + ".") + kv.first.as<std::string>(), out);
  } else if (n.IsScalar()) {
    out.push_back({prefix, n.as<std::string>()});
  }
}

// ---------------------------------------------------------------- inputs

struct EvalFile {
  std::string path, dir, protocol;
  bool reversed = false;
  json j;
};

struct TrainRun {
  std::string dir, name, model;  // model: the video model, or "clip" for pretrain-clip
  bool clip = false;
  std::vector<json> train, val, zero_shot;
  std::string config_text;
  KV config;
};

struct Inputs {
  std::vector<EvalFile> evals;
  std::vector<TrainRun> runs;
  std::map<std::string, size_t> run_index;  // canonical dir -> runs[i]
  std::vector<std::string> notes;
};

// A training run in `dir`, when its log.jsonl has training events.
bool load_train_run(const std::string& dir, Inputs& in) {
  const std::string log = dir + "/log.jsonl";
  if (!vc::data::path_exists(log)) return false;
  const std::string key = key_of(dir);
  if (in.run_index.count(key)) return true;
  TrainRun r;
  r.dir = dir;
  r.name = fs::path(key).filename().string();
  r.train = read_jsonl_events(log, "train");
  if (r.train.empty()) return false;  // an eval folder's log, or a run that never stepped
  r.val = read_jsonl_events(log, "val");
  r.zero_shot = read_jsonl_events(log, "zero_shot");
  const auto start = read_jsonl_events(log, "start");
  if (!start.empty() && start[0].contains("model")) {
    if (start[0]["model"].is_string()) r.model = start[0]["model"].get<std::string>();
    else r.clip = true, r.model = "clip";  // pretrain-clip records its CLIP config there
  }
  const std::string cfg = dir + "/config.yaml";
  if (vc::data::path_exists(cfg)) {
    r.config_text = vc::data::read_file_bytes(cfg, "config");
    try {
      flatten_yaml(YAML::Load(r.config_text), "", r.config);
    } catch (const YAML::Exception& e) {
      vc::fail("report: '", cfg, "' is not valid YAML: ", e.what());
    }
  } else {
    in.notes.push_back(dir + ": no config.yaml (expectations use the shipped configs' options)");
  }
  in.run_index[key] = in.runs.size();
  in.runs.push_back(std::move(r));
  return true;
}

// eval_*.json files and training runs in `dir` itself; returns how many were found.
int scan_folder(const std::string& dir, Inputs& in) {
  int found = 0;
  for (const auto& f : sorted_entries(dir, false)) {
    const std::string name = fs::path(f).filename().string();
    if (!vc::data::starts_with(name, "eval_") || !vc::data::ends_with(name, ".json")) continue;
    EvalFile e;
    e.path = f, e.dir = dir, e.j = read_json(f);
    bool ok = e.j.contains("runs") && e.j["runs"].is_array() && e.j.contains("protocol") && e.j["protocol"].is_string();
    if (ok)
      for (const auto& r : e.j["runs"]) ok = ok && r.is_object();
    if (!ok) vc::fail("report: '", f, "' is not an eval result of `verbclip eval` (needs \"protocol\" and \"runs\": [{...}])");
    e.protocol = e.j["protocol"].get<std::string>();
    e.reversed = e.j.value("reverse_frames", false);
    in.evals.push_back(std::move(e));
    ++found;
  }
  if (load_train_run(dir, in)) ++found;
  return found;
}

Inputs discover(const std::vector<std::string>& run_dirs) {
  if (run_dirs.empty()) vc::fail("report: no run folder given (verbclip report RUN_DIR...)");
  Inputs in;
  for (const auto& d : run_dirs) {
    if (!vc::data::is_directory(d)) vc::fail("report: run folder '", d, "' does not exist");
    int found = scan_folder(d, in);
    for (const auto& sub : sorted_entries(d, true)) found += scan_folder(sub, in);
    if (found == 0)
      vc::fail("report: '", d, "' holds no eval_*.json and no training log (log.jsonl with training steps), "
               "in itself or its subfolders: not a finished verbclip run");
  }
  // The training runs behind every evaluated checkpoint, where their folders still exist.
  for (const auto& e : in.evals)
    for (const auto& r : e.j["runs"]) {
      const std::string w = r.value("weights", std::string());
      const std::string dir = fs::path(w).parent_path().string();
      if (!dir.empty() && vc::data::is_directory(dir)) load_train_run(dir, in);
    }
  return in;
}

const TrainRun* run_of_weights(const Inputs& in, const std::string& weights) {
  const std::string dir = fs::path(weights).parent_path().string();
  if (dir.empty()) return nullptr;
  auto it = in.run_index.find(key_of(dir));
  return it == in.run_index.end() ? nullptr : &in.runs[it->second];
}

// The row label of an evaluated checkpoint: its folder's name, as `verbclip eval` prints it.
std::string row_name(const json& run) {
  const std::string folder = fs::path(run.value("weights", std::string())).parent_path().filename().string();
  const std::string model = run.value("model", std::string());
  return folder.empty() ? model : folder == model || model.empty() ? folder : folder + " (" + model + ")";
}

// eval's picture suffix for a checkpoint: "_<folder>" when it evaluated several.
std::string picture_suffix(const EvalFile& e, const json& run) {
  return e.j["runs"].size() > 1
             ? "_" + fs::path(run.value("weights", std::string())).parent_path().filename().string()
             : std::string();
}

// ---------------------------------------------------------------- page pieces

const char* const kColours[] = {"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1",
                                "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"};

std::string figure(const std::string& body, const std::string& caption, const std::string& cls = "") {
  return "<figure" + (cls.empty() ? "" : " class=\"" + cls + "\"") + ">" + body + "<figcaption>" + caption +
         "</figcaption></figure>\n";
}

std::string img(const std::string& path, const std::string& alt, const std::string& cls = "") {
  return "<img" + (cls.empty() ? "" : " class=\"" + cls + "\"") + " alt=\"" + esc(alt) + "\" src=\"" +
         data_uri(path) + "\">";
}

// Grouped bars: one group per metric, one bar per row, 0-100 %; dashed chance lines.
struct BarRow {
  std::string name;
  std::vector<double> values;
};
std::string grouped_bars_svg(const std::vector<std::string>& groups, const std::vector<double>& chance,
                             const std::vector<BarRow>& rows) {
  const double W = 980, H = 330, left = 50, right = 150, top = 20, bottom = 40;
  const double pw = W - left - right, ph = H - top - bottom;
  const double gw = pw / double(groups.size()), bw = (gw * 0.8) / double(std::max<size_t>(rows.size(), 1));
  auto Y = [&](double v) { return top + (1 - std::clamp(v, 0.0, 100.0) / 100) * ph; };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 "
    << W << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  for (int v = 0; v <= 100; v += 25)
    o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(v) << "\" y2=\"" << Y(v)
      << "\" stroke=\"#e5e5e5\"/><text x=\"" << left - 6 << "\" y=\"" << Y(v) + 4 << "\" text-anchor=\"end\">" << v
      << "</text>\n";
  o << "<text transform=\"translate(14," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">accuracy %</text>\n";
  for (size_t g = 0; g < groups.size(); ++g) {
    const double gx = left + gw * double(g) + gw * 0.1;
    for (size_t r = 0; r < rows.size(); ++r) {
      const double v = g < rows[r].values.size() ? rows[r].values[g] : NAN;
      if (!std::isfinite(v)) continue;
      const double x = gx + bw * double(r);
      o << "<rect x=\"" << x << "\" y=\"" << Y(v) << "\" width=\"" << std::max(1.0, bw - 2) << "\" height=\""
        << std::max(0.5, Y(0) - Y(v)) << "\" fill=\"" << kColours[r % 10] << "\"><title>" << esc(rows[r].name)
        << ", " << esc(groups[g]) << ": " << pct(v) << "%</title></rect>\n";
    }
    if (g < chance.size() && std::isfinite(chance[g]))
      o << "<line x1=\"" << gx - 4 << "\" x2=\"" << gx + gw * 0.8 + 4 << "\" y1=\"" << Y(chance[g]) << "\" y2=\""
        << Y(chance[g]) << "\" stroke=\"#333\" stroke-dasharray=\"4 3\"><title>chance " << pct(chance[g])
        << "%</title></line>\n";
    o << "<text x=\"" << gx + gw * 0.4 << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">"
      << esc(groups[g]) << "</text>\n";
  }
  o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(0) << "\" y2=\"" << Y(0)
    << "\" stroke=\"#333\"/>\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    const double ly = top + 10 + 18 * double(r);
    o << "<rect x=\"" << left + pw + 14 << "\" y=\"" << ly - 8 << "\" width=\"12\" height=\"12\" fill=\""
      << kColours[r % 10] << "\"/><text x=\"" << left + pw + 32 << "\" y=\"" << ly + 2 << "\">" << esc(rows[r].name)
      << "</text>\n";
  }
  o << "<line x1=\"" << left + pw + 12 << "\" x2=\"" << left + pw + 28 << "\" y1=\""
    << top + 16 + 18 * double(rows.size()) << "\" y2=\"" << top + 16 + 18 * double(rows.size())
    << "\" stroke=\"#333\" stroke-dasharray=\"4 3\"/><text x=\"" << left + pw + 32 << "\" y=\""
    << top + 20 + 18 * double(rows.size()) << "\">chance</text>\n";
  o << "</svg>";
  return o.str();
}

const char* verdict_class(Verdict v) {
  switch (v) {
    case Verdict::Confirmed: return "ok";
    case Verdict::NotConfirmed: return "no";
    case Verdict::NotMeasured: return "nm";
    default: return "nc";
  }
}
const char* verdict_word(Verdict v) {
  switch (v) {
    case Verdict::Confirmed: return "✓ confirmed";
    case Verdict::NotConfirmed: return "✗ not confirmed";
    case Verdict::NotMeasured: return "not measured";
    default: return "no claim";
  }
}
const char* claim_text(Expectation::Claim c) {
  switch (c) {
    case Expectation::Claim::Near100: return "≈ 100";
    case Expectation::Claim::High: return "high (≥ 80)";
    case Expectation::Claim::Chance: return "chance (≈ 50)";
    default: return "—";
  }
}

// ---------------------------------------------------------------- the page

class Page {
 public:
  explicit Page(Inputs in) : in_(std::move(in)) {}
  std::string build();

 private:
  void headline(const EvalFile& e);
  void expectations(const EvalFile& e);
  void other_protocol(const EvalFile& e);
  void family_bars(const EvalFile& e);
  void curves();
  void clips(const EvalFile& e);
  void model_pictures(const EvalFile& e);
  void confusions(const EvalFile& e);
  void configs();
  const EvalFile* reversed_of(const EvalFile& e) const;
  std::vector<const TrainRun*> ordered_runs() const;

  Inputs in_;
  std::ostringstream o_;
  std::vector<const EvalFile*> headline_;  // forward supervised evals
};

const EvalFile* Page::reversed_of(const EvalFile& e) const {
  std::set<std::string> mine;
  for (const auto& r : e.j["runs"]) mine.insert(key_of(r.value("weights", std::string())));
  for (const auto& x : in_.evals) {
    if (!x.reversed || x.protocol != e.protocol) continue;
    for (const auto& r : x.j["runs"])
      if (mine.count(key_of(r.value("weights", std::string())))) return &x;
  }
  return nullptr;
}

void Page::headline(const EvalFile& e) {
  const EvalFile* rev = reversed_of(e);
  std::map<std::string, json> flip;  // canonical weights -> reversed run's test report
  if (rev)
    for (const auto& r : rev->j["runs"]) flip[key_of(r.value("weights", std::string()))] = r.value("test", json());
  bool any_zs = false;
  for (const auto& r : e.j["runs"]) any_zs = any_zs || r.contains("noun_zero_shot");
  const json first = e.j["runs"].empty() ? json::object() : e.j["runs"][0].value("test", json::object());
  const json views = e.j.value("views", json::object());
  o_ << "<table class=\"num\" data-source=\"" << esc(e.path) << "\"><thead><tr><th>run</th><th>top-1</th><th>top-5</th>"
        "<th>mean-class</th><th>A</th><th>B</th><th>C</th><th>D</th><th>within-pair C</th><th>B-pair</th>"
        "<th>rev-flip C</th>" << (any_zs ? "<th>noun zero-shot</th>" : "") << "</tr></thead><tbody>\n";
  for (const auto& r : e.j["runs"]) {
    const json t = r.value("test", json::object());
    const json fam = t.value("families", json::object());
    o_ << "<tr><td class=\"name\">" << esc(row_name(r)) << "</td><td>" << pct(num(t, "top1")) << "</td><td>"
       << pct(num(t, "top5")) << "</td><td>" << pct(num(t, "mean_class_accuracy")) << "</td>";
    for (const char* f : {"A", "B", "C", "D"}) o_ << "<td>" << pct(num(fam.value(f, json()), "top1")) << "</td>";
    o_ << "<td>" << pct(num(t, "within_pair_C")) << "</td><td>" << pct(num(t, "b_pair")) << "</td><td>";
    auto it = flip.find(key_of(r.value("weights", std::string())));
    o_ << (it == flip.end() ? "–" : pct(num(it->second, "reversal_flip"))) << "</td>";
    if (any_zs) o_ << "<td>" << pct(num(r.value("noun_zero_shot", json()), "accuracy")) << "</td>";
    o_ << "</tr>\n";
  }
  o_ << "</tbody></table>\n<p class=\"small\">Accuracy in %, " << num(first, "videos") << " test videos of "
     << esc(first.value("list", std::string("?"))) << ", " << views.value("clips", 0) << " clip(s) × "
     << views.value("crops", 0) << " crop(s) per video (" << esc(views.value("aggregation", std::string()))
     << "). <b>within-pair C</b>: a clip of class c is right iff score(c) > score(pair(c)), its time reversal; "
        "chance 50. <b>B-pair</b>: flickering against standing still, chance 50. <b>rev-flip C</b>: on the same clips "
        "with frames reversed, percent of family-C clips predicted as the pair class";
  if (rev) o_ << " (" << esc(rev->path) << ")";
  else o_ << " (no eval with --reverse-frames of these weights was given: –)";
  o_ << ". Family chance (top-1 over " << num(first, "classes") << " classes): "
     << pct(100.0 / std::max(1.0, num(first, "classes"))) << ".";
  if (any_zs) {
    const auto& z = e.j["runs"][0].value("noun_zero_shot", json());
    o_ << " <b>noun zero-shot</b>: each checkpoint's CLIP on " << z.value("images", 0) << " Fashion-MNIST items, \""
       << esc(z.value("prompt", std::string())) << "\": how much of the pretrained image-text alignment fine-tuning kept";
    for (const auto& r : in_.runs)
      if (r.clip && !r.zero_shot.empty())
        o_ << " (the pretrained CLIP in " << esc(r.name) << "/: " << pct(num(r.zero_shot.back(), "accuracy")) << ")";
    o_ << ".";
  }
  o_ << "</p>\n";
  if (!rev) in_.notes.push_back(e.path + ": no reversed-frames eval of the same weights (rev-flip C left empty)");
}

void Page::expectations(const EvalFile& e) {
  if (e.j["runs"].empty()) return;
  const json t0 = e.j["runs"][0].value("test", json::object());
  if (!t0.contains("families")) return;  // not Fashion-Motion
  const std::vector<std::string> metrics = {"A", "B-pair", "within-pair C"};
  std::vector<std::string> sources;
  auto source_no = [&](const std::string& s) {
    auto it = std::find(sources.begin(), sources.end(), s);
    if (it != sources.end()) return size_t(it - sources.begin()) + 1;
    sources.push_back(s);
    return sources.size();
  };
  o_ << "<table class=\"grid\"><thead><tr><th>run</th>";
  for (const auto& m : metrics) o_ << "<th>" << esc(m) << "<br><span class=\"small\">expected → measured</span></th>";
  o_ << "</tr></thead><tbody>\n";
  int confirmed = 0, claims = 0;
  for (const auto& r : e.j["runs"]) {
    const json t = r.value("test", json::object());
    const TrainRun* tr = run_of_weights(in_, r.value("weights", std::string()));
    const KV config = tr ? tr->config : KV();
    o_ << "<tr><td class=\"name\">" << esc(row_name(r)) << "</td>";
    for (const auto& m : metrics) {
      double v = NAN;
      int64_t n = 0;
      if (m == "A") {
        const json a = t.value("families", json::object()).value("A", json());
        v = num(a, "top1"), n = int64_t(std::isfinite(num(a, "videos")) ? num(a, "videos") : 0);
      } else if (m == "B-pair") {
        v = num(t, "b_pair"), n = int64_t(std::isfinite(num(t, "b_pair_videos")) ? num(t, "b_pair_videos") : 0);
      } else {
        v = num(t, "within_pair_C");
        n = int64_t(std::isfinite(num(t, "within_pair_videos")) ? num(t, "within_pair_videos") : 0);
      }
      const Expectation x = fashion_motion_expectation(r.value("model", std::string()), m, config);
      const Verdict vd = fashion_motion_verdict(x.claim, v, n);
      if (vd == Verdict::Confirmed || vd == Verdict::NotConfirmed) ++claims, confirmed += vd == Verdict::Confirmed;
      o_ << "<td class=\"" << verdict_class(vd) << "\" title=\"" << esc(x.source) << "\">" << claim_text(x.claim)
         << " → <b>" << pct(v) << "</b> <span class=\"small\">(n=" << n << ")</span><br>" << verdict_word(vd);
      if (!x.source.empty()) o_ << " <sup>[" << source_no(x.source) << "]</sup>";
      o_ << "</td>";
    }
    o_ << "</tr>\n";
  }
  o_ << "</tbody></table>\n<p class=\"small\"><b>" << confirmed << " of " << claims
     << "</b> claims confirmed. " << esc(kVerdictRule)
     << " The claim of a row follows its config (CLAVER's MODEL.TEMPORAL_EMBEDDING and MODEL.MASK, ALT's "
        "MODEL.TEMPORAL_CONV, TC-CLIP's MODEL.POSITIONAL_EMBEDDING).</p>\n<ol class=\"src\">";
  for (const auto& s : sources) o_ << "<li>synthetic-dataset.md: “" << esc(s) << "”</li>";
  o_ << "</ol>\n";
}

void Page::other_protocol(const EvalFile& e) {
  o_ << "<h3>" << esc(e.protocol) << (e.reversed ? ", frames reversed" : "") << " <span class=\"small\">("
     << esc(e.path) << ")</span></h3>\n<table class=\"num\"><thead><tr><th>run</th>";
  if (e.protocol == "b2n") {
    o_ << "<th>base top-1</th><th>novel top-1</th><th>HM</th></tr></thead><tbody>\n";
    for (const auto& r : e.j["runs"])
      o_ << "<tr><td class=\"name\">" << esc(row_name(r)) << "</td><td>" << pct(num(r.value("base", json()), "top1"))
         << "</td><td>" << pct(num(r.value("novel", json()), "top1")) << "</td><td>" << pct(num(r, "hm"))
         << "</td></tr>\n";
    o_ << "</tbody></table>\n<p class=\"small\">Averaged over checkpoints: base " << pct(num(e.j, "base_mean"))
       << ", novel " << pct(num(e.j, "novel_mean")) << ", HM " << pct(num(e.j, "hm")) << ".</p>\n";
  } else if (e.protocol == "zeroshot") {
    o_ << "<th>split</th><th>top-1</th><th>A</th><th>B</th><th>C</th><th>D</th></tr></thead><tbody>\n";
    for (const auto& r : e.j["runs"])
      for (const auto& s : r.value("splits", json::array())) {
        const json fam = s.value("families", json::object());
        o_ << "<tr><td class=\"name\">" << esc(row_name(r)) << "</td><td class=\"name\">"
           << esc(fs::path(s.value("list", std::string())).filename().string()) << "</td><td>" << pct(num(s, "top1"))
           << "</td>";
        for (const char* f : {"A", "B", "C", "D"}) o_ << "<td>" << pct(num(fam.value(f, json()), "top1")) << "</td>";
        o_ << "</tr>\n";
      }
    o_ << "</tbody></table>\n<p class=\"small\">Zero-shot top-1 over the splits: " << pct(num(e.j, "zeroshot_top1_mean"))
       << " ± " << pct(num(e.j, "zeroshot_top1_std")) << ".</p>\n";
  } else {  // supervised / fewshot, reversed (shown here when no forward eval has them)
    o_ << "<th>top-1</th><th>top-5</th><th>A</th><th>B</th><th>C</th><th>D</th><th>within-pair C</th><th>B-pair</th>"
       << (e.reversed ? "<th>rev-flip C</th>" : "") << "</tr></thead><tbody>\n";
    for (const auto& r : e.j["runs"]) {
      const json t = r.value("test", json::object());
      const json fam = t.value("families", json::object());
      o_ << "<tr><td class=\"name\">" << esc(row_name(r)) << "</td><td>" << pct(num(t, "top1")) << "</td><td>"
         << pct(num(t, "top5")) << "</td>";
      for (const char* f : {"A", "B", "C", "D"}) o_ << "<td>" << pct(num(fam.value(f, json()), "top1")) << "</td>";
      o_ << "<td>" << pct(num(t, "within_pair_C")) << "</td><td>" << pct(num(t, "b_pair")) << "</td>";
      if (e.reversed) o_ << "<td>" << pct(num(t, "reversal_flip")) << "</td>";
      o_ << "</tr>\n";
    }
    o_ << "</tbody></table>\n";
    if (e.j.contains("shots")) o_ << "<p class=\"small\">K = " << e.j["shots"].dump() << " shots per class.</p>\n";
    if (e.j.contains("top1_mean"))
      o_ << "<p class=\"small\">top-1 over the runs: " << pct(num(e.j, "top1_mean")) << " ± " << pct(num(e.j, "top1_std"))
         << "</p>\n";
  }
}

void Page::family_bars(const EvalFile& e) {
  const std::vector<std::string> groups = {"A", "B", "C", "D", "within-pair C", "B-pair"};
  std::vector<BarRow> rows;
  double classes = 18;
  for (const auto& r : e.j["runs"]) {
    const json t = r.value("test", json::object());
    if (!t.contains("families")) return;
    classes = std::isfinite(num(t, "classes")) ? num(t, "classes") : classes;
    const json fam = t.value("families", json::object());
    BarRow b{row_name(r), {}};
    for (const char* f : {"A", "B", "C", "D"}) b.values.push_back(num(fam.value(f, json()), "top1"));
    b.values.push_back(num(t, "within_pair_C"));
    b.values.push_back(num(t, "b_pair"));
    rows.push_back(b);
  }
  const double c = 100.0 / classes;
  o_ << figure(grouped_bars_svg(groups, {c, c, c, c, 50, 50}, rows),
               "Per-family top-1 and the two pair accuracies, per model (" + esc(e.path) +
                   "). Dashed: chance (1/" + format_number("%.0f", classes) + " for a family's top-1, 50 for a pair).",
               "wide");
}

std::vector<const TrainRun*> Page::ordered_runs() const {
  // The headline's order first (baseline, claver, ... as evaluated), then the rest as found.
  std::vector<const TrainRun*> out;
  std::set<const TrainRun*> seen;
  for (const EvalFile* e : headline_)
    for (const auto& r : e->j["runs"])
      if (const TrainRun* t = run_of_weights(in_, r.value("weights", std::string())))
        if (seen.insert(t).second) out.push_back(t);
  for (const auto& t : in_.runs)
    if (seen.insert(&t).second) out.push_back(&t);
  return out;
}

void Page::curves() {
  std::vector<Series> loss, top1, wpc, bpair;
  std::vector<const TrainRun*> clips;
  for (const TrainRun* r : ordered_runs()) {
    if (r->clip) {
      clips.push_back(r);
      continue;
    }
    Series l{r->name, {}, {}}, a{r->name, {}, {}}, w{r->name, {}, {}}, b{r->name, {}, {}};
    for (const auto& t : r->train) {
      const double ep = num(t, "epoch"), prog = num(t, "epoch_progress");
      l.x.push_back(std::isfinite(prog) ? ep - 1 + prog : ep), l.y.push_back(num(t, "loss"));
    }
    for (const auto& v : r->val) {
      const double ep = num(v, "epoch");
      a.x.push_back(ep), a.y.push_back(num(v, "top1"));
      w.x.push_back(ep), w.y.push_back(num(v, "within_pair_C"));
      b.x.push_back(ep), b.y.push_back(num(v, "b_pair"));
    }
    loss.push_back(l), top1.push_back(a), wpc.push_back(w), bpair.push_back(b);
  }
  if (!loss.empty()) {
    o_ << "<div class=\"row\">";
    o_ << figure(curves_svg("training loss", "epoch", "loss", loss, 560, 320), "Training loss (logged steps).");
    o_ << figure(curves_svg("validation top-1", "epoch", "top-1 %", top1, 560, 320), "Validation top-1 after each epoch.");
    o_ << figure(curves_svg("validation within-pair C", "epoch", "%", wpc, 560, 320),
                 "Validation within-pair accuracy of family C (chance 50).");
    o_ << figure(curves_svg("validation B-pair", "epoch", "%", bpair, 560, 320),
                 "Validation B-pair accuracy (chance 50).");
    o_ << "</div>\n";
  }
  for (const TrainRun* r : clips) {
    Series l{"train loss", {}, {}}, vl{"val loss", {}, {}}, va{"val accuracy", {}, {}};
    for (const auto& t : r->train) l.x.push_back(num(t, "step")), l.y.push_back(num(t, "loss"));
    for (const auto& v : r->val) {
      vl.x.push_back(num(v, "step")), vl.y.push_back(num(v, "val_loss"));
      va.x.push_back(num(v, "step")), va.y.push_back(num(v, "val_accuracy"));
    }
    std::string cap = "Tiny CLIP pretraining (" + esc(r->dir) + ")";
    if (!r->zero_shot.empty())
      cap += "; noun zero-shot after pretraining: " + pct(num(r->zero_shot.back(), "accuracy")) + "% on " +
             std::to_string(int64_t(num(r->zero_shot.back(), "images"))) + " Fashion-MNIST items";
    o_ << "<div class=\"row\">"
       << figure(curves_svg("CLIP pretraining loss", "step", "loss", {l, vl}, 560, 320), cap + ".")
       << figure(curves_svg("CLIP caption retrieval", "step", "val accuracy %", {va}, 560, 320),
                 "Validation image→caption accuracy in the batch.")
       << "</div>\n";
  }
  if (loss.empty() && clips.empty()) in_.notes.push_back("no training run found: no training curves");
}

void Page::clips(const EvalFile& e) {
  const std::string sp = e.dir + "/scores_" + e.protocol + ".json";
  if (!vc::data::path_exists(sp)) {
    in_.notes.push_back(e.dir + ": no scores_" + e.protocol + ".json (run eval with --save-scores): no per-clip top-3");
    return;
  }
  const json s = read_json(sp);
  const json lists = s.value("lists", json::array());
  if (lists.empty()) return;
  const auto classes = lists[0].value("classes", std::vector<std::string>());
  const auto labels = lists[0].value("labels", std::vector<int64_t>());
  const FamilyInfo fam = fashion_motion_families(classes);
  if (!fam.is_fashion_motion) return;
  // The list's video ids, for the frames (Fashion-Motion: <list folder>/rawframes/<id>/img_00001.jpg).
  const std::string list = lists[0].value("list", std::string());
  std::vector<std::string> ids;
  std::vector<int64_t> nframes;
  if (vc::data::path_exists(list))
    for (const auto& line : vc::data::read_lines(list, "list")) {
      const auto f = vc::data::split_ws(line);
      int64_t n = 0;
      if (f.size() >= 3 && vc::data::parse_int(f[1], n)) ids.push_back(f[0]), nframes.push_back(n);
    }
  if (ids.size() != labels.size()) {
    in_.notes.push_back(sp + ": the list '" + list + "' is missing or does not match the scores: clips shown without frames");
    ids.clear();
  }
  o_ << "<p class=\"small\">From " << esc(sp) << ": for each family, its first clip in the test list; the frames the "
        "test sampler shows the model (segment centres); each model's three best classes with their probability "
        "(scores normalised over the classes). <span class=\"hit\">Green</span>: the true class.</p>\n";
  for (const char* f : {"A", "B", "C", "D"}) {
    size_t i = 0;
    while (i < labels.size() && !(labels[i] >= 0 && size_t(labels[i]) < classes.size() && fam.family_of[size_t(labels[i])] == f)) ++i;
    if (i == labels.size()) continue;
    const std::string truth = classes[size_t(labels[i])];
    std::string frames;
    if (!ids.empty()) {
      const std::string dir = (fs::path(list).parent_path() / "rawframes" / ids[i]).string();
      const auto offsets = vc::data::segment_offsets_test(nframes[i], std::min<int64_t>(8, nframes[i]), 1);
      for (int64_t off : offsets) {
        const std::string p = dir + "/" + vc::data::format_frame_name("img_{:05d}.jpg", off + 1);
        if (vc::data::path_exists(p)) frames += img(p, "frame " + std::to_string(off + 1), "frame");
      }
    }
    std::ostringstream t;
    t << "<table class=\"top3\"><tbody>";
    for (const auto& l : lists) {
      const json rows = l.value("scores", json::array());
      if (!rows.is_array() || i >= rows.size() || !rows[i].is_array())
        vc::fail("report: '", sp, "': a list's \"scores\" has no row ", i, " (the lists must score the same videos)");
      const std::vector<double> p = rows[i].get<std::vector<double>>();
      double sum = 0;
      for (double v : p) sum += v;
      ScoreMatrix m{1, int64_t(p.size()), p};
      const auto rank = ranking(m, 0);
      t << "<tr><td class=\"name\">" << esc(fs::path(l.value("weights", std::string())).parent_path().filename().string())
        << "</td>";
      for (size_t k = 0; k < 3 && k < rank.size(); ++k)
        t << "<td" << (rank[k] == labels[i] ? " class=\"hit\"" : "") << ">" << esc(classes[size_t(rank[k])]) << " "
          << format_number("%.1f", sum > 0 ? 100 * p[size_t(rank[k])] / sum : 0.0) << "%</td>";
      t << "</tr>";
    }
    t << "</tbody></table>";
    o_ << "<div class=\"clip\"><h3>family " << f << ": " << esc(truth) << " <span class=\"small\">("
       << (ids.empty() ? "video " + std::to_string(i) : esc(ids[i])) << ")</span></h3>";
    if (!frames.empty()) o_ << figure(frames, "frames of " + esc(ids[i]), "strip");
    o_ << t.str() << "</div>\n";
  }
}

void Page::model_pictures(const EvalFile& e) {
  struct Pic {
    const char* file;
    const char* caption;
  };
  static const Pic pics[] = {
      {"predict_attention.png", "class token's attention over the patches in the last spatial block (top: frames; bottom: heat map)"},
      {"predict_merge.png", "ALT: merged tokens (top: frames; bottom: one colour per merged token, dark lines between tokens)"},
      {"predict_membership.png", "TC-CLIP: context-token membership (top: frames; then per layer: seed patches in the colour of their context token, same colour across frames = one token)"},
      {"predict_windows.png", "STDD: window shift masking at inference (top: frames; then per STCA block: visible patches bright, masked dark, window borders drawn)"},
  };
  // The picture a model's own mechanism is about (issue 17), to say when it is missing.
  static const std::map<std::string, std::string> own = {{"claver", "predict_attention.png"},
                                                         {"alt", "predict_merge.png"},
                                                         {"tcclip", "predict_membership.png"},
                                                         {"stdd", "predict_windows.png"}};
  for (const auto& r : e.j["runs"]) {
    const std::string model = r.value("model", std::string());
    const TrainRun* tr = run_of_weights(in_, r.value("weights", std::string()));
    std::string body;
    if (tr) {
      for (const Pic& p : pics) {
        const std::string path = tr->dir + "/" + p.file;
        if (vc::data::path_exists(path)) body += figure(img(path, p.file, "pix"), p.caption + std::string(" (") + p.file + ")");
      }
      auto it = own.find(model);
      if (it != own.end() && !vc::data::path_exists(tr->dir + "/" + it->second))
        in_.notes.push_back(tr->dir + ": no " + it->second + " (" + model + "'s own picture; made by `verbclip predict`)");
      const std::string txt = tr->dir + "/predict.txt";
      if (vc::data::path_exists(txt))
        body += "<pre class=\"predict\">" + esc(vc::data::read_file_bytes(txt, "predict output")) + "</pre>";
    }
    const std::string att = e.dir + "/attention" + picture_suffix(e, r) + ".png";
    if (vc::data::path_exists(att))
      body += figure(img(att, "attention", "pix"),
                     "class token's attention on the first test clip (" + esc(fs::path(att).filename().string()) + ", from eval)");
    if (body.empty()) continue;
    o_ << "<h3>" << esc(row_name(r)) << "</h3><div class=\"row\">" << body << "</div>\n";
  }
}

void Page::confusions(const EvalFile& e) {
  o_ << "<div class=\"row\">";
  for (const auto& r : e.j["runs"]) {
    const std::string p = e.dir + "/confusion_" + e.protocol + picture_suffix(e, r) + ".svg";
    if (vc::data::path_exists(p)) o_ << figure(img(p, "confusion matrix", "conf"), esc(row_name(r)));
    else in_.notes.push_back(e.dir + ": no " + fs::path(p).filename().string() + " (eval ran with --no-pictures?)");
  }
  o_ << "</div>\n";
}

void Page::configs() {
  for (const TrainRun* r : ordered_runs()) {
    if (r->config_text.empty()) continue;
    o_ << "<details><summary>" << esc(r->name) << " <span class=\"small\">(" << esc(r->dir)
       << "/config.yaml)</span></summary><pre>" << esc(r->config_text) << "</pre></details>\n";
  }
}

const char* const kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:1240px;margin:0 auto;padding:16px 24px}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}.small{font-size:12px;color:#555}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px}th{background:#f4f4f4;font-weight:600}
table.num td{text-align:right;font-variant-numeric:tabular-nums}td.name{text-align:left;font-weight:600}
table.grid td{text-align:center;min-width:150px}td.ok{background:#e3f4e1}td.no{background:#fbe3e1}td.nm,td.nc{background:#f2f2f2;color:#666}
.hit{background:#d8f0d3}figure{margin:6px 10px 10px 0;display:inline-block;vertical-align:top}
figcaption{font-size:12px;color:#555;max-width:560px}.row{display:flex;flex-wrap:wrap}
img.pix,img.frame{image-rendering:pixelated}img.frame{width:80px;height:80px;margin-right:2px}
img.conf{width:560px;height:auto}img.pix{max-width:100%}figure.wide svg{max-width:100%;height:auto}
.clip{border-top:1px solid #eee}table.top3 td{font-size:13px}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
.notes li{color:#7a4b00}ol.src{font-size:12px;color:#555}
)";

std::string Page::build() {
  // The forward supervised evals give the headline; the rest are "other" tables.
  std::vector<const EvalFile*> others;
  for (const auto& e : in_.evals) {
    const bool head = !e.reversed && e.protocol == "supervised";
    (head ? headline_ : others).push_back(&e);
  }
  // A reversed eval already merged into a headline table (its rev-flip column) is not repeated.
  std::set<const EvalFile*> merged;
  for (const EvalFile* h : headline_)
    if (const EvalFile* r = reversed_of(*h)) merged.insert(r);

  o_ << "<h2 id=\"results\">Results</h2>\n";
  for (const EvalFile* e : headline_) {
    o_ << "<h3>" << esc(e->protocol) << " <span class=\"small\">(" << esc(e->path) << ")</span></h3>\n";
    headline(*e);
    o_ << "<h3>Expected (synthetic-dataset.md) against measured</h3>\n";
    expectations(*e);
  }
  for (const EvalFile* e : others)
    if (!merged.count(e)) other_protocol(*e);
  if (in_.evals.empty()) o_ << "<p>No eval results were given: training runs only.</p>\n";
  if (!headline_.empty()) {
    o_ << "<h2 id=\"families\">Per-family accuracy</h2>\n";
    for (const EvalFile* e : headline_) family_bars(*e);
  }
  o_ << "<h2 id=\"curves\">Training curves</h2>\n";
  curves();
  if (!headline_.empty()) {
    o_ << "<h2 id=\"clips\">One test clip per family, each model's top-3</h2>\n";
    for (const EvalFile* e : headline_) clips(*e);
    o_ << "<h2 id=\"pictures\">What each model looks at</h2>\n";
    for (const EvalFile* e : headline_) model_pictures(*e);
    o_ << "<h2 id=\"confusion\">Confusion matrices</h2>\n";
    for (const EvalFile* e : headline_) confusions(*e);
  }
  o_ << "<h2 id=\"configs\">Configs</h2>\n";
  configs();

  std::ostringstream page;
  page << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>verbclip report</title>"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>"
       << kStyle << "</style></head><body>\n<h1>verbclip report</h1>\n<p class=\"small\">Built by <code>verbclip report</code> from ";
  {
    std::set<std::string> dirs;
    for (const auto& e : in_.evals) dirs.insert(e.dir);
    for (const auto& r : in_.runs) dirs.insert(r.dir);
    bool firstd = true;
    for (const auto& d : dirs) page << (firstd ? "" : ", ") << "<code>" << esc(d) << "</code>", firstd = false;
  }
  page << ". Sections: <a href=\"#results\">results</a> · <a href=\"#families\">families</a> · <a href=\"#curves\">curves</a>"
          " · <a href=\"#clips\">clips</a> · <a href=\"#pictures\">pictures</a> · <a href=\"#confusion\">confusion</a>"
          " · <a href=\"#configs\">configs</a> · <a href=\"#notes\">notes (" << in_.notes.size() << ")</a></p>\n";
  page << o_.str();
  page << "<h2 id=\"notes\">Notes: pieces skipped</h2>\n<ul class=\"notes\">";
  for (const auto& n : in_.notes) page << "<li>" << esc(n) << "</li>";
  if (in_.notes.empty()) page << "<li>none</li>";
  page << "</ul>\n</body></html>\n";
  return page.str();
}

}  // namespace

std::string build_report_html(const std::vector<std::string>& run_dirs) {
  Page p(discover(run_dirs));
  return p.build();
}

void write_report(const std::string& out, const std::vector<std::string>& run_dirs) {
  const std::string html = build_report_html(run_dirs);
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty() && !vc::data::is_directory(parent.string()))
    vc::fail("report: the folder of --out '", out, "' does not exist");
  vc::nn::write_file_atomically(out, [&](std::FILE* f) {
    VC_CHECK(std::fwrite(html.data(), 1, html.size(), f) == html.size(), "cannot write '", out, "'");
  });
}

}  // namespace verbclip
