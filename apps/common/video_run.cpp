#include "apps/common/video_run.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/common/clip_weights.h"
#include "apps/common/run_log.h"
#include "data/fashion_motion.h"
#include "data/util.h"
#include "models/alt.h"
#include "models/stdd.h"
#include "engine/engine.h"
#include "nn/checkpoint.h"
#include "nn/faults.h"
#include "nn/safetensors.h"

namespace verbclip {

namespace models = vc::models;
namespace clip = vc::clip;
using vc::Tensor;

std::string format_number(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

namespace {

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Default text of every model option over all models ("mask" -> "kmta").
const std::map<std::string, std::string>& all_option_defaults() {
  static const std::map<std::string, std::string> d = [] {
    std::map<std::string, std::string> m;
    for (const auto& name : models::model_names())
      for (const auto& doc : models::model_option_docs(name)) m.emplace(doc.key, doc.default_value);
    return m;
  }();
  return d;
}

std::string read_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  VC_CHECK(in.good(), what, " '", path, "' cannot be read (missing file?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Config video_config_defaults() {
  Config c;
  c.declare("MODEL.NAME", "baseline", "video model: baseline | claver | stdd");
  c.declare("MODEL.ARCH", "tiny", "CLIP preset, used only without MODEL.PRETRAINED (random CLIP)");
  c.declare("MODEL.PRETRAINED", "", "CLIP weights (safetensors, e.g. from `verbclip pretrain-clip`); empty: random CLIP");
  // Every model's options as MODEL.<KEY> (a key the chosen model lacks must stay at its default).
  std::map<std::string, std::string> seen;
  for (const auto& name : models::model_names())
    for (const auto& doc : models::model_option_docs(name)) {
      if (seen.count(doc.key)) continue;
      seen[doc.key] = name;
      c.declare("MODEL." + upper(doc.key), doc.default_value, doc.help + " (" + name + ")");
    }

  c.declare("DATA.ROOT", "", "dataset folder (Fashion-Motion: written by `verbclip make-data`)");
  c.declare("DATA.PIPELINE", "fashion_motion", "fashion_motion (frames in <root>/rawframes, 40->32 crops) | xclip (224 crops)");
  c.declare("DATA.TRAIN_FILE", "train.txt", "training list (relative to DATA.ROOT)");
  c.declare("DATA.VAL_FILE", "val.txt", "validation list (evaluation during training)");
  c.declare("DATA.TEST_FILE", "test.txt", "test list (eval --protocol supervised / fewshot)");
  c.declare("DATA.LABEL_LIST", "labels.csv", "class names (csv id,name / json / one per line)");
  c.declare("DATA.NUM_FRAMES", "8", "T frames per clip (TSN segments)");
  c.declare("DATA.INPUT_SIZE", "32", "crop side; must equal the CLIP's image size");
  c.declare("DATA.FLIP", "false", "random horizontal flip (never for direction classes)");
  c.declare("DATA.NUM_WORKERS", "1", "loader threads that decode batches ahead");
  c.declare("DATA.DECODE_THREADS", "1", "FFmpeg threads per loader thread for video files (total <= NUM_WORKERS x this)");
  c.declare("DATA.B2N_BASE_LABELS", "splits/b2n_base_labels.csv", "base-to-novel: base class names");
  c.declare("DATA.B2N_NOVEL_LABELS", "splits/b2n_novel_labels.csv", "base-to-novel: novel class names");
  c.declare("DATA.B2N_VAL_BASE", "splits/b2n_val_base.txt", "base-to-novel: base test list (labels index the base csv)");
  c.declare("DATA.B2N_VAL_NOVEL", "splits/b2n_val_novel.txt", "base-to-novel: novel test list (labels index the novel csv)");
  c.declare("DATA.ZS_TEST_FILES", "splits/zeroshot_test.txt", "zero-shot: test lists (comma-separated; mean +- std over them)");
  c.declare("DATA.ZS_TEST_LABELS", "splits/zeroshot_test_labels.csv", "zero-shot: class names of the test lists");

  c.declare("TEXT.TEMPLATES", "text/templates.txt", "prompt templates, one per line, {} = class name (relative to DATA.ROOT)");
  c.declare("TEXT.INTERPRETIVE", "text/interpretive.json", "class -> sentences (JSON); empty: templates only");
  c.declare("TEXT.CORPUS", "text/corpus.tsv", "ALT: entity corpus, lines '<group>\\t<entity>\\t<description>' (models/alt.h)");
  c.declare("TEXT.ASKG", "", "STDD: class -> knowledge-graph clauses (JSON, xprompt_oo/ao/aa); replaces TEXT.INTERPRETIVE");

  c.declare("TRAIN.EPOCHS", "4", "passes over the training list");
  c.declare("TRAIN.MAX_STEPS", "0", "stop the schedule after this many optimizer steps (0: EPOCHS decide)");
  c.declare("TRAIN.WARMUP_EPOCHS", "0.2", "linear warmup from 0, in epochs (may be fractional)");
  c.declare("TRAIN.BATCH_SIZE", "32", "clips per micro-batch");
  c.declare("TRAIN.ACCUMULATION_STEPS", "1", "micro-batches per optimizer step");
  c.declare("TRAIN.DDP_REDUCE", "micro_step",
            "under mpirun: sum the ranks' gradients after every micro-step (micro_step: bitwise the one-process "
            "run with ranks x ACCUMULATION_STEPS) or once per optimizer step (step: ACCUMULATION_STEPS times less "
            "traffic, equal within rounding)");
  c.declare("TRAIN.LR", "1e-4", "learning rate of the encoders (new modules: x MODEL.NEW_LR_MULT)");
  c.declare("TRAIN.MIN_LR", "1e-6", "cosine floor");
  c.declare("TRAIN.WEIGHT_DECAY", "0.001", "AdamW decoupled weight decay (not on rank <= 1 tensors, biases, positional embeddings)");
  c.declare("TRAIN.BETA1", "0.9", "AdamW beta1");
  c.declare("TRAIN.BETA2", "0.98", "AdamW beta2");
  c.declare("TRAIN.EPS", "1e-8", "AdamW epsilon");
  c.declare("TRAIN.CLIP_GRAD", "0", "gradient norm clipping (0: off)");
  c.declare("TRAIN.AVERAGE_EPOCHS", "0", "average the weights of the last N epochs into checkpoint_avg (STDD; 0: off)");

  c.declare("AUG.LABEL_SMOOTH", "0.1", "label smoothing epsilon");
  c.declare("AUG.MIXUP", "0", "mixup alpha (0: off)");
  c.declare("AUG.CUTMIX", "0", "cutmix alpha (0: off)");
  c.declare("AUG.MIXUP_SWITCH_PROB", "0.5", "cutmix instead of mixup with this probability when both are on");
  c.declare("AUG.COLOR_JITTER", "0", "colour jitter probability per clip");
  c.declare("AUG.GRAY_SCALE", "0", "grayscale probability per clip");

  c.declare("TEST.NUM_CLIP", "1", "temporal views at test (eval)");
  c.declare("TEST.NUM_CROP", "1", "spatial views at test: 1 (centre) or 3");
  c.declare("TEST.EVAL_EVERY", "1", "train: validate every N epochs (0: only at the end)");
  c.declare("TEST.BATCH_SIZE", "32", "videos per evaluation batch");
  c.declare("TEST.PROTOCOL", "supervised", "eval protocol: supervised | fewshot | b2n | zeroshot");
  c.declare("TEST.SHOTS", "0", "fewshot: K videos per class the model was trained with (reported)");

  c.declare("SEED", "1", "seed of the initialisation, data order, augmentation");
  c.declare("OUTPUT", "", "output folder");
  c.declare("PRINT_FREQ", "10", "log (and, off a terminal, print) every N optimizer steps");
  c.declare("SAVE_FREQ", "0", "also save checkpoint_last every N steps (0: each epoch's end)");
  return c;
}

models::KeyValues model_options(const Config& cfg, const std::string& model_name) {
  std::map<std::string, std::string> own;
  for (const auto& doc : models::model_option_docs(model_name)) own[doc.key] = doc.default_value;
  models::KeyValues kv;
  for (const auto& key : cfg.keys()) {
    if (key.rfind("MODEL.", 0) != 0) continue;
    const std::string k = lower(key.substr(6));
    if (k == "name" || k == "arch" || k == "pretrained") continue;
    if (own.count(k)) {
      kv[k] = cfg.str(key);
      continue;
    }
    auto d = all_option_defaults().find(k);
    if (d != all_option_defaults().end() && cfg.str(key) != d->second)
      vc::fail("config ", key, " = '", cfg.str(key), "' (from ", cfg.source(key), ") is not an option of model '",
               model_name, "'");
  }
  return kv;
}

std::string data_path(const Config& cfg, const std::string& key) {
  const std::string p = cfg.str(key);
  if (p.empty() || p[0] == '/') return p;
  return vc::data::join_path(cfg.str("DATA.ROOT"), p);
}

std::vector<std::vector<std::string>> load_askg_clauses(const std::string& path,
                                                        const std::vector<std::string>& class_names) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_text(path, "TEXT.ASKG"));
  } catch (const nlohmann::json::exception& e) {
    vc::fail("TEXT.ASKG '", path, "' is not valid JSON: ", e.what());
  }
  VC_CHECK(j.is_object(), "TEXT.ASKG '", path, "' must map class names to knowledge-graph entries");
  std::vector<std::vector<std::string>> out;
  for (const auto& name : class_names) {
    VC_CHECK(j.contains(name) && j[name].is_object(), "TEXT.ASKG '", path, "' has no entry for class '", name, "'");
    std::vector<std::string> clauses;
    int64_t found = 0;
    for (const char* kind : {"xprompt_oo", "xprompt_ao", "xprompt_aa"}) {  // static, then temporal
      if (!j[name].contains(kind)) continue;
      ++found;
      const auto& arr = j[name][kind];
      VC_CHECK(arr.is_array(), "TEXT.ASKG '", path, "': class '", name, "' key ", kind, " must be a list of clauses");
      for (const auto& x : arr) {
        VC_CHECK(x.is_string(), "TEXT.ASKG '", path, "': class '", name, "' key ", kind, " holds a non-string");
        clauses.push_back(x.get<std::string>());
      }
    }
    VC_CHECK(found > 0, "TEXT.ASKG '", path, "': class '", name, "' has none of xprompt_oo, xprompt_ao, xprompt_aa");
    out.push_back(std::move(clauses));
  }
  return out;
}

