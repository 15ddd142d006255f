#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "data/util.h"

namespace vc::data {

// ---------------------------------------------------------------- geometry

namespace {
// Source position and weight for each output coordinate (OpenCV INTER_LINEAR).
struct Tap {
  int64_t i0, i1;
  float w1;  // weight of i1; i0 gets 1 - w1
};
std::vector<Tap> linear_taps(int64_t in, int64_t out) {
  std::vector<Tap> taps(static_cast<size_t>(out));
  double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    double s = (double(o) + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    int64_t i0 = int64_t(std::floor(s));
    double f = s - double(i0);
    if (i0 >= in - 1) i0 = in - 1, f = 0;
    taps[o] = {i0, std::min(i0 + 1, in - 1), float(f)};
  }
  return taps;
}
}  // namespace

Clip resize(const Clip& in, int64_t out_h, int64_t out_w) {
  VC_CHECK(out_h > 0 && out_w > 0, "resize: target ", out_h, "x", out_w, " is empty");
  if (out_h == in.height && out_w == in.width) return in;
  auto ty = linear_taps(in.height, out_h), tx = linear_taps(in.width, out_w);
  Clip out = Clip::zeros(in.frames, out_h, out_w);
  for (int64_t t = 0; t < in.frames; ++t) {
    const float* src = in.frame(t);
    float* dst = out.frame(t);
    for (int64_t y = 0; y < out_h; ++y) {
      const float* r0 = src + ty[y].i0 * in.width * 3;
      const float* r1 = src + ty[y].i1 * in.width * 3;
      float wy = ty[y].w1;
      for (int64_t x = 0; x < out_w; ++x) {
        const Tap& tp = tx[x];
        for (int c = 0; c < 3; ++c) {
          float top = r0[tp.i0 * 3 + c] + tp.w1 * (r0[tp.i1 * 3 + c] - r0[tp.i0 * 3 + c]);
          float bot = r1[tp.i0 * 3 + c] + tp.w1 * (r1[tp.i1 * 3 + c] - r1[tp.i0 * 3 + c]);
          dst[(y * out_w + x) * 3 + c] = top + wy * (bot - top);
        }
      }
    }
  }
  return out;
}

Clip resize_short_side(const Clip& in, int64_t size) {
  int64_t h = in.height, w = in.width;
  double s = double(size) / double(std::min(h, w));
  int64_t nh = h <= w ? size : int64_t(double(h) * s + 0.5);
  int64_t nw = w <= h ? size : int64_t(double(w) * s + 0.5);
  return resize(in, nh, nw);
}

Clip crop(const Clip& in, int64_t top, int64_t left, int64_t h, int64_t w) {
  VC_CHECK(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= in.height &&
               left + w <= in.width,
           "crop: box (top ", top, ", left ", left, ", ", h, "x", w, ") outside a ", in.height,
           "x", in.width, " frame");
  Clip out = Clip::zeros(in.frames, h, w);
  for (int64_t t = 0; t < in.frames; ++t)
    for (int64_t y = 0; y < h; ++y)
      std::copy_n(in.frame(t) + ((top + y) * in.width + left) * 3, w * 3,
                  out.frame(t) + y * w * 3);
  return out;
}

Clip center_crop(const Clip& in, int64_t h, int64_t w) {
  return crop(in, (in.height - h) / 2, (in.width - w) / 2, h, w);
}

std::array<Clip, 3> three_crop(const Clip& in, int64_t size) {
  if (in.height == size) {
    int64_t step = (in.width - size) / 2;
    VC_CHECK(step >= 0, "three_crop: frame ", in.height, "x", in.width, " narrower than ", size);
    return {crop(in, 0, 0, size, size), crop(in, 0, 2 * step, size, size),
            crop(in, 0, step, size, size)};
  }
  if (in.width == size) {
    int64_t step = (in.height - size) / 2;
    VC_CHECK(step >= 0, "three_crop: frame ", in.height, "x", in.width, " shorter than ", size);
    return {crop(in, 0, 0, size, size), crop(in, 2 * step, 0, size, size),
            crop(in, step, 0, size, size)};
  }
  fail("three_crop: one side of the ", in.height, "x", in.width,
       " frame must equal the crop size ", size, " (resize the short side first)");
}

Clip hflip(const Clip& in) {
  Clip out = in;
  for (int64_t t = 0; t < in.frames; ++t)
    for (int64_t y = 0; y < in.height; ++y)
      for (int64_t x = 0; x < in.width; ++x)
        for (int c = 0; c < 3; ++c) out.at(t, y, x, c) = in.at(t, y, in.width - 1 - x, c);
  return out;
}

CropBox multi_scale_crop_box(int64_t img_h, int64_t img_w, int64_t input_h, int64_t input_w,
                             const MultiScaleCropOptions& opt, SampleRng& rng) {
  int64_t base = std::min(img_h, img_w);
  std::vector<int64_t> sizes;
  for (double s : opt.scales) sizes.push_back(int64_t(double(base) * s));
  std::vector<std::pair<int64_t, int64_t>> candidates;  // (w, h), mmaction2's order
  for (size_t i = 0; i < sizes.size(); ++i)
    for (size_t j = 0; j < sizes.size(); ++j)
      if (std::abs(int(i) - int(j)) <= opt.max_wh_scale_gap)
        candidates.push_back({sizes[j], sizes[i]});
  auto [cw, ch] = candidates[size_t(rng.randint(int64_t(candidates.size())))];
  if (std::abs(cw - input_w) < 3) cw = input_w;
  if (std::abs(ch - input_h) < 3) ch = input_h;
  cw = std::min(cw, img_w), ch = std::min(ch, img_h);
  CropBox b{0, 0, ch, cw};
  if (opt.random_crop) {
    b.left = rng.randint(img_w - cw + 1);
    b.top = rng.randint(img_h - ch + 1);
    return b;
  }
  int64_t ws = (img_w - cw) / 4, hs = (img_h - ch) / 4;
  std::vector<std::pair<int64_t, int64_t>> offs = {
      {0, 0}, {4 * ws, 0}, {0, 4 * hs}, {4 * ws, 4 * hs}, {2 * ws, 2 * hs}};
  if (opt.num_fixed_crops == 13) {
    std::vector<std::pair<int64_t, int64_t>> more = {
        {0, 2 * hs},  {4 * ws, 2 * hs}, {2 * ws, 4 * hs}, {2 * ws, 0},
        {1 * ws, hs}, {3 * ws, hs},     {1 * ws, 3 * hs}, {3 * ws, 3 * hs}};
    offs.insert(offs.end(), more.begin(), more.end());
  } else {
    VC_CHECK(opt.num_fixed_crops == 5, "multi-scale crop: num_fixed_crops must be 5 or 13, got ",
             opt.num_fixed_crops);
  }
  auto [x, y] = offs[size_t(rng.randint(int64_t(offs.size())))];
  b.left = x, b.top = y;
  return b;
}

CropBox random_resized_crop_box(int64_t img_h, int64_t img_w, std::array<double, 2> area,
                                std::array<double, 2> ratio, SampleRng& rng) {
  double total = double(img_h * img_w);
  double lr0 = std::log(ratio[0]), lr1 = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = total * rng.uniform(area[0], area[1]);
    double aspect = std::exp(rng.uniform(lr0, lr1));
    int64_t w = int64_t(std::lround(std::sqrt(target * aspect)));
    int64_t h = int64_t(std::lround(std::sqrt(target / aspect)));
    if (w > 0 && h > 0 && w <= img_w && h <= img_h) {
      CropBox b{0, 0, h, w};
      b.top = rng.randint(img_h - h + 1);
      b.left = rng.randint(img_w - w + 1);
      return b;
    }
  }
  int64_t s = std::min(img_h, img_w);  // fallback: centred largest square (mmaction2)
  return {(img_h - s) / 2, (img_w - s) / 2, s, s};
}

