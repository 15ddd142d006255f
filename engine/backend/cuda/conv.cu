// 2-D convolution on the GPU (engine/backend/cpu/conv.cpp is the reference). Each thread owns
// one output value and repeats the CPU's terms in the CPU's order with explicit fma, so the
// bits match: y from bias through the taps; gx over (i, ky, kx) of a sum over o; gw and gb as
// lanes j (a sum over (b, i)) and then the lanes in j order.
#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

template <class T> __device__ T input_at(const T* x, const ConvShape& g, int64_t b, int64_t c,
                                         int64_t yy, int64_t xx) {
  if (yy < 0 || yy >= g.H || xx < 0 || xx >= g.W) return T(0);
  return x[((b * g.C + c) * g.H + yy) * g.W + xx];
}

template <class T>
__global__ void conv2d_kernel(const T* x, const T* w, const T* bias, T* y, ConvShape g,
                              int64_t total) {
  VC_GRID_LOOP(at, total) {
    const int64_t j = at % g.Wo, i = (at / g.Wo) % g.Ho, o = (at / (g.Wo * g.Ho)) % g.O,
                  b = at / (g.Wo * g.Ho * g.O);
    T acc = bias ? bias[o] : T(0);
    const T* wo = w + o * g.C * g.k * g.k;
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t ky = 0; ky < g.k; ++ky)
        for (int64_t kx = 0; kx < g.k; ++kx)
          acc = fma(wo[(c * g.k + ky) * g.k + kx],
                    input_at(x, g, b, c, i * g.s + ky - g.p, j * g.s + kx - g.p), acc);
    y[at] = acc;
  }
}

template <class T>
__global__ void conv2d_grad_input_kernel(const T* w, const T* gy, T* gx, ConvShape g,
                                         int64_t total) {
  const int64_t taps = g.C * g.k * g.k;
  VC_GRID_LOOP(at, total) {
    const int64_t xx = at % g.W, yy = (at / g.W) % g.H, c = (at / (g.W * g.H)) % g.C,
                  b = at / (g.W * g.H * g.C);
    T acc = 0;
    for (int64_t i = 0; i < g.Ho; ++i) {
      const int64_t ky = yy + g.p - i * g.s;
      if (ky < 0 || ky >= g.k) continue;
      for (int64_t kx = 0; kx < g.k; ++kx) {
        const int64_t num = xx + g.p - kx;
        if (num < 0 || num % g.s != 0 || num / g.s >= g.Wo) continue;
        const int64_t j = num / g.s, t = (c * g.k + ky) * g.k + kx;
        T d = 0;
        for (int64_t o = 0; o < g.O; ++o)
          d = fma(w[o * taps + t], gy[((b * g.O + o) * g.Ho + i) * g.Wo + j], d);
        acc += d;
      }
    }
    gx[at] = acc;
  }
}

// lanes [O, taps + 1, Wo]: slot t < taps is gw's lane, slot taps gb's.
template <class T>
__global__ void conv2d_lanes_kernel(const T* x, const T* gy, T* lanes, ConvShape g, int64_t total) {
  const int64_t taps = g.C * g.k * g.k;
  VC_GRID_LOOP(at, total) {
    const int64_t j = at % g.Wo, t = (at / g.Wo) % (taps + 1), o = at / (g.Wo * (taps + 1));
    const int64_t c = t / (g.k * g.k), ky = (t / g.k) % g.k, kx = t % g.k;
    T acc = 0;
    for (int64_t b = 0; b < g.B; ++b)
      for (int64_t i = 0; i < g.Ho; ++i) {
        const T gv = gy[((b * g.O + o) * g.Ho + i) * g.Wo + j];
        if (t == taps) acc += gv;
        else acc = fma(gv, input_at(x, g, b, c, i * g.s + ky - g.p, j * g.s + kx - g.p), acc);
      }
    lanes[at] = acc;
  }
}

template <class T>
__global__ void conv2d_sum_lanes_kernel(const T* lanes, T* gw, T* gb, ConvShape g, int64_t total) {
  const int64_t taps = g.C * g.k * g.k;
  VC_GRID_LOOP(at, total) {
    const int64_t t = at % (taps + 1), o = at / (taps + 1);
    T s = 0;
    for (int64_t j = 0; j < g.Wo; ++j) s += lanes[at * g.Wo + j];
    if (t < taps && gw) gw[o * taps + t] = s;
    if (t == taps && gb) gb[o] = s;
  }
}

}  // namespace

void conv2d(DType t, const void* x, const void* w, const void* bias, void* y, const ConvShape& g) {
  const int64_t total = g.B * g.O * g.Ho * g.Wo;
  if (total <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    conv2d_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
        static_cast<T*>(y), g, total);
  });
  VC_CUDA_LAUNCH("conv2d");
}

void conv2d_backward(DType t, const void* x, const void* w, const void* gy, void* gx, void* gw,
                     void* gb, const ConvShape& g) {
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    if (gx) {
      const int64_t total = g.B * g.C * g.H * g.W;
      if (total > 0)
        conv2d_grad_input_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
            static_cast<const T*>(w), static_cast<const T*>(gy), static_cast<T*>(gx), g, total);
      VC_CUDA_LAUNCH("conv2d_backward (input)");
    }
    if (gw || gb) {
      const int64_t slots = g.O * (g.C * g.k * g.k + 1), total = slots * g.Wo;
      DeviceScratch lanes(size_t(total) * sizeof(T));
      conv2d_lanes_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
          static_cast<const T*>(x), static_cast<const T*>(gy), lanes.as<T>(), g, total);
      VC_CUDA_LAUNCH("conv2d_backward (lanes)");
      conv2d_sum_lanes_kernel<T><<<blocks_for(slots), kThreads, 0, stream()>>>(
          lanes.as<T>(), static_cast<T*>(gw), static_cast<T*>(gb), g, slots);
      VC_CUDA_LAUNCH("conv2d_backward (weights)");
    }
  });
}

}  // namespace vc::cuda_kernels
