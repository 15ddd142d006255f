// 2-D convolution with a kernel of its own (the tiny CLIP's stem). Its backward sits beside
// its forward in conv.cpp; the kernels are engine/backend/cpu/conv.cpp and cuda/conv.cu.
#pragma once
#include <cstdint>

#include "engine/core/tensor.h"

namespace vc {

// x [B, C, H, W] (NCHW), weight [O, C, k, k], bias [O] or undefined -> [B, O, Ho, Wo], with
// zero padding p on every side and stride s: Ho = (H + 2p - k) / s + 1, Wo likewise.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride = 1,
              int64_t padding = 0);

}  // namespace vc
