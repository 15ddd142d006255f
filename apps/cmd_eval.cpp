// verbclip eval: evaluates train checkpoints under the field's protocols (ecosystem.md §1.5-1.7,
// §2.4, §4.1) and prints a table; writes <output>/eval_<protocol>.json, the confusion matrix
// (confusion_<protocol>.svg) and the attention map of one clip (attention.png).
//
//   supervised  DATA.TEST_FILE with DATA.LABEL_LIST, TEST.NUM_CLIP x TEST.NUM_CROP views whose
//               probabilities are summed; top-1, top-5, mean class accuracy, and for
//               Fashion-Motion per-family accuracy and the within-pair accuracy of family C
//   fewshot     the same, for a model trained on a K-shot list (TEST.SHOTS is reported)
//   b2n         per checkpoint (one per seed): base accuracy on DATA.B2N_VAL_BASE against the
//               base classes, novel accuracy on DATA.B2N_VAL_NOVEL against the novel classes;
//               base and novel averaged over the checkpoints, HM = 2BN/(B+N) of the averages
//   zeroshot    top-1 on each of DATA.ZS_TEST_FILES (classes DATA.ZS_TEST_LABELS) for each
//               checkpoint: mean +- population std
// Several --weights give one row each (and mean +- std for supervised / fewshot).
//
// --reverse-frames scores every clip with its T frames in reverse order (each view's
// [B, T, 3, H, W] batch index_select-ed on axis 1), and reports for Fashion-Motion family C
// the reversal flip (metrics.h): the percent of C clips whose top-1 on the reversed clip is
// the pair class pair_of[label]. An order-blind model (the baseline's frame mean) scores
// reversed clips as the forward ones (up to float summation order).
// --save-scores also writes <output>/scores_<protocol>.json: per checkpoint and list, the
// labels and the per-video scores (summed over views) that the metrics were computed from.
#include <cxxopts.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "apps/commands.h"
#include "apps/common/clip_data.h"
#include "apps/common/clip_weights.h"
#include "apps/common/config.h"
#include "apps/common/pictures.h"
#include "apps/common/run_log.h"
#include "apps/common/video_run.h"
#include "data/annotations.h"
#include "data/fashion_motion.h"
#include "data/util.h"
#include "engine/engine.h"
#include "models/tcclip.h"
#include "nn/safetensors.h"

namespace verbclip {

namespace {

using vc::Tensor;
using json = nlohmann::ordered_json;

std::string cell(double v) { return std::isnan(v) ? std::string("    -") : format_number("%6.2f", v); }

const char* const kReversalFlipDefinition =
    "reversal flip (family C, frames reversed): percent of clips of class c predicted as pair(c), the class of "
    "the time-reversed motion; an order-sensitive model that learnt C ~100%, an order-blind one keeps its "
    "forward answer (~0-50%)";

// --reverse-frames: the trained model scored on time-reversed clips. score_videos and
// evaluate_list reach the video only through encode_video = pool_frames(frame_features(.)),
// and frame_features is the models' one virtual step on the video; this VideoModel shares the
// trained model's CLIP (text tower, logit scale, config) and options, and its frame_features
// reverses axis 1 of [B, T, 3, H, W] before calling the trained model's own.
class ReversedFrames final : public vc::models::VideoModel {
 public:
  explicit ReversedFrames(std::shared_ptr<vc::models::VideoModel> inner)
      : VideoModel("ReversedFrames", vc::clip::ClipConfig::preset("tiny"), inner->options()),
        inner_(std::move(inner)) {
    // The base class built a throwaway tiny CLIP; every use of clip_ goes to the trained one.
    clip_ = std::shared_ptr<vc::clip::CLIP>(inner_, &inner_->clip());
  }
  std::string name() const override { return inner_->name(); }
  vc::models::KeyValues options_kv() const override { return inner_->options_kv(); }
  Tensor frame_features(const Tensor& video) const override {
    VC_CHECK(video.dim() == 5, "--reverse-frames: expected a video batch [B, T, 3, H, W], got ", video.shape());
    const int64_t T = video.size(1);
    std::vector<int64_t> rev(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) rev[size_t(t)] = T - 1 - t;
    return inner_->frame_features(vc::index_select(video, 1, Tensor::from_vector(rev, {T}, video.device())));
  }
  // Models whose video feature, prompts or score are their own (STDD's frames, TC-CLIP's prompt
  // phrase and per-video text side) get the reversed clip through their own methods.
  Tensor encode_video(const Tensor& video) const override {
    VC_CHECK(video.dim() == 5, "--reverse-frames: expected a video batch [B, T, 3, H, W], got ", video.shape());
    const int64_t T = video.size(1);
    std::vector<int64_t> rev(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) rev[size_t(t)] = T - 1 - t;
    return inner_->encode_video(vc::index_select(video, 1, Tensor::from_vector(rev, {T}, video.device())));
  }
  Tensor score(const Tensor& video_features, const Tensor& class_features) const override {
    return inner_->score(video_features, class_features);
  }
  ScoreKind score_kind() const override { return inner_->score_kind(); }
  Tensor tokenize(const vc::models::PromptSet& prompts, const vc::clip::TextTokenizer& tokenizer) const override {
    return inner_->tokenize(prompts, tokenizer);
  }
  Tensor class_features(const Tensor& prompt_tokens) const override { return inner_->class_features(prompt_tokens); }

