#include "nn/schedule.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "nn/optim.h"

namespace vc::nn {

CosineSchedule::CosineSchedule(CosineScheduleOptions o) : opts_(o) {
  VC_CHECK(o.warmup_steps >= 0 && o.total_steps > 0 &&
               (!o.warmup_prefix || o.total_steps >= o.warmup_steps),
           "CosineSchedule: warmup_steps ", o.warmup_steps, ", total_steps ", o.total_steps,
           " must satisfy 0 <= warmup <= total, total > 0");
}

double CosineSchedule::lr_at(int64_t step) const {
  const auto& o = opts_;
  if (step < o.warmup_steps)
    return o.warmup_init_lr + (o.base_lr - o.warmup_init_lr) * double(step) / double(o.warmup_steps);
  int64_t t = o.warmup_prefix ? step - o.warmup_steps : step;
  int64_t T = o.warmup_prefix ? o.total_steps - o.warmup_steps : o.total_steps;
  if (t >= T) return o.min_lr;
  const double pi = 3.14159265358979323846;
  return o.min_lr + 0.5 * (o.base_lr - o.min_lr) * (1.0 + std::cos(pi * double(t) / double(T)));
}

void CosineSchedule::apply(Optimizer& opt, int64_t step) const { opt.set_lr(lr_at(step)); }

std::string CosineSchedule::to_json() const {
  const auto& o = opts_;
  return nlohmann::json{{"type", "cosine"},
                        {"base_lr", o.base_lr},
                        {"min_lr", o.min_lr},
                        {"warmup_init_lr", o.warmup_init_lr},
                        {"warmup_steps", o.warmup_steps},
                        {"total_steps", o.total_steps},
                        {"warmup_prefix", o.warmup_prefix}}
      .dump();
}

CosineSchedule CosineSchedule::from_json(const std::string& s) {
  try {
    auto j = nlohmann::json::parse(s);
    VC_CHECK(j.at("type").get<std::string>() == "cosine", "CosineSchedule: type ", j.at("type"));
    CosineScheduleOptions o;
    o.base_lr = j.at("base_lr").get<double>();
    o.min_lr = j.at("min_lr").get<double>();
    o.warmup_init_lr = j.at("warmup_init_lr").get<double>();
    o.warmup_steps = j.at("warmup_steps").get<int64_t>();
    o.total_steps = j.at("total_steps").get<int64_t>();
    o.warmup_prefix = j.at("warmup_prefix").get<bool>();
    return CosineSchedule(o);
  } catch (const nlohmann::json::exception& e) {
    fail("CosineSchedule: bad saved schedule '", s, "': ", e.what());
  }
}

}  // namespace vc::nn
