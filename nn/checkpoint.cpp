#include "nn/checkpoint.h"

#include "engine/engine.h"

namespace vc::nn {

namespace {

const char* kFormat = "verbclip-checkpoint-1";

bool starts_with(const std::string& s, const std::string& head) {
  return s.compare(0, head.size(), head) == 0;
}

const std::string& meta_at(const Metadata& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  VC_CHECK(it != m.end(), "checkpoint '", path, "': metadata has no '", key, "'");
  return it->second;
}

// Integers are stored as decimal text: exact for all 64 bits.
uint64_t parse_u64(const std::string& s, const std::string& key, const std::string& path) {
  try {
    size_t used = 0;
    unsigned long long v = std::stoull(s, &used);
    if (used == s.size() && !s.empty() && s[0] != '-') return v;
  } catch (const std::exception&) {
  }
  fail("checkpoint '", path, "': metadata '", key, "' = '", s, "' is not an unsigned integer");
}

// Same dtype, shape and bytes.
bool bytes_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  size_t n = size_t(a.numel()) * dtype_size(a.dtype());
  std::string x(n, '\0'), y(n, '\0');
  if (n) a.copy_to_host(x.data(), n), b.copy_to_host(y.data(), n);
  return x == y;
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const CosineSchedule* schedule, const TrainingState& st) {
  StateDict all;
  for (const auto& [n, t] : model.state_dict()) all.set("model." + n, t);
  Metadata meta;
  meta["format"] = kFormat;
  meta["step"] = std::to_string(st.step);
  meta["epoch"] = std::to_string(st.epoch);
  meta["rng.seed"] = std::to_string(st.rng.seed);
  meta["rng.next_stream"] = std::to_string(st.rng.next_stream);
  meta["config"] = st.config;
  for (const auto& [k, v] : st.extra) meta["extra." + k] = v;
  if (optimizer) {
    for (const auto& [n, t] : optimizer->state_dict()) all.set("optimizer." + n, t);
    meta["optimizer"] = optimizer->config_json();
  }
  if (schedule) meta["schedule"] = schedule->to_json();
  save_safetensors(path, all, meta);
}

TrainingState load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer,
                              CosineSchedule* schedule) {
  SafetensorsFile f(path);
  const Metadata& meta = f.metadata();
  VC_CHECK(meta.count("format") && meta.at("format") == kFormat, "checkpoint '", path,
           "': not a verbclip checkpoint (metadata 'format' is not ", kFormat, ")");
  StateDict model_sd, optim_sd;
  for (const auto& name : f.names()) {
    if (starts_with(name, "model.")) model_sd.set(name.substr(6), f.load(name));
    else if (starts_with(name, "optimizer.")) optim_sd.set(name.substr(10), f.load(name));
    else fail("checkpoint '", path, "': tensor '", name, "' is neither model. nor optimizer.");
  }
  // Parse the metadata before changing anything. The model and the optimizer each check
  // their part fully before copying; if the optimizer's part fails after the model loaded,
  // the error says so and the objects should not be used to continue training.
  TrainingState st;
  st.step = int64_t(parse_u64(meta_at(meta, "step", path), "step", path));
  st.epoch = int64_t(parse_u64(meta_at(meta, "epoch", path), "epoch", path));
  st.rng.seed = parse_u64(meta_at(meta, "rng.seed", path), "rng.seed", path);
  st.rng.next_stream = parse_u64(meta_at(meta, "rng.next_stream", path), "rng.next_stream", path);
  st.config = meta_at(meta, "config", path);
  for (const auto& [k, v] : meta)
    if (starts_with(k, "extra.")) st.extra[k.substr(6)] = v;
  CosineSchedule loaded_schedule({});
  if (schedule) loaded_schedule = CosineSchedule::from_json(meta_at(meta, "schedule", path));
  try {
    model.load_state_dict(model_sd, /*strict=*/true);
    if (optimizer) optimizer->load_state_dict(optim_sd, meta_at(meta, "optimizer", path));
  } catch (const Error& e) {
    fail("checkpoint '", path, "': ", e.what());
  }
  if (schedule) *schedule = loaded_schedule;
  return st;
}

StateDict load_checkpoint_model(const std::string& path) {
  SafetensorsFile f(path);
  StateDict sd;
  for (const auto& name : f.names())
    if (starts_with(name, "model.")) sd.set(name.substr(6), f.load(name));
  return sd;
}

// ---------------------------------------------------------------- averaging

static void check_same_layout(const StateDict& a, const StateDict& b, const char* what) {
  std::vector<std::string> problems;
  for (const auto& [n, t] : a) {
    const Tensor* u = b.find(n);
    if (!u) problems.push_back("'" + n + "' missing in the second");
    else if (u->shape() != t.shape() || u->dtype() != t.dtype())
      problems.push_back("'" + n + "': " + dtype_name(t.dtype()) + " " + shape_str(t.shape()) +
                         " vs " + dtype_name(u->dtype()) + " " + shape_str(u->shape()));
  }
  for (const auto& [n, t] : b)
    if (!a.contains(n)) problems.push_back("'" + n + "' missing in the first");
  if (!problems.empty()) {
    std::string msg;
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    fail(what, ": state dicts differ: ", msg);
  }
}

StateDict interpolate(const StateDict& a, const StateDict& b, double alpha) {
  check_same_layout(a, b, "interpolate");
  NoGradGuard no_grad;
  StateDict out;
  for (const auto& [n, t] : a) {
    const Tensor& u = b.at(n);
    if (is_floating(t.dtype())) {
      Tensor x = t.detach().to(DType::F64), y = u.detach().to(DType::F64);
      out.set(n, add(mul(x, 1.0 - alpha), mul(y, alpha)).to(t.dtype()));
    } else {
      VC_CHECK(bytes_equal(t, u), "interpolate: non-float tensor '", n, "' differs");
      out.set(n, t.detach().clone());
    }
  }
  return out;
}

StateDict average(const std::vector<StateDict>& dicts) {
  VC_CHECK(!dicts.empty(), "average: no state dicts");
  for (size_t i = 1; i < dicts.size(); ++i) check_same_layout(dicts[0], dicts[i], "average");
  NoGradGuard no_grad;
  StateDict out;
  for (const auto& [n, t] : dicts[0]) {
    if (!is_floating(t.dtype())) {
      for (size_t i = 1; i < dicts.size(); ++i)
        VC_CHECK(bytes_equal(t, dicts[i].at(n)), "average: non-float tensor '", n, "' differs");
      out.set(n, t.detach().clone());
      continue;
    }
    Tensor acc = t.detach().to(DType::F64);
    for (size_t i = 1; i < dicts.size(); ++i) acc = add(acc, dicts[i].at(n).detach().to(DType::F64));
    out.set(n, div(acc, double(dicts.size())).to(t.dtype()));
  }
  return out;
}

StateDict average_checkpoints(const std::vector<std::string>& paths) {
  std::vector<StateDict> dicts;
  for (const auto& p : paths) dicts.push_back(load_checkpoint_model(p));
  return average(dicts);
}

}  // namespace vc::nn
