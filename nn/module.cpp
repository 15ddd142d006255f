#include "nn/module.h"

#include <regex>
#include <sstream>

#include "engine/autograd/autograd.h"
#include "engine/backend/backend.h"
#include "engine/ops/op.h"

namespace vc::nn {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

void check_name(const std::string& name, const char* what) {
  VC_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: ", what, " name '",
           name, "' must be non-empty and contain no '.'");
}

}  // namespace

std::string LoadReport::str() const {
  std::ostringstream os;
  const char* sep = "";
  auto part = [&](const std::vector<std::string>& v, const char* what) {
    if (v.empty()) return;
    os << sep << v.size() << " " << what << (v.size() == 1 ? "" : "s") << ": " << join(v);
    sep = "; ";
  };
  part(missing, "missing key");
  part(unexpected, "unexpected key");
  part(mismatched, "shape mismatch");
  return os.str();
}

void set_data(const Tensor& t, const Tensor& src) {
  VC_CHECK(t.shape() == src.shape(), "set_data: shape ", src.shape(), " into ", t.shape());
  Tensor c = src.contiguous().detach();
  TensorImpl& impl = t.impl();
  impl.storage = c.impl().storage;
  impl.strides = c.strides();
  impl.offset = c.offset();
  impl.dtype = c.dtype();
  impl.grad = nullptr;  // a gradient of the old dtype or device no longer fits
}

void copy_into(const Tensor& dst, const Tensor& src) {
  VC_CHECK(dst.shape() == src.shape(), "copy_into: shape ", src.shape(), " into ", dst.shape());
  NoGradGuard no_grad;
  Tensor s = src.detach();
  if (s.dtype() != dst.dtype()) {
    VC_CHECK(is_floating(s.dtype()) && is_floating(dst.dtype()), "copy_into: ",
             dtype_name(s.dtype()), " into ", dtype_name(dst.dtype()), " (no silent casts)");
    s = s.to(dst.dtype());
  }
  if (s.device() != dst.device()) s = s.to(dst.device());
  backend_for(dst.device())
      .memory.copy_strided(dst.dtype(), s.impl().storage->data, strided_desc(s),
                           dst.impl().storage->data, strided_desc(dst));
}

// ---------------------------------------------------------------- registration

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_name(name, "parameter");
  VC_CHECK(t.defined(), type_name_, ": parameter '", name, "' is undefined");
  VC_CHECK(is_floating(t.dtype()), type_name_, ": parameter '", name, "' must be floating");
  for (const auto& p : params_) VC_CHECK(p.first != name, type_name_, ": duplicate parameter '", name, "'");
  t = t.contiguous().detach();  // a leaf of its own
  t.set_requires_grad(requires_grad);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_name(name, "buffer");
  VC_CHECK(t.defined(), type_name_, ": buffer '", name, "' is undefined");
  t = t.contiguous().detach();
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_name(name, "child");
  VC_CHECK(m != nullptr, type_name_, ": child '", name, "' is null");
  for (const auto& c : children_) VC_CHECK(c.first != name, type_name_, ": duplicate child '", name, "'");
  m->train(training_);
  if (generator_) m->set_generator(generator_);
  children_.emplace_back(name, std::move(m));
}

// ---------------------------------------------------------------- traversal

void Module::collect(const std::string& prefix, bool params, bool buffers, bool recurse,
                     NamedTensors& out) const {
  if (params)
    for (const auto& p : params_) out.emplace_back(prefix + p.first, p.second);
  if (buffers)
    for (const auto& b : buffers_) out.emplace_back(prefix + b.first, b.second);
  if (!recurse) return;
  for (const auto& c : children_) c.second->collect(prefix + c.first + ".", params, buffers, true, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, false, recurse, out);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, true, recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& p : named_parameters(recurse)) out.push_back(p.second);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& c : children_)
    for (auto& [n, m] : c.second->named_modules())
      out.emplace_back(n.empty() ? c.first : c.first + "." + n, m);
  return out;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (auto& p : named_parameters())
    if (!trainable_only || p.second.requires_grad()) n += p.second.numel();
  return n;
}

Tensor Module::get(const std::string& dotted_name) const {
  NamedTensors all;
  collect("", true, true, true, all);
  for (auto& [n, t] : all)
    if (n == dotted_name) return t;
  fail(type_name_, ": no parameter or buffer named '", dotted_name, "'");
}

