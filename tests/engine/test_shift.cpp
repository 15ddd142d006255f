// Channel shift (TSM, STDD's multi-scale channel shift-mixing) and window shift masking:
// the index tables of stdd.md §2.3-2.4 as exact tests, the adjoint identity, gradients.
#include "tests/common/testing.h"

using namespace vc;
using namespace vc::testing;

namespace {

constexpr int64_t Z = 99;  // "·" in the spec's tables: zero fill

// stdd.md §2.4, T = 8, d0 = 4, s = 2: source offsets (rows t, columns ch 0..7).
const int64_t kScale2[8][8] = {
    {Z, Z, Z, Z, +1, +1, +2, +2},         {-1, -1, -1, -1, +1, +1, +2, +2},
    {-2, -2, -1, -1, +1, +1, +2, +2},     {-2, -2, -1, -1, +1, +1, +2, +2},
    {-2, -2, -1, -1, +1, +1, +2, +2},     {-2, -2, -1, -1, +1, +1, +2, +2},
    {-2, -2, -1, -1, +1, +1, +1, +1},     {-2, -2, -1, -1, Z, Z, Z, Z},
};

// The spec's offset table as source frames (-1 = zero).
ShiftTable from_offsets(const int64_t (*off)[8], int64_t T) {
  ShiftTable t{T, 8, std::vector<int64_t>(T * 8)};
  for (int64_t f = 0; f < T; ++f)
    for (int64_t ch = 0; ch < 8; ++ch) t.src[f * 8 + ch] = off[f][ch] == Z ? -1 : f + off[f][ch];
  return t;
}

double dot(const Tensor& a, const Tensor& b) { return sum(mul(a, b)).item(); }

}  // namespace

TEST_CASE("special: STDD channel shift tables are the ones in stdd.md") {
  ShiftTable s2 = mcm_shift_table(8, 4, 2);
  CHECK(s2.frames == 8);
  CHECK(s2.channels == 8);
  CHECK(s2.src == from_offsets(kScale2, 8).src);
  // Scale 1: every row -1 x4, +1 x4, with zeros at t0 (ch 0-3) and t7 (ch 4-7).
  int64_t s1[8][8];
  for (int t = 0; t < 8; ++t)
    for (int ch = 0; ch < 8; ++ch)
      s1[t][ch] = ch < 4 ? (t == 0 ? Z : -1) : (t == 7 ? Z : +1);
  CHECK(mcm_shift_table(8, 4, 1).src == from_offsets(s1, 8).src);
  // B/16 layout, d0 = 24, s = 2: [0,12) <- t-2, [12,24) <- t-1, [24,36) <- t+1, [36,48) <- t+2.
  ShiftTable b16 = mcm_shift_table(8, 24, 2);
  CHECK(b16.channels == 48);
  for (int64_t ch = 0; ch < 48; ++ch) {
    int64_t want = ch < 12 ? 2 : ch < 24 ? 1 : ch < 36 ? -1 : -2;  // t - source at t = 4
    CHECK(4 - b16.at(4, ch) == want);
    if (ch < 12) CHECK(b16.at(1, ch) == 0);   // t = 1 falls back to t - 1
    if (ch >= 36) CHECK(b16.at(6, ch) == 7);  // t = T - 2 falls back to t + 1
  }
  // TSM / STDD's "separate" ablation: no fallback, plain zero fill.
  ShiftTable tsm = tsm_shift_table(4, 2, 2);
  CHECK(tsm.src == std::vector<int64_t>{-1, -1, 2, 2, -1, -1, 3, 3, 0, 0, -1, -1, 1, 1, -1, -1});
}

TEST_CASE("special: temporal_shift forward against a naive loop") {
  const int64_t B = 2, T = 8, L = 3, C = 10;
  Tensor x = randn({B, T, L, C}, 1);
  for (bool keep : {false, true}) {
    Tensor y = temporal_shift(x, from_offsets(kScale2, T), keep);
    std::vector<double> xv = values(x), yv = values(y);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t l = 0; l < L; ++l)
          for (int64_t ch = 0; ch < C; ++ch) {
            int64_t from = t;
            bool zero = false;
            if (ch < 8 && !(keep && l == 0)) {
              zero = kScale2[t][ch] == Z;
              from = t + (zero ? 0 : kScale2[t][ch]);
            }
            double want = zero ? 0.0 : xv[((b * T + from) * L + l) * C + ch];
            CHECK(yv[((b * T + t) * L + l) * C + ch] == want);
          }
  }
  // Three-dim input [B, T, C] (TSM on per-frame features).
  Tensor f = randn({2, 4, 5}, 2);
  Tensor g = temporal_shift(f, tsm_shift_table(4, 1, 1));
  CHECK(at(g, {0, 0, 0}) == 0.0);
  CHECK(at(g, {0, 2, 0}) == at(f, {0, 1, 0}));
  CHECK(at(g, {1, 2, 1}) == at(f, {1, 3, 1}));
  CHECK(at(g, {1, 3, 1}) == 0.0);
  CHECK(at(g, {1, 3, 4}) == at(f, {1, 3, 4}));
}

