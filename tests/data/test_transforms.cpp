// Each transform on a tiny synthetic image with a known output.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "data/transforms.h"
#include "data_testing.h"

using namespace vc::data;
using namespace vc::data::testing;

// A one-frame clip whose channel c at (y, x) is f(y, x, c).
template <class F> static Clip make_clip(int64_t h, int64_t w, F f, int64_t frames = 1) {
  Clip c = Clip::zeros(frames, h, w);
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int ch = 0; ch < 3; ++ch) c.at(t, y, x, ch) = float(f(y, x, ch) + 1000 * t);
  return c;
}

TEST_CASE("resize: bilinear with half-pixel centres (OpenCV INTER_LINEAR)") {
  Clip in = make_clip(1, 2, [](int64_t, int64_t x, int) { return x * 100.0; });
  Clip up = resize(in, 1, 4);
  // source x = (x + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (past the edge)
  CHECK(up.at(0, 0, 0, 0) == doctest::Approx(0));
  CHECK(up.at(0, 0, 1, 0) == doctest::Approx(25));
  CHECK(up.at(0, 0, 2, 0) == doctest::Approx(75));
  CHECK(up.at(0, 0, 3, 1) == doctest::Approx(100));
  Clip in4 = make_clip(1, 4, [](int64_t, int64_t x, int) { return x * x * 10.0; });  // 0 10 40 90
  Clip down = resize(in4, 1, 2);  // sources 0.5 and 2.5
  CHECK(down.at(0, 0, 0, 2) == doctest::Approx(5));
  CHECK(down.at(0, 0, 1, 2) == doctest::Approx(65));
}

TEST_CASE("resize_short_side keeps the aspect: long side int(long*s/short + 0.5)") {
  Clip c = resize_short_side(Clip::zeros(2, 3, 5), 2);
  CHECK(c.height == 2);
  CHECK(c.width == 3);  // 5 * 2/3 = 3.33
  Clip d = resize_short_side(Clip::zeros(1, 240, 320), 256);
  CHECK(d.height == 256);
  CHECK(d.width == 341);  // 341.33
}

TEST_CASE("center crop, three crop and flip pick the right pixels") {
  Clip c = make_clip(6, 6, [](int64_t y, int64_t x, int) { return y * 10.0 + x; });
  Clip cc = center_crop(c, 3, 3);  // top = left = (6-3)/2 = 1
  CHECK(cc.at(0, 0, 0, 0) == 11);
  CHECK(cc.at(0, 2, 2, 0) == 33);
  Clip wide = make_clip(4, 8, [](int64_t y, int64_t x, int) { return y * 10.0 + x; });
  auto three = three_crop(wide, 4);  // step 2: left 0, right 4, middle 2
  CHECK(three[0].at(0, 0, 0, 0) == 0);
  CHECK(three[1].at(0, 0, 0, 0) == 4);
  CHECK(three[2].at(0, 0, 0, 0) == 2);
  Clip tall = make_clip(8, 4, [](int64_t y, int64_t x, int) { return y * 10.0 + x; });
  CHECK(three_crop(tall, 4)[1].at(0, 0, 0, 0) == 40);
  CHECK(contains(error_of([&] { three_crop(c, 4); }), "must equal the crop size"));
  Clip f = hflip(wide);
  CHECK(f.at(0, 1, 0, 0) == 17);
  CHECK(f.at(0, 1, 7, 0) == 10);
  CHECK(contains(error_of([&] { crop(c, 4, 4, 3, 3); }), "outside a 6x6 frame"));
}

TEST_CASE("multi-scale crop: sizes from scale x short side, 5 fixed offsets") {
  MultiScaleCropOptions o;
  const std::vector<int64_t> sizes = {256, 224, 192, 168};  // int(256 * {1, .875, .75, .66})
  std::set<std::pair<int64_t, int64_t>> seen;
  for (uint64_t s = 0; s < 400; ++s) {
    SampleRng r(s, 0, 0, RngPurpose::Transform, 0);
    CropBox b = multi_scale_crop_box(256, 340, 224, 224, o, r);
    auto iw = std::find(sizes.begin(), sizes.end(), b.width) - sizes.begin();
    auto ih = std::find(sizes.begin(), sizes.end(), b.height) - sizes.begin();
    REQUIRE(iw < 4);
    REQUIRE(ih < 4);
    CHECK(std::abs(iw - ih) <= 1);
    int64_t ws = (340 - b.width) / 4, hs = (256 - b.height) / 4;
    bool fixed = (b.left == 0 || b.left == 2 * ws || b.left == 4 * ws) &&
                 (b.top == 0 || b.top == 2 * hs || b.top == 4 * hs) &&
                 ((b.left == 2 * ws) == (b.top == 2 * hs) || ws == 0 || hs == 0);
    CHECK(fixed);
    seen.insert({b.width, b.height});
  }
  CHECK(seen.size() == 10);  // 4 + 3 + 3 pairs with |i - j| <= 1
  // Within 3 px of the input size snaps to it: int(226 * .875) = 197, 226 -> 224.
  SampleRng r(0, 0, 0, RngPurpose::Transform, 0);
  // GCC 12 -O3 reports the default scales' initializer_list "may be used uninitialized" once
  // this constructor is inlined here (a false positive on its vectorised copy).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
  MultiScaleCropOptions one;
#pragma GCC diagnostic pop
  one.scales = {1};
  CropBox b = multi_scale_crop_box(226, 300, 224, 224, one, r);
  CHECK(b.width == 224);
  CHECK(b.height == 224);
}

