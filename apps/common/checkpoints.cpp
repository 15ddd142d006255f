#include "apps/common/checkpoints.h"

#include <filesystem>
#include <regex>

#include "nn/safetensors.h"

namespace verbclip {

bool RunCheckpoints::has_last() const { return std::filesystem::is_regular_file(last_path()); }

void RunCheckpoints::save_last(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                               const vc::nn::CosineSchedule& schedule,
                               const vc::nn::TrainingState& state) const {
  vc::nn::save_checkpoint(last_path(), model, &opt, &schedule, state);
}

void RunCheckpoints::save_best(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                               const vc::nn::CosineSchedule& schedule,
                               const vc::nn::TrainingState& state) const {
  vc::nn::save_checkpoint(best_path(), model, &opt, &schedule, state);
}

void RunCheckpoints::save_avg(const vc::nn::Module& model, const vc::nn::Optimizer& opt,
                              const vc::nn::CosineSchedule& schedule,
                              const vc::nn::TrainingState& state) const {
  vc::nn::save_checkpoint(avg_path(), model, &opt, &schedule, state);
}

void RunCheckpoints::save_epoch_weights(int64_t epoch, const vc::nn::Module& model,
                                        const vc::nn::TrainingState& state) const {
  vc::nn::save_checkpoint(epoch_path(epoch), model, nullptr, nullptr, state);
}

vc::nn::TrainingState RunCheckpoints::resume(vc::nn::Module& model, vc::nn::Optimizer& opt,
                                             vc::nn::CosineSchedule& schedule) const {
  VC_CHECK(has_last(), "cannot resume: no checkpoint '", last_path(), "'");
  return vc::nn::load_checkpoint(last_path(), model, &opt, &schedule);
}

int64_t RunCheckpoints::remove_temporaries() const {
  static const std::regex tmp_name(R"(.+\.tmp\.[0-9]+\.[0-9]+)");
  int64_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (!e.is_regular_file() || !std::regex_match(e.path().filename().string(), tmp_name)) continue;
    if (std::filesystem::remove(e.path(), ec)) ++n;
  }
  return n;
}

std::string RunCheckpoints::last_config() const {
  VC_CHECK(has_last(), "cannot resume: no checkpoint '", last_path(), "'");
  vc::nn::SafetensorsFile f(last_path());
  auto it = f.metadata().find("config");
  VC_CHECK(it != f.metadata().end(), "checkpoint '", last_path(), "' holds no config");
  return it->second;
}

}  // namespace verbclip