models::PromptSet load_prompts(const Config& cfg, const std::vector<std::string>& class_names) {
  const std::string tpath = data_path(cfg, "TEXT.TEMPLATES");
  std::vector<std::string> templates;
  if (tpath.empty()) {
    templates = {"{}"};
  } else {
    std::istringstream in(read_text(tpath, "TEXT.TEMPLATES"));
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      VC_CHECK(line.find("{}") != std::string::npos, "TEXT.TEMPLATES '", tpath, "': template '", line,
               "' has no {} for the class name");
      templates.push_back(line);
    }
    VC_CHECK(!templates.empty(), "TEXT.TEMPLATES '", tpath, "' holds no template");
  }
  const std::string apath = data_path(cfg, "TEXT.ASKG");
  if (!apath.empty()) {
    VC_CHECK(data_path(cfg, "TEXT.INTERPRETIVE").empty(), "config sets both TEXT.ASKG ('", apath,
             "') and TEXT.INTERPRETIVE ('", data_path(cfg, "TEXT.INTERPRETIVE"),
             "'): the ASKG prompts replace the interpretive ones, set TEXT.INTERPRETIVE: \"\"");
    return models::make_askg_prompts(class_names, templates, load_askg_clauses(apath, class_names));
  }
  std::vector<std::vector<std::string>> sentences;
  const std::string ipath = data_path(cfg, "TEXT.INTERPRETIVE");
  if (!ipath.empty()) {
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(read_text(ipath, "TEXT.INTERPRETIVE"));
    } catch (const nlohmann::json::exception& e) {
      vc::fail("TEXT.INTERPRETIVE '", ipath, "' is not valid JSON: ", e.what());
    }
    for (const auto& name : class_names) {
      VC_CHECK(j.contains(name), "TEXT.INTERPRETIVE '", ipath, "' has no sentences for class '", name, "'");
      std::vector<std::string> s;
      auto add = [&](const nlohmann::ordered_json& arr) {
        VC_CHECK(arr.is_array(), "TEXT.INTERPRETIVE '", ipath, "': class '", name, "' must map to lists of sentences");
        for (const auto& x : arr) s.push_back(x.get<std::string>());
      };
      if (j[name].is_object())
        for (const auto& [kind, arr] : j[name].items()) add(arr);
      else
        add(j[name]);
      sentences.push_back(std::move(s));
    }
  }
  return models::make_prompts(class_names, templates, sentences);
}

