// Reductions. The op layer moves the reduced axes last (a permuted copy when needed) so the
// kernel always reduces contiguous rows of [outer, inner].
#include "engine/ops/reduce.h"

#include <algorithm>

#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/op.h"

namespace vc {

namespace {

struct Plan {
  Tensor rows;      // [outer, inner] contiguous; [inner, outer] when `columns`
  bool columns = false;  // the reduced axes lead: sum down columns, no transposed copy
  Shape out_shape;  // with or without the kept axes
  Shape keep_shape; // reduced axes as 1
  int64_t inner = 1;
};

// `columns_ok`: the op can use the column kernel (Sum and Mean).
Plan plan_reduction(const Tensor& x, std::vector<int64_t> axes, bool keepdim, const char* op,
                    bool columns_ok = false) {
  std::vector<bool> reduced(x.dim(), false);
  for (int64_t& a : axes) {
    a = wrap_axis(a, x.dim(), op);
    VC_CHECK(!reduced[a], op, ": axis ", a, " repeated for shape ", x.shape());
    reduced[a] = true;
  }
  std::vector<int64_t> perm;
  Plan p;
  int64_t outer = 1;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (reduced[i]) {
      p.inner *= x.shape()[i];
      p.keep_shape.push_back(1);
      if (keepdim) p.out_shape.push_back(1);
    } else {
      perm.push_back(i);
      outer *= x.shape()[i];
      p.keep_shape.push_back(x.shape()[i]);
      p.out_shape.push_back(x.shape()[i]);
    }
  }
  for (int64_t i = 0; i < x.dim(); ++i)
    if (reduced[i]) perm.push_back(i);
  NoGradGuard no_grad;
  int64_t leading = 0;
  while (leading < x.dim() && reduced[leading]) ++leading;
  bool prefix = leading == int64_t(axes.size()) && leading > 0 && leading < x.dim();
  if (columns_ok && prefix && outer > 1) {
    p.columns = true;
    p.rows = x.contiguous().reshape({p.inner, outer});
    return p;
  }
  p.rows = x.permute(perm).contiguous().reshape({outer, p.inner});
  return p;
}

std::vector<int64_t> all_axes(const Tensor& x) {
  std::vector<int64_t> a(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) a[i] = i;
  return a;
}

Tensor run(ReduceOp kind, const Plan& p, int64_t* arg, double correction) {
  Tensor y = make_tensor(p.out_shape, p.rows.dtype(), p.rows.device());
  if (p.columns) {
    backend_of(p.rows).reduce.reduce_columns(kind, p.rows.dtype(), p.rows.raw(), y.raw(),
                                             p.inner, p.rows.size(1));
    return y;
  }
  backend_of(p.rows).reduce.reduce(kind, p.rows.dtype(), p.rows.raw(), y.raw(), arg,
                                   p.rows.size(0), p.inner, correction);
  return y;
}

MaxResult extreme(const char* name, ReduceOp kind, const Tensor& x, int64_t axis, bool keepdim) {
  check_floating(name, x);
  int64_t a = wrap_axis(axis, x.dim(), name);
  VC_CHECK(x.shape()[a] > 0, name, ": empty axis ", a, " of shape ", x.shape());
  OpScope op(name, {x});
  Plan p = plan_reduction(x, {a}, keepdim, name);
  Tensor idx = make_tensor(p.out_shape, DType::I64, x.device());
  Tensor y = run(kind, p, idx.data<int64_t>(), 0);
  Shape in_shape = x.shape(), keep_shape = p.keep_shape;
  Tensor idx_keep = idx.reshape(keep_shape);
  // The gradient goes to the selected element: the adjoint of gather along the axis.
  y = op.finish(y, [=](const Tensor& g, const std::vector<bool>&) {
    Tensor zeros = Tensor::zeros(in_shape, g.dtype(), g.device());
    return TensorList{scatter_add(zeros, a, idx_keep, g.reshape(keep_shape))};
  });
  return {y, idx};
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  check_floating("sum", x);
  OpScope op("sum", {x});
  Plan p = plan_reduction(x, axes, keepdim, "sum", /*columns_ok=*/true);
  Shape in_shape = x.shape(), keep_shape = p.keep_shape;
  return op.finish(run(ReduceOp::Sum, p, nullptr, 0),
                   [=](const Tensor& g, const std::vector<bool>&) {
                     return TensorList{g.reshape(keep_shape).expand(in_shape).contiguous()};
                   });
}

Tensor sum(const Tensor& x) { return sum(x, all_axes(x)); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  check_floating("mean", x);
  OpScope op("mean", {x});
  Plan p = plan_reduction(x, axes, keepdim, "mean", /*columns_ok=*/true);
  Shape in_shape = x.shape(), keep_shape = p.keep_shape;
  double n = double(p.inner);
  return op.finish(run(ReduceOp::Mean, p, nullptr, 0),
                   [=](const Tensor& g, const std::vector<bool>&) {
                     return TensorList{div(g.reshape(keep_shape), n).expand(in_shape).contiguous()};
                   });
}

Tensor mean(const Tensor& x) { return mean(x, all_axes(x)); }

Tensor var(const Tensor& x, const std::vector<int64_t>& axes, double correction, bool keepdim) {
  check_floating("var", x);
  OpScope op("var", {x});
  Plan p = plan_reduction(x, axes, keepdim, "var");
  VC_CHECK(double(p.inner) - correction > 0, "var: ", p.inner,
           " elements with correction ", correction);
  Shape keep_shape = p.keep_shape;
  Tensor xs = x.detach();
  double denom = double(p.inner) - correction;
  return op.finish(run(ReduceOp::Var, p, nullptr, correction),
                   [=](const Tensor& g, const std::vector<bool>&) {
                     // d var / dx = 2 (x - mean) / (n - correction)
                     Tensor centered = sub(xs, mean(xs, axes, true));
                     return TensorList{mul(centered, mul(g.reshape(keep_shape), 2.0 / denom))};
                   });
}

MaxResult max(const Tensor& x, int64_t axis, bool keepdim) {
  return extreme("max", ReduceOp::Max, x, axis, keepdim);
}

MaxResult min(const Tensor& x, int64_t axis, bool keepdim) {
  return extreme("min", ReduceOp::Min, x, axis, keepdim);
}

Tensor max(const Tensor& x) { return max(x.reshape({-1}), 0).values; }

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  NoGradGuard no_grad;
  return max(x, axis, keepdim).indices;
}

}  // namespace vc
