// The video apps: the evaluation arithmetic on fixed scores (apps/common/metrics.h), then
// `verbclip train` -> `eval` -> `predict` end to end on a tiny generated Fashion-Motion, exact
// resume, the errors a user can cause, checkpoint averaging (TRAIN.AVERAGE_EPOCHS) and
// `eval --reverse-frames`.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/common/metrics.h"
#include "apps/common/run_log.h"
#include "apps/common/video_run.h"
#include "models/clip/weights.h"
#include "models/registry.h"
#include "nn/safetensors.h"
#include "tests/apps/run_verbclip.h"

using namespace verbclip;
namespace fs = std::filesystem;

namespace {

using testing::RunResult;

RunResult run_vc(const std::vector<std::string>& args) { return testing::run_verbclip(args); }

void check_one_clear_error(const RunResult& r, const std::string& must_contain) {
  CAPTURE(r.output);
  CHECK(r.code != 0);
  CHECK(r.output.find(must_contain) != std::string::npos);
  std::istringstream in(r.output);
  std::string line;
  int errors = 0;
  while (std::getline(in, line)) errors += line.find("error") != std::string::npos;
  CHECK(errors == 1);
}

// A tiny Fashion-Motion (6 classes: C pairs 0<->1, 2<->3, B "standing still", A "lying on its
// side") and a tiny pretrained CLIP, made once for every test case of this file.
struct Fixture {
  fs::path dir;
  std::string data, clip;
  bool ok = false;
  Fixture() {
    dir = fs::temp_directory_path() / ("verbclip-video-apps-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    data = (dir / "fm").string();
    RunResult g = run_vc({"make-data", "--out", data, "--classes", "0,1,2,3,11,12", "--train-per-class", "4",
                            "--val-per-class", "1", "--test-per-class", "2", "--captions", "80", "--threads", "2",
                            "--quiet"});
    if (g.code != 0) {
      MESSAGE(g.output);
      return;
    }
    RunResult p = run_vc({"pretrain-clip", "--data", data, "--out", (dir / "clip").string(), "--steps", "2",
                            "--batch-size", "16", "--zero-shot-images", "0", "--quiet", "--opts",
                            "MODEL.VISION_WIDTH", "64", "MODEL.VISION_LAYERS", "3", "MODEL.TEXT_WIDTH", "64",
                            "MODEL.TEXT_LAYERS", "1", "MODEL.EMBED_DIM", "32", "MODEL.PATCH_SIZE", "8"});
    if (p.code != 0) {
      MESSAGE(p.output);
      return;
    }
    clip = (dir / "clip" / "clip.safetensors").string();
    write_b2n_splits();
    ok = true;
  }
  ~Fixture() { fs::remove_all(dir); }
  // make-data writes base-to-novel splits only for all 18 classes: split the 6 kept here
  // into base (even ids) and novel (odd ids) from test.txt, each list relabelled.
  void write_b2n_splits() const {
    std::ifstream labels(data + "/labels.csv"), test(data + "/test.txt");
    std::ofstream base_l(data + "/splits/b2n_base_labels.csv"), novel_l(data + "/splits/b2n_novel_labels.csv");
    std::ofstream base_v(data + "/splits/b2n_val_base.txt"), novel_v(data + "/splits/b2n_val_novel.txt");
    std::string line;
    std::getline(labels, line);  // header
    base_l << "id,name\n", novel_l << "id,name\n";
    for (int id = 0; std::getline(labels, line); ++id) {
      const std::string name = line.substr(line.find(',') + 1);
      (id % 2 ? novel_l : base_l) << id / 2 << "," << name << "\n";
    }
    std::string video;
    int frames = 0, label = 0;
    while (test >> video >> frames >> label) (label % 2 ? novel_v : base_v) << video << " " << frames << " " << label / 2 << "\n";
  }
  std::string config(const std::string& model) const {
    return std::string(VERBCLIP_SOURCE_DIR) + "/models/configs/fm_tiny_" + model + ".yaml";
  }
  // train arguments for a few quick steps.
  std::vector<std::string> train_args(const std::string& model, const std::string& out) const {
    return {"train", "--config", config(model), "--output", out, "--quiet", "--opts", "DATA.ROOT", data,
            "MODEL.PRETRAINED", clip, "TRAIN.BATCH_SIZE", "4", "TRAIN.EPOCHS", "1", "TRAIN.MAX_STEPS", "4",
            "TRAIN.ACCUMULATION_STEPS", "2", "TRAIN.CLIP_GRAD", "1.0", "MODEL.PROMPTS_PER_STEP", "2",
            "TEST.BATCH_SIZE", "8"};
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

ScoreMatrix matrix(int64_t rows, int64_t classes, std::vector<double> v) { return {rows, classes, std::move(v)}; }

}  // namespace

TEST_CASE("video-apps: every shipped config loads and its model options parse") {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(VERBCLIP_SOURCE_DIR) + "/models/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    CAPTURE(entry.path().string());
    verbclip::Config cfg = verbclip::video_config_defaults();
    cfg.load_yaml_file(entry.path().string());
    const std::string name = cfg.str("MODEL.NAME");
    vc::models::KeyValues kv = verbclip::model_options(cfg, name);
    // The options are checked against the tiny preset (building ViT-B/16 here would only be slow).
    CHECK_NOTHROW(vc::models::create_model(name, vc::clip::ClipConfig::preset("tiny"), kv));
    ++checked;
  }
  CHECK(checked >= 6);
}

TEST_CASE("video-apps: metric arithmetic on fixed scores") {
  // Multi-view: two videos x two views, probabilities summed per video.
  ScoreMatrix views = matrix(4, 3, {0.6, 0.3, 0.1,  0.2, 0.7, 0.1,  0.1, 0.1, 0.8,  0.5, 0.2, 0.3});
  ScoreMatrix s = sum_views(views, 2);
  REQUIRE(s.rows == 2);
  CHECK(s.at(0, 0) == doctest::Approx(0.8));
  CHECK(s.at(0, 1) == doctest::Approx(1.0));  // the sum flips video 0 to class 1
  CHECK(s.at(1, 2) == doctest::Approx(1.1));
  CHECK(predictions(s) == std::vector<int64_t>{1, 2});
  CHECK_THROWS(sum_views(views, 3));

  // Softmax rows sum to one and keep the order.
  ScoreMatrix p = softmax_rows(matrix(1, 3, {1, 2, 3}));
  CHECK(p.at(0, 0) + p.at(0, 1) + p.at(0, 2) == doctest::Approx(1.0));
  CHECK(p.at(0, 2) == doctest::Approx(std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0))));

