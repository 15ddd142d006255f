// Reductions over any set of axes, with keepdim: sum, mean, max (with argmax), min, var;
// argmax. Each output element is reduced by one thread, in index order, with a double
// accumulator for sums: bitwise the same for any thread count.
#pragma once
#include <vector>

#include "engine/core/tensor.h"

namespace vc {

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor sum(const Tensor& x);  // all elements -> scalar
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);
// Variance; divides by (n - correction): 1 is the unbiased estimate, 0 the population one.
Tensor var(const Tensor& x, const std::vector<int64_t>& axes, double correction = 1,
           bool keepdim = false);

struct MaxResult {
  Tensor values;   // differentiable: the gradient goes to the first maximal element
  Tensor indices;  // int64
};
MaxResult max(const Tensor& x, int64_t axis, bool keepdim = false);
MaxResult min(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor max(const Tensor& x);  // all elements -> scalar
// Index of the first maximum along axis (int64, no gradient).
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);

}  // namespace vc
