#include "engine/ops/nn_functional.h"

#include <cmath>

#include "engine/ops/elementwise.h"
#include "engine/ops/op.h"
#include "engine/ops/random.h"
#include "engine/ops/reduce.h"

namespace vc {

namespace {

Tensor softmax_impl(const char* name, const Tensor& x_in, int64_t axis, bool log) {
  check_floating(name, x_in);
  int64_t a = wrap_axis(axis, x_in.dim(), name);
  if (a != x_in.dim() - 1) {  // move the axis last, apply, move it back
    return softmax_impl(name, x_in.transpose(a, -1), -1, log).transpose(a, -1);
  }
  OpScope op(name, {x_in});
  Tensor x = x_in.contiguous().detach();
  int64_t n = x.dim() ? x.size(-1) : 1, rows = n ? x.numel() / n : 0;
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  backend_of(x).norm.softmax(x.dtype(), x.raw(), y.raw(), rows, n, log);
  Tensor ys = y.detach();
  return op.finish(y, [=](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor gx = make_tensor(ys.shape(), ys.dtype(), ys.device());
    backend_of(g).norm.softmax_backward(g.dtype(), ys.raw(), g.raw(), gx.raw(), rows, n, log);
    return TensorList{gx};
  });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_impl("softmax", x, axis, false); }
Tensor log_softmax(const Tensor& x, int64_t axis) {
  return softmax_impl("log_softmax", x, axis, true);
}

Tensor layer_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, double eps) {
  check_floating("layer_norm", x_in);
  check_same("layer_norm", {x_in, weight, bias});
  VC_CHECK(x_in.dim() >= 1, "layer_norm: input must have a last dim, got ", x_in.shape());
  int64_t n = x_in.size(-1);
  for (const Tensor& p : {weight, bias})
    VC_CHECK(!p.defined() || p.shape() == Shape{n}, "layer_norm: parameter shape ",
             p.shape(), " does not match last dim of ", x_in.shape());
  OpScope op("layer_norm", {x_in, weight, bias});
  Tensor x = x_in.contiguous().detach();
  Tensor w = weight.defined() ? weight.contiguous().detach() : Tensor();
  Tensor b = bias.defined() ? bias.contiguous().detach() : Tensor();
  int64_t rows = n ? x.numel() / n : 0;
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  Tensor mean = make_tensor({rows}, x.dtype(), x.device());
  Tensor rstd = make_tensor({rows}, x.dtype(), x.device());
  backend_of(x).norm.layernorm(x.dtype(), x.raw(), w.defined() ? w.raw() : nullptr,
                               b.defined() ? b.raw() : nullptr, y.raw(), mean.raw(),
                               rstd.raw(), rows, n, eps);
  return op.finish(y, [=](const Tensor& g_in, const std::vector<bool>& needs) {
    Tensor g = g_in.contiguous();
    Tensor gx = make_tensor(x.shape(), x.dtype(), x.device());
    Tensor gw = needs[1] ? make_tensor({n}, x.dtype(), x.device()) : Tensor();
    Tensor gb = needs[2] ? make_tensor({n}, x.dtype(), x.device()) : Tensor();
    backend_of(x).norm.layernorm_backward(x.dtype(), x.raw(), w.defined() ? w.raw() : nullptr,
                                          mean.raw(), rstd.raw(), g.raw(), gx.raw(),
                                          gw.defined() ? gw.raw() : nullptr,
                                          gb.defined() ? gb.raw() : nullptr, rows, n);
    return TensorList{gx, gw, gb};
  });
}

Tensor l2_normalize(const Tensor& x, int64_t axis, double eps) {
  // max(||x||, eps) as sqrt(max(||x||^2, eps^2)): the same value, but a zero vector gets a
  // zero gradient instead of 0 * (d sqrt at 0 = inf) = NaN.
  Tensor norm = sqrt(clamp(sum(mul(x, x), {axis}, /*keepdim=*/true), eps * eps, INFINITY));
  return div(x, norm);
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, const CrossEntropyOptions& opt) {
  check_floating("cross_entropy", logits_in);
  VC_CHECK(logits_in.dim() == 2, "cross_entropy: logits must be [N, C], got ", logits_in.shape());
  int64_t rows = logits_in.size(0), n = logits_in.size(1);
  bool hard = target.dtype() == DType::I64;
  if (hard) {
    VC_CHECK(target.shape() == Shape{rows}, "cross_entropy: labels ", target.shape(),
             " for logits ", logits_in.shape());
    if (target.device().type == DeviceType::CPU) {
      Tensor c = target.contiguous();
      for (int64_t i = 0; i < rows; ++i) {
        int64_t l = c.data<int64_t>()[i];
        VC_CHECK(l == opt.ignore_index || (l >= 0 && l < n), "cross_entropy: label ", l,
                 " at row ", i, " is out of range [0, ", n, ")");
      }
    }
  } else {
    check_same("cross_entropy", {logits_in, target});
    VC_CHECK(target.shape() == logits_in.shape(), "cross_entropy: soft targets ",
             target.shape(), " for logits ", logits_in.shape());
  }
  VC_CHECK(opt.label_smoothing >= 0 && opt.label_smoothing < 1,
           "cross_entropy: label_smoothing ", opt.label_smoothing, " outside [0, 1)");
  OpScope op("cross_entropy", {logits_in, target});
  Tensor logits = logits_in.contiguous().detach(), tgt = target.contiguous().detach();
  const int64_t* labels = hard ? tgt.data<int64_t>() : nullptr;
  const void* soft = hard ? nullptr : tgt.raw();
  Tensor loss = make_tensor({rows}, logits.dtype(), logits.device());
  Tensor lse = make_tensor({rows}, logits.dtype(), logits.device());
  backend_of(logits).norm.cross_entropy(logits.dtype(), logits.raw(), labels, soft, loss.raw(),
                                        lse.raw(), rows, n, opt.label_smoothing,
                                        opt.ignore_index);
  Tensor per_row = op.finish(loss, [=](const Tensor& g_in, const std::vector<bool>& needs) {
    VC_CHECK(!needs[1], "cross_entropy: soft targets cannot require grad (detach them)");
    Tensor g = g_in.contiguous();
    Tensor gl = make_tensor(logits.shape(), logits.dtype(), logits.device());
    // The pointers come from tgt, captured here so the targets outlive the forward call.
    const int64_t* labels = hard ? tgt.data<int64_t>() : nullptr;
    const void* soft = hard ? nullptr : tgt.raw();
    backend_of(g).norm.cross_entropy_backward(logits.dtype(), logits.raw(), labels, soft,
                                              lse.raw(), g.raw(), gl.raw(), rows, n,
                                              opt.label_smoothing, opt.ignore_index);
    return TensorList{gl, Tensor()};
  });
  Tensor total = sum(per_row);
  if (!opt.mean) return total;
  int64_t counted = rows;
  if (hard) {
    std::vector<int64_t> l = tgt.to_vector<int64_t>();
    for (int64_t v : l) counted -= v == opt.ignore_index;
  }
  return div(total, double(std::max<int64_t>(counted, 1)));
}

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t stream) {
  VC_CHECK(p >= 0 && p < 1, "dropout: p = ", p, " outside [0, 1)");
  if (!training || p == 0) return x;
  Tensor u = rand_uniform(x.shape(), seed, stream, 0, 1, x.dtype(), x.device());
  Tensor keep = ge(u, Tensor::scalar(p, x.dtype(), x.device()));
  return mul(x, mul(keep, 1.0 / (1.0 - p)));
}

}  // namespace vc
