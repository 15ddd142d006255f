#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "engine/engine.h"
#include "engine/ops/op.h"

namespace vc::nn {

using json = nlohmann::json;

// ---------------------------------------------------------------- groups

static bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool default_no_decay(const std::string& name, const Tensor& p) {
  return p.dim() < 2 || ends_with(name, ".bias") || name.find("embedding") != std::string::npos ||
         name.find("logit_scale") != std::string::npos;
}

std::vector<ParamGroup> make_param_groups(const Module& model, double weight_decay,
                                          const std::vector<GroupSpec>& specs,
                                          const NoDecayRule& no_decay) {
  std::vector<std::regex> res;
  for (const auto& s : specs) {
    try {
      res.emplace_back(s.pattern);
    } catch (const std::regex_error& e) {
      fail("make_param_groups: bad pattern '", s.pattern, "' of group '", s.name, "': ", e.what());
    }
  }
  // Two groups (decay, no decay) per spec, and two for the default; the order is fixed.
  std::vector<ParamGroup> groups;
  for (const auto& s : specs) {
    double wd = s.weight_decay < 0 ? weight_decay : s.weight_decay;
    groups.push_back({s.name, {}, s.lr_mult, wd});
    groups.push_back({s.name + ".no_decay", {}, s.lr_mult, 0.0});
  }
  groups.push_back({"default", {}, 1.0, weight_decay});
  groups.push_back({"default.no_decay", {}, 1.0, 0.0});
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;  // frozen
    size_t g = specs.size();
    for (size_t i = 0; i < specs.size(); ++i)
      if (std::regex_search(name, res[i])) {
        g = i;
        break;
      }
    groups[2 * g + (no_decay && no_decay(name, p) ? 1 : 0)].params.emplace_back(name, p);
  }
  std::vector<ParamGroup> out;
  for (auto& g : groups)
    if (!g.params.empty()) out.push_back(std::move(g));
  return out;
}

// ---------------------------------------------------------------- Optimizer

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr) : groups_(std::move(groups)), lr_(lr) {
  std::set<std::string> seen;
  for (auto& g : groups_)
    for (auto& [name, p] : g.params) {
      VC_CHECK(seen.insert(name).second, "Optimizer: parameter '", name,
               "' appears twice (state is keyed by name)");
      VC_CHECK(p.is_contiguous() && is_floating(p.dtype()), "Optimizer: parameter '", name,
               "' must be a contiguous float tensor");
    }
}

Tensor Optimizer::slot(const std::string& param, const std::string& name, const Tensor& like) {
  std::string key = param + "." + name;
  auto it = state_.find(key);
  if (it != state_.end()) return it->second;
  Tensor t = Tensor::zeros(like.shape(), like.dtype(), like.device());
  state_.emplace(key, t);
  order_.push_back(key);
  return t;
}

bool Optimizer::has_slot(const std::string& param, const std::string& name) const {
  return state_.count(param + "." + name) != 0;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  profiler::PhaseGuard phase("optimizer");
  profiler::Scope scope(type());  // the update kernels; ops it runs (contiguous) count apart
  for (auto& g : groups_) {
    double lr = lr_ * g.lr_mult;
    for (auto& [name, p] : g.params) {
      if (!p.requires_grad() || !p.grad().defined()) continue;  // frozen, or unused this step
      Tensor grad = p.grad();
      VC_CHECK(grad.shape() == p.shape() && grad.dtype() == p.dtype(), type(), ": gradient of '",
               name, "' is ", dtype_name(grad.dtype()), " ", grad.shape(), ", parameter ",
               dtype_name(p.dtype()), " ", p.shape());
      grad = grad.contiguous();
      Tensor st = slot(name, "step", Tensor::zeros({}, DType::I64));
      int64_t k = ++st.data<int64_t>()[0];
      update(name, p, grad, lr, g.weight_decay, k);
    }
  }
  ++steps_;
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& [name, p] : g.params) p.zero_grad();
}