TEST_CASE("random resized crop: inside the image, centred square fallback") {
  for (uint64_t s = 0; s < 100; ++s) {
    SampleRng r(s, 0, 0, RngPurpose::Transform, 0);
    CropBox b = random_resized_crop_box(40, 60, {0.08, 1.0}, {3.0 / 4, 4.0 / 3}, r);
    CHECK((b.top >= 0 && b.left >= 0 && b.top + b.height <= 40 && b.left + b.width <= 60));
  }
  SampleRng r(1, 0, 0, RngPurpose::Transform, 0);
  CropBox f = random_resized_crop_box(40, 60, {2.0, 3.0}, {1, 1}, r);  // never fits
  CHECK(f.height == 40);
  CHECK(f.width == 40);
  CHECK(f.left == 10);
}

TEST_CASE("colour jitter: brightness, contrast, saturation, hue on known pixels") {
  float px[6] = {100, 50, 200, 200, 200, 200};
  JitterParams p;
  p.brightness = 2;
  p.order = {0, 1, 2, 3};
  color_jitter_frame(px, 1, 2, p);
  CHECK(px[0] == 200);
  CHECK(px[2] == 255);  // clamped
  // Contrast 0: every value becomes the mean luma of the frame.
  float q[6] = {255, 0, 0, 0, 0, 255};
  JitterParams c;
  c.contrast = 0;
  color_jitter_frame(q, 1, 2, c);
  float mean = (0.299f * 255 + 0.114f * 255) / 2;
  for (float v : q) CHECK(v == doctest::Approx(mean).epsilon(1e-5));
  // Saturation 0: each pixel becomes its own luma.
  float s[3] = {255, 0, 0};
  JitterParams sp;
  sp.saturation = 0;
  color_jitter_frame(s, 1, 1, sp);
  CHECK(s[1] == doctest::Approx(0.299 * 255).epsilon(1e-5));
  // Hue: red shifted by 1/3 turn is green, by 1/2 is cyan.
  float h[6] = {255, 0, 0, 255, 0, 0};
  JitterParams hp;
  hp.hue = 1.0 / 3;
  color_jitter_frame(h, 1, 1, hp);
  CHECK(h[0] == doctest::Approx(0).epsilon(1e-4));
  CHECK(h[1] == doctest::Approx(255));
  hp.hue = 0.5;
  color_jitter_frame(h + 3, 1, 1, hp);
  CHECK(h[3] == doctest::Approx(0).epsilon(1e-4));
  CHECK(h[4] == doctest::Approx(255));
  CHECK(h[5] == doctest::Approx(255));
}

TEST_CASE("grayscale and normalisation") {
  Clip c = make_clip(1, 1, [](int64_t, int64_t, int ch) { return ch == 0 ? 255.0 : 0.0; });
  grayscale(c);
  for (int ch = 0; ch < 3; ++ch) CHECK(c.at(0, 0, 0, ch) == doctest::Approx(76.245));
  Normalization n = Normalization::clip();
  Clip m = make_clip(1, 2, [&](int64_t, int64_t x, int ch) { return n.mean[ch] + x * n.std[ch]; });
  float out[6];
  normalize_to_planes(m, n, out);  // planes: R(x0, x1), G(...), B(...)
  for (int ch = 0; ch < 3; ++ch) {
    CHECK(out[ch * 2] == doctest::Approx(0).epsilon(1e-5));
    CHECK(out[ch * 2 + 1] == doctest::Approx(1));
  }
  CHECK(Normalization::imagenet255().mean[0] == doctest::Approx(123.675));
  CHECK(Normalization::clip().std[2] == doctest::Approx(0.27577711 * 255));
  CHECK(contains(error_of([] { Normalization::parse("foo"); }), "unknown normalisation 'foo'"));
}

