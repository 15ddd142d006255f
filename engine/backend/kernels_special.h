// Kernels of the special family: the seed papers' own operators (token merging, channel
// shifts, top-k). Same rules as backend.h: raw pointers to contiguous data, sizes, one
// owner per output element, sums in a fixed order, results independent of thread count.
#pragma once
#include <cstdint>
#include "engine/core/dtype.h"

namespace vc {

struct SpecialKernels {
  // ---- ToMe bipartite soft matching (ALT, TC-CLIP) ----
  // metric [batch, n, c]. Per batch row: A = even positions (A-index a <-> 2a, nA = ceil(n/2)),
  // B = odd positions (b <-> 2b + 1, nB = n / 2); cosine score[a, b]; best partner of each a
  // (smallest b on ties); A ranked by best score, descending, stable (smaller a first). With
  // protect_first, a = 0 is never a source. Writes src [batch, r] (the first r of the ranking),
  // dst [batch, r] (their B partners) and unm [batch, nA - r] (the rest, ascending by a when
  // unm_by_position, else in ranking order). The caller guarantees r <= nB (and r < nA when
  // protect_first).
  void (*bipartite_match)(DType t, const void* metric, int64_t batch, int64_t n, int64_t c,
                          int64_t r, bool protect_first, bool unm_by_position, int64_t* unm,
                          int64_t* src, int64_t* dst);
  // x [batch, n, c] -> y [batch, n - r, c] = [x_A[unm]..., merged B...]. With sizes
  // [batch, n] (not null): size-weighted average into each B token and new_sizes
  // [batch, n - r] = summed sizes. With sizes == null: a plain sum and new_sizes unused.
  // Each B token adds its own row first, then its sources in increasing a.
  void (*token_merge)(DType t, const void* x, const void* sizes, const int64_t* unm,
                      const int64_t* src, const int64_t* dst, void* y, void* new_sizes,
                      int64_t batch, int64_t n, int64_t r, int64_t c);
  // The adjoint of token_merge: gx [batch, n, c] from gy [batch, n - r, c]. Every input row
  // has one output slot, so this is a gather: gx[row] = w(row) * gy[slot(row)], with
  // w = size / new size (or 1 when sizes == null, which makes this the unmerge).
  void (*token_merge_backward)(DType t, const void* gy, const void* sizes,
                               const void* new_sizes, const int64_t* unm, const int64_t* src,
                               const int64_t* dst, void* gx, int64_t batch, int64_t n,
                               int64_t r, int64_t c);

  // ---- temporal channel shift (TSM, STDD's multi-scale channel mixing) ----
  // x, y [outer, frames, rows, c]. For channel ch < table_c, y[o, t, l, ch] =
  // x[o, table[t * table_c + ch], l, ch], or 0 where the table holds -1; channels >= table_c
  // (and row 0 when keep_first_row) are copied from frame t.
  void (*channel_shift)(DType t, const void* x, const int64_t* table, void* y, int64_t outer,
                        int64_t frames, int64_t rows, int64_t c, int64_t table_c,
                        bool keep_first_row);
  // The adjoint: gx[o, s, l, ch] = sum over t (increasing) with table[t, ch] == s of
  // gy[o, t, l, ch]. A source frame may feed several outputs or none (scale-2 boundaries).
  void (*channel_shift_backward)(DType t, const void* gy, const int64_t* table, void* gx,
                                 int64_t outer, int64_t frames, int64_t rows, int64_t c,
                                 int64_t table_c, bool keep_first_row);

  // ---- top-k / argsort ----
  // Rows of x [rows, n]: the k first elements of the order (value descending when largest,
  // else ascending; NaN counts as the largest value; ties by lower index). Writes idx
  // [rows, k] and, when values is not null, values [rows, k].
  void (*topk)(DType t, const void* x, void* values, int64_t* idx, int64_t rows, int64_t n,
               int64_t k, bool largest);
};

}  // namespace vc
