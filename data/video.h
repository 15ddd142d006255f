// Video files (.mp4, .avi, .mkv, .webm, ...) through FFmpeg's libraries (libavformat,
// libavcodec, libswscale): the on-the-fly decoding that the CLIP video repos do with decord
// (ecosystem.md §1.2, §2.2b), and an encoder that writes test and demo videos.
//
// Frames come out as the rawframe path's Image: RGB uint8, H×W×3. Frame i is the frame shown
// at time i/fps (its timestamp rounded to the frame grid), 0-based as decord and mmaction2's
// VideoDataset count. Reading seeks to the key frame before a target and decodes forward;
// only the requested frames are kept, so memory does not grow with the video's length.
//
// Built without FFmpeg (VERBCLIP_FFMPEG=OFF, or the dev packages missing), every function
// here throws an error that says so; video_support() tells which build this is.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"

namespace vc::data {

bool video_support();

// Extensions read as video files by the loader and check-videos (lower case, with the dot).
bool has_video_extension(const std::string& path);

struct VideoInfo {
  int64_t frames = 0;     // decodable frame count (see count_source)
  double fps = 0;         // average frame rate
  double duration = 0;    // seconds (the container's, else frames / fps)
  int width = 0, height = 0;
  std::string codec;      // FFmpeg's decoder name: "h264", "ffv1", ...
  // Where `frames` came from: the container's own count (mp4 sample tables, avi headers), or,
  // when the container has none (mkv, webm), counting the stream's packets in one demux pass
  // (no decoding: one packet is one frame for these codecs).
  enum class CountSource { Container, PacketCount } count_source = CountSource::Container;
  const char* count_source_name() const {
    return count_source == CountSource::Container ? "container" : "packet count";
  }
};

class VideoReader {
 public:
  // Opens `path` and reads its header. `threads`: FFmpeg's decode threads for this file (the
  // loader gives each worker one reader at a time, so workers × threads bound the total).
  // `known_frames` >= 0 skips the packet-count pass (a count cached earlier this run).
  // Throws naming the file: missing, not a video, no video stream, no decoder, zero frames.
  explicit VideoReader(const std::string& path, int threads = 1, int64_t known_frames = -1);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;
  const std::string& path() const;

  // The frames at 0-based `indices` (any order, repeats allowed), in the order asked. Indices
  // at or past info().frames are errors. Decodes each distinct index once, in increasing order,
  // seeking only when a key frame lies between the current position and the next target.
  // Throws naming the file on a decode error or when the file ends early (truncated).
  std::vector<Image> read(const std::vector<int64_t>& indices);

  // Decodes every frame in order (check-videos); `f` may be empty. Returns the number of
  // frames decoded. Throws naming the file and the frame on a decode error.
  int64_t decode_all(const std::function<void(int64_t index, const Image&)>& f = {});

  // Counters for tests and benchmarks.
  struct Stats {
    int64_t seeks = 0;    // av_seek_frame calls
    int64_t decoded = 0;  // frames the decoder produced (including those skipped over)
  };
  const Stats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- writing
struct VideoWriterOptions {
  double fps = 16;
  int gop = 16;  // key frame interval in frames
  // Encoder, or "" for the lossless default of the container (video_encoder_for). "libx264"
  // (.mp4 only, by name) writes lossy 4:2:0 H.264 at crf 23, like typical downloaded files.
  std::string codec;
};

// The encoder verbclip uses for a container extension, best first: .mp4 libx264rgb at
// qp 0 (lossless RGB H.264), else mpeg4 at qscale 1 (near-lossless, 4:2:0); .avi and .mkv
// ffv1 (lossless RGB); .webm libvpx-vp9 lossless. Throws when none is in this libavcodec.
struct VideoEncoderChoice {
  std::string codec;
  bool lossless = false;
};
VideoEncoderChoice video_encoder_for(const std::string& path);

// Streams frames into a video file: encoded into a temporary name beside `path` and renamed
// by finish(); a writer destroyed before finish() removes its temporary file. Deterministic:
// the same frames give the same bytes (one encoder thread, bit-exact flags).
class VideoWriter {
 public:
  VideoWriter(const std::string& path, int width, int height, const VideoWriterOptions& opt = {});
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;
  void add(const Image& frame);  // must be width × height
  void finish();
  const VideoEncoderChoice& encoder() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes `frames` (all one size) as a video file: encoded into a temporary name beside
// `path`, renamed when complete. Deterministic: the same frames give the same bytes.
// Returns the encoder used.
VideoEncoderChoice write_video(const std::string& path, const std::vector<Image>& frames,
                               const VideoWriterOptions& opt = {});

}  // namespace vc::data
