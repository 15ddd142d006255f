// Which frames a clip uses (ecosystem.md §2.1–2.4). Indices returned are 0-based positions
// within the video; the dataset adds the list offset and the frame template's start index.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/rng.h"

namespace vc::data {

enum class SamplerKind {
  Segment,  // TSN / mmaction2 SampleFrames(clip_len, interval, num_clips = T): the default
  Dense,    // one clip of clip_len frames at stride interval (PySlowFast / STDD "8x16")
};
enum class OutOfBound { Loop, Repeat };  // wrap modulo N (mmaction2 'loop') or repeat last frame

struct SamplerOptions {
  SamplerKind kind = SamplerKind::Segment;
  int64_t num_segments = 8;  // T for segment sampling (num_clips in mmaction2 terms)
  int64_t clip_len = 1;      // frames per segment (segment), frames per clip (dense)
  int64_t interval = 1;      // frame_interval
  OutOfBound out_of_bound = OutOfBound::Loop;
  // X-CLIP / ViFi / TC-CLIP quirk: multi-view testing draws each view with the random
  // training sampler instead of the deterministic test positions.
  bool random_test_views = false;
  int64_t frames_per_clip() const { return kind == SamplerKind::Segment ? num_segments * clip_len : clip_len; }
};
SamplerKind parse_sampler_kind(const std::string& s);  // segment | dense

// mmaction2 training sampler: a = floor((N-L+1)/T); random frame in each segment, with the
// short-video fallbacks of §2.1 (numpy's round-half-to-even in the a == 0 branch).
std::vector<int64_t> segment_offsets_train(int64_t N, int64_t T, int64_t L, SampleRng& rng);
// Test: segment centres int(i·a + a/2) with a = (N-L+1)/T as a float. With several views,
// view k of n sits at int(i·a + a·(k+1)/(n+1)) (n = 1 gives the centre).
std::vector<int64_t> segment_offsets_test(int64_t N, int64_t T, int64_t L, int64_t view = 0,
                                          int64_t num_views = 1);
// Dense: delta = max(N - clip_len·interval, 0); train start uniform in [0, delta]; test view
// k of n starts at k·floor(delta/(n-1)) (n = 1: floor(delta/2)), PySlowFast's evenly spaced.
int64_t dense_start_train(int64_t N, int64_t clip_len, int64_t interval, SampleRng& rng);
int64_t dense_start_test(int64_t N, int64_t clip_len, int64_t interval, int64_t view,
                         int64_t num_views);

// The full frame list for one clip: segment offsets expanded by clip_len·interval (or the
// dense clip), out-of-range indices wrapped or clamped. `train` picks the random sampler.
std::vector<int64_t> sample_frames(int64_t N, const SamplerOptions& opt, bool train,
                                   SampleRng& rng, int64_t view = 0, int64_t num_views = 1);

}  // namespace vc::data
