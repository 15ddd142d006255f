// Temporal channel shift on the GPU (engine/backend/cpu/special_shift.cpp is the reference).
// The table is a device array [frames, table_c] of source frames (-1 = zero fill). The
// backward is computed by the owner of each input element, which adds the output frames
// that read it in increasing t: the CPU's order, so the bits match.
#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

template <class T>
__global__ void channel_shift_kernel(const T* x, const int64_t* table, T* y, int64_t frames,
                                     int64_t rows, int64_t c, int64_t table_c,
                                     bool keep_first_row, int64_t total) {
  VC_GRID_LOOP(at, total) {
    int64_t ch = at % c, l = (at / c) % rows, of = at / (c * rows);
    int64_t o = of / frames, f = of % frames;
    if ((keep_first_row && l == 0) || ch >= table_c) {
      y[at] = x[at];
      continue;
    }
    int64_t s = table[f * table_c + ch];
    y[at] = s < 0 ? T(0) : x[((o * frames + s) * rows + l) * c + ch];
  }
}

template <class T>
__global__ void channel_shift_backward_kernel(const T* gy, const int64_t* table, T* gx,
                                              int64_t frames, int64_t rows, int64_t c,
                                              int64_t table_c, bool keep_first_row,
                                              int64_t total) {
  VC_GRID_LOOP(at, total) {
    int64_t ch = at % c, l = (at / c) % rows, os = at / (c * rows);
    int64_t o = os / frames, s = os % frames;
    if ((keep_first_row && l == 0) || ch >= table_c) {
      gx[at] = gy[at];
      continue;
    }
    T acc = 0;
    for (int64_t f = 0; f < frames; ++f)
      if (table[f * table_c + ch] == s) acc += gy[((o * frames + f) * rows + l) * c + ch];
    gx[at] = acc;
  }
}

}  // namespace

void channel_shift(DType t, const void* x, const int64_t* table, void* y, int64_t outer,
                   int64_t frames, int64_t rows, int64_t c, int64_t table_c, bool keep_first_row) {
  int64_t total = outer * frames * rows * c;
  if (total <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    channel_shift_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x), table, static_cast<T*>(y), frames, rows, c, table_c,
        keep_first_row, total);
  });
  VC_CUDA_LAUNCH("channel_shift");
}

void channel_shift_backward(DType t, const void* gy, const int64_t* table, void* gx,
                            int64_t outer, int64_t frames, int64_t rows, int64_t c,
                            int64_t table_c, bool keep_first_row) {
  int64_t total = outer * frames * rows * c;
  if (total <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    channel_shift_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(gy), table, static_cast<T*>(gx), frames, rows, c, table_c,
        keep_first_row, total);
  });
  VC_CUDA_LAUNCH("channel_shift_backward");
}

}  // namespace vc::cuda_kernels