vc::data::DatasetOptions dataset_options(const Config& cfg, int64_t num_classes, bool multi_view) {
  const std::string root = cfg.str("DATA.ROOT");
  const std::string pipeline = cfg.str("DATA.PIPELINE");
  vc::data::DatasetOptions o;
  if (pipeline == "fashion_motion") {
    o = vc::data::DatasetOptions::fashion_motion(root);
  } else if (pipeline == "xclip") {
    o.root = root;
    o.transform = vc::data::TransformOptions::xclip(cfg.integer("DATA.INPUT_SIZE"));
  } else {
    vc::fail("config DATA.PIPELINE = '", pipeline, "': expected fashion_motion or xclip");
  }
  o.sampler.num_segments = cfg.integer("DATA.NUM_FRAMES");
  o.decode_threads = int(cfg.integer("DATA.DECODE_THREADS"));
  VC_CHECK(o.decode_threads >= 1, "config DATA.DECODE_THREADS = ", o.decode_threads, ": expected at least 1");
  o.transform.input_size = cfg.integer("DATA.INPUT_SIZE");
  o.transform.flip_prob = cfg.boolean("DATA.FLIP") ? 0.5 : 0.0;
  o.transform.jitter_prob = cfg.number("AUG.COLOR_JITTER");
  o.transform.gray_prob = cfg.number("AUG.GRAY_SCALE");
  const int64_t crops = cfg.integer("TEST.NUM_CROP"), clips = cfg.integer("TEST.NUM_CLIP");
  VC_CHECK(crops == 1 || crops == 3, "config TEST.NUM_CROP = ", crops, ": expected 1 or 3");
  VC_CHECK(clips >= 1, "config TEST.NUM_CLIP = ", clips, ": expected at least 1");
  o.test_clips = multi_view ? clips : 1;
  o.transform.test_crop = multi_view && crops == 3 ? vc::data::TestCrop::Three : vc::data::TestCrop::Center;
  o.num_classes = num_classes;
  return o;
}

