// A video dataset over extracted frames or video files: list records + frame template (or
// FFmpeg decoding, data/video.h) + sampler + transforms. Real datasets (UCF101, HMDB51,
// Kinetics as rawframes or videos) and Fashion-Motion go through this same class.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/annotations.h"
#include "data/sampling.h"
#include "data/transforms.h"

namespace vc::data {

struct DatasetOptions {
  std::string root;                              // list paths are relative to it
  std::string video_root;                         // video files' paths are relative to it ("" = root)
  int decode_threads = 1;                         // FFmpeg threads per loader worker decoding a video
  std::string frame_template = "img_{:05d}.jpg";  // mmaction2 rawframes
  int64_t start_index = 1;                        // 1 for mmaction2 rawframes, 0 for some extractors
  SamplerOptions sampler;
  TransformOptions transform;
  int64_t test_clips = 1;  // temporal views at test; views = test_clips × transform.num_test_crops()
  int64_t num_classes = -1;  // labels must be below it (when >= 0)
  BadInput bad_input = BadInput::Fail;
  bool quiet = false;  // no warnings on stderr (tests)

  // Fashion-Motion defaults under the generated folder `root` (frames in root/rawframes,
  // video files in root/videos):
  // 8 of 16 frames by TSN, 32×32 crops of 40×40 frames, no flip.
  static DatasetOptions fashion_motion(const std::string& root);
};

// What one sample produces: [views, T, 3, S, S] floats written by the caller's buffer.
class VideoDataset {
 public:
  // Checks every record: the frame directory exists (a video path "x.avi" also finds the
  // directory "x"), frames are counted when the list does not give the count, labels are
  // in range. Bad records go through the bad-input policy. A video-list path that is a file
  // under video_root is a video file: it is only checked to exist here; it is opened when a
  // sample needs it (its frame count is then cached for the run), so a bad video fails or is
  // skipped by the loader under the same policy, naming the file.
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
  // File path of 0-based position `pos` of record `index` (video files: the video's path).
  std::string frame_path(int64_t index, int64_t pos) const;
  bool is_video(int64_t index) const { return is_video_[size_t(index)] != 0; }
  // Frame count of a record: the list's or the frame folder's; a video file's from the file
  // (opened once per run, then cached).
  int64_t total_frames(int64_t index) const;
  // Decodes the frames at the given positions (each distinct frame once).
  Clip load_frames(int64_t index, const std::vector<int64_t>& positions) const;
  // One sample, all its views: writes num_views(train) × T × 3 × S × S floats to `out`.
  // Throws vc::Error naming the frame file (and list line) on a missing or corrupt frame.
  void get(int64_t index, bool train, uint64_t seed, uint64_t epoch, uint64_t rank,
           float* out) const;

 private:
  std::vector<VideoRecord> records_;
  std::vector<std::string> dirs_;  // resolved frame directory (or video file) per record
  std::vector<char> is_video_;
  // Video frame counts found this run (-1: not yet opened), shared by the loader's workers.
  struct VideoCounts;
  std::shared_ptr<VideoCounts> counts_;
  DatasetOptions opt_;
  Problems problems_;
};

// Counts frames root/dir/template(start), (start+1), ... assuming they are contiguous.
int64_t count_frames(const std::string& dir, const std::string& tmpl, int64_t start_index);

}  // namespace vc::data