TEST_CASE("special: temporal_shift backward is the adjoint (scatter-add over time)") {
  const int64_t B = 3, T = 8, L = 5, C = 48;
  for (int64_t scale : {1, 2})
    for (bool keep : {false, true}) {
      ShiftTable tab = mcm_shift_table(T, 16, scale);
      Tensor x = randn({B, T, L, C}, 10 + scale), y = randn({B, T, L, C}, 20 + scale);
      Tensor xg = x.clone().detach();
      xg.set_requires_grad(true);
      temporal_shift(xg, tab, keep).backward(y);
      // <shift(x), y> = <x, shift^T(y)>
      double lhs = dot(temporal_shift(x, tab, keep), y), rhs = dot(x, xg.grad());
      CHECK(std::abs(lhs - rhs) < 1e-10 * (1 + std::abs(lhs)));
    }
  // The scale-2 boundary: frame 0's [0, d0/2) channels feed t = 1 and t = 2, so its gradient
  // is the sum of both (an inverse-permutation backward would give only one), and frame 7's
  // feed nothing there.
  Tensor x = randn({1, 8, 1, 8}, 30);
  x.set_requires_grad(true);
  Tensor gy = randn({1, 8, 1, 8}, 31);
  temporal_shift(x, mcm_shift_table(8, 4, 2)).backward(gy);
  CHECK(std::abs(at(x.grad(), {0, 0, 0, 0}) - (at(gy, {0, 1, 0, 0}) + at(gy, {0, 2, 0, 0}))) < 1e-15);
  CHECK(at(x.grad(), {0, 7, 0, 1}) == 0.0);
  CHECK(std::abs(at(x.grad(), {0, 7, 0, 6}) - (at(gy, {0, 6, 0, 6}) + at(gy, {0, 5, 0, 6}))) < 1e-15);
  gradcheck([](const TensorList& in) { return temporal_shift(in[0], mcm_shift_table(4, 2, 2), true); },
            {randn({2, 4, 3, 6}, 32)}, "temporal_shift");
}

TEST_CASE("special: temporal_shift is the same for 1 and 2 threads") {
  Tensor x = randn({8, 8, 99, 768}, 40, DType::F32);
  ShiftTable tab = mcm_shift_table(8, 24, 2);
  int before = num_threads();
  set_num_threads(1);
  Tensor x1 = x.clone().detach();
  x1.set_requires_grad(true);
  Tensor y1 = temporal_shift(x1, tab, true);
  y1.backward(x);
  set_num_threads(2);
  Tensor x2 = x.clone().detach();
  x2.set_requires_grad(true);
  Tensor y2 = temporal_shift(x2, tab, true);
  y2.backward(x);
  set_num_threads(before);
  CHECK(hash_bits(y1) == hash_bits(y2));
  CHECK(hash_bits(x1.grad()) == hash_bits(x2.grad()));
}

TEST_CASE("special: window shift masking reproduces the stdd.md test vector") {
  // G = 4, T = 4, w = 2, n_mask = 2, phase 0 and no shuffle (the inference pattern).
  std::vector<int64_t> offsets = window_mask_offsets(1, 4, 2, /*training=*/false, true, 0, 0);
  CHECK(offsets == std::vector<int64_t>{0, 1, 2, 3});
  Tensor q = window_mask_indices(offsets, 1, 4, 4, 2, 2);
  REQUIRE(q.shape() == Shape{1, 4, 8});
  CHECK(q.to_vector<int64_t>() == std::vector<int64_t>{
                                      4, 5, 6, 7, 12, 13, 14, 15,   // t0: bottom rows
                                      0, 5, 2, 7, 8, 13, 10, 15,    // t1: diagonal
                                      0, 1, 2, 3, 8, 9, 10, 11,     // t2: top rows
                                      1, 4, 3, 6, 9, 12, 11, 14});  // t3: anti-diagonal
  // B/16: 14x14 grid, 98 visible tokens per frame.
  CHECK(window_mask_indices(window_mask_offsets(2, 8, 2, false, true, 0, 0), 2, 8, 14, 2, 2).shape() ==
        Shape{2, 8, 98});
}