StateDict Optimizer::state_dict() const {
  StateDict d;
  for (const auto& key : order_) d.set(key, state_.at(key));
  return d;
}

std::string Optimizer::config_json() const {
  json groups = json::array();
  for (const auto& g : groups_) {
    json names = json::array();
    for (const auto& [n, p] : g.params) names.push_back(n);
    groups.push_back({{"name", g.name}, {"lr_mult", g.lr_mult}, {"weight_decay", g.weight_decay},
                      {"params", names}});
  }
  json j = {{"type", type()},        {"lr", lr_},          {"steps", steps_},
            {"groups", groups},      {"hparams", json::parse(hparams_json())}};
  return j.dump();
}

void Optimizer::load_state_dict(const StateDict& state, const std::string& config) {
  // Read and check everything first: a failed load leaves the optimizer as it was.
  struct SavedGroup {
    double lr_mult, weight_decay;
  };
  std::vector<SavedGroup> saved_groups;
  double lr = 0;
  int64_t steps = 0;
  std::string hparams;
  try {
    json j = json::parse(config);
    std::string saved_type = j.at("type").get<std::string>();
    VC_CHECK(saved_type == type(), type(), ".load_state_dict: the state is for ", saved_type);
    const json& gs = j.at("groups");
    VC_CHECK(gs.is_array() && gs.size() == groups_.size(), type(), ".load_state_dict: ",
             gs.size(), " groups saved, ", groups_.size(), " in this optimizer");
    for (size_t i = 0; i < groups_.size(); ++i) {
      std::vector<std::string> saved = gs[i].at("params").get<std::vector<std::string>>(), have;
      for (auto& [n, p] : groups_[i].params) have.push_back(n);
      VC_CHECK(saved == have, type(), ".load_state_dict: group ", i, " ('", groups_[i].name,
               "') holds other parameters than the saved group '",
               gs[i].at("name").get<std::string>(), "'");
      saved_groups.push_back({gs[i].at("lr_mult").get<double>(), gs[i].at("weight_decay").get<double>()});
    }
    lr = j.at("lr").get<double>();
    steps = j.at("steps").get<int64_t>();
    hparams = j.at("hparams").dump();
  } catch (const json::exception& e) {
    fail(type(), ".load_state_dict: bad optimizer config: ", e.what());
  }
  std::map<std::string, Tensor> params;
  for (auto& g : groups_)
    for (auto& [n, p] : g.params) params[n] = p;
  std::vector<std::string> slots = buffer_slots();
  slots.push_back("step");
  std::map<std::string, Tensor> fresh;
  std::vector<std::string> order;
  NoGradGuard no_grad;
  for (const auto& [key, t] : state) {
    size_t dot = key.rfind('.');
    std::string pname = dot == std::string::npos ? "" : key.substr(0, dot);
    std::string sname = dot == std::string::npos ? key : key.substr(dot + 1);
    auto it = params.find(pname);
    VC_CHECK(it != params.end() && std::find(slots.begin(), slots.end(), sname) != slots.end(),
             type(), ".load_state_dict: state '", key, "' belongs to no parameter slot");
    const Tensor& p = it->second;
    Tensor v;
    if (sname == "step") {
      VC_CHECK(t.numel() == 1 && t.dtype() == DType::I64, type(), ".load_state_dict: '", key,
               "' must be an int64 scalar");
      v = t.detach().reshape({}).clone();
    } else {
      VC_CHECK(t.shape() == p.shape() && is_floating(t.dtype()), type(), ".load_state_dict: '",
               key, "' is ", dtype_name(t.dtype()), " ", t.shape(), ", parameter ", p.shape());
      v = t.detach().to(p.dtype()).to(p.device()).clone();
    }
    fresh[key] = v;
    order.push_back(key);
  }
  lr_ = lr;
  try {
    set_hparams_json(hparams);
  } catch (const json::exception& e) {
    fail(type(), ".load_state_dict: bad hyperparameters ", hparams, ": ", e.what());
  }
  for (size_t i = 0; i < groups_.size(); ++i) {
    groups_[i].lr_mult = saved_groups[i].lr_mult;
    groups_[i].weight_decay = saved_groups[i].weight_decay;
  }
  steps_ = steps;
  state_ = std::move(fresh);
  order_ = std::move(order);
}

