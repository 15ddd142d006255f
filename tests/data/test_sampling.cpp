// Frame sampling: exact indices of ecosystem.md §2.1–2.4 on short and long videos.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "data/sampling.h"

using namespace vc::data;
using V = std::vector<int64_t>;

static SampleRng rng_for(uint64_t seed = 3) { return SampleRng(seed, 0, 0, RngPurpose::Sampling, 11); }

TEST_CASE("TSN test: segment centres int(i*a + a/2)") {
  // N = 100, T = 8: a = 12.5 -> 6.25, 18.75, 31.25, ...
  CHECK(segment_offsets_test(100, 8, 1) == V{6, 18, 31, 43, 56, 68, 81, 93});
  // Short video, N = 5 < T: a = 0.625 -> 0.3125, 0.9375, 1.5625, 2.1875, 2.8125, 3.4375, 4.0625, 4.6875
  CHECK(segment_offsets_test(5, 8, 1) == V{0, 0, 1, 2, 2, 3, 4, 4});
  // N < L: all zeros
  CHECK(segment_offsets_test(3, 4, 5) == V{0, 0, 0, 0});
}

TEST_CASE("TSN test with several views: position (k+1)/(n+1) inside each segment") {
  // N = 100, T = 4, a = 25: view 0 at 25/3 = 8.33, view 1 at 16.67
  CHECK(segment_offsets_test(100, 4, 1, 0, 2) == V{8, 33, 58, 83});
  CHECK(segment_offsets_test(100, 4, 1, 1, 2) == V{16, 41, 66, 91});
}

TEST_CASE("TSN train: one random frame per segment of length floor((N-L+1)/T)") {
  SampleRng a = rng_for(), b = rng_for();
  V off = segment_offsets_train(100, 8, 1, a);
  // The same draws by hand: randint(12) = floor(u * 12).
  for (int64_t i = 0; i < 8; ++i) {
    int64_t expect = i * 12 + int64_t(b.uniform() * 12);
    CHECK(off[size_t(i)] == expect);
    CHECK(off[size_t(i)] >= i * 12);
    CHECK(off[size_t(i)] < (i + 1) * 12);
  }
  // Different seeds give different picks somewhere.
  SampleRng c = rng_for(4);
  CHECK(segment_offsets_train(100, 8, 1, c) != off);
}

TEST_CASE("TSN train short-video fallbacks") {
  SampleRng r = rng_for();
  // a = 0 and N <= T: round(i * N/T) with numpy's half-to-even (2.5 -> 2).
  CHECK(segment_offsets_train(5, 8, 1, r) == V{0, 1, 1, 2, 2, 3, 4, 4});
  // a = 0 but N > max(T, L): T sorted random offsets in [0, N-L].
  V s = segment_offsets_train(10, 8, 4, r);
  CHECK(std::is_sorted(s.begin(), s.end()));
  for (int64_t v : s) CHECK((v >= 0 && v <= 6));
  // N - L + 1 < 0: all zeros.
  CHECK(segment_offsets_train(2, 8, 4, r) == V{0, 0, 0, 0, 0, 0, 0, 0});
  // a = 1 exactly: every segment has one frame, no randomness left.
  CHECK(segment_offsets_train(8, 8, 1, r) == V{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("sample_frames: clip_len expansion, wrap or repeat past the end") {
  SampleRng r = rng_for();
  SamplerOptions o;
  o.num_segments = 2;
  o.clip_len = 4;  // L = 4
  // N = 2 < L: offsets 0, frames 0..3 wrap modulo 2 ...
  CHECK(sample_frames(2, o, false, r) == V{0, 1, 0, 1, 0, 1, 0, 1});
  // ... or repeat the last frame.
  o.out_of_bound = OutOfBound::Repeat;
  CHECK(sample_frames(2, o, false, r) == V{0, 1, 1, 1, 0, 1, 1, 1});
  // N = 9, T = 8, L = 2: a = 1, offsets 0..7, frames (i, i+1).
  SamplerOptions p;
  p.clip_len = 2;
  CHECK(sample_frames(9, p, true, r) == V{0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8});
}

TEST_CASE("dense sampling: clip_len x interval, evenly spaced test views") {
  SampleRng r = rng_for();
  SamplerOptions o;
  o.kind = SamplerKind::Dense;
  o.clip_len = 8;
  o.interval = 4;
  // N = 100: delta = 68; one view starts at 34.
  CHECK(sample_frames(100, o, false, r) == V{34, 38, 42, 46, 50, 54, 58, 62});
  // Three views: k * floor(68 / 2) = 0, 34, 68.
  CHECK(sample_frames(100, o, false, r, 2, 3)[0] == 68);
  CHECK(sample_frames(100, o, false, r, 1, 3)[0] == 34);
  // Short video N = 20 < 32: delta 0, frames past the end wrap.
  CHECK(sample_frames(20, o, false, r) == V{0, 4, 8, 12, 16, 0, 4, 8});
  // Train: one random start in [0, delta].
  std::set<int64_t> starts;
  for (uint64_t s = 0; s < 200; ++s) {
    SampleRng q(s, 0, 0, RngPurpose::Sampling, 0);
    V f = sample_frames(100, o, true, q);
    CHECK((f[0] >= 0 && f[0] <= 68));
    CHECK(f[7] - f[0] == 28);
    starts.insert(f[0]);
  }
  CHECK(starts.size() > 40);
}

TEST_CASE("X-CLIP quirk: random test views use the training sampler") {
  SamplerOptions o;
  o.num_segments = 8;
  o.random_test_views = true;
  SampleRng a = rng_for(1), b = rng_for(2);
  V va = sample_frames(100, o, false, a), vb = sample_frames(100, o, false, b);
  CHECK(va != vb);
  CHECK(va != segment_offsets_test(100, 8, 1));
  for (size_t i = 0; i < 8; ++i) CHECK((va[i] >= int64_t(i) * 12 && va[i] < int64_t(i + 1) * 12));
}