  // Top-1 / top-5 / mean class accuracy (mmaction2's rule: a class only predicted counts 0).
  ScoreMatrix t = matrix(4, 6, {9, 1, 0, 0, 0, 0,   // label 0 -> 0 ok
                                 1, 0, 9, 0, 0, 0,   // label 1 -> 2 wrong (rank 6 of 1? no: rank 2)
                                 0, 0, 9, 1, 0, 0,   // label 2 -> 2 ok
                                 0, 0, 0, 0, 0, 9}); // label 3 -> 5 wrong, score 0 ties: rank by id
  Accuracy a = accuracy(t, {0, 1, 2, 3}, 5);
  CHECK(a.top1 == doctest::Approx(50.0));
  CHECK(a.top5 == doctest::Approx(100.0));  // label 3 is in the top 5 (ties keep the lower id first)
  // classes 0..3 are labels, 5 only predicted: recalls 1, 0, 1, 0, 0 -> 40%.
  CHECK(a.mean_class == doctest::Approx(40.0));
  CHECK(a.confusion[1][2] == 1);
  Accuracy a1 = accuracy(t, {0, 1, 2, 3}, 1);
  CHECK(a1.top5 == doctest::Approx(a1.top1));

  // Per family and within pair: classes 0<->1 are a pair, 2 has none.
  ScoreMatrix w = matrix(4, 3, {0.5, 0.4, 0.9,   // label 0: wrong top-1 (class 2) but right within pair
                                 0.6, 0.3, 0.1,   // label 1: wrong within pair
                                 0.2, 0.2, 0.6,   // label 2: no pair
                                 0.3, 0.3, 0.4}); // label 1: tie within the pair counts wrong
  const std::vector<int64_t> labels = {0, 1, 2, 1};
  int64_t n = 0;
  CHECK(within_pair_accuracy(w, labels, {1, 0, -1}, &n) == doctest::Approx(100.0 / 3));
  CHECK(n == 3);
  CHECK(group_accuracy(w, labels, {"C", "C", "A"}, "C", &n) == doctest::Approx(0.0));
  CHECK(n == 3);
  CHECK(group_accuracy(w, labels, {"C", "C", "A"}, "A") == doctest::Approx(100.0));
  CHECK(std::isnan(group_accuracy(w, labels, {"C", "C", "A"}, "D")));
  CHECK(std::isnan(within_pair_accuracy(w, labels, {-1, -1, -1})));

  // Base-to-novel harmonic mean and mean +- population std.
  CHECK(harmonic_mean(80, 40) == doctest::Approx(2 * 80.0 * 40 / 120));
  CHECK(harmonic_mean(0, 0) == 0.0);
  MeanStd m = mean_std({1, 2, 3, 4});
  CHECK(m.mean == doctest::Approx(2.5));
  CHECK(m.std == doctest::Approx(std::sqrt(1.25)));  // np.std, not the sample std

  // Fashion-Motion families and pairs are found by class name, whatever the ids.
  FamilyInfo f = fashion_motion_families({"moving right", "standing still", "moving left", "growing"});
  CHECK(f.is_fashion_motion);
  CHECK(f.family_of == std::vector<std::string>{"C", "B", "C", "C"});
  CHECK(f.pair_of == std::vector<int64_t>{2, -1, 0, -1});  // shrinking is not in the set
  CHECK_FALSE(fashion_motion_families({"moving left", "juggling"}).is_fashion_motion);
}