TEST_CASE("special: window shift masking in training keeps m per window and covers evenly") {
  const int64_t V = 5, T = 8, G = 6, w = 2;
  std::vector<int64_t> o1 = window_mask_offsets(V, T, w, true, true, 17, 3);
  CHECK(o1 == window_mask_offsets(V, T, w, true, true, 17, 3));  // seeded
  CHECK(o1 != window_mask_offsets(V, T, w, true, true, 17, 4));
  Tensor q = window_mask_indices(o1, V, T, G, w, 2);
  std::vector<int64_t> qv = q.to_vector<int64_t>();
  int64_t per = (G / w) * (G / w) * 2;
  REQUIRE(q.shape() == Shape{V, T, per});
  for (int64_t v = 0; v < V; ++v) {
    std::vector<int64_t> seen(G * G, 0);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<int64_t> in_window((G / w) * (G / w), 0);
      for (int64_t n = 0; n < per; ++n) {
        int64_t p = qv[(v * T + t) * per + n], row = p / G, col = p % G;
        ++in_window[(row / w) * (G / w) + col / w];
        ++seen[p];
        CHECK((row / w) * (G / w) + col / w == n / 2);  // canonical order: window by window
      }
      for (int64_t c : in_window) CHECK(c == 2);
    }
    for (int64_t s : seen) CHECK(s == T * 2 / 4);  // T a multiple of J: even coverage
  }
}

TEST_CASE("special: window mask gather and scatter") {
  const int64_t V = 1, T = 4, G = 4, D = 3;
  Tensor vis = window_mask_indices(window_mask_offsets(V, T, 2, false, false, 0, 0), V, T, G, 2, 2);
  Tensor x = randn({V * T, 1 + G * G, D}, 50);
  Tensor xs = window_mask_gather(x, vis);
  REQUIRE(xs.shape() == Shape{V * T, 9, D});
  std::vector<int64_t> qv = vis.to_vector<int64_t>();
  for (int64_t f = 0; f < T; ++f)
    for (int64_t k = 0; k < D; ++k) {
      CHECK(at(xs, {f, 0, k}) == at(x, {f, 0, k}));
      for (int64_t n = 0; n < 8; ++n) CHECK(at(xs, {f, 1 + n, k}) == at(x, {f, 1 + qv[f * 8 + n], k}));
    }
  Tensor u = randn({V * T, 9, D}, 51);
  Tensor z = window_mask_scatter(x, u, vis);
  for (int64_t f = 0; f < T; ++f) {
    std::vector<int> visible(G * G, 0);
    for (int64_t n = 0; n < 8; ++n) visible[qv[f * 8 + n]] = 1;
    for (int64_t k = 0; k < D; ++k) {
      CHECK(at(z, {f, 0, k}) == at(u, {f, 0, k}));
      for (int64_t n = 0; n < 8; ++n) CHECK(at(z, {f, 1 + qv[f * 8 + n], k}) == at(u, {f, 1 + n, k}));
      for (int64_t p = 0; p < G * G; ++p)
        if (!visible[p]) CHECK(at(z, {f, 1 + p, k}) == at(x, {f, 1 + p, k}));
    }
  }
  gradcheck([&](const TensorList& in) { return window_mask_gather(in[0], vis); }, {x},
            "window_mask_gather");
  gradcheck([&](const TensorList& in) { return window_mask_scatter(in[0], in[1], vis); }, {x, u},
            "window_mask_scatter");
}

TEST_CASE("window mask: a phase per window (spatial_repeat off) against a naive loop") {
  // G = 4 (4 windows), T = 4, training draws with one phase per window.
  const int64_t V = 2, T = 4, G = 4, w = 2, cells = 4;
  std::vector<int64_t> o = window_mask_offsets(V, T, w, true, true, 7, 3, cells);
  REQUIRE(o.size() == size_t(V * T * cells));
  // cells = 1 keeps the one-phase counter layout: the same draw as the default call.
  CHECK(window_mask_offsets(V, T, w, true, true, 7, 3, 1) == window_mask_offsets(V, T, w, true, true, 7, 3));
  std::vector<int64_t> q = window_mask_indices(o, V, T, G, w, 2).to_vector<int64_t>();
  for (int64_t vt = 0; vt < V * T; ++vt)
    for (int64_t c = 0; c < cells; ++c) {
      std::vector<int64_t> want;  // naive: inner j visible iff (j - o) mod 4 >= 2, ascending
      for (int64_t j = 0; j < 4; ++j)
        if (((j - o[vt * cells + c]) % 4 + 4) % 4 >= 2)
          want.push_back((2 * (c / 2) + j / 2) * G + 2 * (c % 2) + j % 2);
      CHECK(std::vector<int64_t>(q.begin() + vt * 8 + c * 2, q.begin() + vt * 8 + c * 2 + 2) == want);
    }
}
