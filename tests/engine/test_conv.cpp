// conv2d: its bits equal scalar loops written here in the kernel's documented order (so no
// vector width can change them), its values and gradients equal the convolution composed
// from other engine ops (padding by concat, shifted views stacked into im2col rows, one
// matmul: what nn::Conv2d was before it had a kernel), central differences in float64, the
// same bits for 1 and 2 threads, and errors that name the shapes.
#include <cmath>

#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

struct Geometry {
  int64_t B, C, H, W, O, k, s, p;
  int64_t Ho() const { return (H + 2 * p - k) / s + 1; }
  int64_t Wo() const { return (W + 2 * p - k) / s + 1; }
};

// The convolution from engine ops, as nn::Conv2d computed it before conv2d existed.
Tensor conv2d_composed(const Tensor& images, const Tensor& weight, const Tensor& bias, int64_t s,
                       int64_t p) {
  const int64_t B = images.size(0), C = images.size(1), O = weight.size(0), k = weight.size(2);
  const int64_t H = images.size(2) + 2 * p, W = images.size(3) + 2 * p;
  const int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
  Tensor x = images;
  if (p > 0) {
    Tensor rows = Tensor::zeros({B, C, p, images.size(3)}, x.dtype());
    x = concat({rows, x, rows}, 2);
    Tensor cols = Tensor::zeros({B, C, H, p}, x.dtype());
    x = concat({cols, x, cols}, 3);
  }
  std::vector<Tensor> taps;
  for (int64_t dy = 0; dy < k; ++dy)
    for (int64_t dx = 0; dx < k; ++dx) {
      const int64_t hn = std::min(Ho * s, H - dy), wn = std::min(Wo * s, W - dx);
      Tensor t = x.narrow(2, dy, hn).narrow(3, dx, wn);
      if (s > 1) {
        if (hn < Ho * s) t = concat({t, Tensor::zeros({B, C, Ho * s - hn, wn}, x.dtype())}, 2);
        if (wn < Wo * s) t = concat({t, Tensor::zeros({B, C, Ho * s, Wo * s - wn}, x.dtype())}, 3);
        t = t.reshape({B, C, Ho, s, Wo, s}).select(5, 0).select(3, 0);
      }
      taps.push_back(t);
    }
  Tensor cols = stack(taps, 2).permute({0, 3, 4, 1, 2}).reshape({B, Ho * Wo, C * k * k});
  Tensor y = add(matmul(cols, weight.reshape({O, C * k * k}).transpose(0, 1)), bias);
  return y.reshape({B, Ho, Wo, O}).permute({0, 3, 1, 2});
}

float input_at(const Tensor& x, const Geometry& g, int64_t b, int64_t c, int64_t yy, int64_t xx) {
  if (yy < 0 || yy >= g.H || xx < 0 || xx >= g.W) return 0.f;
  return x.data<float>()[((b * g.C + c) * g.H + yy) * g.W + xx];
}

}  // namespace