// ---------------------------------------------------------------- colour

namespace {
inline float clamp255(float v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }
inline float luma(const float* p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

void adjust_hue(float* rgb, int64_t n, double shift) {
  for (int64_t i = 0; i < n; ++i) {
    float* p = rgb + i * 3;
    float r = p[0] / 255, g = p[1] / 255, b = p[2] / 255;
    // torchvision _rgb2hsv
    float maxc = std::max({r, g, b}), minc = std::min({r, g, b});
    bool eq = maxc == minc;
    float cr = maxc - minc;
    float s = cr / (eq ? 1 : maxc);
    float div = eq ? 1 : cr;
    float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
    float h;
    if (maxc == r) h = bc - gc;
    else if (maxc == g) h = 2 + rc - bc;
    else h = 4 + gc - rc;
    h = std::fmod(h / 6 + 1, 1.f);
    h = std::fmod(h + float(shift) + 1, 1.f);
    // torchvision _hsv2rgb
    float v = maxc;
    float fi = std::floor(h * 6), f = h * 6 - fi;
    int sector = int(fi) % 6;
    float pp = std::clamp(v * (1 - s), 0.f, 1.f), q = std::clamp(v * (1 - s * f), 0.f, 1.f),
          t = std::clamp(v * (1 - s * (1 - f)), 0.f, 1.f);
    float out[6][3] = {{v, t, pp}, {q, v, pp}, {pp, v, t}, {pp, q, v}, {t, pp, v}, {v, pp, q}};
    for (int c = 0; c < 3; ++c) p[c] = out[sector][c] * 255;
  }
}
}  // namespace

void color_jitter_frame(float* rgb, int64_t h, int64_t w, const JitterParams& p) {
  int64_t n = h * w;
  for (int op : p.order) {
    switch (op) {
      case 0:
        for (int64_t i = 0; i < n * 3; ++i) rgb[i] = clamp255(rgb[i] * float(p.brightness));
        break;
      case 1: {
        double mean = 0;
        for (int64_t i = 0; i < n; ++i) mean += luma(rgb + i * 3);
        float m = float(mean / double(n)), f = float(p.contrast);
        for (int64_t i = 0; i < n * 3; ++i) rgb[i] = clamp255(f * rgb[i] + (1 - f) * m);
        break;
      }
      case 2: {
        float f = float(p.saturation);
        for (int64_t i = 0; i < n; ++i) {
          float g = luma(rgb + i * 3);
          for (int c = 0; c < 3; ++c) rgb[i * 3 + c] = clamp255(f * rgb[i * 3 + c] + (1 - f) * g);
        }
        break;
      }
      case 3:
        if (p.hue != 0) adjust_hue(rgb, n, p.hue);
        break;
    }
  }
}

JitterParams draw_jitter(double brightness, double contrast, double saturation, double hue,
                         SampleRng& rng) {
  JitterParams p;
  // torchvision: a random order of the four, then each factor (when enabled).
  for (int i = 3; i > 0; --i) std::swap(p.order[i], p.order[rng.randint(i + 1)]);
  if (brightness > 0) p.brightness = rng.uniform(std::max(0.0, 1 - brightness), 1 + brightness);
  if (contrast > 0) p.contrast = rng.uniform(std::max(0.0, 1 - contrast), 1 + contrast);
  if (saturation > 0) p.saturation = rng.uniform(std::max(0.0, 1 - saturation), 1 + saturation);
  if (hue > 0) p.hue = rng.uniform(-hue, hue);
  return p;
}

void grayscale(Clip& clip) {
  int64_t n = clip.frames * clip.height * clip.width;
  for (int64_t i = 0; i < n; ++i) {
    float* p = clip.data.data() + i * 3;
    float g = luma(p);
    p[0] = p[1] = p[2] = g;
  }
}

// ---------------------------------------------------------------- normalisation

Normalization Normalization::clip() {
  return {{0.48145466f * 255, 0.4578275f * 255, 0.40821073f * 255},
          {0.26862954f * 255, 0.26130258f * 255, 0.27577711f * 255}};
}
Normalization Normalization::imagenet255() {
  return {{123.675f, 116.28f, 103.53f}, {58.395f, 57.12f, 57.375f}};
}
Normalization Normalization::none() { return {}; }
Normalization Normalization::parse(const std::string& s) {
  if (s == "clip") return clip();
  if (s == "imagenet" || s == "imagenet255") return imagenet255();
  if (s == "none") return none();
  fail("unknown normalisation '", s, "' (use clip, imagenet or none)");
}

void normalize_to_planes(const Clip& clip, const Normalization& n, float* out) {
  int64_t hw = clip.height * clip.width;
  for (int64_t t = 0; t < clip.frames; ++t) {
    const float* src = clip.frame(t);
    for (int c = 0; c < 3; ++c) {
      float* dst = out + (t * 3 + c) * hw;
      float m = n.mean[c], inv = 1.f / n.std[c];
      for (int64_t i = 0; i < hw; ++i) dst[i] = (src[i * 3 + c] - m) * inv;
    }
  }
}

// ---------------------------------------------------------------- pipeline

TrainCrop parse_train_crop(const std::string& s) {
  if (s == "multiscale") return TrainCrop::MultiScale;
  if (s == "random_resized") return TrainCrop::RandomResized;
  if (s == "random") return TrainCrop::Random;
  if (s == "center") return TrainCrop::Center;
  fail("unknown train crop '", s, "' (use multiscale, random_resized, random or center)");
}
TestCrop parse_test_crop(const std::string& s) {
  if (s == "center") return TestCrop::Center;
  if (s == "three") return TestCrop::Three;
  fail("unknown test crop '", s, "' (use center or three)");
}

TransformOptions TransformOptions::xclip(int64_t input) {
  TransformOptions o;
  o.input_size = input;
  o.resize_short = int64_t(std::lround(256.0 / 224.0 * double(input)));
  return o;
}

TransformOptions TransformOptions::fashion_motion() {
  TransformOptions o;
  o.input_size = 32;
  o.resize_short = 0;
  o.train_crop = TrainCrop::Random;
  o.flip_prob = 0;
  o.jitter_prob = 0;
  o.gray_prob = 0;
  o.norm = Normalization::clip();
  return o;
}

void transform_train(const Clip& in, const TransformOptions& opt, SampleRng& rng, float* out) {
  const int64_t S = opt.input_size;
  Clip c = opt.resize_short > 0 ? resize_short_side(in, opt.resize_short) : in;
  switch (opt.train_crop) {
    case TrainCrop::MultiScale: {
      CropBox b = multi_scale_crop_box(c.height, c.width, S, S, opt.multi_scale, rng);
      c = resize(crop(c, b.top, b.left, b.height, b.width), S, S);
      break;
    }
    case TrainCrop::RandomResized: {
      CropBox b = random_resized_crop_box(c.height, c.width, opt.rrc_area, opt.rrc_ratio, rng);
      c = resize(crop(c, b.top, b.left, b.height, b.width), S, S);
      break;
    }
    case TrainCrop::Random: {
      VC_CHECK(c.height >= S && c.width >= S, "random crop: ", S, "x", S, " from a ", c.height,
               "x", c.width, " frame");
      int64_t top = rng.randint(c.height - S + 1), left = rng.randint(c.width - S + 1);
      c = crop(c, top, left, S, S);
      break;
    }
    case TrainCrop::Center:
      c = center_crop(c, S, S);
      break;
  }
  if (opt.flip_prob > 0 && rng.bernoulli(opt.flip_prob)) c = hflip(c);
  if (opt.jitter_prob > 0 && rng.bernoulli(opt.jitter_prob)) {
    JitterParams p = draw_jitter(opt.brightness, opt.contrast, opt.saturation, opt.hue, rng);
    for (int64_t t = 0; t < c.frames; ++t) {
      if (opt.jitter_per_frame && t > 0)
        p = draw_jitter(opt.brightness, opt.contrast, opt.saturation, opt.hue, rng);
      color_jitter_frame(c.frame(t), c.height, c.width, p);
    }
  }
  if (opt.gray_prob > 0 && rng.bernoulli(opt.gray_prob)) grayscale(c);
  normalize_to_planes(c, opt.norm, out);
}

void transform_test(const Clip& in, const TransformOptions& opt, int64_t crop_index, float* out) {
  const int64_t S = opt.input_size;
  if (opt.test_crop == TestCrop::Three) {
    // §2.4: three-crop resizes the short side to the crop size itself.
    Clip c = resize_short_side(in, S);
    VC_CHECK(crop_index >= 0 && crop_index < 3, "three crop: crop index ", crop_index);
    normalize_to_planes(three_crop(c, S)[size_t(crop_index)], opt.norm, out);
    return;
  }
  Clip c = opt.resize_short > 0 ? resize_short_side(in, opt.resize_short) : in;
  normalize_to_planes(center_crop(c, S, S), opt.norm, out);
}

// ---------------------------------------------------------------- mixing

Tensor smooth_one_hot(const std::vector<int64_t>& labels, int64_t num_classes, double smoothing) {
  float off = float(smoothing / double(num_classes)), on = float(1.0 - smoothing) + off;
  std::vector<float> t(labels.size() * size_t(num_classes), off);
  for (size_t i = 0; i < labels.size(); ++i) {
    VC_CHECK(labels[i] >= 0 && labels[i] < num_classes, "soft targets: label ", labels[i],
             " out of range for ", num_classes, " classes");
    t[i * size_t(num_classes) + size_t(labels[i])] = on;
  }
  return Tensor::from_vector(t, {int64_t(labels.size()), num_classes});
}

Tensor mix_batch(Tensor& video, const std::vector<int64_t>& labels, int64_t num_classes,
                 const MixOptions& opt, SampleRng& rng, MixResult* info) {
  VC_CHECK(video.dim() == 5 && video.is_contiguous() && video.dtype() == DType::F32,
           "mix_batch: expected a contiguous float [B, T, 3, H, W], got ", video.shape());
  const int64_t B = video.size(0), T = video.size(1), H = video.size(3), W = video.size(4);
  VC_CHECK(int64_t(labels.size()) == B, "mix_batch: ", labels.size(), " labels for batch ", B);
  MixResult r;
  if (opt.enabled() && rng.uniform() < opt.prob) {
    if (opt.mixup_alpha > 0 && opt.cutmix_alpha > 0) {
      r.cutmix = rng.uniform() < opt.switch_prob;
      r.lambda = r.cutmix ? rng.beta(opt.cutmix_alpha, opt.cutmix_alpha)
                          : rng.beta(opt.mixup_alpha, opt.mixup_alpha);
    } else if (opt.mixup_alpha > 0) {
      r.lambda = rng.beta(opt.mixup_alpha, opt.mixup_alpha);
    } else {
      r.cutmix = true;
      r.lambda = rng.beta(opt.cutmix_alpha, opt.cutmix_alpha);
    }
  }
  float* v = video.data<float>();
  const int64_t per = T * 3 * H * W;
  std::vector<float> orig(v, v + B * per);  // x.flip(0) reads the unmixed batch
  if (r.lambda < 1 && r.cutmix) {
    // timm rand_bbox: side ratio sqrt(1 - λ), centre uniform, box clipped to the frame.
    double ratio = std::sqrt(1 - r.lambda);
    int64_t ch = int64_t(double(H) * ratio), cw = int64_t(double(W) * ratio);
    int64_t cy = rng.randint(H), cx = rng.randint(W);
    int64_t yl = std::clamp<int64_t>(cy - ch / 2, 0, H), yh = std::clamp<int64_t>(cy + ch / 2, 0, H);
    int64_t xl = std::clamp<int64_t>(cx - cw / 2, 0, W), xh = std::clamp<int64_t>(cx + cw / 2, 0, W);
    r.box = {yl, xl, yh - yl, xh - xl};
    r.lambda = 1.0 - double((yh - yl) * (xh - xl)) / double(H * W);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t p = 0; p < T * 3; ++p)
        for (int64_t y = yl; y < yh; ++y)
          for (int64_t x = xl; x < xh; ++x)
            v[b * per + (p * H + y) * W + x] = orig[(B - 1 - b) * per + (p * H + y) * W + x];
  } else if (r.lambda < 1) {
    float lam = float(r.lambda);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < per; ++i)
        v[b * per + i] = orig[b * per + i] * lam + orig[(B - 1 - b) * per + i] * (1 - lam);
  }
  if (info) *info = r;
  Tensor y1 = smooth_one_hot(labels, num_classes, opt.label_smoothing);
  std::vector<int64_t> flipped(labels.rbegin(), labels.rend());
  Tensor y2 = smooth_one_hot(flipped, num_classes, opt.label_smoothing);
  float* a = y1.data<float>();
  const float* b2 = y2.data<float>();
  float lam = float(r.lambda);
  for (int64_t i = 0; i < y1.numel(); ++i) a[i] = a[i] * lam + b2[i] * (1 - lam);
  return y1;
}

}  // namespace vc::data
