#include "data/dataset.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "data/image.h"
#include "data/util.h"
#include "data/video.h"

namespace vc::data {

struct VideoDataset::VideoCounts {
  std::mutex mu;
  std::vector<int64_t> frames;
};

DatasetOptions DatasetOptions::fashion_motion(const std::string& root) {
  DatasetOptions o;
  o.root = join_path(root, "rawframes");  // lists name video ids under rawframes/
  o.video_root = join_path(root, "videos");  // or video files under videos/ (make-data --format mp4)
  o.num_classes = -1;
  o.sampler.num_segments = 8;
  o.transform = TransformOptions::fashion_motion();
  return o;
}

int64_t count_frames(const std::string& dir, const std::string& tmpl, int64_t start) {
  auto exists = [&](int64_t k) { return path_exists(join_path(dir, format_frame_name(tmpl, start + k))); };
  if (!exists(0)) return 0;
  // Exponential probe then binary search: O(log N) stat calls per video.
  int64_t lo = 0, hi = 1;  // exists(lo), hi unknown
  while (exists(hi)) lo = hi, hi *= 2;
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) / 2;
    (exists(mid) ? lo : hi) = mid;
  }
  return lo + 1;
}

VideoDataset::VideoDataset(std::vector<VideoRecord> records, DatasetOptions opt)
    : opt_(std::move(opt)) {
  check_frame_template(opt_.frame_template);
  problems_.policy = opt_.bad_input;
  problems_.quiet = opt_.quiet;
  const std::string video_root = opt_.video_root.empty() ? opt_.root : opt_.video_root;
  for (auto& r : records) {
    std::string where = r.source.empty() ? r.path : r.source;
    std::string dir = join_path(opt_.root, r.path);
    bool video = false;
    if (!is_directory(dir)) {
      const std::string file = join_path(video_root, r.path);
      // A video list ("v_x.avi 3") reads the video file, or its frames extracted next to it as "v_x/".
      size_t dot = r.path.find_last_of('.'), slash = r.path.find_last_of('/');
      std::string stem = dir;
      if (dot != std::string::npos && (slash == std::string::npos || dot > slash))
        stem = join_path(opt_.root, r.path.substr(0, dot));
      if (r.total_frames < 0 && path_exists(file) && !is_directory(file)) {
        dir = file;
        video = true;
      } else if (is_directory(stem)) {
        dir = stem;
      } else if (r.total_frames < 0 && has_video_extension(r.path)) {
        problems_.report(where + ": video file " + file + " not found (nor a frame directory " + stem + ")");
        continue;
      } else {
        problems_.report(where + ": frame directory " + excerpt(dir) +
                         " not found (verbclip reads extracted frames or video files; a rawframe list "
                         "names folders of frames, e.g. ffmpeg -i video.avi dir/img_%05d.jpg)");
        continue;
      }
    }
    if (r.total_frames < 0 && !video) {
      r.total_frames = count_frames(dir, opt_.frame_template, opt_.start_index + r.offset);
      if (r.total_frames == 0) {
        problems_.report(where + ": no frames named like " +
                         join_path(dir, format_frame_name(opt_.frame_template, opt_.start_index)));
        continue;
      }
    }
    bool bad_label = false;
    for (int64_t l : r.labels)
      if (l < 0 || (opt_.num_classes >= 0 && l >= opt_.num_classes)) bad_label = true;
    if (bad_label || r.labels.empty()) {
      problems_.report(where + ": label " + std::to_string(r.label()) + " out of range for " +
                       std::to_string(opt_.num_classes) + " classes");
      continue;
    }
    dirs_.push_back(dir);
    is_video_.push_back(video);
    records_.push_back(std::move(r));
  }
  counts_ = std::make_shared<VideoCounts>();
  counts_->frames.assign(records_.size(), -1);
  if (records_.empty()) fail("dataset under '", opt_.root, "' has no usable videos");
}

VideoDataset VideoDataset::from_list(const std::string& list_path, DatasetOptions opt,
                                     ListOptions list_opt) {
  Problems p;
  p.policy = opt.bad_input;
  p.quiet = opt.quiet;
  if (list_opt.num_classes < 0) list_opt.num_classes = opt.num_classes;
  auto records = read_list(list_path, list_opt, p);
  if (records.empty())
    fail("list file ", list_path, " holds no videos",
         p.count() ? " (all " + std::to_string(p.count()) + " of its lines were skipped as bad)" : std::string());
  VideoDataset ds(std::move(records), std::move(opt));
  // Keep the list's own skipped lines in the count reported at the end.
  ds.problems_.warnings.insert(ds.problems_.warnings.begin(), p.warnings.begin(), p.warnings.end());
  return ds;
}

