#include "data/sampling.h"

#include <algorithm>
#include <cmath>

#include "data/util.h"

namespace vc::data {

SamplerKind parse_sampler_kind(const std::string& s) {
  if (s == "segment" || s == "tsn") return SamplerKind::Segment;
  if (s == "dense") return SamplerKind::Dense;
  fail("unknown frame sampler '", s, "' (use segment or dense)");
}

std::vector<int64_t> segment_offsets_train(int64_t N, int64_t T, int64_t L, SampleRng& rng) {
  VC_CHECK(N > 0 && T > 0 && L > 0, "segment sampling: need N, T, L > 0, got N=", N, " T=", T, " L=", L);
  std::vector<int64_t> off(size_t(T), 0);
  int64_t avg = (N - L + 1) / T;
  if (N - L + 1 < 0) avg = -1;  // python floor division of a negative number
  if (avg > 0) {
    for (int64_t i = 0; i < T; ++i) off[i] = i * avg + rng.randint(avg);
  } else if (N > std::max(T, L)) {
    for (int64_t i = 0; i < T; ++i) off[i] = rng.randint(N - L + 1);
    std::sort(off.begin(), off.end());
  } else if (avg == 0) {
    double ratio = double(N - L + 1) / double(T);
    for (int64_t i = 0; i < T; ++i) off[i] = int64_t(std::nearbyint(double(i) * ratio));
  }  // else: all zeros
  return off;
}

std::vector<int64_t> segment_offsets_test(int64_t N, int64_t T, int64_t L, int64_t view,
                                          int64_t num_views) {
  VC_CHECK(N > 0 && T > 0 && L > 0, "segment sampling: need N, T, L > 0, got N=", N, " T=", T, " L=", L);
  std::vector<int64_t> off(size_t(T), 0);
  if (N > L - 1) {
    double a = double(N - L + 1) / double(T);
    double pos = a * double(view + 1) / double(num_views + 1);
    for (int64_t i = 0; i < T; ++i) off[i] = int64_t(double(i) * a + pos);
  }
  return off;
}

int64_t dense_start_train(int64_t N, int64_t clip_len, int64_t interval, SampleRng& rng) {
  int64_t delta = std::max<int64_t>(N - clip_len * interval, 0);
  return rng.randint(delta + 1);
}

int64_t dense_start_test(int64_t N, int64_t clip_len, int64_t interval, int64_t view,
                         int64_t num_views) {
  int64_t delta = std::max<int64_t>(N - clip_len * interval, 0);
  if (num_views <= 1) return delta / 2;
  return view * (delta / (num_views - 1));
}

std::vector<int64_t> sample_frames(int64_t N, const SamplerOptions& opt, bool train,
                                   SampleRng& rng, int64_t view, int64_t num_views) {
  VC_CHECK(N > 0, "frame sampling: the video has no frames");
  VC_CHECK(opt.clip_len > 0 && opt.interval > 0 && opt.num_segments > 0,
           "frame sampling: clip_len, interval and segments must be positive");
  bool random = train || opt.random_test_views;
  std::vector<int64_t> starts;
  int64_t per_start;
  if (opt.kind == SamplerKind::Segment) {
    int64_t L = opt.clip_len * opt.interval;
    starts = random ? segment_offsets_train(N, opt.num_segments, L, rng)
                    : segment_offsets_test(N, opt.num_segments, L, view, num_views);
    per_start = opt.clip_len;
  } else {
    starts = {random ? dense_start_train(N, opt.clip_len, opt.interval, rng)
                     : dense_start_test(N, opt.clip_len, opt.interval, view, num_views)};
    per_start = opt.clip_len;
  }
  std::vector<int64_t> frames;
  frames.reserve(starts.size() * size_t(per_start));
  for (int64_t s : starts)
    for (int64_t j = 0; j < per_start; ++j) {
      int64_t f = s + j * opt.interval;
      if (f >= N) f = opt.out_of_bound == OutOfBound::Loop ? f % N : N - 1;
      frames.push_back(f);
    }
  return frames;
}

}  // namespace vc::data
