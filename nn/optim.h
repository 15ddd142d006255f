// Optimizers (AdamW, SGD with momentum), parameter groups, gradient clipping and
// accumulation. A step runs under NoGradGuard and updates each parameter's storage in place
// through the backend's optim kernels (engine/backend/kernels_optim.h): deterministic, and
// every tensor a model or a checkpoint holds stays the same object.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace vc::nn {

// Parameters trained with one learning-rate multiplier and one weight decay.
struct ParamGroup {
  std::string name;
  NamedTensors params;  // names must be unique across groups (state is keyed by them)
  double lr_mult = 1.0;
  double weight_decay = 0.0;
};

// Which parameters never get weight decay. The default: anything with fewer than 2 dims
// (biases, LayerNorm weights, class_embedding, logit_scale), names ending in ".bias", and
// any name containing "embedding" (token/positional/class embeddings) or "logit_scale".
using NoDecayRule = std::function<bool(const std::string& name, const Tensor& param)>;
bool default_no_decay(const std::string& name, const Tensor& param);

// Routes parameters whose name matches `pattern` (ECMAScript regex, searched) into a group
// with its own LR multiplier (e.g. 10 for new modules) and, optionally, weight decay.
struct GroupSpec {
  std::string name;
  std::string pattern;
  double lr_mult = 1.0;
  double weight_decay = -1;  // < 0: the default weight decay
};

// Groups every trainable parameter of `model`: the first spec that matches decides its group
// (none: group "default", multiplier 1); within each, parameters the rule exempts go into a
// "<name>.no_decay" group with weight decay 0. Empty groups are dropped.
std::vector<ParamGroup> make_param_groups(const Module& model, double weight_decay,
                                          const std::vector<GroupSpec>& specs = {},
                                          const NoDecayRule& no_decay = default_no_decay);

class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, double lr);
  virtual ~Optimizer() = default;
  virtual const char* type() const = 0;

  // One update of every parameter that has a gradient (with lr * group.lr_mult).
  void step();
  void zero_grad();
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  int64_t steps() const { return steps_; }  // step() calls so far
  const std::vector<ParamGroup>& groups() const { return groups_; }
  std::vector<ParamGroup>& groups() { return groups_; }

  // The per-parameter state, as tensors named "<param>.<slot>" (slots: "step" as an int64
  // scalar, then the optimizer's buffers), plus everything else as JSON: hyperparameters,
  // groups (name, lr multiplier, weight decay, parameter names), lr and step count.
  StateDict state_dict() const;
  std::string config_json() const;
  // Restores both; the groups must hold the same parameter names (checked, named on error).
  void load_state_dict(const StateDict& state, const std::string& config_json);

 protected:
  // Updates one parameter in place; `state` holds its slots (created by slot()).
  virtual void update(const std::string& name, const Tensor& param, const Tensor& grad,
                      double lr, double weight_decay, int64_t step) = 0;
  virtual std::vector<std::string> buffer_slots() const = 0;
  virtual std::string hparams_json() const = 0;
  virtual void set_hparams_json(const std::string& json) = 0;
  // The state tensor "<param>.<slot>", created as zeros like `like` on first use.
  Tensor slot(const std::string& param, const std::string& name, const Tensor& like);
  bool has_slot(const std::string& param, const std::string& name) const;

 private:
  std::vector<ParamGroup> groups_;
  double lr_;
  int64_t steps_ = 0;
  std::map<std::string, Tensor> state_;  // "<param>.<slot>"
  std::vector<std::string> order_;       // insertion order of state_, for state_dict()
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
};

// Decoupled weight decay (Loshchilov & Hutter): each group's weight_decay.
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions opts);
  const char* type() const override { return "AdamW"; }
  const AdamWOptions& options() const { return opts_; }

 protected:
  void update(const std::string& name, const Tensor& param, const Tensor& grad, double lr,
              double weight_decay, int64_t step) override;
  std::vector<std::string> buffer_slots() const override { return {"exp_avg", "exp_avg_sq"}; }
  std::string hparams_json() const override;
  void set_hparams_json(const std::string& json) override;

 private:
  AdamWOptions opts_;
};

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.9;
  double dampening = 0.0;
  bool nesterov = false;
};

// Weight decay here is PyTorch SGD's L2 term (added to the gradient).
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions opts);
  const char* type() const override { return "SGD"; }

 protected:
  void update(const std::string& name, const Tensor& param, const Tensor& grad, double lr,
              double weight_decay, int64_t step) override;
  std::vector<std::string> buffer_slots() const override { return {"momentum_buffer"}; }
  std::string hparams_json() const override;
  void set_hparams_json(const std::string& json) override;

 private:
  SGDOptions opts_;
};

// Scales all gradients by max_norm / (norm + 1e-6) when their global L2 norm exceeds
// max_norm (PyTorch's clip_grad_norm_). Returns the norm before clipping. The norm is
// summed in float64 in a fixed order: deterministic.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
double grad_norm(const std::vector<Tensor>& params);

// Gradient accumulation: backward() adds into .grad, so k micro-batches whose losses are
// scaled by 1/k give the gradient of the mean loss over the whole batch.
class GradAccumulator {
 public:
  explicit GradAccumulator(int64_t micro_batches);
  double loss_scale() const { return 1.0 / double(n_); }
  // Call after each micro-batch's backward(); true when the optimizer should step now.
  bool micro_step() {
    if (++pos_ < n_) return false;
    pos_ = 0;
    return true;
  }
  int64_t micro_batches() const { return n_; }

 private:
  int64_t n_, pos_ = 0;
};

}  // namespace vc::nn