 private:
  std::shared_ptr<vc::models::VideoModel> inner_;
};

// The reversal flip of a report scored on reversed clips (NaN without family-C pairs).
struct Flip {
  double rate = NAN;
  int64_t videos = 0;
};
Flip reversal_flip(const EvalReport& e) {
  Flip f;
  if (e.families.is_fashion_motion) f.rate = reversal_flip_rate(e.scores, e.labels, e.families.pair_of, &f.videos);
  return f;
}

// One row of mean +- std over the runs of one name (seeds), and its JSON record.
std::string group_header(bool families) {
  std::string h = "  run";
  h.resize(32, ' ');
  h += "runs";
  std::vector<std::string> cols = {"top-1", "top-5", "mean-cls"};
  if (families) cols.insert(cols.end(), {"A", "B", "C", "D", "within-pair C", "B-pair"});
  for (const auto& c : cols) h += std::string(15 - c.size(), ' ') + c;
  return h;
}

std::string group_row(const std::string& name, const std::vector<EvalReport>& reports, json& records) {
  auto stat = [&](auto get) {
    std::vector<double> v;
    for (const auto& e : reports) v.push_back(get(e));
    return mean_std(v);
  };
  std::string s = "  " + name;
  s.resize(std::max<size_t>(s.size() + 1, 32), ' ');
  const std::string runs = std::to_string(reports.size());
  s += std::string(runs.size() < 4 ? 4 - runs.size() : 0, ' ') + runs;
  json rec;
  rec["name"] = name;
  rec["runs"] = reports.size();
  auto add = [&](const std::string& key, MeanStd m) {
    s += "  " + (std::isnan(m.mean) ? std::string("            -") : format_number("%5.2f", m.mean) + " +- " +
                                                                     format_number("%4.2f", m.std));
    if (!std::isnan(m.mean)) rec[key] = {{"mean", m.mean}, {"std", m.std}};
  };
  add("top1", stat([](const EvalReport& e) { return e.acc.top1; }));
  add("top5", stat([](const EvalReport& e) { return e.acc.top5; }));
  add("mean_class", stat([](const EvalReport& e) { return e.acc.mean_class; }));
  if (reports.front().families.is_fashion_motion) {
    for (const char* f : {"A", "B", "C", "D"})
      add(std::string("family_") + f, stat([&](const EvalReport& e) {
            auto it = e.family_accuracy.find(f);
            return it == e.family_accuracy.end() ? NAN : it->second;
          }));
    add("within_pair", stat([](const EvalReport& e) { return e.pair_videos ? e.within_pair : NAN; }));
    add("b_pair", stat([](const EvalReport& e) { return e.b_pair_videos ? e.b_pair : NAN; }));
  }
  records.push_back(rec);
  return s;
}

std::string table_header(bool families, bool reversed) {
  std::string h = "  run                              top-1  top-5  mean-cls";
  if (families) h += "      A      B      C      D  within-pair C  B-pair";
  if (families && reversed) h += "  rev-flip C";
  return h;
}

std::string table_row(const std::string& name, const EvalReport& r, bool reversed) {
  // Long names keep their start: the run folder and model come first, the list last.
  std::string n = name.size() > 32 ? name.substr(0, 29) + "..." : name;
  std::string s = "  " + n + std::string(33 - n.size(), ' ') + cell(r.acc.top1) + " " + cell(r.acc.top5) + "   " +
                  cell(r.acc.mean_class);
  if (r.families.is_fashion_motion) {
    for (const char* f : {"A", "B", "C", "D"}) {
      auto it = r.family_accuracy.find(f);
      s += " " + cell(it == r.family_accuracy.end() ? NAN : it->second);
    }
    s += "         " + cell(r.pair_videos ? r.within_pair : NAN);
    s += " " + cell(r.b_pair_videos ? r.b_pair : NAN);
    if (reversed) {
      const Flip f = reversal_flip(r);
      s += "       " + cell(f.videos ? f.rate : NAN);
    }
  }
  return s;
}

void write_json(const std::string& path, const json& j) {
  const std::string text = j.dump(2) + "\n";
  vc::nn::write_file_atomically(path, [&](std::FILE* f) { std::fwrite(text.data(), 1, text.size(), f); });
}

// The first video of `list` (one centre view) and its attention map.
void write_attention(const std::string& path, const vc::models::VideoModel& model, const Config& cfg,
                     const std::string& list, int64_t K) {
  vc::data::ListOptions lo;
  lo.num_classes = K;
  vc::data::VideoDataset ds = vc::data::VideoDataset::from_list(list, dataset_options(cfg, K, false), lo);
  const int64_t T = ds.frames_per_clip(), S = ds.input_size();
  std::vector<float> buf(size_t(T * 3 * S * S));
  ds.get(0, false, uint64_t(cfg.integer("SEED")), 0, 0, buf.data());
  Tensor video = Tensor::from_vector(buf, {1, T, 3, S, S});
  Tensor att = model.attention_map(video);
  write_attention_png(path, video.select(0, 0), att.select(0, 0));
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  std::vector<char*> args;
  std::vector<std::string> opts;
  split_opts(argc, argv, args, opts);
  cxxopts::Options o(argv[0],
                     "Evaluate `verbclip train` checkpoints: supervised (multi-view), fewshot, b2n (base-to-novel)\n"
                     "or zeroshot. Settings: the checkpoint's own config, then --config YAML, then --opts KEY VALUE.");
  o.add_options()
      ("weights", "train checkpoint(s) (repeat for seeds / runs)", cxxopts::value<std::vector<std::string>>())
      ("config", "YAML config applied over the checkpoint's", cxxopts::value<std::string>())
      ("protocol", "supervised | fewshot | b2n | zeroshot (TEST.PROTOCOL)", cxxopts::value<std::string>())
      ("output", "folder for eval_<protocol>.json and the pictures (default: the first weights' folder)",
       cxxopts::value<std::string>())
      ("reverse-frames", "score every clip with its frames in reverse time order; reports the family-C reversal flip")
      ("save-scores", "also write <output>/scores_<protocol>.json (labels and per-video scores of every list)")
      ("no-pictures", "skip the confusion matrix and the attention map")
      ("noun-zero-shot", "also test each checkpoint's CLIP zero-shot on N Fashion-MNIST items, \"a photo of a {noun}\" "
       "(how much of the pretrained CLIP fine-tuning kept; 0 = off)",
       cxxopts::value<int64_t>()->default_value("0"))
      ("fashion-mnist", "Fashion-MNIST IDX folder for --noun-zero-shot",
       cxxopts::value<std::string>()->default_value(vc::data::fm::kDebianFashionMnist))
      ("wise-ft", "weight-space ensembling (TC-CLIP's zero-shot model, tcclip.md §4): evaluate (1 - W) CLIP + W "
       "fine-tuned for every CLIP tensor, the model's own modules as trained; the CLIP is MODEL.PRETRAINED "
       "(0.7 in the paper)", cxxopts::value<double>())
      ("threads", "CPU threads (0 = all)", cxxopts::value<int>()->default_value("0"))
      ("q,quiet", "no progress line")
      ("opts", "KEY VALUE ... config overrides; must come last")
      ("h,help", "show this help");
  auto r = o.parse(int(args.size()), args.data());
  if (r.count("help")) return std::cout << o.help(), 0;
  if (!r.unmatched().empty()) vc::fail("unexpected argument '", r.unmatched()[0], "'");
  if (!r.count("weights")) vc::fail("--weights FILE is required (a checkpoint written by `verbclip train`)");
  if (r["threads"].as<int>() > 0) vc::set_num_threads(r["threads"].as<int>());
  const auto weights = r["weights"].as<std::vector<std::string>>();
  const bool quiet = r.count("quiet") > 0;
  const bool reversed = r.count("reverse-frames") > 0;
  const bool save_scores = r.count("save-scores") > 0;
  const int64_t noun_zero_shot = r["noun-zero-shot"].as<int64_t>();
  VC_CHECK(noun_zero_shot >= 0, "--noun-zero-shot must be >= 0, got ", noun_zero_shot);

  // Each checkpoint is evaluated with its own config, then --config, --protocol and --opts
  // (so one call can compare runs of different models).
  auto config_for = [&](const std::string& w) {
    Config c = video_config_defaults();
    c.load_yaml_text(read_checkpoint_info(w).config_yaml, w);
    if (r.count("config")) c.load_yaml_file(r["config"].as<std::string>());
    if (r.count("protocol")) c.set("TEST.PROTOCOL", r["protocol"].as<std::string>(), "--protocol");
    c.apply_opts(opts);
    return c;
  };
  Config cfg = config_for(weights[0]);
  const std::string protocol = cfg.str("TEST.PROTOCOL");
  VC_CHECK(protocol == "supervised" || protocol == "fewshot" || protocol == "b2n" || protocol == "zeroshot",
           "unknown protocol '", protocol, "' (expected supervised, fewshot, b2n or zeroshot)");
  const std::string root = cfg.str("DATA.ROOT");
  if (!vc::data::is_directory(root)) vc::fail("DATA.ROOT: dataset folder '", root, "' does not exist");
  std::string out = r.count("output") ? r["output"].as<std::string>()
                                      : std::filesystem::path(weights[0]).parent_path().string();
  if (out.empty()) out = ".";
  std::filesystem::create_directories(out);
  RunLog log(out, /*append=*/true, /*echo=*/false);

  json result;
  result["protocol"] = protocol;
  result["weights"] = weights;
  result["views"] = {{"clips", cfg.integer("TEST.NUM_CLIP")}, {"crops", cfg.integer("TEST.NUM_CROP")},
                     {"aggregation", "sum of per-view class probabilities"}};
  result["reverse_frames"] = reversed;
  json score_lists = json::array();
  std::vector<std::string> table;
  std::vector<std::string> pictures;
  auto name_of = [&](const std::string& w, const std::string& what) {
    return std::filesystem::path(w).parent_path().filename().string() + " (" + cfg.str("MODEL.NAME") + ")" +
           (what.empty() ? "" : " " + what);
  };

  std::vector<json> runs;
  std::vector<double> top1s, bases, novels, zs;
  std::vector<std::string> summary_zero_shot;
  bool families = false;
  std::set<std::string> models_seen;
  // Runs of the same name (one model's folder over several seeds: seed1/claver, seed2/claver)
  // are summarised as mean +- std per column, in the order first seen.
  std::vector<std::pair<std::string, std::vector<EvalReport>>> groups;
  for (const auto& w : weights) {
    cfg = config_for(w);
    VC_CHECK(cfg.str("TEST.PROTOCOL") == protocol, "weights '", w, "' are configured for protocol '",
             cfg.str("TEST.PROTOCOL"), "', the first for '", protocol, "' (pass --protocol)");
    VideoSetup s = load_trained_model(w, cfg);
    s.model->eval();
    if (r.count("wise-ft")) {
      const double wf = r["wise-ft"].as<double>();
      const std::string clip_path = cfg.str("MODEL.PRETRAINED");
      VC_CHECK(!clip_path.empty(), "--wise-ft needs the pretrained CLIP: set MODEL.PRETRAINED (--opts MODEL.PRETRAINED FILE)");
      LoadedClip lc = load_clip_weights(clip_path);
      s.model->load_state_dict(vc::models::weight_space_ensemble(s.model->state_dict(), lc.model->state_dict(), wf));
    }
    // What scores the clips: the model itself, or the model on time-reversed clips.
    std::shared_ptr<vc::models::VideoModel> scorer = s.model;
    if (reversed) scorer = std::make_shared<ReversedFrames>(s.model);
    // The report as JSON, with the reversal flip when frames are reversed; its scores kept
    // for --save-scores.
    auto report = [&](const EvalReport& e) {
      json j = report_json(e);
      if (reversed) {
        j["frames_reversed"] = true;
        const Flip f = reversal_flip(e);
        if (f.videos > 0) {
          j["reversal_flip"] = f.rate;
          j["reversal_flip_videos"] = f.videos;
          j["reversal_flip_definition"] = kReversalFlipDefinition;
        }
      }
      if (save_scores) {
        json sc;
        sc["weights"] = w;
        sc["list"] = e.list;
        sc["classes"] = e.class_names;
        sc["frames_reversed"] = reversed;
        sc["labels"] = e.labels;
        json rows = json::array();
        for (int64_t i = 0; i < e.scores.rows; ++i)
          rows.push_back(std::vector<double>(e.scores.values.begin() + i * e.scores.classes,
                                             e.scores.values.begin() + (i + 1) * e.scores.classes));
        sc["scores"] = rows;
        score_lists.push_back(sc);
      }
      return j;
    };
    json run;
    run["weights"] = w;
    run["model"] = s.model->name();
    if (r.count("wise-ft")) run["wise_ft"] = r["wise-ft"].as<double>();
    models_seen.insert(s.model->name());
    std::vector<EvalReport> run_reports;  // the first list's, for the pictures
    auto eval = [&](const std::string& list_key, const std::string& labels_key, bool multi_view) {
      const std::string list = data_path(cfg, list_key);
      const auto names = vc::data::read_labels(data_path(cfg, labels_key)).names;
      EvalReport e = evaluate_list(*scorer, *s.tokenizer, cfg, list, names, multi_view, !quiet);
      families = families || e.families.is_fashion_motion;
      if (run_reports.empty()) run_reports.push_back(e);
      std::string line = report_line(e);
      if (reversed) {
        const Flip f = reversal_flip(e);
        line += "  [frames reversed" + (f.videos ? ", reversal flip C " + format_number("%.1f", f.rate) : "") + "]";
      }
      log.info("eval " + protocol + " " + w + " on " + list + ": " + line);
      return e;
    };
    if (protocol == "supervised" || protocol == "fewshot") {
      EvalReport e = eval("DATA.TEST_FILE", "DATA.LABEL_LIST", true);
      run["test"] = report(e);
      top1s.push_back(e.acc.top1);
      table.push_back(table_row(name_of(w, ""), e, reversed));
      auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == name_of(w, ""); });
      if (g == groups.end()) groups.push_back({name_of(w, ""), {}}), g = groups.end() - 1;
      e.scores = {};  // the group keeps the metrics only
      g->second.push_back(std::move(e));
    } else if (protocol == "b2n") {
      EvalReport b = eval("DATA.B2N_VAL_BASE", "DATA.B2N_BASE_LABELS", true);
      EvalReport n = eval("DATA.B2N_VAL_NOVEL", "DATA.B2N_NOVEL_LABELS", true);
      run["base"] = report(b);
      run["novel"] = report(n);
      run["hm"] = harmonic_mean(b.acc.top1, n.acc.top1);
      bases.push_back(b.acc.top1), novels.push_back(n.acc.top1);
      table.push_back(table_row(name_of(w, "base"), b, reversed));
      table.push_back(table_row(name_of(w, "novel"), n, reversed));
    } else {
      Config one = cfg;
      run["splits"] = json::array();
      for (const auto& list : cfg.list("DATA.ZS_TEST_FILES")) {
        one.set("DATA.TEST_FILE", list, "DATA.ZS_TEST_FILES");
        EvalReport e = evaluate_list(*scorer, *s.tokenizer, one, data_path(one, "DATA.TEST_FILE"),
                                     vc::data::read_labels(data_path(cfg, "DATA.ZS_TEST_LABELS")).names, true, !quiet);
        families = families || e.families.is_fashion_motion;
        if (run_reports.empty()) run_reports.push_back(e);
        run["splits"].push_back(report(e));
        zs.push_back(e.acc.top1);
        table.push_back(table_row(name_of(w, std::filesystem::path(list).stem().string()), e, reversed));
      }
    }
    if (noun_zero_shot > 0) {
      // The fine-tuned CLIP (image encoder without the video model's additions) as pretrain-clip
      // tests it: what is left of the image-text alignment after training on videos.
      ZeroShotOptions zo;
      zo.fashion_mnist_dir = r["fashion-mnist"].as<std::string>();
      zo.limit = noun_zero_shot;
      ZeroShotResult z = fashion_mnist_zero_shot(s.model->clip(), *s.tokenizer, zo);
      run["noun_zero_shot"] = {{"accuracy", z.accuracy}, {"images", z.images}, {"prompt", zo.prompt}};
      summary_zero_shot.push_back(name_of(w, "") + ": noun zero-shot " + format_number("%.2f", z.accuracy) +
                                  "% on " + std::to_string(z.images) + " Fashion-MNIST items (\"" + zo.prompt + "\")");
      log.info("eval " + w + ": " + summary_zero_shot.back());
    }
    runs.push_back(run);
    if (!r.count("no-pictures") && !run_reports.empty()) {
      // Pictures of this checkpoint's first list: confusion matrix and one clip's attention.
      const std::string suffix = weights.size() > 1 ? "_" + std::filesystem::path(w).parent_path().filename().string() : "";
      const EvalReport& e = run_reports[0];
      const std::string cp = out + "/confusion_" + protocol + suffix + ".svg";
      write_confusion_svg(cp, "confusion: " + s.model->name() + " on " + e.list + (reversed ? " (frames reversed)" : ""),
                          e.acc.confusion, e.class_names);
      const std::string ap = out + "/attention" + suffix + ".png";
      write_attention(ap, *s.model, cfg, e.list, int64_t(e.class_names.size()));
      pictures.push_back(cp);
      pictures.push_back(ap);
    }
  }
  result["runs"] = runs;
  cfg = config_for(weights[0]);

