// Temporal channel shifts and STDD's window shift masking.
//
// Channel shift (TSM, Lin et al. 2019; STDD's multi-scale channel shift-mixing, stdd.md §2.4
// and §6.12): some channel groups of every token are read from another frame, parameter-free:
//   y[b, t, l, ch] = x[b, src(t, ch), l, ch]   (0 where src = -1: no wrap-around)
// driven by a table of source frames. STDD's scale-2 table falls back to the ±1 neighbour
// next to the clip ends, so one source frame can feed two outputs: the backward is a
// scatter-add over time, g_x[b, s, l, ch] = sum_{t : src(t, ch) = s} g_y[b, t, l, ch].
//
// Window shift masking (STDD, stdd.md §2.3 and §6.10-6.11, §9.2): in every w×w window of a
// frame, n_mask of the J = w² positions are masked, rotating from frame to frame; the
// visible tokens are gathered in canonical window order. Training draws a phase and a
// frame permutation per video; inference uses the fixed pattern (phase 0, no shuffle).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace vc {

// Source frame for each (frame t, channel ch < channels); -1 means zero fill. Channels at or
// beyond `channels` are not shifted.
struct ShiftTable {
  int64_t frames = 0, channels = 0;
  std::vector<int64_t> src;  // [frames * channels]
  int64_t at(int64_t t, int64_t ch) const { return src[size_t(t * channels + ch)]; }
};

// TSM-style: channels [0, fold) <- t - s, [fold, 2 fold) <- t + s, zero fill at the ends.
// (Equals STDD's "separate" mixing ablation, stdd.md §2.4, with fold = d0 and s = δ.)
ShiftTable tsm_shift_table(int64_t frames, int64_t fold, int64_t s = 1);

// STDD's channel shift-mixing at scale `scale` (stdd.md §2.4, the code's "continual" form):
// ch < d0: i* = max{i < scale : ch < floor(d0 / 2^i)}, k = min(i* + 1, t), source t - k;
// d0 <= ch < 2 d0: the mirror (ch' = 2 d0 - 1 - ch), k = min(i* + 1, T - 1 - t), source t + k;
// k = 0 gives zero.
ShiftTable mcm_shift_table(int64_t frames, int64_t d0, int64_t scale);

// x [B, T, ..., C] (axis 1 = time, last = channels). keep_first_token (x must be
// [B, T, L, C]) leaves token 0 of every frame unshifted (STDD's class token).
Tensor temporal_shift(const Tensor& x, const ShiftTable& table, bool keep_first_token = false);

// Frame offsets o[v, t] of the mask rule (stdd.md §2.3): training o = (π(t) + φ) mod J with
// φ uniform in [0, J) per video and π a random permutation (identity unless
// temporal_shuffle), drawn from Philox(seed, stream); inference o = t mod J.
// cells > 1 (spatial_repeat off, stdd.md §9.2): a phase φ_c per video and window, the same π,
// o[v, t, c] = (π(t) + φ_c) mod J; laid out [videos, frames, cells].
std::vector<int64_t> window_mask_offsets(int64_t videos, int64_t frames, int64_t window,
                                         bool training, bool temporal_shuffle, uint64_t seed,
                                         uint64_t stream, int64_t cells = 1);

// Visible patch ids q_t(n), int64 [videos, frames, N'] with N' = (G/w)² (w² - n_mask):
// inner position j of a window is masked iff (j - o_t) mod J < n_mask; the visible ones are
// listed window by window, j ascending, as raster patch ids q = row * G + col. `offsets`
// holds one offset per frame, or one per frame and window ((G/w)² per frame, window order).
Tensor window_mask_indices(const std::vector<int64_t>& offsets, int64_t videos, int64_t frames,
                           int64_t grid, int64_t window, int64_t n_mask);

// x [V·T, 1 + N, D] -> [V·T, 1 + N', D]: the class token, then the visible patches
// (stdd.md §6.11). Backward: scatter back (index_add).
Tensor window_mask_gather(const Tensor& x, const Tensor& visible);

// The padding merge (stdd.md §2.2d, §6.14): base [V·T, 1 + N, D] with its class row and
// visible rows replaced by u [V·T, 1 + N', D]. Backward: u gets those rows, base the rest.
Tensor window_mask_scatter(const Tensor& base, const Tensor& u, const Tensor& visible);

}  // namespace vc
