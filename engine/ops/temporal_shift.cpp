// Temporal channel shift (forward: a table-driven gather over time; backward: its adjoint,
// a scatter-add over time done by the owner of each input element) and STDD's window shift
// masking (integer index rules, then gathers composed from index_select).
#include "engine/ops/temporal_shift.h"

#include <algorithm>
#include <numeric>

#include "engine/ops/index.h"
#include "engine/ops/op.h"
#include "engine/rng/philox.h"

namespace vc {

ShiftTable tsm_shift_table(int64_t frames, int64_t fold, int64_t s) {
  VC_CHECK(frames >= 1 && fold >= 0 && s >= 0, "tsm_shift_table: frames ", frames, ", fold ",
           fold, ", shift ", s);
  ShiftTable tab{frames, 2 * fold, std::vector<int64_t>(size_t(frames * 2 * fold))};
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t ch = 0; ch < 2 * fold; ++ch) {
      int64_t from = ch < fold ? t - s : t + s;
      tab.src[t * 2 * fold + ch] = from >= 0 && from < frames ? from : -1;
    }
  return tab;
}

ShiftTable mcm_shift_table(int64_t frames, int64_t d0, int64_t scale) {
  VC_CHECK(frames >= 1 && d0 >= 0 && scale >= 1, "mcm_shift_table: frames ", frames, ", d0 ",
           d0, ", scale ", scale);
  // i* = the largest i < scale with ch < floor(d0 / 2^i): finer slots reach further back.
  auto reach = [&](int64_t ch) {
    int64_t best = 0;
    for (int64_t i = 0; i < scale && i < 62; ++i)
      if (ch < (d0 >> i)) best = i;
    return best + 1;
  };
  ShiftTable tab{frames, 2 * d0, std::vector<int64_t>(size_t(frames * 2 * d0))};
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t ch = 0; ch < 2 * d0; ++ch) {
      bool past = ch < d0;
      // The code writes the scales one after another, so a frame without t - 2 keeps the
      // t - 1 value: the reach is clamped to the frames that exist (stdd.md §2.4).
      int64_t k = std::min(reach(past ? ch : 2 * d0 - 1 - ch), past ? t : frames - 1 - t);
      tab.src[t * 2 * d0 + ch] = k == 0 ? -1 : (past ? t - k : t + k);
    }
  return tab;
}

Tensor temporal_shift(const Tensor& x_in, const ShiftTable& table, bool keep_first_token) {
  check_floating("temporal_shift", x_in);
  VC_CHECK(x_in.dim() >= 3, "temporal_shift: x must be [B, T, ..., C], got ", x_in.shape());
  VC_CHECK(!keep_first_token || x_in.dim() == 4,
           "temporal_shift: keep_first_token needs x [B, T, L, C], got ", x_in.shape());
  int64_t outer = x_in.size(0), frames = x_in.size(1), c = x_in.size(-1);
  int64_t rows = c && frames && outer ? x_in.numel() / (outer * frames * c) : 0;
  VC_CHECK(table.frames == frames && table.channels <= c &&
               int64_t(table.src.size()) == frames * table.channels,
           "temporal_shift: table for ", table.frames, " frames and ", table.channels,
           " channels does not fit x ", x_in.shape());
  for (int64_t s : table.src)
    VC_CHECK(s >= -1 && s < frames, "temporal_shift: source frame ", s, " outside [-1, ",
             frames, ")");
  OpScope op("temporal_shift", {x_in});
  Tensor x = x_in.contiguous().detach();
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  // The table travels as an int64 tensor so a device backend can read it.
  Tensor tab = Tensor::from_vector(table.src.empty() ? std::vector<int64_t>{-1} : table.src,
                                   {std::max<int64_t>(1, int64_t(table.src.size()))})
                   .to(x.device());
  int64_t tc = table.channels;
  if (x.numel())
    backend_of(x).special.channel_shift(x.dtype(), x.raw(), tab.data<int64_t>(), y.raw(), outer,
                                        frames, rows, c, tc, keep_first_token);
  Shape shape = x.shape();
  return op.finish(y, [=](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor gx = make_tensor(shape, g.dtype(), g.device());
    if (g.numel())
      backend_of(g).special.channel_shift_backward(g.dtype(), g.raw(), tab.data<int64_t>(),
                                                   gx.raw(), outer, frames, rows, c, tc,
                                                   keep_first_token);
    return TensorList{gx};
  });
}

std::vector<int64_t> window_mask_offsets(int64_t videos, int64_t frames, int64_t window,
                                         bool training, bool temporal_shuffle, uint64_t seed,
                                         uint64_t stream, int64_t cells) {
  int64_t J = window * window;
  VC_CHECK(videos >= 0 && frames >= 1 && window >= 1 && cells >= 1, "window_mask_offsets: ",
           videos, " videos, ", frames, " frames, window ", window, ", ", cells, " phase cells");
  std::vector<int64_t> out(size_t(videos * frames * cells));
  for (int64_t v = 0; v < videos; ++v) {
    std::vector<int64_t> perm(frames);
    std::iota(perm.begin(), perm.end(), 0);
    std::vector<int64_t> phase(size_t(cells), 0);
    if (training) {
      // Counters v * (frames + cells) + k: draws 0..cells-1 are the phases, the rest the
      // Fisher-Yates swaps (cells = 1 keeps the one-phase layout).
      uint64_t base = uint64_t(v) * uint64_t(frames + cells);
      for (int64_t c = 0; c < cells; ++c)
        phase[c] = std::min<int64_t>(J - 1, int64_t(philox_uniform(seed, stream, base + uint64_t(c)) * J));
      if (temporal_shuffle)
        for (int64_t i = frames - 1; i > 0; --i) {
          double u = philox_uniform(seed, stream, base + uint64_t(cells) + uint64_t(i));
          std::swap(perm[i], perm[std::min<int64_t>(i, int64_t(u * (i + 1)))]);
        }
    }
    for (int64_t t = 0; t < frames; ++t)
      for (int64_t c = 0; c < cells; ++c) out[(v * frames + t) * cells + c] = (perm[t] + phase[c]) % J;
  }
  return out;
}

