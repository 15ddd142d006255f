// The checkpoints of a training run in its output folder:
//   <out>/checkpoint_last.safetensors   every save (resume reads it)
//   <out>/checkpoint_best.safetensors   when the watched metric improved
//   <out>/checkpoint_avg.safetensors    TRAIN.AVERAGE_EPOCHS > 0: the uniform mean of the last
//                                       epochs' weights (STDD's recipe), with the final
//                                       optimizer state, schedule, step and extras
//   <out>/epoch_<e>.safetensors         TRAIN.AVERAGE_EPOCHS > 0: the model's weights at the
//                                       end of epoch e (1-based), no optimizer or schedule
// All are nn checkpoints (model, optimizer, schedule, step, epoch, RNG, config YAML and
// extras; the epoch files without optimizer and schedule), each written to a temporary file
// and renamed.
#pragma once
#include <cstdint>
#include <string>

#include "nn/checkpoint.h"

namespace verbclip {

class RunCheckpoints {
 public:
  explicit RunCheckpoints(std::string out_dir) : dir_(std::move(out_dir)) {}
  std::string last_path() const { return dir_ + "/checkpoint_last.safetensors"; }
  std::string best_path() const { return dir_ + "/checkpoint_best.safetensors"; }
  std::string avg_path() const { return dir_ + "/checkpoint_avg.safetensors"; }
  std::string epoch_path(int64_t epoch) const { return dir_ + "/epoch_" + std::to_string(epoch) + ".safetensors"; }
  bool has_last() const;

  void save_last(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                 const vc::nn::CosineSchedule& schedule, const vc::nn::TrainingState& state) const;
  void save_best(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                 const vc::nn::CosineSchedule& schedule, const vc::nn::TrainingState& state) const;
  void save_avg(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                const vc::nn::CosineSchedule& schedule, const vc::nn::TrainingState& state) const;
  // The model's weights alone (and the state's step, epoch, RNG, config and extras) as
  // epoch_path(epoch); nn::average_checkpoints reads them.
  void save_epoch_weights(int64_t epoch, const vc::nn::Module& model, const vc::nn::TrainingState& state) const;
  // Restores everything from the last checkpoint; the error says when there is none.
  vc::nn::TrainingState resume(vc::nn::Module& model, vc::nn::Optimizer& opt,
                               vc::nn::CosineSchedule& schedule) const;
  // Removes the temporaries (<file>.tmp.<pid>.<n>) a killed save left in the folder; returns
  // how many. Call on resume, when no other process writes to the run.
  int64_t remove_temporaries() const;
  // The config YAML stored in the last checkpoint (to rebuild the run before resume()).
  std::string last_config() const;

 private:
  std::string dir_;
};

}  // namespace verbclip
