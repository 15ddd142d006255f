// Spatial and colour transforms of a clip (ecosystem.md §2.4–2.6). A clip is T frames of
// H×W×3 floats on the 0–255 scale, interleaved RGB; every frame of a clip gets the same
// geometry (crop, flip). The last step writes normalised [T, 3, H, W] planes.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/rng.h"
#include "engine/core/tensor.h"

namespace vc::data {

struct Clip {
  int64_t frames = 0, height = 0, width = 0;
  std::vector<float> data;  // frames*height*width*3
  float* frame(int64_t t) { return data.data() + t * height * width * 3; }
  const float* frame(int64_t t) const { return data.data() + t * height * width * 3; }
  float& at(int64_t t, int64_t y, int64_t x, int c) {
    return data[((t * height + y) * width + x) * 3 + c];
  }
  float at(int64_t t, int64_t y, int64_t x, int c) const {
    return data[((t * height + y) * width + x) * 3 + c];
  }
  static Clip zeros(int64_t t, int64_t h, int64_t w) {
    return Clip{t, h, w, std::vector<float>(size_t(t * h * w * 3), 0.f)};
  }
};

// ---- geometry (each returns a new clip) ----
// Bilinear with OpenCV/mmcv INTER_LINEAR rules: half-pixel centres, edges clamped.
Clip resize(const Clip& in, int64_t out_h, int64_t out_w);
// Short side to `size`, aspect kept; the long side is int(long·size/short + 0.5) (mmcv).
Clip resize_short_side(const Clip& in, int64_t size);
Clip crop(const Clip& in, int64_t top, int64_t left, int64_t h, int64_t w);
// mmaction2 CenterCrop: left = (W - w) / 2, top = (H - h) / 2 (integer division).
Clip center_crop(const Clip& in, int64_t h, int64_t w);
// mmaction2 ThreeCrop of size×size; one side must equal `size` (resize the short side to
// it first). Order: left/top, right/bottom, middle.
std::array<Clip, 3> three_crop(const Clip& in, int64_t size);
Clip hflip(const Clip& in);

// mmaction2 MultiScaleCrop: crop sides from scale·short_side with |i-j| <= max_wh_scale_gap,
// sides within 3 px of the input size snapped to it, offset one of 5 (or 13) fixed
// positions, or anywhere with random_crop. Returns (top, left, h, w).
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
struct MultiScaleCropOptions {
  std::vector<double> scales = {1, 0.875, 0.75, 0.66};
  int max_wh_scale_gap = 1;
  int num_fixed_crops = 5;  // 5 or 13
  bool random_crop = false;
};
CropBox multi_scale_crop_box(int64_t img_h, int64_t img_w, int64_t input_h, int64_t input_w,
                             const MultiScaleCropOptions& opt, SampleRng& rng);
// torchvision / mmaction2 RandomResizedCrop box: area fraction in `area`, log-uniform aspect
// in `ratio`, 10 attempts, then the centred largest square.
CropBox random_resized_crop_box(int64_t img_h, int64_t img_w, std::array<double, 2> area,
                                std::array<double, 2> ratio, SampleRng& rng);

// ---- colour ----
// torchvision ColorJitter on one frame in 0–255 floats, with explicit factors and order
// (0 brightness, 1 contrast, 2 saturation, 3 hue); results clamped to [0, 255].
struct JitterParams {
  double brightness = 1, contrast = 1, saturation = 1, hue = 0;
  std::array<int, 4> order = {0, 1, 2, 3};
};
void color_jitter_frame(float* rgb, int64_t h, int64_t w, const JitterParams& p);
JitterParams draw_jitter(double brightness, double contrast, double saturation, double hue,
                         SampleRng& rng);
// ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B written to all three channels.
void grayscale(Clip& clip);

// ---- normalisation ----
struct Normalization {
  std::array<float, 3> mean{0, 0, 0}, std{1, 1, 1};  // on the 0-255 scale
  static Normalization clip();         // CLIP mean/std ×255
  static Normalization imagenet255();  // X-CLIP / ViFi / TC-CLIP / CLAVER quirk
  static Normalization none();         // x / 255 stays as 0–255; mean 0, std 1
  static Normalization parse(const std::string& s);  // clip | imagenet | none
};
// Writes (x - mean) / std as [T, 3, H, W] planes into `out` (T*3*H*W floats).
void normalize_to_planes(const Clip& clip, const Normalization& n, float* out);

// ---- the pipeline ----
enum class TrainCrop { MultiScale, RandomResized, Random, Center };
enum class TestCrop { Center, Three };
TrainCrop parse_train_crop(const std::string& s);  // multiscale|random_resized|random|center
TestCrop parse_test_crop(const std::string& s);    // center|three

struct TransformOptions {
  int64_t input_size = 224;
  int64_t resize_short = 256;  // first step in training and single-crop testing; 0 = none
  TrainCrop train_crop = TrainCrop::MultiScale;
  MultiScaleCropOptions multi_scale;
  std::array<double, 2> rrc_area{0.08, 1.0}, rrc_ratio{3.0 / 4, 4.0 / 3};
  // Horizontal flip is an explicit option: datasets whose labels have a direction
  // (SSv2, Fashion-Motion's "moving left") must keep it at 0.
  double flip_prob = 0.5;
  double jitter_prob = 0.8;  // per clip: apply or not
  double brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1;
  bool jitter_per_frame = true;  // torchvision quirk: fresh factors per frame
  double gray_prob = 0.2;
  TestCrop test_crop = TestCrop::Center;
  Normalization norm = Normalization::imagenet255();

  // X-CLIP / ViFi / TC-CLIP defaults at `input` pixels (resize to 256/224·input first).
  static TransformOptions xclip(int64_t input = 224);
  // Fashion-Motion: 40×40 frames, random 32×32 crop, centre crop at test, no flip, no
  // colour augmentation (colour is part of the classes), CLIP statistics.
  static TransformOptions fashion_motion();
  int64_t num_test_crops() const { return test_crop == TestCrop::Three ? 3 : 1; }
};

// Training: the random pipeline keyed by `rng`. Output [T,3,S,S] planes into `out`.
void transform_train(const Clip& clip, const TransformOptions& opt, SampleRng& rng, float* out);
// Testing: deterministic; `crop_index` picks one of num_test_crops().
void transform_test(const Clip& clip, const TransformOptions& opt, int64_t crop_index, float* out);

// ---- batch-level mixing ----
// timm Mixup: per batch, CutMix with probability switch_prob (when both are on), one λ for
// the batch, one box for every frame; sample i mixes with sample B-1-i; targets are
// label-smoothed one-hot (off = s/C, on = 1 - s + s/C) mixed with the same λ (CutMix λ
// recomputed from the clipped box). With both alphas 0 only smoothing is applied.
struct MixOptions {
  double mixup_alpha = 0.8, cutmix_alpha = 1.0, switch_prob = 0.5, prob = 1.0;
  double label_smoothing = 0.1;
  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};
struct MixResult {
  double lambda = 1;
  bool cutmix = false;
  CropBox box;  // CutMix box (rows/cols of every frame)
};
// video: [B, T, 3, H, W] float contiguous, modified in place. Returns soft targets [B, C].
Tensor mix_batch(Tensor& video, const std::vector<int64_t>& labels, int64_t num_classes,
                 const MixOptions& opt, SampleRng& rng, MixResult* info = nullptr);
Tensor smooth_one_hot(const std::vector<int64_t>& labels, int64_t num_classes, double smoothing);

}  // namespace vc::data
