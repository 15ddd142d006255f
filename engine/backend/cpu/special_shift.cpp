// Temporal channel shift (TSM; STDD's multi-scale channel shift-mixing, stdd.md §2.4),
// driven by a [frames, table_c] table of source frames (-1 = zero fill). The backward is the
// adjoint of that gather: a scatter-add over time, computed by the owner of each input
// element, adding the output frames that read it in increasing t.
#include <cstring>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

void channel_shift(DType t, const void* x, const int64_t* table, void* y, int64_t outer,
                   int64_t frames, int64_t rows, int64_t c, int64_t table_c, bool keep_first_row) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    int64_t frame_len = rows * c;
#pragma omp parallel for schedule(static) if (outer * frames * frame_len > 32768)
    for (int64_t of = 0; of < outer * frames; ++of) {
      int64_t o = of / frames, f = of % frames;
      const int64_t* tab = table + f * table_c;
      for (int64_t l = 0; l < rows; ++l) {
        T* out = yp + of * frame_len + l * c;
        const T* same = xp + of * frame_len + l * c;
        if (keep_first_row && l == 0) {
          std::memcpy(out, same, size_t(c) * sizeof(T));
          continue;
        }
        for (int64_t ch = 0; ch < table_c; ++ch) {
          int64_t s = tab[ch];
          out[ch] = s < 0 ? T(0) : xp[(o * frames + s) * frame_len + l * c + ch];
        }
        std::memcpy(out + table_c, same + table_c, size_t(c - table_c) * sizeof(T));
      }
    }
  });
}

void channel_shift_backward(DType t, const void* gy, const int64_t* table, void* gx,
                            int64_t outer, int64_t frames, int64_t rows, int64_t c,
                            int64_t table_c, bool keep_first_row) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = static_cast<const T*>(gy);
    T* gxp = static_cast<T*>(gx);
    int64_t frame_len = rows * c;
#pragma omp parallel for schedule(static) if (outer * frames * frame_len > 32768)
    for (int64_t os = 0; os < outer * frames; ++os) {
      int64_t o = os / frames, s = os % frames;
      for (int64_t l = 0; l < rows; ++l) {
        T* out = gxp + os * frame_len + l * c;
        const T* same = gyp + os * frame_len + l * c;
        if (keep_first_row && l == 0) {
          std::memcpy(out, same, size_t(c) * sizeof(T));
          continue;
        }
        for (int64_t ch = 0; ch < table_c; ++ch) {
          T acc = 0;
          for (int64_t f = 0; f < frames; ++f)
            if (table[f * table_c + ch] == s) acc += gyp[(o * frames + f) * frame_len + l * c + ch];
          out[ch] = acc;
        }
        std::memcpy(out + table_c, same + table_c, size_t(c - table_c) * sizeof(T));
      }
    }
  });
}

}  // namespace vc::cpu_kernels
