// Learning-rate schedule: linear warmup, then cosine decay, by optimizer step (timm's
// CosineLRScheduler with t_in_epochs = False). A pure function of the step, so its whole
// state is its options.
#pragma once
#include <cstdint>
#include <string>

namespace vc::nn {

class Optimizer;

struct CosineScheduleOptions {
  double base_lr = 1e-3;
  double min_lr = 0.0;          // reached at total_steps, kept after
  double warmup_init_lr = 0.0;  // lr at step 0
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  // true: the cosine runs over [warmup_steps, total_steps] (timm warmup_prefix=True);
  // false: over [0, total_steps], as timm's default and X-CLIP / ViFi-CLIP / TC-CLIP use.
  bool warmup_prefix = true;
};

class CosineSchedule {
 public:
  explicit CosineSchedule(CosineScheduleOptions opts);
  //   step < warmup:  warmup_init + (base - warmup_init) * step / warmup
  //   else:           min + (base - min) * (1 + cos(pi * t / T)) / 2, t and T counted from
  //                   warmup_steps (warmup_prefix) or from 0; min once t >= T.
  double lr_at(int64_t step) const;
  // Sets the optimizer's lr for `step` (call before its step()).
  void apply(Optimizer& opt, int64_t step) const;
  const CosineScheduleOptions& options() const { return opts_; }
  std::string to_json() const;
  static CosineSchedule from_json(const std::string& json);

 private:
  CosineScheduleOptions opts_;
};

}  // namespace vc::nn