std::vector<int64_t> VideoDataset::frame_indices(int64_t index, bool train, uint64_t seed,
                                                 uint64_t epoch, uint64_t rank,
                                                 int64_t clip) const {
  // Random test views (X-CLIP quirk) draw one stream per view.
  SampleRng rng(seed, epoch, rank, RngPurpose::Sampling,
                uint64_t(index) * 64 + uint64_t(train ? 0 : clip + 1));
  return sample_frames(total_frames(index), opt_.sampler, train, rng, clip, opt_.test_clips);
}

int64_t VideoDataset::total_frames(int64_t index) const {
  const VideoRecord& r = records_[size_t(index)];
  if (!is_video(index)) return r.total_frames;
  {
    std::lock_guard<std::mutex> lock(counts_->mu);
    int64_t n = counts_->frames[size_t(index)];
    if (n >= 0) return n;
  }
  int64_t n;
  try {
    n = VideoReader(dirs_[size_t(index)], opt_.decode_threads).info().frames;
  } catch (const Error& e) {
    fail(e.what(), " (video ", r.source, ")");
  }
  std::lock_guard<std::mutex> lock(counts_->mu);
  counts_->frames[size_t(index)] = n;
  return n;
}

std::string VideoDataset::frame_path(int64_t index, int64_t pos) const {
  const VideoRecord& r = records_[size_t(index)];
  if (is_video(index)) return dirs_[size_t(index)];
  return join_path(dirs_[size_t(index)],
                   format_frame_name(opt_.frame_template, opt_.start_index + r.offset + pos));
}

Clip VideoDataset::load_frames(int64_t index, const std::vector<int64_t>& positions) const {
  std::map<int64_t, Image> decoded;
  if (is_video(index)) {
    // One open per sample; the count cached by total_frames() skips any counting pass.
    const std::string& path = dirs_[size_t(index)];
    const VideoRecord& r = records_[size_t(index)];
    try {
      int64_t known;
      {
        std::lock_guard<std::mutex> lock(counts_->mu);
        known = counts_->frames[size_t(index)];
      }
      VideoReader reader(path, opt_.decode_threads, known);
      std::vector<int64_t> at;
      for (int64_t p : positions) at.push_back(r.offset + p);
      std::vector<Image> frames = reader.read(at);
      for (size_t t = 0; t < positions.size(); ++t) decoded.emplace(positions[t], std::move(frames[t]));
    } catch (const Error& e) {
      fail(e.what(), " (video ", r.source, ")");
    }
  }
  Clip clip;
  clip.frames = int64_t(positions.size());
  for (size_t t = 0; t < positions.size(); ++t) {
    auto it = decoded.find(positions[t]);
    if (it == decoded.end()) {
      std::string path = frame_path(index, positions[t]);
      try {
        it = decoded.emplace(positions[t], read_image(path)).first;
      } catch (const Error& e) {
        fail(e.what(), " (video ", records_[size_t(index)].source, ")");
      }
    }
    const Image& img = it->second;
    if (t == 0) {
      clip.height = img.height, clip.width = img.width;
      clip.data.resize(size_t(clip.frames * clip.height * clip.width * 3));
    } else if (img.height != clip.height || img.width != clip.width) {
      fail(frame_path(index, positions[t]), ": frame is ", img.height, "x", img.width,
           " but frame ", positions[0], " of the same video is ", clip.height, "x", clip.width);
    }
    std::copy(img.pixels.begin(), img.pixels.end(), clip.frame(int64_t(t)));
  }
  return clip;
}

void VideoDataset::get(int64_t index, bool train, uint64_t seed, uint64_t epoch, uint64_t rank,
                       float* out) const {
  VC_CHECK(index >= 0 && index < size(), "dataset: index ", index, " out of range for ", size(),
           " videos");
  const int64_t S = opt_.transform.input_size, T = frames_per_clip();
  const int64_t per_view = T * 3 * S * S;
  if (train) {
    Clip clip = load_frames(index, frame_indices(index, true, seed, epoch, rank));
    SampleRng rng(seed, epoch, rank, RngPurpose::Transform, uint64_t(index));
    transform_train(clip, opt_.transform, rng, out);
    return;
  }
  const int64_t crops = opt_.transform.num_test_crops();
  for (int64_t c = 0; c < opt_.test_clips; ++c) {
    Clip clip = load_frames(index, frame_indices(index, false, seed, epoch, rank, c));
    for (int64_t k = 0; k < crops; ++k)
      transform_test(clip, opt_.transform, k, out + (c * crops + k) * per_view);
  }
}

}  // namespace vc::data
