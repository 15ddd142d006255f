// Kernels of the optim family: one optimizer step over a contiguous parameter, in place.
// Element-wise and independent per element, so any thread split is bitwise the same.
// Each element's update is computed in double and rounded once to the parameter's type.
#pragma once
#include <cstdint>
#include "engine/core/dtype.h"

namespace vc {

struct OptimKernels {
  // AdamW (Loshchilov & Hutter), PyTorch's formula, step >= 1:
  //   p -= lr * wd * p                         (decoupled weight decay)
  //   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
  //   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
  // param, exp_avg, exp_avg_sq are updated in place; all four arrays hold n elements of t.
  void (*adamw_step)(DType t, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                     int64_t n, double lr, double beta1, double beta2, double eps,
                     double weight_decay, int64_t step);
  // SGD with momentum, PyTorch's formula:
  //   g' = g + wd * p
  //   buf = first ? g' : momentum * buf + (1 - dampening) * g'     (when momentum != 0)
  //   d = nesterov ? g' + momentum * buf : buf                    (g' when momentum == 0)
  //   p -= lr * d
  // momentum_buf may be null when momentum == 0.
  void (*sgd_step)(DType t, void* param, const void* grad, void* momentum_buf, int64_t n,
                   double lr, double momentum, double dampening, double weight_decay,
                   bool nesterov, bool first);
};

}  // namespace vc
