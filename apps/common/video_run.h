// What the video apps (train, eval, predict) share: their config keys, the model built from
// CLIP weights or from a train checkpoint, the prompts, the datasets, and scoring a loader.
//
// A train checkpoint is self-contained: besides the nn checkpoint (model, optimizer, schedule,
// step, RNG, the run's config YAML) its extras hold the CLIP config ("clip_config", JSON),
// the tokenizer description ("tokenizer") and the model's registry name ("model"), so eval
// and predict rebuild the model from the checkpoint alone.
#pragma once
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/common/config.h"
#include "apps/common/metrics.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/dist/communicator.h"
#include "models/registry.h"
#include "models/video_model.h"

namespace verbclip {

// Every key the video apps read, with defaults (models/configs/README.md documents them).
Config video_config_defaults();

// Reads a --config file (and its BASE files) into `cfg`; unknown keys are errors.
// The MODEL.* options of the chosen model; a MODEL.<KEY> that was set but that the model
// does not have is an error naming it and the model.
vc::models::KeyValues model_options(const Config& cfg, const std::string& model_name);

// DATA.ROOT-relative paths (absolute ones stay); empty stays empty.
std::string data_path(const Config& cfg, const std::string& key);

// Templates ("{}" = class name, one per line) and interpretive sentences (JSON: class name ->
// {kind: [sentences]} or [sentences]), for these class names. Errors name the file and class.
// With TEXT.ASKG set (STDD): the knowledge-graph prompts of models/stdd.h instead.
vc::models::PromptSet load_prompts(const Config& cfg, const std::vector<std::string>& class_names);
// The clauses of an ASKG file (models/configs/README.md), per class: xprompt_oo, xprompt_ao,
// xprompt_aa in that order. Errors name the file, the class and the key.
std::vector<std::vector<std::string>> load_askg_clauses(const std::string& path,
                                                        const std::vector<std::string>& class_names);

// Dataset options for DATA.* / AUG.* / TEST.*: Fashion-Motion's pipeline (frames under
// <root>/rawframes) with the config's frames, input size, flip, colour augmentation and
// test views (multi_view false: one centre view, as per-epoch validation).
vc::data::DatasetOptions dataset_options(const Config& cfg, int64_t num_classes, bool multi_view);

// A video model with its tokenizer.
struct VideoSetup {
  std::shared_ptr<vc::models::VideoModel> model;
  std::unique_ptr<vc::clip::TextTokenizer> tokenizer;
  std::string tokenizer_description;
  vc::clip::ClipConfig clip_config;
  std::vector<std::string> notes;  // what was assumed (print them)
};

// For training: MODEL.PRETRAINED's CLIP weights (tokenizer from their metadata) and
// init_from_clip; with no weights, a randomly initialised MODEL.ARCH CLIP and the dataset's
// word vocabulary (<root>/text/vocab.txt), said in `notes`.
VideoSetup build_model_for_training(const Config& cfg, vc::Generator& gen);

// The checkpoint's extras a VideoSetup needs, and writing them.
void add_setup_extras(const VideoSetup& s, std::map<std::string, std::string>& extra);

// For eval / predict: reads the train checkpoint `path` (errors say when it is not one),
// puts its config into `cfg` (then the caller applies its own file / --opts), builds the model
// it records and loads its weights strictly.
struct CheckpointInfo {
  std::string config_yaml;
  std::map<std::string, std::string> extra;
  int64_t step = 0, epoch = 0;
};
CheckpointInfo read_checkpoint_info(const std::string& path);
VideoSetup load_trained_model(const std::string& path, const Config& cfg);

// Scores every video of `loader` (eval mode, no grad): the model's inference score per view
// (probabilities for mean_prob; softmax of the sum of log-probabilities for sum_log_prob),
// summed over each video's views. labels receives the videos' labels in order.
ScoreMatrix score_videos(const vc::models::VideoModel& model, vc::data::Loader& loader,
                         const vc::Tensor& class_features, std::vector<int64_t>& labels,
                         bool show_progress, const std::string& label);

// Fashion-Motion's families and time-reversal pairs for a label set (matched by class name;
// classes not in Fashion-Motion get family "" and no pair). is_fashion_motion is true when
// every name is a Fashion-Motion class.
struct FamilyInfo {
  std::vector<std::string> family_of;  // "A".."D" or ""
  std::vector<int64_t> pair_of;        // -1 when none (or the partner is not in the set)
  std::vector<int64_t> b_pair_of;      // family B: flickering <-> standing still, else -1
  bool is_fashion_motion = false;
};
FamilyInfo fashion_motion_families(const std::vector<std::string>& class_names);

std::string format_number(const char* fmt, double v);

}  // namespace verbclip

namespace verbclip {

// One list evaluated: scores, labels and every metric (Fashion-Motion families when the
// class names are Fashion-Motion's).
struct EvalReport {
  std::string list;
  std::vector<std::string> class_names;
  int64_t views = 1;
  ScoreMatrix scores;            // [N, K], summed over views
  std::vector<int64_t> labels;   // [N]
  Accuracy acc;
  FamilyInfo families;
  std::map<std::string, double> family_accuracy;  // "A".."D" present in the labels
  std::map<std::string, int64_t> family_videos;
  double within_pair = NAN;      // family C, see metrics.h
  int64_t pair_videos = 0;
  double b_pair = NAN;           // family B: score(own class) > score(the other B class)
  int64_t b_pair_videos = 0;
};

// Prompts for `class_names` (TEXT.*), the list's dataset (multi_view: TEST.NUM_CLIP x
// TEST.NUM_CROP views, else one centre view), scores and metrics.
// comm with several ranks (data-parallel training): rank r scores videos r, r+W, ... and the
// rows are gathered, so every rank returns the whole report.
EvalReport evaluate_list(const vc::models::VideoModel& model, const vc::clip::TextTokenizer& tokenizer,
                         const Config& cfg, const std::string& list_path,
                         const std::vector<std::string>& class_names, bool multi_view, bool show_progress,
                         vc::dist::Communicator* comm = nullptr);

// The metrics as JSON (percentages), and a one-line summary.
nlohmann::ordered_json report_json(const EvalReport& r);
std::string report_line(const EvalReport& r);

// The definition printed next to within-pair numbers.
extern const char* const kWithinPairDefinition;
extern const char* const kBPairDefinition;  // family B's pair, the same rule

}  // namespace verbclip
