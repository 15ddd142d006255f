// Module: the base of every layer and model. It owns named parameters, buffers and child
// modules, and builds dotted names from them ("transformer.resblocks.0.attn.in_proj_weight")
// exactly as PyTorch does, so OpenAI CLIP checkpoints load without renaming.
//
// Randomness is always explicit: a fresh layer holds zeros (LayerNorm: ones) until
// reset_parameters(gen), an init:: function, or load_state_dict fills it.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/ops/random.h"
#include "nn/tensor_dict.h"

namespace vc::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a load found; a strict load throws when any list is non-empty.
struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the dict
  std::vector<std::string> unexpected;  // in the dict, not in the model
  std::vector<std::string> mismatched;  // "name: dict [a, b] vs model [c, d]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_name_; }

  // ---- registration (in a layer's constructor; the order is the state-dict order) ----
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // ---- traversal; names are dotted paths from this module ----
  NamedTensors named_parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  // This module ("") and every descendant, depth first in registration order.
  std::vector<std::pair<std::string, Module*>> named_modules();
  int64_t num_parameters(bool trainable_only = false) const;
  // The parameter or buffer under a dotted name; throws naming it when absent.
  Tensor get(const std::string& dotted_name) const;

  // ---- state ----
  StateDict state_dict() const;  // parameters then buffers of each module, depth first
  // Copies values into the existing tensors (in place: optimizers keep their references).
  // Float tensors are cast to the model's dtype. Strict: any missing or unexpected key
  // throws; shape mismatches always throw; every problem is named in one message.
  LoadReport load_state_dict(const StateDict& dict, bool strict = true);

  // ---- modes ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Parameters whose dotted name matches the ECMAScript regex (searched, not anchored) stop
  // (freeze) or start (unfreeze) requiring grad. Returns how many matched; none throws.
  int64_t freeze(const std::string& pattern);
  int64_t unfreeze(const std::string& pattern);
  void zero_grad();

  // Casts every floating parameter and buffer in place (float64 for gradient checks).
  void to(DType dtype);
  void to(Device device);

  // The run's generator for layers that draw random numbers in forward (Dropout,
  // DropPath). Set on the root; children see it. Not owned.
  void set_generator(Generator* gen);
  Generator* generator() const { return generator_; }

  // Re-draws every parameter with each layer's default scheme, in registration order.
  void reset_parameters(Generator& gen);

 protected:
  // A layer's own default init (children are handled by reset_parameters).
  virtual void reset_own_parameters(Generator& gen) {}
  // Called on this module and every descendant after load_state_dict copied new values in:
  // a module that caches something computed from its weights drops it here.
  virtual void state_loaded() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void collect(const std::string& prefix, bool params, bool buffers, bool recurse,
               NamedTensors& out) const;
  int64_t set_requires_grad_matching(const std::string& pattern, bool on, const char* what);

  std::string type_name_;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  Generator* generator_ = nullptr;
};

// Replaces t's storage and dtype with those of `src` (same shape), keeping the handle.
// What Module::to does to each tensor, so layers' members see the change.
void set_data(const Tensor& t, const Tensor& src);

// Copies src's values into dst's storage in place (shapes equal; float dtypes cast).
void copy_into(const Tensor& dst, const Tensor& src);

}  // namespace vc::nn