TEST_CASE("video-apps: train, eval and predict end to end") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string out = (fx.dir / "claver").string();
  RunResult t = run_vc(fx.train_args("claver", out));
  CAPTURE(t.output);
  REQUIRE(t.code == 0);
  for (const char* f : {"config.yaml", "log.txt", "log.jsonl", "checkpoint_last.safetensors",
                        "checkpoint_best.safetensors", "loss.svg", "accuracy.svg"})
    CHECK(fs::exists(fs::path(out) / f));
  // The resolved config is in the output folder and in the checkpoint.
  std::ifstream cfg(out + "/config.yaml");
  std::string cfg_text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
  CHECK(cfg_text.find("claver") != std::string::npos);
  vc::nn::SafetensorsFile ck(out + "/checkpoint_last.safetensors");
  CHECK(ck.metadata().at("config") == cfg_text);
  CHECK(ck.metadata().at("step") == "4");

  RunResult e = run_vc({"eval", "--weights", out + "/checkpoint_best.safetensors", "--quiet", "--opts",
                          "TEST.NUM_CLIP", "2", "TEST.NUM_CROP", "3"});
  CAPTURE(e.output);
  REQUIRE(e.code == 0);
  CHECK(e.output.find("within-pair") != std::string::npos);
  std::ifstream js(out + "/eval_supervised.json");
  nlohmann::json j = nlohmann::json::parse(js);
  const auto& test = j["runs"][0]["test"];
  CHECK(test["videos"] == 12);
  CHECK(test["views"] == 6);
  CHECK(test["families"].contains("A"));
  CHECK(test["families"].contains("B"));
  CHECK(test["families"].contains("C"));
  CHECK(test["within_pair_videos"] == 8);
  CHECK(fs::exists(out + "/confusion_supervised.svg"));
  CHECK(fs::exists(out + "/attention.png"));
  // B-pair needs both of family B's classes; this list keeps only "standing still".
  CHECK(!test.contains("b_pair"));

  // Runs of the same name (a model over seeds) get a mean +- std row: the same checkpoint twice
  // gives its own numbers with std 0, per column.
  RunResult g = run_vc({"eval", "--weights", out + "/checkpoint_best.safetensors", "--weights",
                        out + "/checkpoint_best.safetensors", "--output", (fx.dir / "groups").string(),
                        "--no-pictures", "--quiet"});
  CAPTURE(g.output);
  REQUIRE(g.code == 0);
  CHECK(g.output.find("mean +- std (population) over the runs of the same name") != std::string::npos);
  std::ifstream gs((fx.dir / "groups" / "eval_supervised.json").string());
  nlohmann::json gj = nlohmann::json::parse(gs);
  REQUIRE(gj["groups"].size() == 1);
  const auto& grp = gj["groups"][0];
  CHECK(grp["runs"] == 2);
  const auto& one = gj["runs"][0]["test"];
  CHECK(grp["top1"]["mean"].get<double>() == doctest::Approx(one["top1"].get<double>()));
  CHECK(grp["top1"]["std"].get<double>() == 0.0);
  CHECK(grp["within_pair"]["mean"].get<double>() == doctest::Approx(one["within_pair_C"].get<double>()));
  CHECK(grp["family_A"]["mean"].get<double>() == doctest::Approx(one["families"]["A"]["top1"].get<double>()));
  CHECK(!grp.contains("b_pair"));  // no B-pair in the runs, none in their mean

  // Base-to-novel and zero-shot protocols run on the same data (their lists are generated
  // for the 6 classes kept).
  RunResult z = run_vc({"eval", "--weights", out + "/checkpoint_best.safetensors", "--protocol", "b2n",
                          "--no-pictures", "--quiet"});
  CAPTURE(z.output);
  CHECK(z.code == 0);
  CHECK(z.output.find("HM") != std::string::npos);
  std::ifstream bj(out + "/eval_b2n.json");
  nlohmann::json b2n = nlohmann::json::parse(bj);
  const double base = b2n["base_mean"], novel = b2n["novel_mean"];
  CHECK(b2n["hm"].get<double>() == doctest::Approx(harmonic_mean(base, novel)));
  CHECK(b2n["runs"][0]["base"]["classes"] == 3);
  // Zero-shot: mean +- std over the splits given (the same list twice: std 0).
  RunResult zs = run_vc({"eval", "--weights", out + "/checkpoint_best.safetensors", "--protocol", "zeroshot",
                         "--no-pictures", "--quiet", "--opts", "DATA.ZS_TEST_FILES", "test.txt,test.txt",
                         "DATA.ZS_TEST_LABELS", "labels.csv"});
  CAPTURE(zs.output);
  CHECK(zs.code == 0);
  std::ifstream zj(out + "/eval_zeroshot.json");
  nlohmann::json zsj = nlohmann::json::parse(zj);
  CHECK(zsj["zeroshot_top1_std"].get<double>() == 0.0);
  CHECK(zsj["runs"][0]["splits"].size() == 2);

  // Predict with user-given names and a template.
  const std::string labels = (fx.dir / "my_labels.txt").string();
  std::ofstream(labels) << "moving left\nmoving right\nstanding still\n";
  std::string video_dir;
  for (const auto& d : fs::directory_iterator(fx.data + "/rawframes")) {
    video_dir = d.path().string();
    break;
  }
  RunResult p = run_vc({"predict", "--weights", out + "/checkpoint_best.safetensors", "--labels", labels,
                          "--frames", video_dir, "--template", "a clip of an item {}.", "--topk", "2", "--json",
                          "--attention", (fx.dir / "att.png").string()});
  CAPTURE(p.output);
  REQUIRE(p.code == 0);
  nlohmann::json pj = nlohmann::json::parse(p.output);
  REQUIRE(pj["top"].size() == 2);
  CHECK(pj["top"][0]["probability"].get<double>() >= pj["top"][1]["probability"].get<double>());
  CHECK(fs::exists(fx.dir / "att.png"));
}