namespace {

void check_shapes(const Config& cfg, const clip::ClipConfig& cc, const models::VideoModel& m) {
  VC_CHECK(cc.image_size == cfg.integer("DATA.INPUT_SIZE"), "config DATA.INPUT_SIZE = ", cfg.integer("DATA.INPUT_SIZE"),
           " but the CLIP takes ", cc.image_size, "x", cc.image_size, " images");
  VC_CHECK(m.options().num_frames == cfg.integer("DATA.NUM_FRAMES"), "config DATA.NUM_FRAMES = ",
           cfg.integer("DATA.NUM_FRAMES"), " but MODEL.NUM_FRAMES = ", m.options().num_frames, " (they must be equal)");
}

}  // namespace

VideoSetup build_model_for_training(const Config& cfg, vc::Generator& gen) {
  VideoSetup s;
  const std::string name = cfg.str("MODEL.NAME");
  models::KeyValues opts = model_options(cfg, name);
  // ALT: the entity corpus (TEXT.CORPUS); MODEL.CORPUS_SIZE 0 takes its size from the file.
  std::vector<models::CorpusEntry> corpus;
  if (name == "alt" && models::AltOptions::parse(opts).queries == models::AltOptions::Queries::Corpus) {
    const std::string path = data_path(cfg, "TEXT.CORPUS");
    VC_CHECK(!path.empty(), "MODEL.NAME alt with MODEL.QUERIES corpus needs TEXT.CORPUS");
    VC_CHECK(vc::data::path_exists(path), "TEXT.CORPUS: corpus file '", path, "' does not exist");
    corpus = models::parse_corpus(vc::data::read_file_bytes(path, "corpus"), path);
    if (models::AltOptions::parse(opts).corpus_size == 0) opts["corpus_size"] = std::to_string(corpus.size());
  }
  const std::string weights = cfg.str("MODEL.PRETRAINED");
  if (!weights.empty()) {
    VC_CHECK(vc::data::path_exists(weights), "MODEL.PRETRAINED: CLIP weights '", weights, "' do not exist");
    LoadedClip lc = load_clip_weights(weights);
    s.tokenizer = tokenizer_for(lc);
    s.tokenizer_description = s.tokenizer->describe();
    s.clip_config = lc.config;
    s.notes = lc.notes;
    s.model = models::create_model(name, lc.config, opts);
    s.model->init_from_clip(to_clip_dict(lc.model->state_dict()), gen);
  } else {
    const std::string vocab = vc::data::join_path(cfg.str("DATA.ROOT"), "text/vocab.txt");
    VC_CHECK(vc::data::path_exists(vocab), "no MODEL.PRETRAINED and no vocabulary '", vocab,
             "' for a random CLIP's tokenizer");
    s.tokenizer = clip::WordTokenizer::from_file(vocab);
    s.tokenizer_description = s.tokenizer->describe();
    s.clip_config = clip::ClipConfig::preset(cfg.str("MODEL.ARCH"));
    s.clip_config.vocab_size = s.tokenizer->vocab_size();
    s.notes.push_back("no MODEL.PRETRAINED: the " + cfg.str("MODEL.ARCH") +
                      " CLIP starts from random weights, with the dataset's vocabulary " + vocab);
    s.model = models::create_model(name, s.clip_config, opts);
    s.model->init_random(gen);
  }
  check_shapes(cfg, s.clip_config, *s.model);
  // ALT: the frozen corpus S, encoded once by the text tower; a checkpoint carries it after.
  if (!corpus.empty()) {
    auto& alt = dynamic_cast<models::AltModel&>(*s.model);
    models::PromptSet entities;
    for (const auto& e : corpus) entities.texts.push_back({e.text()});
    alt.set_corpus(alt.tokenize(entities, *s.tokenizer).select(0, 0));
  }
  return s;
}

