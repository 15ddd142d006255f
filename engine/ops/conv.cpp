#include "engine/ops/conv.h"

#include "engine/ops/op.h"

namespace vc {

Tensor conv2d(const Tensor& x_in, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding) {
  check_floating("conv2d", x_in);
  check_same("conv2d", {x_in, weight, bias});
  VC_CHECK(x_in.dim() == 4, "conv2d: input ", x_in.shape(), " is not [B, C, H, W]");
  VC_CHECK(weight.dim() == 4 && weight.size(1) == x_in.size(1) && weight.size(2) == weight.size(3),
           "conv2d: weight ", weight.shape(), " is not [O, ", x_in.size(1), ", k, k] for input ",
           x_in.shape());
  const int64_t O = weight.size(0), k = weight.size(2);
  VC_CHECK(!bias.defined() || bias.shape() == Shape{O}, "conv2d: bias ", bias.shape(),
           " is not [", O, "]");
  VC_CHECK(stride > 0 && padding >= 0, "conv2d: stride ", stride, " must be positive and padding ",
           padding, " not negative");
  const int64_t H = x_in.size(2), W = x_in.size(3);
  VC_CHECK(H + 2 * padding >= k && W + 2 * padding >= k && k > 0, "conv2d: input ", x_in.shape(),
           " with padding ", padding, " is smaller than the kernel ", k);
  ConvShape g{x_in.size(0), x_in.size(1), H, W, O, k, stride, padding,
              (H + 2 * padding - k) / stride + 1, (W + 2 * padding - k) / stride + 1};
  OpScope op("conv2d", {x_in, weight, bias});
  const double flops = 2.0 * double(g.B * O * g.Ho * g.Wo) * double(g.C * k * k);
  profiler::count_flops(flops);
  Tensor x = x_in.contiguous().detach(), w = weight.contiguous().detach();
  Tensor b = bias.defined() ? bias.contiguous().detach() : Tensor();
  Tensor y = make_tensor({g.B, O, g.Ho, g.Wo}, x.dtype(), x.device());
  backend_of(x).conv.conv2d(x.dtype(), x.raw(), w.raw(), b.defined() ? b.raw() : nullptr, y.raw(), g);
  return op.finish(y, [=](const Tensor& g_in, const std::vector<bool>& needs) {
    profiler::count_flops(flops * (int(needs[0]) + int(needs[1])));
    Tensor gy = g_in.contiguous();
    Tensor gx = needs[0] ? make_tensor(x.shape(), x.dtype(), x.device()) : Tensor();
    Tensor gw = needs[1] ? make_tensor(w.shape(), w.dtype(), w.device()) : Tensor();
    Tensor gb = needs[2] ? make_tensor({O}, w.dtype(), w.device()) : Tensor();
    backend_of(gy).conv.conv2d_backward(x.dtype(), x.raw(), w.raw(), gy.raw(),
                                        gx.defined() ? gx.raw() : nullptr,
                                        gw.defined() ? gw.raw() : nullptr,
                                        gb.defined() ? gb.raw() : nullptr, g);
    return TensorList{gx, gw, gb};
  });
}

}  // namespace vc
