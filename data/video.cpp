#include "data/video.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <unistd.h>

#include "data/util.h"

#ifdef VERBCLIP_WITH_FFMPEG
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}
#endif

namespace vc::data {

bool has_video_extension(const std::string& path) {
  static const char* const exts[] = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v",
                                     ".mpg", ".mpeg", ".flv", ".wmv", ".ogv", ".3gp"};
  std::string p = lower(path);
  for (const char* e : exts)
    if (ends_with(p, e)) return true;
  return false;
}

#ifndef VERBCLIP_WITH_FFMPEG

// ---------------------------------------------------------------- built without FFmpeg
bool video_support() { return false; }

namespace {
[[noreturn]] void no_ffmpeg(const std::string& path) {
  fail(path, ": verbclip was built without FFmpeg, so it cannot read or write video files "
       "(install libavformat-dev libavcodec-dev libswscale-dev libavutil-dev and rebuild, or "
       "extract frames: ffmpeg -i video.mp4 dir/img_%05d.jpg)");
}
}  // namespace

struct VideoReader::Impl {};
VideoReader::VideoReader(const std::string& path, int, int64_t) { no_ffmpeg(path); }
VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const { no_ffmpeg(""); }
const std::string& VideoReader::path() const { no_ffmpeg(""); }
std::vector<Image> VideoReader::read(const std::vector<int64_t>&) { no_ffmpeg(""); }
int64_t VideoReader::decode_all(const std::function<void(int64_t, const Image&)>&) { no_ffmpeg(""); }
const VideoReader::Stats& VideoReader::stats() const { no_ffmpeg(""); }
struct VideoWriter::Impl {};
VideoWriter::VideoWriter(const std::string& path, int, int, const VideoWriterOptions&) { no_ffmpeg(path); }
VideoWriter::~VideoWriter() = default;
void VideoWriter::add(const Image&) { no_ffmpeg(""); }
void VideoWriter::finish() { no_ffmpeg(""); }
const VideoEncoderChoice& VideoWriter::encoder() const { no_ffmpeg(""); }
VideoEncoderChoice video_encoder_for(const std::string& path) { no_ffmpeg(path); }
VideoEncoderChoice write_video(const std::string& path, const std::vector<Image>&, const VideoWriterOptions&) {
  no_ffmpeg(path);
}

#else

bool video_support() { return true; }

namespace {

// FFmpeg reports details (which atom is missing, which slice failed its CRC) through its log,
// not through return codes. Errors are kept per thread and appended to our message; nothing
// is printed, so a bad file gives one line of ours, not a screen of FFmpeg's.
thread_local std::string g_last_log;
thread_local const void* g_last_ctx = nullptr;  // the context that logged it

void log_callback(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > AV_LOG_ERROR || !g_last_log.empty()) return;  // the first error is the cause
  char line[512];
  int print_prefix = 0;
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
  std::string s = trim(line);
  if (s.empty()) return;
  const AVClass* cls = avcl ? *static_cast<const AVClass* const*>(avcl) : nullptr;
  g_last_log = cls && cls->item_name ? std::string(cls->item_name(avcl)) + ": " + s : s;
  g_last_ctx = avcl;
}

// Called on entry to every public function: a message logged by an earlier call is not ours.
void init_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(log_callback); });
  g_last_log.clear();
  g_last_ctx = nullptr;
}

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  std::string s = buf;
  if (!g_last_log.empty() && g_last_log != s) s += " (FFmpeg: " + g_last_log + ")";
  g_last_log.clear();
  return s;
}

}  // namespace

// ---------------------------------------------------------------- reading