void add_setup_extras(const VideoSetup& s, std::map<std::string, std::string>& extra) {
  extra["model"] = s.model->name();
  extra["clip_config"] = config_to_json(s.clip_config);
  extra["tokenizer"] = s.tokenizer_description;
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  VC_CHECK(vc::data::path_exists(path), "weights '", path, "' do not exist");
  vc::nn::SafetensorsFile f(path);
  const auto& meta = f.metadata();
  CheckpointInfo info;
  auto get = [&](const std::string& k) -> std::string {
    auto it = meta.find(k);
    return it == meta.end() ? std::string() : it->second;
  };
  VC_CHECK(!get("extra.model").empty() && !get("extra.clip_config").empty(), "weights '", path,
           "' are not a `verbclip train` checkpoint (no model / CLIP config in the metadata)");
  info.config_yaml = get("config");
  for (const auto& [k, v] : meta)
    if (k.rfind("extra.", 0) == 0) info.extra[k.substr(6)] = v;
  if (!get("step").empty()) info.step = std::stoll(get("step"));
  if (!get("epoch").empty()) info.epoch = std::stoll(get("epoch"));
  return info;
}

VideoSetup load_trained_model(const std::string& path, const Config& cfg) {
  CheckpointInfo info = read_checkpoint_info(path);
  VideoSetup s;
  const std::string name = info.extra.at("model");
  VC_CHECK(cfg.str("MODEL.NAME") == name, "config MODEL.NAME = '", cfg.str("MODEL.NAME"), "' but the weights '",
           path, "' hold a '", name, "' model");
  s.clip_config = config_from_json(info.extra.at("clip_config"), path);
  s.tokenizer_description = info.extra["tokenizer"];
  VC_CHECK(!s.tokenizer_description.empty(), "weights '", path, "' do not record their tokenizer");
  s.tokenizer = clip::tokenizer_from_description(s.tokenizer_description, "");
  vc::nn::StateDict sd = vc::nn::load_checkpoint_model(path);
  models::KeyValues opts = model_options(cfg, name);
  // ALT with MODEL.CORPUS_SIZE 0 (taken from the file in training): the checkpoint's corpus.
  if (name == "alt" && models::AltOptions::parse(opts).corpus_size == 0 && sd.contains("corpus_features"))
    opts["corpus_size"] = std::to_string(sd.at("corpus_features").size(0));
  s.model = models::create_model(name, s.clip_config, opts);
  try {
    s.model->load_state_dict(sd, /*strict=*/true);
  } catch (const std::exception& e) {
    vc::fail("weights '", path, "' do not fit the configured model: ", e.what());
  }
  check_shapes(cfg, s.clip_config, *s.model);
  return s;
}