TEST_CASE("video-apps: STDD trains, evaluates under all four protocols, reverses frames and predicts") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string out = (fx.dir / "stdd").string();
  RunResult t = run_vc(fx.train_args("stdd", out));
  CAPTURE(t.output);
  REQUIRE(t.code == 0);
  // The distillation's cosine to the frozen CLIP is logged with the loss.
  std::ifstream lj(out + "/log.jsonl");
  bool logged_kd = false;
  for (std::string line; std::getline(lj, line);)
    if (line.find("\"event\":\"train\"") != std::string::npos && line.find("\"kd_cosine\"") != std::string::npos) logged_kd = true;
  CHECK(logged_kd);
  const std::string w = out + "/checkpoint_best.safetensors";
  for (const char* protocol : {"supervised", "fewshot", "b2n", "zeroshot"}) {
    CAPTURE(protocol);
    std::vector<std::string> args = {"eval", "--weights", w, "--protocol", protocol, "--no-pictures", "--quiet"};
    if (std::string(protocol) == "zeroshot")
      args.insert(args.end(), {"--opts", "DATA.ZS_TEST_FILES", "test.txt", "DATA.ZS_TEST_LABELS", "labels.csv"});
    RunResult e = run_vc(args);
    CAPTURE(e.output);
    CHECK(e.code == 0);
    CHECK(fs::exists(out + "/eval_" + protocol + ".json"));
  }
  RunResult r = run_vc({"eval", "--weights", w, "--reverse-frames", "--noun-zero-shot", "20", "--no-pictures",
                        "--quiet", "--output", out + "/reversed"});
  CAPTURE(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("rev-flip C") != std::string::npos);
  CHECK(r.output.find("noun zero-shot") != std::string::npos);
  std::ifstream rj(out + "/reversed/eval_supervised.json");
  nlohmann::json rev = nlohmann::json::parse(rj);
  CHECK(rev["runs"][0]["test"].contains("reversal_flip"));
  CHECK(rev["runs"][0]["noun_zero_shot"]["images"] == 20);

  const std::string labels = (fx.dir / "stdd_labels.txt").string();
  std::ofstream(labels) << "moving left\nmoving right\n";
  std::string video_dir = fs::directory_iterator(fx.data + "/rawframes")->path().string();
  RunResult p = run_vc({"predict", "--weights", w, "--labels", labels, "--frames", video_dir, "--json"});
  CAPTURE(p.output);
  REQUIRE(p.code == 0);
  const nlohmann::json top = nlohmann::json::parse(p.output)["top"];
  REQUIRE(top.size() == 2);
  // STDD scores are logits: predict shows them as probabilities over the given classes.
  const double p0 = top[0]["probability"], p1 = top[1]["probability"];
  CHECK(p0 >= p1);
  CHECK(p1 >= 0.0);
  CHECK(p0 + p1 == doctest::Approx(1.0).epsilon(1e-5));
  // The saved per-video scores are probabilities too (one softmax after summing the views).
  RunResult sv = run_vc({"eval", "--weights", w, "--save-scores", "--no-pictures", "--quiet", "--output",
                         out + "/scores", "--opts", "TEST.NUM_CLIP", "2"});
  REQUIRE(sv.code == 0);
  std::ifstream sj(out + "/scores/scores_supervised.json");
  const nlohmann::json scores = nlohmann::json::parse(sj);
  const auto row = scores["lists"][0]["scores"][0].get<std::vector<double>>();
  double total = 0;
  for (double v : row) {
    CHECK(v >= 0.0);
    total += v;
  }
  CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("video-apps: --resume continues bitwise (4 steps == 2 + resume + 2)") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string a = (fx.dir / "straight").string(), b = (fx.dir / "resumed").string();
  auto args = fx.train_args("claver", a);
  REQUIRE(run_vc(args).code == 0);
  auto half = fx.train_args("claver", b);
  half.insert(half.begin() + 1, {"--stop-at", "2"});
  RunResult h = run_vc(half);
  CAPTURE(h.output);
  REQUIRE(h.code == 0);
  CHECK(vc::nn::SafetensorsFile(b + "/checkpoint_last.safetensors").metadata().at("step") == "2");
  RunResult res = run_vc({"train", "--output", b, "--resume", "--quiet"});
  CAPTURE(res.output);
  REQUIRE(res.code == 0);
  vc::nn::SafetensorsFile fa(a + "/checkpoint_last.safetensors"), fb(b + "/checkpoint_last.safetensors");
  REQUIRE(fa.names() == fb.names());
  int compared = 0;
  for (const auto& name : fa.names()) {
    CAPTURE(name);
    auto ta = fa.load(name), tb = fb.load(name);
    if (ta.dtype() != vc::DType::F32) continue;
    CHECK(ta.to_vector<float>() == tb.to_vector<float>());
    ++compared;
  }
  CHECK(compared > 10);
  // The test can fail: a run with another seed ends elsewhere.
  auto other = fx.train_args("claver", (fx.dir / "other").string());
  other.insert(other.end(), {"SEED", "7"});
  REQUIRE(run_vc(other).code == 0);
  vc::nn::SafetensorsFile fo((fx.dir / "other" / "checkpoint_last.safetensors").string());
  bool differs = false;
  for (const auto& name : fa.names())
    if (name.rfind("model.", 0) == 0 && fa.load(name).dtype() == vc::DType::F32 &&
        fa.load(name).to_vector<float>() != fo.load(name).to_vector<float>())
      differs = true;
  CHECK(differs);
}