// ---------------------------------------------------------------- state

StateDict Module::state_dict() const {
  // PyTorch's order: a module's own parameters, then its buffers, then each child.
  StateDict d;
  NamedTensors all;
  collect("", true, true, true, all);
  for (auto& [n, t] : all) d.set(n, t);
  return d;
}

LoadReport Module::load_state_dict(const StateDict& dict, bool strict) {
  LoadReport r;
  NamedTensors own;
  collect("", true, true, true, own);
  std::vector<std::pair<Tensor, Tensor>> copies;  // (model tensor, dict tensor)
  std::vector<std::string> dtype_errors;
  for (auto& [name, t] : own) {
    const Tensor* src = dict.find(name);
    if (!src) {
      r.missing.push_back(name);
    } else if (src->shape() != t.shape()) {
      r.mismatched.push_back(name + ": dict " + shape_str(src->shape()) + " vs model " +
                             shape_str(t.shape()));
    } else if (src->dtype() != t.dtype() && !(is_floating(src->dtype()) && is_floating(t.dtype()))) {
      dtype_errors.push_back(name + ": dict " + dtype_name(src->dtype()) + " vs model " +
                             dtype_name(t.dtype()));
    } else {
      copies.emplace_back(t, *src);
    }
  }
  std::unordered_map<std::string, bool> known;
  for (auto& [name, t] : own) known[name] = true;
  for (const auto& [name, t] : dict)
    if (!known.count(name)) r.unexpected.push_back(name);

  // Check everything before copying anything: a failed load leaves the model untouched.
  bool bad = !r.mismatched.empty() || !dtype_errors.empty() ||
             (strict && (!r.missing.empty() || !r.unexpected.empty()));
  if (bad) {
    std::string msg = type_name_ + ".load_state_dict: " + (strict ? "strict " : "") + "load failed: ";
    LoadReport shown = r;
    if (!strict) shown.missing.clear(), shown.unexpected.clear();
    msg += shown.str();
    if (!dtype_errors.empty())
      msg += std::string(shown.ok() ? "" : "; ") + std::to_string(dtype_errors.size()) +
             " dtype mismatch(es): " + join(dtype_errors);
    throw Error(msg);
  }
  for (auto& [dst, src] : copies) copy_into(dst, src);
  for (auto& [name, m] : named_modules()) m->state_loaded();
  return r;
}

// ---------------------------------------------------------------- modes

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

int64_t Module::set_requires_grad_matching(const std::string& pattern, bool on, const char* what) {
  std::regex re;
  try {
    re = std::regex(pattern);
  } catch (const std::regex_error& e) {
    fail(type_name_, ".", what, ": bad pattern '", pattern, "': ", e.what());
  }
  int64_t n = 0;
  for (auto& [name, t] : named_parameters())
    if (std::regex_search(name, re)) {
      t.set_requires_grad(on);
      if (!on) t.zero_grad();
      ++n;
    }
  VC_CHECK(n > 0, type_name_, ".", what, ": pattern '", pattern, "' matches no parameter");
  return n;
}

int64_t Module::freeze(const std::string& pattern) {
  return set_requires_grad_matching(pattern, false, "freeze");
}
int64_t Module::unfreeze(const std::string& pattern) {
  return set_requires_grad_matching(pattern, true, "unfreeze");
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

void Module::to(DType dtype) {
  VC_CHECK(is_floating(dtype), type_name_, ".to: ", dtype_name(dtype), " is not a float type");
  NoGradGuard no_grad;
  NamedTensors all;
  collect("", true, true, true, all);
  for (auto& [n, t] : all)
    if (is_floating(t.dtype()) && t.dtype() != dtype) set_data(t, t.detach().to(dtype));
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  NamedTensors all;
  collect("", true, true, true, all);
  for (auto& [n, t] : all)
    if (t.device() != device) set_data(t, t.detach().to(device));
}

void Module::set_generator(Generator* gen) {
  generator_ = gen;
  for (auto& c : children_) c.second->set_generator(gen);
}

void Module::reset_parameters(Generator& gen) {
  NoGradGuard no_grad;
  reset_own_parameters(gen);
  for (auto& c : children_) c.second->reset_parameters(gen);
}

}  // namespace vc::nn