  // ---- summary over checkpoints / splits
  std::vector<std::string> summary = summary_zero_shot;
  if (top1s.size() > 1 && models_seen.size() == 1) {
    MeanStd m = mean_std(top1s);
    result["top1_mean"] = m.mean, result["top1_std"] = m.std;
    summary.push_back("top-1 over " + std::to_string(top1s.size()) + " runs: " + format_number("%.2f", m.mean) +
                      " +- " + format_number("%.2f", m.std));
  }
  if (!bases.empty()) {
    const double b = mean_std(bases).mean, n = mean_std(novels).mean;
    result["base_mean"] = b, result["novel_mean"] = n, result["hm"] = harmonic_mean(b, n);
    summary.push_back("base-to-novel over " + std::to_string(bases.size()) + " seed(s): base " +
                      format_number("%.2f", b) + "  novel " + format_number("%.2f", n) + "  HM " +
                      format_number("%.2f", harmonic_mean(b, n)));
  }
  if (!zs.empty()) {
    MeanStd m = mean_std(zs);
    result["zeroshot_top1_mean"] = m.mean, result["zeroshot_top1_std"] = m.std;
    summary.push_back("zero-shot top-1 over " + std::to_string(zs.size()) + " split(s): " +
                      format_number("%.2f", m.mean) + " +- " + format_number("%.2f", m.std));
  }
  if (protocol == "fewshot") result["shots"] = cfg.integer("TEST.SHOTS");
  std::vector<std::string> group_table;
  const bool repeated = std::any_of(groups.begin(), groups.end(), [](const auto& g) { return g.second.size() > 1; });
  if (repeated) {
    result["groups"] = json::array();
    for (const auto& [name, reports] : groups) group_table.push_back(group_row(name, reports, result["groups"]));
  }

