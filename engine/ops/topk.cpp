// Top-k / argsort. Forward: the kernel sorts each row of x (axis moved last) under the total
// order of topk.h. Backward of the values: the adjoint of a gather, i.e. a scatter of the
// gradient into zeros at the selected positions (unique per row, so no sums collide).
#include "engine/ops/topk.h"

#include "engine/ops/index.h"
#include "engine/ops/op.h"

namespace vc {

namespace {

// Runs the kernel on x with `axis` moved last; returns (values or undefined, indices) with
// the axis back in place.
TopK run_topk(const char* name, const Tensor& x_in, int64_t k, int64_t a, bool largest,
              bool want_values) {
  NoGradGuard no_grad;
  Tensor x = x_in.detach().transpose(a, -1).contiguous();
  int64_t n = x.size(-1), rows = n ? x.numel() / n : 0;
  Shape out_shape = x.shape();
  out_shape.back() = k;
  Tensor idx = make_tensor(out_shape, DType::I64, x.device());
  Tensor vals = want_values ? make_tensor(out_shape, x.dtype(), x.device()) : Tensor();
  if (rows > 0 && k > 0)
    backend_of(x).special.topk(x.dtype(), x.raw(), want_values ? vals.raw() : nullptr,
                               idx.data<int64_t>(), rows, n, k, largest);
  TopK r;
  r.indices = idx.transpose(a, -1).contiguous();
  if (want_values) r.values = vals.transpose(a, -1).contiguous();
  return r;
}

}  // namespace

TopK topk(const Tensor& x, int64_t k, int64_t axis, bool largest) {
  check_floating("topk", x);
  VC_CHECK(x.dim() >= 1, "topk: needs at least one axis, got shape ", x.shape());
  int64_t a = wrap_axis(axis, x.dim(), "topk");
  VC_CHECK(k >= 0 && k <= x.shape()[a], "topk: k = ", k, " outside [0, ", x.shape()[a],
           "] for axis ", a, " of shape ", x.shape());
  OpScope op("topk", {x});
  TopK r = run_topk("topk", x, k, a, largest, true);
  Shape in_shape = x.shape();
  Tensor idx = r.indices;
  r.values = op.finish(r.values, [=](const Tensor& g, const std::vector<bool>&) {
    Tensor zeros = Tensor::zeros(in_shape, g.dtype(), g.device());
    return TensorList{scatter_add(zeros, a, idx, g)};
  });
  return r;
}

Tensor argsort(const Tensor& x, int64_t axis, bool descending) {
  check_floating("argsort", x);
  VC_CHECK(x.dim() >= 1, "argsort: needs at least one axis, got shape ", x.shape());
  int64_t a = wrap_axis(axis, x.dim(), "argsort");
  OpScope op("argsort", {x});
  return op.finish_nondifferentiable(
      run_topk("argsort", x, x.shape()[a], a, descending, false).indices);
}

}  // namespace vc