struct VideoReader::Impl {
  std::string path;
  VideoInfo info;
  Stats stats;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  AVStream* st = nullptr;
  int stream = -1;
  AVPacket* pkt = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  int64_t start_ts = 0;      // the stream's first timestamp (time base units)
  double ts_to_index = 0;    // seconds per time-base tick × fps
  // The index holds decoding timestamps; with B-frames a key frame's is earlier than its
  // presentation time by the reorder delay (mp4 from x264: 2 frames). Without this, the key
  // frame after a target looked like one before it.
  int64_t index_shift = 0;
  bool have_ts = true;       // false: no usable timestamps, frames counted in order from 0
  // Decoder position: index of the last frame it produced (-1: at the start of the stream
  // or right after a seek), and whether the stream is exhausted.
  int64_t last_index = -1;
  int64_t seq = 0;           // frames produced since the last seek to the start
  bool at_start = true;      // no seek since open / last rewind: next frame is frame 0
  bool flushed = false, eof = false;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    if (fmt) avformat_close_input(&fmt);
  }

  [[noreturn]] void error(const std::string& what) const { fail(path, ": ", what); }

  int64_t index_of(const AVFrame* f) {
    int64_t ts = f->best_effort_timestamp;
    if (!have_ts || ts == AV_NOPTS_VALUE) return seq;
    return int64_t(std::llround(double(ts - start_ts) * ts_to_index));
  }
  int64_t ts_of(int64_t index) const {
    return start_ts + int64_t(std::llround(double(index) / ts_to_index));
  }

  // Next decoded frame into `frame`; false at the end of the stream.
  bool next_frame(int64_t& index) {
    while (true) {
      int ret = avcodec_receive_frame(dec, frame);
      if (ret == 0) {
        index = index_of(frame);
        ++seq;
        ++stats.decoded;
        // Damage the decoder concealed (ffv1's slice CRCs, h264's missing references) shows
        // only in the frame's flags or in the decoder's own error log.
        const bool logged = g_last_ctx == dec && !g_last_log.empty();
        if (frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT) || logged)
          error("decode error at frame " + std::to_string(index) + " (" +
                (logged ? "FFmpeg: " + g_last_log : std::string("the decoder marked it corrupt")) + ")");
        return true;
      }
      if (ret == AVERROR_EOF) return eof = true, false;
      if (ret != AVERROR(EAGAIN))
        error("decode error after frame " + std::to_string(last_index) + ": " + av_error(ret));
      if (flushed) return eof = true, false;
      ret = av_read_frame(fmt, pkt);
      if (ret == AVERROR_EOF) {
        avcodec_send_packet(dec, nullptr);  // drain the frames the decoder still holds
        flushed = true;
        continue;
      }
      if (ret < 0) error("read error after frame " + std::to_string(last_index) + ": " + av_error(ret));
      if (pkt->stream_index != stream) {
        av_packet_unref(pkt);
        continue;
      }
      if (pkt->flags & AV_PKT_FLAG_CORRUPT) {
        // A short read: the file ends inside this packet.
        av_packet_unref(pkt);
        error("truncated: the file ends inside the data of the frame after " +
              (last_index >= 0 ? "frame " + std::to_string(last_index) : std::string("the seek point")) +
              " (the container says " + std::to_string(info.frames) + " frames)");
      }
      g_last_log.clear();
      g_last_ctx = nullptr;
      ret = avcodec_send_packet(dec, pkt);
      av_packet_unref(pkt);
      if (ret < 0 && ret != AVERROR(EAGAIN))
        error("decode error after frame " + std::to_string(last_index) + ": " + av_error(ret));
    }
  }

  void seek_ts(int64_t ts) {
    ++stats.seeks;
    int ret = av_seek_frame(fmt, stream, ts, AVSEEK_FLAG_BACKWARD);
    if (ret < 0) error("cannot seek to timestamp " + std::to_string(ts) + ": " + av_error(ret));
    avcodec_flush_buffers(dec);
    last_index = -1;
    flushed = eof = false;
    at_start = ts <= start_ts;
    if (at_start) seq = 0;
  }
  void rewind() { seek_ts(start_ts); }

  // Whether reaching `target` from the current position needs a seek: going back always; going
  // forward only when a key frame lies after the position and at or before the target (then
  // decoding from that key frame is cheaper than decoding through the gap).
  bool should_seek(int64_t target) {
    if (!have_ts) return target <= last_index;  // no timestamps: only rewinds
    if (target <= last_index) return true;
    const int64_t here = last_index < 0 ? (at_start ? 0 : -1) : last_index;
    if (here < 0) return true;  // right after a seek that found nothing yet: seek again
    if (eof) return true;
    int e = av_index_search_timestamp(st, ts_of(target) - index_shift, AVSEEK_FLAG_BACKWARD);
    if (e >= 0) {
      const AVIndexEntry* k = avformat_index_get_entry(st, e);
      return k && k->timestamp + index_shift > ts_of(here);
    }
    return target - here > 32;  // no index (some mkv/webm): seek past long gaps
  }

  void to_rgb(Image& img) {
    const int w = frame->width, h = frame->height;
    sws = sws_getCachedContext(sws, w, h, AVPixelFormat(frame->format), w, h, AV_PIX_FMT_RGB24,
                               SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT,
                               nullptr, nullptr, nullptr);
    if (!sws) error("cannot convert pixel format " + std::string(av_get_pix_fmt_name(AVPixelFormat(frame->format))) + " to RGB");
    // YUV sources: the matrix and range the stream declares (BT.601 limited when it says none).
    const int* coef = sws_getCoefficients(frame->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_DEFAULT);
    const int src_full = frame->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    sws_setColorspaceDetails(sws, coef, src_full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    img.width = w, img.height = h;
    img.pixels.resize(size_t(w) * h * 3);
    uint8_t* dst[1] = {img.pixels.data()};
    int dst_stride[1] = {w * 3};
    sws_scale(sws, frame->data, frame->linesize, 0, h, dst, dst_stride);
  }
};

