// Video models by name, for the apps: `create_model("claver", clip_config, {{"mask", "kmcta"}})`.
//
// Options are flat lower-case key/value strings. In the apps' YAML they are the "MODEL.*" keys
// upper-cased (MODEL.MASK: kmcta -> mask = kmcta); MODEL.NAME, MODEL.ARCH and MODEL.PRETRAINED
// pick the model, the CLIP preset and the CLIP weights and are not model options (see
// models/configs/README.md). An unknown key or a bad value throws, naming it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/video_model.h"

namespace vc::models {

// "baseline", "claver".
std::vector<std::string> model_names();

// A model with zero weights: follow with init_from_clip, init_random or load_state_dict.
std::shared_ptr<VideoModel> create_model(const std::string& name, const clip::ClipConfig& config,
                                         const KeyValues& options = {});

// Every option of a model with its default (as text) and a help line, for the apps to
// declare as "MODEL.<KEY>" config keys.
struct OptionDoc {
  std::string key, default_value, help;
};
std::vector<OptionDoc> model_option_docs(const std::string& name);

// The model options in a flat config: keys under `prefix` (matched case-insensitively),
// lower-cased, without the prefix, minus `skip` (lower-case names).
KeyValues model_options_of(const KeyValues& config, const std::string& prefix = "MODEL.",
                           const std::vector<std::string>& skip = {"name", "arch", "pretrained"});

}  // namespace vc::models