TEST_CASE("video-apps: user errors give one clear message and a non-zero exit") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  // Unknown config key (in --opts).
  auto args = fx.train_args("baseline", (fx.dir / "bad").string());
  args.insert(args.end(), {"TRAIN.LEARNING_RATE", "1"});
  check_one_clear_error(run_vc(args), "TRAIN.LEARNING_RATE");
  // An option the chosen model does not have.
  args = fx.train_args("baseline", (fx.dir / "bad2").string());
  args.insert(args.end(), {"MODEL.MASK", "kmcta"});
  check_one_clear_error(run_vc(args), "MODEL.MASK");
  // Missing weights.
  check_one_clear_error(run_vc({"eval", "--weights", (fx.dir / "nope.safetensors").string()}), "nope.safetensors");
  check_one_clear_error(run_vc({"predict", "--weights", (fx.dir / "nope.safetensors").string(), "--labels", "x",
                                  "--frames", "y"}),
                        "nope.safetensors");
  // CLIP weights are not a train checkpoint.
  check_one_clear_error(run_vc({"eval", "--weights", fx.clip}), "not a `verbclip train` checkpoint");
  // A bad labels file (duplicate names) for predict, with a real checkpoint.
  const std::string out = (fx.dir / "for-errors").string();
  REQUIRE(run_vc(fx.train_args("baseline", out)).code == 0);
  const std::string labels = (fx.dir / "dup_labels.txt").string();
  std::ofstream(labels) << "moving left\nmoving left\n";
  check_one_clear_error(run_vc({"predict", "--weights", out + "/checkpoint_last.safetensors", "--labels", labels,
                                  "--frames", fx.data + "/rawframes"}),
                        "dup_labels.txt");
  // A template without {}.
  std::ofstream(labels) << "moving left\nmoving right\n";
  check_one_clear_error(run_vc({"predict", "--weights", out + "/checkpoint_last.safetensors", "--labels", labels,
                                  "--template", "a video", "--frames", fx.data + "/rawframes"}),
                        "--template");
}

// ---------------------------------------------------------------- checkpoint averaging

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// 3 epochs of 3 steps (24 training videos, batches of 8), averaging the last `n`.
std::vector<std::string> averaging_args(const Fixture& fx, const std::string& out, const std::string& n) {
  auto a = fx.train_args("baseline", out);
  a.insert(a.end(), {"TRAIN.MAX_STEPS", "0", "TRAIN.EPOCHS", "3", "TRAIN.BATCH_SIZE", "8",
                     "TRAIN.ACCUMULATION_STEPS", "1", "TRAIN.AVERAGE_EPOCHS", n});
  return a;
}

}  // namespace

