// The checkpoints of a training run in its output folder:
//   <out>/checkpoint_last.safetensors   every save (resume reads it)
//   <out>/checkpoint_best.safetensors   when the watched metric improved
// Both are nn checkpoints (model, optimizer, schedule, step, epoch, RNG, config YAML and
// extras), each written to a temporary file and renamed.
#pragma once
#include <string>

#include "nn/checkpoint.h"

namespace verbclip {

class RunCheckpoints {
 public:
  explicit RunCheckpoints(std::string out_dir) : dir_(std::move(out_dir)) {}
  std::string last_path() const { return dir_ + "/checkpoint_last.safetensors"; }
  std::string best_path() const { return dir_ + "/checkpoint_best.safetensors"; }
  bool has_last() const;

  void save_last(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                 const vc::nn::CosineSchedule& schedule, const vc::nn::TrainingState& state) const;
  void save_best(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                 const vc::nn::CosineSchedule& schedule, const vc::nn::TrainingState& state) const;
  // Restores everything from the last checkpoint; the error says when there is none.
  vc::nn::TrainingState resume(vc::nn::Module& model, vc::nn::Optimizer& opt,
                               vc::nn::CosineSchedule& schedule) const;
  // The config YAML stored in the last checkpoint (to rebuild the run before resume()).
  std::string last_config() const;

 private:
  std::string dir_;
};

}  // namespace verbclip