  const std::string json_path = out + "/eval_" + protocol + ".json";
  write_json(json_path, result);
  std::string scores_path;
  if (save_scores) {
    scores_path = out + "/scores_" + protocol + ".json";
    json sj;
    sj["protocol"] = protocol;
    sj["reverse_frames"] = reversed;
    sj["aggregation"] = "sum of per-view class probabilities (STDD under mean_prob: softmax of the sum of per-view logits)";
    sj["lists"] = score_lists;
    write_json(scores_path, sj);
  }
  for (const char* curve : {"/loss.svg", "/accuracy.svg"}) {
    for (const auto& w : weights) {
      const std::string p = std::filesystem::path(w).parent_path().string() + curve;
      if (vc::data::path_exists(p)) pictures.push_back(p);
    }
  }

  std::cout << "eval " << protocol << " (" << cfg.integer("TEST.NUM_CLIP") << " clip(s) x "
            << cfg.integer("TEST.NUM_CROP") << " crop(s), probabilities summed over views"
            << (reversed ? ", frames reversed in time" : "") << "), accuracy in %:\n"
            << table_header(families, reversed) << "\n";
  for (const auto& row : table) std::cout << row << "\n";
  for (const auto& s : summary) std::cout << s << "\n";
  if (repeated) {
    std::cout << "mean +- std (population) over the runs of the same name:\n" << group_header(families) << "\n";
    for (const auto& row : group_table) std::cout << row << "\n";
  }
  if (families) std::cout << kWithinPairDefinition << "\n" << kBPairDefinition << "\n";
  if (families && reversed) std::cout << kReversalFlipDefinition << "\n";
  std::cout << "results: " << json_path << "\n";
  if (!scores_path.empty()) std::cout << "scores: " << scores_path << "\n";
  for (const auto& p : pictures) std::cout << "picture: " << p << "\n";
  log.info("eval " + protocol + ": results in " + json_path);
  return 0;
}

}  // namespace verbclip