VideoReader::VideoReader(const std::string& path, int threads, int64_t known_frames) : impl_(new Impl) {
  init_ffmpeg();
  Impl& m = *impl_;
  m.path = path;
  if (!path_exists(path)) m.error("video file not found");
  if (is_directory(path)) m.error("is a directory, not a video file");
  int ret = avformat_open_input(&m.fmt, path.c_str(), nullptr, nullptr);
  if (ret < 0) m.error("not a video file FFmpeg can read: " + av_error(ret));
  ret = avformat_find_stream_info(m.fmt, nullptr);
  if (ret < 0) m.error("cannot read the stream headers: " + av_error(ret));
  const AVCodec* codec = nullptr;
  m.stream = av_find_best_stream(m.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (m.stream == AVERROR_STREAM_NOT_FOUND) m.error("no video stream (an audio or data file?)");
  if (m.stream < 0 || !codec) {
    const AVStream* s = nullptr;
    for (unsigned i = 0; i < m.fmt->nb_streams; ++i)
      if (m.fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) s = m.fmt->streams[i];
    m.error(std::string("no decoder in this FFmpeg for the video codec ") +
            (s ? avcodec_get_name(s->codecpar->codec_id) : "?"));
  }
  m.st = m.fmt->streams[m.stream];
  for (unsigned i = 0; i < m.fmt->nb_streams; ++i)
    if (int(i) != m.stream) m.fmt->streams[i]->discard = AVDISCARD_ALL;  // skip audio packets
  m.dec = avcodec_alloc_context3(codec);
  if (!m.dec || avcodec_parameters_to_context(m.dec, m.st->codecpar) < 0) m.error("cannot set up the decoder");
  m.dec->thread_count = std::max(1, threads);
  // Codecs with checksums (ffv1) check them, and damage is an error naming the file rather
  // than a concealed frame that trains silently (check-videos finds such files up front).
  m.dec->err_recognition |= AV_EF_CRCCHECK | AV_EF_EXPLODE;
  ret = avcodec_open2(m.dec, codec, nullptr);
  if (ret < 0) m.error(std::string("cannot open the ") + codec->name + " decoder: " + av_error(ret));
  m.pkt = av_packet_alloc();
  m.frame = av_frame_alloc();

  VideoInfo& in = m.info;
  in.codec = codec->name;
  in.width = m.st->codecpar->width, in.height = m.st->codecpar->height;
  AVRational rate = m.st->avg_frame_rate.num > 0 ? m.st->avg_frame_rate : m.st->r_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = av_guess_frame_rate(m.fmt, m.st, nullptr);
  if (rate.num <= 0 || rate.den <= 0) m.error("no frame rate in the video stream");
  in.fps = av_q2d(rate);
  m.start_ts = m.st->start_time != AV_NOPTS_VALUE ? m.st->start_time : 0;
  m.ts_to_index = av_q2d(m.st->time_base) * in.fps;
  m.have_ts = m.ts_to_index > 0;
  if (const AVIndexEntry* first = avformat_index_get_entry(m.st, 0))
    m.index_shift = std::max<int64_t>(0, m.start_ts - first->timestamp);
  if (known_frames >= 0) {
    in.frames = known_frames;
  } else if (m.st->nb_frames > 0) {
    in.frames = m.st->nb_frames;
  } else {
    // No count in the container (matroska, webm): one demux pass, counting packets.
    in.count_source = VideoInfo::CountSource::PacketCount;
    int64_t n = 0;
    while ((ret = av_read_frame(m.fmt, m.pkt)) >= 0) {
      if (m.pkt->stream_index == m.stream) ++n;
      av_packet_unref(m.pkt);
    }
    if (ret != AVERROR_EOF) m.error("read error after packet " + std::to_string(n) + ": " + av_error(ret));
    in.frames = n;
    if (n > 0) m.rewind();
    m.stats.seeks = 0;
  }
  if (m.st->duration != AV_NOPTS_VALUE && m.st->duration > 0) in.duration = double(m.st->duration) * av_q2d(m.st->time_base);
  else if (m.fmt->duration != AV_NOPTS_VALUE && m.fmt->duration > 0) in.duration = double(m.fmt->duration) / AV_TIME_BASE;
  else in.duration = double(in.frames) / in.fps;
  if (in.frames <= 0) m.error("holds no frames (an empty video stream)");
}

VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const { return impl_->info; }
const std::string& VideoReader::path() const { return impl_->path; }
const VideoReader::Stats& VideoReader::stats() const { return impl_->stats; }

std::vector<Image> VideoReader::read(const std::vector<int64_t>& indices) {
  init_ffmpeg();
  Impl& m = *impl_;
  std::vector<int64_t> targets = indices;
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  for (int64_t t : targets)
    if (t < 0 || t >= m.info.frames)
      m.error("frame " + std::to_string(t) + " requested, but the video has " + std::to_string(m.info.frames) +
              " frames (" + m.info.count_source_name() + ")");
  std::map<int64_t, Image> got;
  size_t k = 0;
  bool retried_from_start = false;
  int64_t sought = -1;  // the target of the last seek
  while (k < targets.size()) {
    const int64_t t = targets[k];
    // One seek per target: when the demuxer lands before the target (its idea of the key frame
    // differs from the index's), decode forward; seeking again would land there again, forever.
    if (sought != t && m.should_seek(t)) {
      sought = t;
      // Seek to the key frame at or before t (the start when t is near it).
      if (t == 0 || !m.have_ts) m.rewind();
      else m.seek_ts(m.ts_of(t));
    }
    int64_t idx;
    if (!m.next_frame(idx)) {
      // The container promised more frames than the stream holds.
      m.error("truncated: the container says " + std::to_string(m.info.frames) + " frames but decoding ends " +
              (m.last_index >= 0 ? "after frame " + std::to_string(m.last_index) : "before frame " + std::to_string(t)) +
              " (frame " + std::to_string(t) + " was asked for)");
    }
    if (m.last_index < 0 && idx > t) {
      // The seek landed after the target (an index that points past it): decode from the start.
      if (retried_from_start || m.at_start) {
        // The stream's first frame comes after t: t shows that first frame.
      } else {
        retried_from_start = true;
        m.rewind();
        continue;
      }
    }
    if (idx < m.last_index) m.error("frames out of order after frame " + std::to_string(m.last_index));
    m.last_index = idx;
    m.at_start = false;
    // Every target at or before this frame (targets skipped by a timestamp gap show it too).
    bool converted = false;
    while (k < targets.size() && targets[k] <= idx) {
      Image& img = got[targets[k]];
      if (!converted) m.to_rgb(img), converted = true;
      else img = got[targets[k - 1]];
      ++k;
    }
  }
  std::vector<Image> out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back(got[i]);
  return out;
}

int64_t VideoReader::decode_all(const std::function<void(int64_t, const Image&)>& f) {
  init_ffmpeg();
  Impl& m = *impl_;
  if (m.last_index >= 0 || !m.at_start) m.rewind();
  int64_t n = 0, idx;
  Image img;
  while (m.next_frame(idx)) {
    m.last_index = idx;
    m.at_start = false;
    if (f) {
      m.to_rgb(img);
      f(idx, img);
    }
    ++n;
  }
  return n;
}

// ---------------------------------------------------------------- writing

namespace {

struct EncoderSpec {
  const char* codec;
  AVPixelFormat pix;
  bool lossless;
};

std::string container_of(const std::string& path, const char*& muxer) {
  std::string p = lower(path);
  if (ends_with(p, ".mp4")) return muxer = "mp4", "mp4";
  if (ends_with(p, ".avi")) return muxer = "avi", "avi";
  if (ends_with(p, ".mkv")) return muxer = "matroska", "mkv";
  if (ends_with(p, ".webm")) return muxer = "webm", "webm";
  fail(path, ": cannot write this video container (use .mp4, .avi, .mkv or .webm)");
}

std::vector<EncoderSpec> encoders_for(const std::string& container) {
  // Lossless RGB first, so that decoded frames equal the frames written.
  if (container == "mp4")
    // libx264 (lossy 4:2:0, as most real .mp4 files are) only when asked for by name.
    return {{"libx264rgb", AV_PIX_FMT_RGB24, true}, {"mpeg4", AV_PIX_FMT_YUV420P, false},
            {"libx264", AV_PIX_FMT_YUV420P, false}};
  if (container == "webm") return {{"libvpx-vp9", AV_PIX_FMT_GBRP, true}};
  return {{"ffv1", AV_PIX_FMT_BGR0, true}};  // avi, mkv
}

}  // namespace

VideoEncoderChoice video_encoder_for(const std::string& path) {
  const char* muxer;
  std::string c = container_of(path, muxer);
  for (const auto& e : encoders_for(c))
    if (avcodec_find_encoder_by_name(e.codec)) return {e.codec, e.lossless};
  fail(path, ": this FFmpeg has no encoder for ." + c + " (tried ", encoders_for(c)[0].codec, ")");
}

struct VideoWriter::Impl {
  std::string path, tmp;
  VideoEncoderChoice choice;
  int width = 0, height = 0;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* enc = nullptr;
  AVStream* st = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  SwsContext* sws = nullptr;
  int64_t next_pts = 0;
  bool header = false, done = false;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    if (fmt) {
      if (fmt->pb) avio_closep(&fmt->pb);
      avformat_free_context(fmt);
    }
    if (!done && !tmp.empty()) std::remove(tmp.c_str());
  }
  [[noreturn]] void error(const std::string& what) const { fail(path, ": ", what); }

  void drain(bool flush) {
    int ret = avcodec_send_frame(enc, flush ? nullptr : frame);
    if (ret < 0) error("encoder " + choice.codec + " failed: " + av_error(ret));
    while ((ret = avcodec_receive_packet(enc, pkt)) == 0) {
      av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      ret = av_interleaved_write_frame(fmt, pkt);
      if (ret < 0) error("cannot write a packet: " + av_error(ret));
    }
    if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF) error("encoder " + choice.codec + " failed: " + av_error(ret));
  }
};