// ---------------------------------------------------------------- AdamW

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions opts)
    : Optimizer(std::move(groups), opts.lr), opts_(opts) {
  VC_CHECK(opts.beta1 >= 0 && opts.beta1 < 1 && opts.beta2 >= 0 && opts.beta2 < 1 && opts.eps > 0,
           "AdamW: betas (", opts.beta1, ", ", opts.beta2, ") must lie in [0, 1), eps > 0");
}

void AdamW::update(const std::string& name, const Tensor& p, const Tensor& g, double lr,
                   double wd, int64_t step) {
  Tensor m = slot(name, "exp_avg", p), v = slot(name, "exp_avg_sq", p);
  backend_of(p).optim.adamw_step(p.dtype(), p.raw(), g.raw(), m.raw(), v.raw(), p.numel(), lr,
                                 opts_.beta1, opts_.beta2, opts_.eps, wd, step);
}

std::string AdamW::hparams_json() const {
  return json{{"beta1", opts_.beta1}, {"beta2", opts_.beta2}, {"eps", opts_.eps}}.dump();
}

void AdamW::set_hparams_json(const std::string& s) {
  json j = json::parse(s);
  opts_.beta1 = j.at("beta1").get<double>();
  opts_.beta2 = j.at("beta2").get<double>();
  opts_.eps = j.at("eps").get<double>();
  opts_.lr = lr();
}

// ---------------------------------------------------------------- SGD

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions opts)
    : Optimizer(std::move(groups), opts.lr), opts_(opts) {
  VC_CHECK(opts.momentum >= 0 && (!opts.nesterov || (opts.momentum > 0 && opts.dampening == 0)),
           "SGD: nesterov needs momentum > 0 and dampening 0");
}

void SGD::update(const std::string& name, const Tensor& p, const Tensor& g, double lr, double wd,
                 int64_t) {
  void* buf = nullptr;
  bool first = false;
  if (opts_.momentum != 0) {
    first = !has_slot(name, "momentum_buffer");
    buf = slot(name, "momentum_buffer", p).raw();
  }
  backend_of(p).optim.sgd_step(p.dtype(), p.raw(), g.raw(), buf, p.numel(), lr, opts_.momentum,
                               opts_.dampening, wd, opts_.nesterov, first);
}

std::string SGD::hparams_json() const {
  return json{{"momentum", opts_.momentum}, {"dampening", opts_.dampening},
              {"nesterov", opts_.nesterov}}
      .dump();
}

void SGD::set_hparams_json(const std::string& s) {
  json j = json::parse(s);
  opts_.momentum = j.at("momentum").get<double>();
  opts_.dampening = j.at("dampening").get<double>();
  opts_.nesterov = j.at("nesterov").get<bool>();
  opts_.lr = lr();
}

// ---------------------------------------------------------------- clipping, accumulation

double grad_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  double total = 0;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    Tensor g = p.grad().to(DType::F64);
    total += sum(mul(g, g)).item();
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  VC_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, " must be positive");
  double norm = grad_norm(params);
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1) {
    NoGradGuard no_grad;
    for (const Tensor& p : params)
      if (p.grad().defined()) p.set_grad(mul(p.grad(), coef));
  }
  return norm;
}

GradAccumulator::GradAccumulator(int64_t micro_batches) : n_(micro_batches) {
  VC_CHECK(n_ >= 1, "GradAccumulator: ", n_, " micro-batches");
}

}  // namespace vc::nn