TEST_CASE("video-apps: TRAIN.AVERAGE_EPOCHS averages the last epochs' weights, also across --resume") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string a = (fx.dir / "avg").string();
  RunResult t = run_vc(averaging_args(fx, a, "2"));
  CAPTURE(t.output);
  REQUIRE(t.code == 0);
  CHECK_FALSE(fs::exists(a + "/epoch_1.safetensors"));  // only the last 2 of 3 epochs
  REQUIRE(fs::exists(a + "/epoch_2.safetensors"));
  REQUIRE(fs::exists(a + "/epoch_3.safetensors"));
  REQUIRE(fs::exists(a + "/checkpoint_avg.safetensors"));

  // checkpoint_avg's model = the element-wise mean of the epoch files' tensors (computed here
  // in double from the files themselves).
  vc::nn::SafetensorsFile e2(a + "/epoch_2.safetensors"), e3(a + "/epoch_3.safetensors"),
      avg(a + "/checkpoint_avg.safetensors");
  CHECK(e2.metadata().at("step") == "6");
  CHECK(e3.metadata().at("step") == "9");
  int compared = 0, moved = 0;
  bool optimizer_state = false;
  for (const auto& name : avg.names()) {
    if (name.rfind("optimizer.", 0) == 0) optimizer_state = true;
    if (name.rfind("model.", 0) != 0 || avg.load(name).dtype() != vc::DType::F32) continue;
    CAPTURE(name);
    REQUIRE(e2.contains(name));
    REQUIRE(e3.contains(name));
    const auto x = e2.load(name).to_vector<float>(), y = e3.load(name).to_vector<float>(),
               m = avg.load(name).to_vector<float>();
    REQUIRE(x.size() == m.size());
    REQUIRE(y.size() == m.size());
    bool differs = false;
    for (size_t i = 0; i < m.size(); ++i) {
      const float want = float((double(x[i]) + double(y[i])) / 2.0);
      if (m[i] != want) {
        CHECK(m[i] == want);  // reports the first mismatch of this tensor only
        break;
      }
      differs = differs || x[i] != y[i];
    }
    moved += differs;
    ++compared;
  }
  CHECK(compared > 10);
  CHECK(moved > 0);  // the epochs differ, so the mean is neither of them
  CHECK(optimizer_state);  // a full train checkpoint, like checkpoint_best
  CHECK(avg.metadata().at("extra.averaged_epochs") == "2-3");
  CHECK(avg.metadata().at("step") == "9");
  // The log names the files and the averaged validation.
  const std::string text = read_text_file(a + "/log.txt");
  CHECK(text.find("val averaged (epochs 2-3): top-1") != std::string::npos);
  CHECK(text.find(a + "/epoch_2.safetensors, " + a + "/epoch_3.safetensors") != std::string::npos);
  bool event = false;
  for (const auto& j : read_jsonl_events(a + "/log.jsonl", "val_avg")) {
    event = true;
    CHECK(j["epochs"] == nlohmann::json::array({2, 3}));
    CHECK(j["files"].size() == 2);
    CHECK(j.contains("top1"));
  }
  CHECK(event);
  // eval takes it as it takes checkpoint_best.
  RunResult e = run_vc({"eval", "--weights", a + "/checkpoint_avg.safetensors", "--no-pictures", "--quiet",
                        "--output", (fx.dir / "avg-eval").string()});
  CAPTURE(e.output);
  CHECK(e.code == 0);

  // Stopped right after epoch 2 and resumed: epoch_2 comes from the first invocation, and the
  // average equals the straight run's bit for bit.
  const std::string b = (fx.dir / "avg-resumed").string();
  auto half = averaging_args(fx, b, "2");
  half.insert(half.begin() + 1, {"--stop-at", "6"});
  RunResult h = run_vc(half);
  CAPTURE(h.output);
  REQUIRE(h.code == 0);
  CHECK(fs::exists(b + "/epoch_2.safetensors"));
  CHECK_FALSE(fs::exists(b + "/epoch_3.safetensors"));
  CHECK_FALSE(fs::exists(b + "/checkpoint_avg.safetensors"));
  RunResult res = run_vc({"train", "--output", b, "--resume", "--quiet"});
  CAPTURE(res.output);
  REQUIRE(res.code == 0);
  CHECK(read_text_file(b + "/log.txt").find(b + "/epoch_2.safetensors (written before --resume)") != std::string::npos);
  vc::nn::SafetensorsFile rb(b + "/checkpoint_avg.safetensors");
  int same = 0;
  for (const auto& name : avg.names()) {
    if (name.rfind("model.", 0) != 0 || avg.load(name).dtype() != vc::DType::F32) continue;
    CAPTURE(name);
    REQUIRE(rb.contains(name));
    CHECK(avg.load(name).to_vector<float>() == rb.load(name).to_vector<float>());
    ++same;
  }
  CHECK(same == compared);
}

TEST_CASE("video-apps: an out-of-range TRAIN.AVERAGE_EPOCHS is an error naming the key") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  check_one_clear_error(run_vc(averaging_args(fx, (fx.dir / "avg-bad").string(), "4")), "TRAIN.AVERAGE_EPOCHS");
  check_one_clear_error(run_vc(averaging_args(fx, (fx.dir / "avg-bad2").string(), "-1")), "TRAIN.AVERAGE_EPOCHS");
  CHECK_FALSE(fs::exists(fx.dir / "avg-bad" / "checkpoint_last.safetensors"));
  // Resumed with a larger N, an epoch that has already ended left no weights: said at once.
  const std::string out = (fx.dir / "avg-grow").string();
  auto half = averaging_args(fx, out, "1");
  half.insert(half.begin() + 1, {"--stop-at", "6"});
  REQUIRE(run_vc(half).code == 0);
  check_one_clear_error(run_vc({"train", "--output", out, "--resume", "--quiet", "--opts", "TRAIN.AVERAGE_EPOCHS", "2"}),
                        out + "/epoch_2.safetensors");
  CHECK(vc::nn::SafetensorsFile(out + "/checkpoint_last.safetensors").metadata().at("step") == "6");  // no step taken
}