VideoWriter::VideoWriter(const std::string& path, int width, int height, const VideoWriterOptions& opt)
    : impl_(new Impl) {
  init_ffmpeg();
  Impl& m = *impl_;
  m.path = path;
  m.width = width, m.height = height;
  if (width <= 0 || height <= 0) m.error("frame size " + std::to_string(width) + "x" + std::to_string(height));
  if (!(opt.fps > 0)) m.error("fps must be positive");
  const char* muxer;
  const std::string container = container_of(path, muxer);
  EncoderSpec spec{nullptr, AV_PIX_FMT_NONE, false};
  const AVCodec* codec = nullptr;
  for (const auto& e : encoders_for(container)) {
    if (!opt.codec.empty() && opt.codec != e.codec) continue;
    if ((codec = avcodec_find_encoder_by_name(e.codec))) {
      spec = e;
      break;
    }
  }
  if (!codec) m.error("no encoder " + (opt.codec.empty() ? std::string("for .") + container : opt.codec) + " in this FFmpeg");
  m.choice = {spec.codec, spec.lossless};
  if (spec.pix == AV_PIX_FMT_YUV420P && (width % 2 || height % 2))
    m.error(std::string(spec.codec) + " needs an even frame size, got " + std::to_string(width) + "x" + std::to_string(height));

  // A temporary name with the same extension (the muxer checks it), renamed by finish().
  std::filesystem::path p(path);
  m.tmp = (p.parent_path() / (".tmp-" + std::to_string(::getpid()) + "-" + p.filename().string())).string();
  int ret = avformat_alloc_output_context2(&m.fmt, nullptr, muxer, m.tmp.c_str());
  if (ret < 0) m.error("cannot set up the " + std::string(muxer) + " muxer: " + av_error(ret));
  m.fmt->flags |= AVFMT_FLAG_BITEXACT;  // no version strings: same frames, same bytes
  m.st = avformat_new_stream(m.fmt, nullptr);
  m.enc = avcodec_alloc_context3(codec);
  AVRational rate = av_d2q(opt.fps, 100000);
  m.enc->width = width, m.enc->height = height;
  m.enc->pix_fmt = spec.pix;
  m.enc->time_base = av_inv_q(rate);
  m.enc->framerate = rate;
  m.enc->gop_size = std::max(1, opt.gop);
  m.enc->thread_count = 1;  // deterministic bytes
  m.enc->flags |= AV_CODEC_FLAG_BITEXACT;
  if (m.fmt->oformat->flags & AVFMT_GLOBALHEADER) m.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* o = nullptr;
  const std::string name = spec.codec;
  if (name == "libx264rgb") {
    av_dict_set(&o, "qp", "0", 0);  // lossless
    av_dict_set(&o, "preset", "veryfast", 0);
  } else if (name == "libx264") {
    av_dict_set(&o, "crf", "23", 0);  // x264's default quality: what typical downloaded files hold
    av_dict_set(&o, "preset", "veryfast", 0);
  } else if (name == "mpeg4") {
    m.enc->flags |= AV_CODEC_FLAG_QSCALE;
    m.enc->global_quality = FF_QP2LAMBDA * 1;  // qscale 1: the finest quantiser
    m.enc->max_b_frames = 0;
  } else if (name == "ffv1") {
    av_dict_set(&o, "level", "3", 0);     // slice CRCs: damage is detected, not decoded silently
    av_dict_set(&o, "slicecrc", "1", 0);
  } else if (name == "libvpx-vp9") {
    av_dict_set(&o, "lossless", "1", 0);
    av_dict_set(&o, "deadline", "realtime", 0);
    av_dict_set(&o, "cpu-used", "8", 0);
  }
  ret = avcodec_open2(m.enc, codec, &o);
  av_dict_free(&o);
  if (ret < 0) m.error("cannot open the " + name + " encoder: " + av_error(ret));
  avcodec_parameters_from_context(m.st->codecpar, m.enc);
  m.st->time_base = m.enc->time_base;
  m.st->avg_frame_rate = rate;
  ret = avio_open(&m.fmt->pb, m.tmp.c_str(), AVIO_FLAG_WRITE);
  if (ret < 0) m.error("cannot create " + m.tmp + ": " + av_error(ret));
  ret = avformat_write_header(m.fmt, nullptr);
  if (ret < 0) m.error("cannot write the header: " + av_error(ret));
  m.header = true;
  m.frame = av_frame_alloc();
  m.frame->format = spec.pix;
  m.frame->width = width, m.frame->height = height;
  if (av_frame_get_buffer(m.frame, 0) < 0) m.error("out of memory for a frame");
  m.pkt = av_packet_alloc();
}