ScoreMatrix score_videos(const models::VideoModel& model, vc::data::Loader& loader, const Tensor& class_features,
                         std::vector<int64_t>& labels, bool show_progress, const std::string& label) {
  vc::NoGradGuard no_grad;
  const auto kind = model.score_kind();
  ScoreMatrix all;
  labels.clear();
  Progress progress(label, 10, !show_progress);
  loader.start_epoch(0);
  vc::data::Batch b;
  int64_t views = 1;
  while (loader.next(b)) {
    views = b.views;
    Tensor s = model.score(model.encode_video(b.video), class_features);  // [B·V, K]
    ScoreMatrix m{s.size(0), s.size(1), {}};
    for (float v : s.contiguous().to_vector<float>()) m.values.push_back(double(v));
    if (kind == models::VideoModel::ScoreKind::LogProbabilities) m = softmax_rows(m);  // per-view probabilities, then summed
    vc::nn::kill_point("eval_batch");    // fault tests (nn/faults.h)
    all.classes = m.classes;
    all.rows += m.rows;
    all.values.insert(all.values.end(), m.values.begin(), m.values.end());
    for (int64_t y : b.labels.to_vector<int64_t>()) labels.push_back(y);
    ProgressInfo p;
    p.step = b.index + 1, p.steps = loader.num_batches();
    progress.update(p, b.size());
  }
  progress.finish();
  // Logits (STDD): summed over views as its code does, then one softmax, so every saved score
  // is a probability.
  if (kind == models::VideoModel::ScoreKind::Logits) return softmax_rows(sum_views(all, views));
  return sum_views(all, views);
}

FamilyInfo fashion_motion_families(const std::vector<std::string>& names) {
  namespace fm = vc::data::fm;
  FamilyInfo f;
  f.family_of.assign(names.size(), "");
  f.pair_of.assign(names.size(), -1);
  f.b_pair_of.assign(names.size(), -1);
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < names.size(); ++i) index[names[i]] = int64_t(i);
  std::map<std::string, const fm::ClassInfo*> by_name;
  for (const auto& c : fm::classes()) by_name[c.name] = &c;
  f.is_fashion_motion = !names.empty();
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = by_name.find(names[i]);
    if (it == by_name.end()) {
      f.is_fashion_motion = false;
      continue;
    }
    const fm::ClassInfo& c = *it->second;
    f.family_of[i] = std::string(1, char('A' + int(c.family)));
    if (c.family == fm::Family::C) {
      // Pairs of family C are consecutive ids: 0<->1, 2<->3, ..., 8<->9.
      const std::string partner = fm::classes()[size_t(c.id ^ 1)].name;
      auto p = index.find(partner);
      if (p != index.end()) f.pair_of[i] = p->second;
    }
    if (c.family == fm::Family::B) {
      // Family B has two classes, flickering and standing still: each is the other's partner.
      for (const auto& other : fm::classes()) {
        if (other.family != fm::Family::B || other.id == c.id) continue;
        auto p = index.find(other.name);
        if (p != index.end()) f.b_pair_of[i] = p->second;
      }
    }
  }
  return f;
}

}  // namespace verbclip