TEST_CASE("conv2d: float32 bits equal scalar loops in the kernel's order") {
  // The blocks follow the vector width (AVX-512: lanes of 16, forward blocks of 8 channels x
  // 32 columns; AVX2 and narrower: lanes of 8, 4 channels x 16 columns; the weight gradient's
  // channel blocks are 4). On either, Wo = 21 gives a full lane block and a partial one, O = 6
  // a partial channel block, and Wo = 37, O = 11 full and partial forward blocks of both kinds.
  for (Geometry g : {Geometry{3, 3, 13, 21, 6, 3, 1, 1}, Geometry{2, 2, 11, 23, 5, 3, 2, 1},
                     Geometry{2, 4, 8, 8, 3, 2, 2, 0}, Geometry{1, 2, 5, 37, 11, 3, 1, 1}}) {
    CAPTURE(g.k);
    CAPTURE(g.s);
    const int64_t Ho = g.Ho(), Wo = g.Wo(), taps = g.C * g.k * g.k;
    Tensor x = randn({g.B, g.C, g.H, g.W}, 1, DType::F32);
    Tensor w = randn({g.O, g.C, g.k, g.k}, 2, DType::F32).set_requires_grad(true);
    Tensor b = randn({g.O}, 3, DType::F32).set_requires_grad(true);
    Tensor xg = x.detach().set_requires_grad(true);
    Tensor gy = randn({g.B, g.O, Ho, Wo}, 4, DType::F32);
    Tensor y = conv2d(xg, w, b, g.s, g.p);
    y.backward(gy);
    const float* W = w.data<float>();
    const float* G = gy.data<float>();
    auto tap_of = [&](int64_t c, int64_t ky, int64_t kx) { return (c * g.k + ky) * g.k + kx; };
    // y: from the bias, one fma per tap in (c, ky, kx) order
    int64_t bad = 0;
    for (int64_t bb = 0; bb < g.B; ++bb)
      for (int64_t o = 0; o < g.O; ++o)
        for (int64_t i = 0; i < Ho; ++i)
          for (int64_t j = 0; j < Wo; ++j) {
            float acc = b.data<float>()[o];
            for (int64_t c = 0; c < g.C; ++c)
              for (int64_t ky = 0; ky < g.k; ++ky)
                for (int64_t kx = 0; kx < g.k; ++kx)
                  acc = std::fma(W[o * taps + tap_of(c, ky, kx)],
                                 input_at(x, g, bb, c, i * g.s + ky - g.p, j * g.s + kx - g.p), acc);
            bad += acc != y.data<float>()[((bb * g.O + o) * Ho + i) * Wo + j];
          }
    CHECK_MESSAGE(bad == 0, bad, " outputs differ from the scalar loop");
    // gw, gb: lane j sums over (b, i) in order, then the lanes in j order
    for (int64_t o = 0; o < g.O; ++o) {
      for (int64_t t = 0; t <= taps; ++t) {
        const int64_t c = t / (g.k * g.k), ky = (t / g.k) % g.k, kx = t % g.k;
        float total = 0;
        for (int64_t j = 0; j < Wo; ++j) {
          float lane = 0;
          for (int64_t bb = 0; bb < g.B; ++bb)
            for (int64_t i = 0; i < Ho; ++i) {
              const float gv = G[((bb * g.O + o) * Ho + i) * Wo + j];
              lane = t == taps ? lane + gv
                               : std::fma(gv, input_at(x, g, bb, c, i * g.s + ky - g.p, j * g.s + kx - g.p), lane);
            }
          total += lane;
        }
        if (t < taps) CHECK(total == w.grad().data<float>()[o * taps + t]);
        else CHECK(total == b.grad().data<float>()[o]);
      }
    }
    // gx: per image, over (i, c, ky, kx, j), adds the fma chain over o of w · gy
    Tensor ref = Tensor::zeros({g.B, g.C, g.H, g.W}, DType::F32);
    float* R = ref.data<float>();
    for (int64_t bb = 0; bb < g.B; ++bb)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t c = 0; c < g.C; ++c)
          for (int64_t ky = 0; ky < g.k; ++ky)
            for (int64_t kx = 0; kx < g.k; ++kx)
              for (int64_t j = 0; j < Wo; ++j) {
                const int64_t yy = i * g.s + ky - g.p, xx = j * g.s + kx - g.p;
                if (yy < 0 || yy >= g.H || xx < 0 || xx >= g.W) continue;
                float d = 0;
                for (int64_t o = 0; o < g.O; ++o)
                  d = std::fma(W[o * taps + tap_of(c, ky, kx)], G[((bb * g.O + o) * Ho + i) * Wo + j], d);
                R[((bb * g.C + c) * g.H + yy) * g.W + xx] += d;
              }
    CHECK(hash_bits(ref) == hash_bits(xg.grad()));
  }
}