TEST_CASE("Fashion-Motion training transform is a plain 32x32 crop, never flipped") {
  Clip c = make_clip(40, 40, [](int64_t y, int64_t x, int ch) { return double(y * 40 + x) / 8 + ch; }, 2);
  TransformOptions o = TransformOptions::fashion_motion();
  o.norm = Normalization::none();
  std::vector<float> out(2 * 3 * 32 * 32);
  for (uint64_t s = 0; s < 50; ++s) {
    SampleRng r(s, 0, 0, RngPurpose::Transform, 0);
    transform_train(c, o, r, out.data());
    // Row-major increasing values: a flip would make x decrease.
    float v00 = out[0], v01 = out[1];
    CHECK(v01 > v00);
    int64_t top = int64_t(std::lround(v00 * 8)) / 40, left = int64_t(std::lround(v00 * 8)) % 40;
    CHECK((top <= 8 && left <= 8));
    CHECK(out[(1 * 3 + 2) * 1024] == doctest::Approx(c.at(1, top, left, 2)));  // frame 1, blue
  }
  // Test: centre crop at offset 4.
  transform_test(c, o, 0, out.data());
  CHECK(out[0] == doctest::Approx(c.at(0, 4, 4, 0)));
}

TEST_CASE("flip option: p = 1 always flips every frame, p = 0 never") {
  Clip c = make_clip(4, 4, [](int64_t, int64_t x, int) { return double(x); }, 2);
  TransformOptions o = TransformOptions::fashion_motion();
  o.input_size = 4;
  o.norm = Normalization::none();
  o.flip_prob = 1;
  std::vector<float> out(2 * 3 * 16);
  SampleRng r(0, 0, 0, RngPurpose::Transform, 0);
  transform_train(c, o, r, out.data());
  CHECK(out[0] == 3);
  CHECK(out[3 * 16] == 1003);  // frame 1 flipped too
}

TEST_CASE("label smoothing and mixup / cutmix soft targets") {
  vc::Tensor t = smooth_one_hot({2, 0}, 4, 0.1);
  auto v = t.to_vector<float>();
  CHECK(v[2] == doctest::Approx(0.925));
  CHECK(v[0] == doctest::Approx(0.025));
  CHECK(v[4] == doctest::Approx(0.925));

  // Two constant videos, 0 and 1: mixup gives sample 0 the value 1 - λ everywhere.
  auto make = [] {
    std::vector<float> d(2 * 2 * 3 * 4 * 4, 0.f);
    std::fill(d.begin() + 96, d.end(), 1.f);
    return vc::Tensor::from_vector(d, {2, 2, 3, 4, 4});
  };
  MixOptions mix;
  mix.mixup_alpha = 0.8;
  mix.cutmix_alpha = 0;
  mix.label_smoothing = 0;
  vc::Tensor video = make();
  SampleRng r(5, 0, 0, RngPurpose::Mixup, 0);
  MixResult info;
  vc::Tensor y = mix_batch(video, {0, 1}, 2, mix, r, &info);
  double lam = info.lambda;
  CHECK(lam > 0);
  CHECK(lam < 1);
  auto vv = video.to_vector<float>();
  CHECK(vv[0] == doctest::Approx(1 - lam));
  CHECK(vv[100] == doctest::Approx(lam));
  auto yy = y.to_vector<float>();
  CHECK(yy[0] == doctest::Approx(lam));
  CHECK(yy[1] == doctest::Approx(1 - lam));

  // CutMix: the box comes from the other sample in every frame; λ = 1 - box area / HW.
  mix.mixup_alpha = 0;
  mix.cutmix_alpha = 1;
  for (uint64_t s = 0; s < 20; ++s) {
    vc::Tensor v2 = make();
    SampleRng q(s, 0, 0, RngPurpose::Mixup, 0);
    MixResult ci;
    vc::Tensor y2 = mix_batch(v2, {0, 1}, 2, mix, q, &ci);
    CHECK(ci.cutmix);
    auto d = v2.to_vector<float>();
    int64_t ones = 0;
    for (int i = 0; i < 16; ++i) ones += d[size_t(i)] == 1.f;
    CHECK(ones == ci.box.height * ci.box.width);
    CHECK(ci.lambda == doctest::Approx(1 - double(ones) / 16));
    CHECK(d[5 * 16 + 0] == d[0]);  // frame 1, channel 2: same box
    CHECK(y2.to_vector<float>()[0] == doctest::Approx(ci.lambda));
  }
}