VideoWriter::~VideoWriter() = default;
const VideoEncoderChoice& VideoWriter::encoder() const { return impl_->choice; }

void VideoWriter::add(const Image& img) {
  init_ffmpeg();
  Impl& m = *impl_;
  if (m.done) m.error("frame added after finish()");
  if (img.width != m.width || img.height != m.height)
    m.error("frame " + std::to_string(m.next_pts) + " is " + std::to_string(img.height) + "x" + std::to_string(img.width) +
            " but the video is " + std::to_string(m.height) + "x" + std::to_string(m.width));
  if (av_frame_make_writable(m.frame) < 0) m.error("out of memory for a frame");
  m.sws = sws_getCachedContext(m.sws, m.width, m.height, AV_PIX_FMT_RGB24, m.width, m.height, AVPixelFormat(m.frame->format),
                               SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT, nullptr, nullptr, nullptr);
  const uint8_t* src[1] = {img.pixels.data()};
  int src_stride[1] = {img.width * 3};
  sws_scale(m.sws, src, src_stride, 0, m.height, m.frame->data, m.frame->linesize);
  m.frame->pts = m.next_pts++;
  m.drain(false);
}

void VideoWriter::finish() {
  init_ffmpeg();
  Impl& m = *impl_;
  if (m.done) return;
  m.drain(true);
  int ret = av_write_trailer(m.fmt);
  if (ret < 0) m.error("cannot finish the file: " + av_error(ret));
  avio_closep(&m.fmt->pb);
  std::error_code ec;
  std::filesystem::rename(m.tmp, m.path, ec);
  if (ec) m.error("cannot rename " + m.tmp + " into place: " + ec.message());
  m.done = true;
}

VideoEncoderChoice write_video(const std::string& path, const std::vector<Image>& frames, const VideoWriterOptions& opt) {
  VC_CHECK(!frames.empty(), path, ": no frames to write");
  VideoWriter w(path, frames[0].width, frames[0].height, opt);
  for (const auto& f : frames) w.add(f);
  w.finish();
  return w.encoder();
}

#endif

}  // namespace vc::data