TEST_CASE("conv2d equals its composition from engine ops, forward and gradients (float64)") {
  for (Geometry g : {Geometry{2, 3, 9, 10, 4, 3, 1, 1}, Geometry{2, 2, 5, 7, 3, 3, 2, 1},
                     Geometry{1, 2, 5, 7, 3, 3, 3, 2}, Geometry{2, 3, 6, 6, 2, 1, 1, 0},
                     Geometry{2, 2, 8, 8, 4, 4, 4, 0}}) {
    CAPTURE(g.k);
    CAPTURE(g.s);
    CAPTURE(g.p);
    Tensor gy = randn({g.B, g.O, g.Ho(), g.Wo()}, 14);
    TensorList grads[2];
    Tensor ys[2];
    for (int path = 0; path < 2; ++path) {
      Tensor x = randn({g.B, g.C, g.H, g.W}, 11).set_requires_grad(true);
      Tensor w = randn({g.O, g.C, g.k, g.k}, 12).set_requires_grad(true);
      Tensor b = randn({g.O}, 13).set_requires_grad(true);
      ys[path] = path == 0 ? conv2d(x, w, b, g.s, g.p) : conv2d_composed(x, w, b, g.s, g.p);
      ys[path].backward(gy);
      grads[path] = {x.grad(), w.grad(), b.grad()};
    }
    REQUIRE(ys[0].shape() == ys[1].shape());
    CHECK(max_abs_diff(ys[0], ys[1]) < 1e-12);
    for (int i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(max_abs_diff(grads[0][size_t(i)], grads[1][size_t(i)]) < 1e-12);
    }
  }
}

TEST_CASE("gradcheck: conv2d, input, weight and bias (float64)") {
  for (Geometry g : {Geometry{2, 2, 5, 6, 3, 3, 1, 1}, Geometry{1, 2, 7, 5, 2, 3, 3, 2},
                     Geometry{2, 3, 4, 4, 2, 1, 1, 0}}) {
    CAPTURE(g.k);
    CAPTURE(g.s);
    gradcheck([&](const TensorList& in) { return conv2d(in[0], in[1], in[2], g.s, g.p); },
              {randn({g.B, g.C, g.H, g.W}, 31), randn({g.O, g.C, g.k, g.k}, 32), randn({g.O}, 33)},
              "conv2d");
  }
}

TEST_CASE("conv2d: the same bits for 1, 2 and 3 threads") {
  // The tiny CLIP's stem at 16 frames: big enough for every kernel to run threaded.
  auto run = [] {
    Tensor x = randn({16, 3, 32, 32}, 21, DType::F32).set_requires_grad(true);
    Tensor w = randn({32, 3, 3, 3}, 22, DType::F32).set_requires_grad(true);
    Tensor b = randn({32}, 23, DType::F32).set_requires_grad(true);
    Tensor y = conv2d(x, w, b, 1, 1);
    y.backward(randn(y.shape(), 24, DType::F32));
    return std::vector<uint64_t>{hash_bits(y), hash_bits(x.grad()), hash_bits(w.grad()), hash_bits(b.grad())};
  };
  const int before = num_threads();
  set_num_threads(1);
  auto one = run();
  set_num_threads(2);
  auto two = run();
  set_num_threads(3);  // the weight gradient's channel blocks follow the thread count: 3 uneven
  auto three = run();
  set_num_threads(before);
  CHECK(one == two);
  CHECK(one == three);
}

TEST_CASE("conv2d: bad shapes and settings name what is wrong") {
  Tensor x = Tensor::zeros({1, 3, 8, 8});
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({4, 3, 3, 3}), Tensor()),
                       doctest::Contains("is not [B, C, H, W]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor()),
                       doctest::Contains("is not [O, 3, k, k]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({3})),
                       doctest::Contains("bias [3] is not [4]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), 0),
                       doctest::Contains("stride 0"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 9, 9}), Tensor()),
                       doctest::Contains("smaller than the kernel 9"), Error);
}