Tensor window_mask_indices(const std::vector<int64_t>& offsets, int64_t videos, int64_t frames,
                           int64_t grid, int64_t window, int64_t n_mask) {
  int64_t J = window * window;
  int64_t cells_side = window >= 1 ? grid / window : 0, cells = cells_side * cells_side;
  const int64_t frames_total = videos * frames;
  VC_CHECK(window >= 1 && grid % window == 0 && n_mask >= 0 && n_mask < J &&
               (int64_t(offsets.size()) == frames_total ||
                int64_t(offsets.size()) == frames_total * cells),
           "window_mask_indices: grid ", grid, ", window ", window, ", n_mask ", n_mask, ", ",
           offsets.size(), " offsets for ", videos, "x", frames, " frames (one per frame, or one per frame and window)");
  const bool per_cell = int64_t(offsets.size()) != frames_total || cells == 1;
  int64_t keep = J - n_mask;
  int64_t visible = cells * keep;
  std::vector<int64_t> q(size_t(videos * frames * visible));
  for (int64_t vt = 0; vt < frames_total; ++vt) {
    std::vector<std::vector<int64_t>> kept_of(size_t(per_cell ? cells : 1));  // V_t per phase cell
    for (size_t c = 0; c < kept_of.size(); ++c) {
      int64_t o = offsets[per_cell ? vt * cells + int64_t(c) : vt];
      for (int64_t j = 0; j < J; ++j)
        if (((j - o) % J + J) % J >= n_mask) kept_of[c].push_back(j);  // ascending
    }
    for (int64_t n = 0; n < visible; ++n) {
      int64_t cell = n / keep, j = kept_of[per_cell ? size_t(cell) : 0][n % keep];
      int64_t row = window * (cell / cells_side) + j / window;
      int64_t col = window * (cell % cells_side) + j % window;
      q[vt * visible + n] = row * grid + col;
    }
  }
  return Tensor::from_vector(q, {videos, frames, visible});
}

namespace {
// Flat row ids into x viewed as [V·T·L, D] for the class row and the visible rows.
std::vector<int64_t> visible_rows(const Tensor& visible, int64_t bt, int64_t tokens) {
  VC_CHECK(visible.dtype() == DType::I64 && visible.numel() % std::max<int64_t>(bt, 1) == 0,
           "window_mask: visible ids ", visible.shape(), " do not fit ", bt, " frames");
  std::vector<int64_t> q = visible.to_vector<int64_t>();
  int64_t per = bt ? int64_t(q.size()) / bt : 0;
  std::vector<int64_t> rows;
  rows.reserve(size_t(bt * (per + 1)));
  for (int64_t f = 0; f < bt; ++f) {
    rows.push_back(f * tokens);
    for (int64_t n = 0; n < per; ++n) {
      int64_t p = q[f * per + n];
      VC_CHECK(p >= 0 && p + 1 < tokens, "window_mask: patch id ", p, " outside [0, ",
               tokens - 1, ")");
      rows.push_back(f * tokens + 1 + p);
    }
  }
  return rows;
}
}  // namespace

Tensor window_mask_gather(const Tensor& x, const Tensor& visible) {
  VC_CHECK(x.dim() == 3, "window_mask_gather: x must be [V·T, 1 + N, D], got ", x.shape());
  int64_t bt = x.size(0), tokens = x.size(1), d = x.size(2);
  std::vector<int64_t> rows = visible_rows(visible, bt, tokens);
  Tensor idx = Tensor::from_vector(rows, {int64_t(rows.size())}).to(x.device());
  return index_select(x.reshape({bt * tokens, d}), 0, idx)
      .reshape({bt, bt ? int64_t(rows.size()) / bt : 0, d});
}

Tensor window_mask_scatter(const Tensor& base, const Tensor& u, const Tensor& visible) {
  VC_CHECK(base.dim() == 3 && u.dim() == 3 && u.size(0) == base.size(0) &&
               u.size(2) == base.size(2),
           "window_mask_scatter: base ", base.shape(), " and u ", u.shape(), " do not fit");
  int64_t bt = base.size(0), tokens = base.size(1), d = base.size(2);
  std::vector<int64_t> rows = visible_rows(visible, bt, tokens);
  VC_CHECK(int64_t(rows.size()) == bt * u.size(1), "window_mask_scatter: u ", u.shape(),
           " for ", rows.size(), " visible rows");
  // Row i of the result reads [base; u] at i, or at base's row count + j when i is the j-th
  // visible row: one index_select, whose backward routes each gradient row to its one source.
  std::vector<int64_t> from(size_t(bt * tokens));
  std::iota(from.begin(), from.end(), 0);
  for (size_t j = 0; j < rows.size(); ++j) from[rows[j]] = bt * tokens + int64_t(j);
  Tensor idx = Tensor::from_vector(from, {bt * tokens}).to(base.device());
  Tensor both = concat({base.reshape({bt * tokens, d}), u.reshape({-1, d})}, 0);
  return index_select(both, 0, idx).reshape({bt, tokens, d});
}

}  // namespace vc
