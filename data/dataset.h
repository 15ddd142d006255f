// A video dataset over extracted frames: list records + frame template + sampler +
// transforms. Real datasets (UCF101, HMDB51, Kinetics rawframes) and Fashion-Motion go
// through this same class.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/annotations.h"
#include "data/sampling.h"
#include "data/transforms.h"

namespace vc::data {

struct DatasetOptions {
  std::string root;                              // list paths are relative to it
  std::string frame_template = "img_{:05d}.jpg";  // mmaction2 rawframes
  int64_t start_index = 1;                        // 1 for mmaction2 rawframes, 0 for some extractors
  SamplerOptions sampler;
  TransformOptions transform;
  int64_t test_clips = 1;  // temporal views at test; views = test_clips × transform.num_test_crops()
  int64_t num_classes = -1;  // labels must be below it (when >= 0)
  BadInput bad_input = BadInput::Fail;
  bool quiet = false;  // no warnings on stderr (tests)

  // Fashion-Motion defaults under the generated folder `root` (frames in root/rawframes):
  // 8 of 16 frames by TSN, 32×32 crops of 40×40 frames, no flip.
  static DatasetOptions fashion_motion(const std::string& root);
};

// What one sample produces: [views, T, 3, S, S] floats written by the caller's buffer.
class VideoDataset {
 public:
  // Checks every record: the frame directory exists (a video path "x.avi" also finds the
  // directory "x"), frames are counted when the list does not give the count, labels are
  // in range. Bad records go through the bad-input policy.
  VideoDataset(std::vector<VideoRecord> records, DatasetOptions opt);
  // Reads the list file (format auto-detected) relative to `opt.root`.
  static VideoDataset from_list(const std::string& list_path, DatasetOptions opt,
                                ListOptions list_opt = {});

  int64_t size() const { return int64_t(records_.size()); }
  const VideoRecord& record(int64_t i) const { return records_[size_t(i)]; }
  const DatasetOptions& options() const { return opt_; }
  int64_t frames_per_clip() const { return opt_.sampler.frames_per_clip(); }
  int64_t num_views(bool train) const {
    return train ? 1 : opt_.test_clips * opt_.transform.num_test_crops();
  }
  int64_t input_size() const { return opt_.transform.input_size; }
  // Skipped records and their reasons (Skip policy).
  const Problems& problems() const { return problems_; }

  // 0-based positions (before offset and start index) the sampler picks for view `clip`.
  std::vector<int64_t> frame_indices(int64_t index, bool train, uint64_t seed, uint64_t epoch,
                                     uint64_t rank, int64_t clip = 0) const;
  // File path of 0-based position `pos` of record `index`.
  std::string frame_path(int64_t index, int64_t pos) const;
  // Decodes the frames at the given positions (each distinct file once).
  Clip load_frames(int64_t index, const std::vector<int64_t>& positions) const;
  // One sample, all its views: writes num_views(train) × T × 3 × S × S floats to `out`.
  // Throws vc::Error naming the frame file (and list line) on a missing or corrupt frame.
  void get(int64_t index, bool train, uint64_t seed, uint64_t epoch, uint64_t rank,
           float* out) const;

 private:
  std::vector<VideoRecord> records_;
  std::vector<std::string> dirs_;  // resolved frame directory per record
  DatasetOptions opt_;
  Problems problems_;
};

// Counts frames root/dir/template(start), (start+1), ... assuming they are contiguous.
int64_t count_frames(const std::string& dir, const std::string& tmpl, int64_t start_index);

}  // namespace vc::data
