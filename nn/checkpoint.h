// Training checkpoints: one safetensors file. Tensors: "model.<name>" (the state dict) and
// "optimizer.<param>.<slot>"; metadata: step, epoch, the RNG state (Generator seed and next
// stream), the run's config text, the optimizer's and the schedule's settings as JSON, and
// any extra strings. Written to a temporary file and renamed.
//
// Resuming restores every bit a CPU run depends on, so N steps == N/2 steps + save + load
// + N/2 steps exactly (tests/nn/test_checkpoint.cpp).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/ops/random.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/schedule.h"

namespace vc::nn {

struct TrainingState {
  int64_t step = 0;
  int64_t epoch = 0;
  Generator rng;       // the run's generator: seed and next stream
  std::string config;  // the run's config (YAML text), stored as is
  std::map<std::string, std::string> extra;  // e.g. best accuracy
};

// `optimizer` and `schedule` may be null (e.g. a weights-only checkpoint).
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const CosineSchedule* schedule, const TrainingState& state);

// Loads into existing objects built the same way (the optimizer's groups must hold the same
// parameter names). The model load is strict. A null optimizer or schedule skips that part;
// a non-null one that the file lacks is an error.
TrainingState load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer,
                              CosineSchedule* schedule);

// The model's state dict alone ("model." stripped), e.g. for averaging or evaluation.
StateDict load_checkpoint_model(const std::string& path);

// ---- weight averaging ----
// (1 - alpha) a + alpha b for every float tensor (TC-CLIP's weight-space ensembling); other
// tensors must be equal and are copied. Keys, shapes and dtypes must match (named on error).
StateDict interpolate(const StateDict& a, const StateDict& b, double alpha);
// The element-wise mean of several state dicts (STDD averages epochs' checkpoints), summed
// in float64 in the given order.
StateDict average(const std::vector<StateDict>& dicts);
// average() of the model state dicts of checkpoint files.
StateDict average_checkpoints(const std::vector<std::string>& paths);

}  // namespace vc::nn