namespace verbclip {

const char* const kWithinPairDefinition =
    "within-pair (family C): a clip of class c is correct iff score(c) > score(pair(c)), its time reversal "
    "(0<->1, 2<->3, 4<->5, 6<->7, 8<->9); chance = 50%";
const char* const kBPairDefinition =
    "B-pair (family B): a flickering clip is correct iff score(flickering) > score(standing still), and the "
    "reverse; chance = 50%; an order-blind frame average cannot separate them in expectation";

EvalReport evaluate_list(const models::VideoModel& model, const clip::TextTokenizer& tokenizer, const Config& cfg,
                         const std::string& list_path, const std::vector<std::string>& class_names, bool multi_view,
                         bool show_progress, vc::dist::Communicator* comm) {
  EvalReport r;
  r.list = list_path;
  r.class_names = class_names;
  const int64_t K = int64_t(class_names.size());
  vc::data::ListOptions lo;
  lo.num_classes = K;
  vc::data::VideoDataset ds = vc::data::VideoDataset::from_list(list_path, dataset_options(cfg, K, multi_view), lo);
  VC_CHECK(ds.size() > 0, "list '", list_path, "' holds no videos");
  r.views = ds.num_views(false);
  vc::data::LoaderOptions o;
  o.batch_size = cfg.integer("TEST.BATCH_SIZE");
  o.workers = int(cfg.integer("DATA.NUM_WORKERS"));
  o.train = false;
  o.seed = uint64_t(cfg.integer("SEED"));
  const int W = comm ? comm->size() : 1;
  if (W > 1) o.rank = comm->rank(), o.world_size = W;  // videos r, r+W, ... on rank r
  vc::data::Loader loader(ds, o);
  Tensor class_features;
  {
    vc::NoGradGuard no_grad;
    class_features = model.class_features(model.tokenize(load_prompts(cfg, class_names), tokenizer));
  }
  r.scores = score_videos(model, loader, class_features, r.labels, show_progress && (!comm || comm->rank() == 0), "eval");
  if (W > 1) {
    // Every rank's rows (scores, labels) back into the list's order, on every rank.
    std::string mine;
    for (int64_t i = 0; i < r.scores.rows; ++i) {
      mine.append(reinterpret_cast<const char*>(&r.labels[size_t(i)]), sizeof(int64_t));
      mine.append(reinterpret_cast<const char*>(&r.scores.values[size_t(i * r.scores.classes)]),
                  size_t(r.scores.classes) * sizeof(double));
    }
    const auto parts = comm->allgather(mine);
    const int64_t N = ds.size(), row = int64_t(sizeof(int64_t) + size_t(K) * sizeof(double));
    ScoreMatrix all{N, K, std::vector<double>(size_t(N * K))};
    std::vector<int64_t> labels(static_cast<size_t>(N));
    for (int64_t p = 0; p < N; ++p) {
      const std::string& part = parts[size_t(p % W)];
      const int64_t local = p / W;
      VC_CHECK(int64_t(part.size()) >= (local + 1) * row, "eval: rank ", p % W, " sent too few scores for '",
               list_path, "'");
      const char* src = part.data() + local * row;
      std::memcpy(&labels[size_t(p)], src, sizeof(int64_t));
      std::memcpy(&all.values[size_t(p * K)], src + sizeof(int64_t), size_t(K) * sizeof(double));
    }
    r.scores = std::move(all);
    r.labels = std::move(labels);
  }
  r.acc = accuracy(r.scores, r.labels, 5);
  r.families = fashion_motion_families(class_names);
  if (r.families.is_fashion_motion) {
    for (const char* f : {"A", "B", "C", "D"}) {
      int64_t n = 0;
      double a = group_accuracy(r.scores, r.labels, r.families.family_of, f, &n);
      if (n > 0) r.family_accuracy[f] = a, r.family_videos[f] = n;
    }
    r.within_pair = within_pair_accuracy(r.scores, r.labels, r.families.pair_of, &r.pair_videos);
    r.b_pair = within_pair_accuracy(r.scores, r.labels, r.families.b_pair_of, &r.b_pair_videos);
  }
  return r;
}

nlohmann::ordered_json report_json(const EvalReport& r) {
  nlohmann::ordered_json j;
  j["list"] = r.list;
  j["videos"] = r.acc.videos;
  j["classes"] = r.class_names.size();
  j["views"] = r.views;
  j["top1"] = r.acc.top1;
  j["top5"] = r.acc.top5;
  j["mean_class_accuracy"] = r.acc.mean_class;
  if (r.families.is_fashion_motion) {
    nlohmann::ordered_json fam;
    for (const auto& [f, a] : r.family_accuracy) fam[f] = {{"top1", a}, {"videos", r.family_videos.at(f)}};
    j["families"] = fam;
    if (r.pair_videos > 0) {
      j["within_pair_C"] = r.within_pair;
      j["within_pair_videos"] = r.pair_videos;
      j["within_pair_definition"] = kWithinPairDefinition;
    }
    if (r.b_pair_videos > 0) {
      j["b_pair"] = r.b_pair;
      j["b_pair_videos"] = r.b_pair_videos;
      j["b_pair_definition"] = kBPairDefinition;
    }
  }
  return j;
}

std::string report_line(const EvalReport& r) {
  std::string s = "top-1 " + format_number("%.2f", r.acc.top1) + "  top-5 " + format_number("%.2f", r.acc.top5) +
                  "  mean class " + format_number("%.2f", r.acc.mean_class);
  for (const auto& [f, a] : r.family_accuracy) s += "  " + f + " " + format_number("%.1f", a);
  if (r.pair_videos > 0) s += "  within-pair C " + format_number("%.1f", r.within_pair);
  if (r.b_pair_videos > 0) s += "  B-pair " + format_number("%.1f", r.b_pair);
  return s + "  (" + std::to_string(r.acc.videos) + " videos x " + std::to_string(r.views) + " views)";
}

}  // namespace verbclip