// ---------------------------------------------------------------- --reverse-frames

TEST_CASE("video-apps: reversal flip arithmetic on fixed scores") {
  // Classes 0<->1 are a pair, 2 has none.
  ScoreMatrix s = matrix(4, 3, {0.1, 0.8, 0.1,   // label 0 -> 1: flipped
                                0.5, 0.4, 0.1,   // label 1 -> 0: flipped
                                0.1, 0.1, 0.8,   // label 2: no pair, ignored
                                0.3, 0.3, 0.4}); // label 0 -> 2: not flipped
  int64_t n = 0;
  CHECK(reversal_flip_rate(s, {0, 1, 2, 0}, {1, 0, -1}, &n) == doctest::Approx(200.0 / 3));
  CHECK(n == 3);
  // A tie between the pair goes to the lower id (the stable ranking): label 1 -> 0 flipped,
  // label 0 -> 0 not.
  ScoreMatrix tie = matrix(2, 3, {0.4, 0.4, 0.2, 0.4, 0.4, 0.2});
  CHECK(reversal_flip_rate(tie, {1, 0}, {1, 0, -1}) == doctest::Approx(50.0));
  CHECK(std::isnan(reversal_flip_rate(s, {0, 1, 2, 0}, {-1, -1, -1})));
  CHECK_THROWS(reversal_flip_rate(s, {0, 1}, {1, 0, -1}));
}

namespace {

struct EvalOut {
  RunResult run;
  nlohmann::json eval, scores;
};

// `verbclip eval --save-scores` of one checkpoint into its own folder.
EvalOut eval_scores(const Fixture& fx, const std::string& weights, const std::string& name, bool reverse,
                    std::vector<std::string> opts = {}) {
  const std::string out = (fx.dir / name).string();
  std::vector<std::string> args = {"eval", "--weights", weights, "--no-pictures", "--quiet", "--save-scores",
                                   "--output", out};
  if (reverse) args.push_back("--reverse-frames");
  if (!opts.empty()) {
    args.push_back("--opts");
    args.insert(args.end(), opts.begin(), opts.end());
  }
  EvalOut r;
  r.run = run_vc(args);
  if (r.run.code == 0) {
    std::ifstream e(out + "/eval_supervised.json"), s(out + "/scores_supervised.json");
    r.eval = nlohmann::json::parse(e);
    r.scores = nlohmann::json::parse(s);
  }
  return r;
}

// A copy of the test list whose videos are the originals reversed in time: 17 frames, frame j
// (1-based file j+1) = original frame 16 - j for j >= 1 (frame 0 is never sampled). The test
// sampler takes frames int(i·a + a/2): with 16 frames 1, 3, .., 15; with 17 frames also
// 1, 3, .., 15, which here are the originals 15, 13, .., 1: exactly the forward clip reversed.
std::string write_time_reversed_copy(const Fixture& fx) {
  std::ifstream test(fx.data + "/test.txt");
  std::ofstream list(fx.data + "/test_reversed.txt");
  std::string video;
  int frames = 0, label = 0;
  while (test >> video >> frames >> label) {
    REQUIRE(frames == 16);
    const fs::path src = fs::path(fx.data) / "rawframes" / video, dst = fs::path(fx.data) / "rawframes" / ("rev_" + video);
    fs::create_directories(dst);
    auto name = [](int i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "img_%05d.jpg", i);
      return std::string(buf);
    };
    for (int j = 0; j <= 16; ++j)
      fs::copy_file(src / name(j == 0 ? 16 : 17 - j), dst / name(j + 1), fs::copy_options::overwrite_existing);
    list << "rev_" << video << " 17 " << label << "\n";
  }
  return "test_reversed.txt";
}

}  // namespace

TEST_CASE("video-apps: eval --reverse-frames") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  // The baseline pools frames by their mean: reversing them changes no score.
  const std::string base = (fx.dir / "rev-baseline").string();
  REQUIRE(run_vc(fx.train_args("baseline", base)).code == 0);
  const std::string w = base + "/checkpoint_last.safetensors";
  EvalOut fwd = eval_scores(fx, w, "rev-baseline-fwd", false), rev = eval_scores(fx, w, "rev-baseline-rev", true);
  CAPTURE(fwd.run.output);
  CAPTURE(rev.run.output);
  REQUIRE(fwd.run.code == 0);
  REQUIRE(rev.run.code == 0);
  const auto& ft = fwd.eval["runs"][0]["test"];
  const auto& rt = rev.eval["runs"][0]["test"];
  for (const char* k : {"videos", "top1", "top5", "mean_class_accuracy", "families", "within_pair_C"}) {
    CAPTURE(k);
    CHECK(ft[k] == rt[k]);
  }
  const auto& fs_ = fwd.scores["lists"][0];
  const auto& rs = rev.scores["lists"][0];
  CHECK(fs_["labels"] == rs["labels"]);
  CHECK(fs_["scores"].size() == 12);
  CHECK(fs_["scores"] == rs["scores"]);  // exactly
  CHECK(rev.eval["reverse_frames"] == true);
  CHECK(fwd.eval["reverse_frames"] == false);
  CHECK_FALSE(ft.contains("reversal_flip"));
  REQUIRE(rt.contains("reversal_flip"));
  CHECK(rt["reversal_flip_videos"] == 8);
  CHECK(rev.run.output.find("rev-flip C") != std::string::npos);
  CHECK(fwd.run.output.find("rev-flip C") == std::string::npos);
  // The flip, recounted from the saved scores: family-C clips whose top-1 is the pair class.
  const FamilyInfo fam = fashion_motion_families(rs["classes"].get<std::vector<std::string>>());
  int64_t n = 0, flipped = 0;
  for (size_t i = 0; i < rs["labels"].size(); ++i) {
    const int64_t y = rs["labels"][i], p = fam.pair_of[size_t(y)];
    if (p < 0) continue;
    const auto row = rs["scores"][i].get<std::vector<double>>();
    const int64_t top = int64_t(std::max_element(row.begin(), row.end()) - row.begin());  // first maximum
    ++n, flipped += top == p;
  }
  CHECK(n == 8);
  CHECK(rt["reversal_flip"].get<double>() == doctest::Approx(100.0 * double(flipped) / double(n)));

  // CLAVER reads frame order. Reversing in eval = evaluating a copy of the clips reversed on
  // disk, bit for bit, and differs from the forward scores (so the reversal does happen).
  const std::string cl = (fx.dir / "rev-claver").string();
  REQUIRE(run_vc(fx.train_args("claver", cl)).code == 0);
  const std::string cw = cl + "/checkpoint_last.safetensors";
  const std::string reversed_list = write_time_reversed_copy(fx);
  EvalOut cf = eval_scores(fx, cw, "rev-claver-fwd", false), cr = eval_scores(fx, cw, "rev-claver-rev", true),
          cd = eval_scores(fx, cw, "rev-claver-disk", false, {"DATA.TEST_FILE", reversed_list});
  CAPTURE(cd.run.output);
  REQUIRE(cf.run.code == 0);
  REQUIRE(cr.run.code == 0);
  REQUIRE(cd.run.code == 0);
  CHECK(cr.scores["lists"][0]["scores"] == cd.scores["lists"][0]["scores"]);
  CHECK(cr.scores["lists"][0]["labels"] == cd.scores["lists"][0]["labels"]);
  CHECK(cf.scores["lists"][0]["scores"] != cr.scores["lists"][0]["scores"]);
}

TEST_CASE("video-apps: ALT trains with the dataset's corpus, evaluates under all four protocols and shows its picks") {
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string out = (fx.dir / "alt").string();
  RunResult t = run_vc(fx.train_args("alt", out));
  CAPTURE(t.output);
  REQUIRE(t.code == 0);
  const std::string w = out + "/checkpoint_best.safetensors";
  for (const char* protocol : {"supervised", "fewshot", "b2n", "zeroshot"}) {
    CAPTURE(protocol);
    std::vector<std::string> args = {"eval", "--weights", w, "--protocol", protocol, "--no-pictures", "--quiet"};
    if (std::string(protocol) == "zeroshot")
      args.insert(args.end(), {"--opts", "DATA.ZS_TEST_FILES", "test.txt", "DATA.ZS_TEST_LABELS", "labels.csv"});
    RunResult e = run_vc(args);
    CAPTURE(e.output);
    CHECK(e.code == 0);
    CHECK(fs::exists(out + "/eval_" + protocol + ".json"));
  }
  // predict names the picked corpus entities per frame and draws the merged tokens.
  const std::string video_dir = fs::directory_iterator(fx.data + "/rawframes")->path().string();
  RunResult p = run_vc({"predict", "--weights", w, "--labels", fx.data + "/labels.csv", "--frames", video_dir,
                        "--merge-map", (fx.dir / "merge.png").string()});
  CAPTURE(p.output);
  REQUIRE(p.code == 0);
  CHECK(p.output.find("entities picked") != std::string::npos);
  CHECK(p.output.find("frame 8:") != std::string::npos);
  CHECK(fs::exists(fx.dir / "merge.png"));
  // A corpus file that is missing or malformed is named.
  std::vector<std::string> bad = fx.train_args("alt", out + "_bad");
  bad.insert(bad.end(), {"TEXT.CORPUS", "no_such_corpus.tsv"});
  RunResult b = run_vc(bad);
  CHECK(b.code != 0);
  CHECK(b.output.find("no_such_corpus.tsv") != std::string::npos);
  // --merge-map on a model without merging is an error naming the model.
  const fs::path other = fx.dir / "stdd" / "checkpoint_best.safetensors";
  if (fs::exists(other)) {
    RunResult s = run_vc({"predict", "--weights", other.string(), "--labels", fx.data + "/labels.csv", "--frames",
                          video_dir, "--merge-map", (fx.dir / "m2.png").string()});
    CHECK(s.code != 0);
    CHECK(s.output.find("ALT checkpoint") != std::string::npos);
  }
}
