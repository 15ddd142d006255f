// The CLIP towers: shapes, state-dict names against expected_shapes(config) for every
// preset, float64 gradient checks of a micro CLIP, the causal mask of the text tower, and
// exactness of trimming trailing padding.
#include "tests/nn/nn_testing.h"

#include "models/clip/clip.h"

using namespace vc;
using namespace vc::clip;
using namespace vc::nn::testing;

namespace {

// A micro config: 8x8 images in 4x4 patches (5 tokens), widths 8, vocab 12, context 6.
ClipConfig micro() {
  ClipConfig c;
  c.name = "micro";
  c.embed_dim = 6;
  c.image_size = 8, c.patch_size = 4;
  c.vision_width = 8, c.vision_layers = 2, c.vision_heads = 2;
  c.context_length = 6, c.vocab_size = 12;
  c.text_width = 8, c.text_layers = 2, c.text_heads = 2;
  return c;
}

// A preset's structure (layer counts, patch and grid) at small widths, to build cheaply.
ClipConfig skeleton(const ClipConfig& p) {
  ClipConfig c = p;
  c.embed_dim = 16, c.vision_width = 64, c.text_width = 64;
  c.vision_heads = 1, c.text_heads = 1;
  c.vocab_size = 50;
  c.patch_size = 2;
  c.image_size = 2 * p.grid();
  return c;
}

void check_names_and_shapes(const CLIP& model, const ClipConfig& c) {
  auto expected = expected_shapes(c);
  auto sd = model.state_dict();
  CHECK(sd.size() == expected.size());
  for (const auto& [name, t] : sd) {
    auto it = expected.find(name);
    REQUIRE_MESSAGE(it != expected.end(), "unexpected parameter ", name);
    CHECK_MESSAGE(t.shape() == it->second, name, " ", t.shape(), " vs ", it->second);
  }
  CHECK(model.num_parameters() == count_parameters(c).total);
}

Tensor tokens_of(const std::vector<std::vector<int64_t>>& rows, int64_t context) {
  std::vector<int64_t> v;
  for (auto r : rows) {
    r.resize(size_t(context), 0);
    v.insert(v.end(), r.begin(), r.end());
  }
  return Tensor::from_vector(v, {int64_t(rows.size()), context});
}

}  // namespace

TEST_CASE("clip model: the tiny preset builds with expected names, shapes and counts") {
  ClipConfig c = ClipConfig::preset("tiny");
  CLIP model(c);
  check_names_and_shapes(model, c);
  Generator gen{1, 0};
  init_clip(model, gen);
  model.eval();
  NoGradGuard ng;
  Tensor img = rand_normal({3, 3, c.image_size, c.image_size}, 1, 0);
  Tensor tok = tokens_of({{c.vocab_size - 2, 5, c.vocab_size - 1}, {c.vocab_size - 2, c.vocab_size - 1}},
                         c.context_length);
  Tensor fi = model.encode_image(img), ft = model.encode_text(tok);
  CHECK(fi.shape() == Shape{3, c.embed_dim});
  CHECK(ft.shape() == Shape{2, c.embed_dim});
  Tensor logits = model.logits(fi, ft);
  CHECK(logits.shape() == Shape{3, 2});
  CHECK(model.scale().item() == doctest::Approx(1 / 0.07).epsilon(1e-5));
  // Vision steps: tokens [N, 1 + grid^2, width].
  CHECK(model.visual->embed(img).shape() == Shape{3, c.vision_tokens(), c.vision_width});
  CHECK_THROWS_WITH_AS(model.encode_image(rand_normal({1, 3, 16, 16}, 1, 0)),
                       doctest::Contains("expected images [N, 3, 32, 32]"), Error);
  CHECK_THROWS_AS(model.encode_text(tokens_of({{1, 2}}, c.context_length + 1)), Error);
}

TEST_CASE("clip model: every preset's names and shapes match expected_shapes") {
  for (const std::string& name : ClipConfig::preset_names()) {
    CAPTURE(name);
    ClipConfig p = ClipConfig::preset(name);
    // The big presets are built at small widths with the same layer counts and grid
    // (ViT-B/32 at float32 would take 600 MB); names are then the preset's exactly.
    ClipConfig s = name == "tiny" ? p : skeleton(p);
    CLIP model(s);
    check_names_and_shapes(model, s);
    auto want = expected_shapes(p);
    auto sd = model.state_dict();
    REQUIRE(sd.size() == want.size());
    for (const auto& [n, t] : sd) CHECK_MESSAGE(want.count(n) == 1, n, " is not a ", name, " key");
  }
  // And the preset's shapes are CLIP's (spot checks; the counts are in test_clip_weights).
  auto b32 = expected_shapes(ClipConfig::preset("ViT-B/32"));
  CHECK(b32.at("visual.transformer.resblocks.11.attn.in_proj_weight") == Shape{2304, 768});
  CHECK(b32.at("token_embedding.weight") == Shape{49408, 512});
  CHECK(b32.at("visual.positional_embedding") == Shape{50, 768});
  CHECK(count_parameters(ClipConfig::preset("ViT-B/32")).total == 151277313);
}

TEST_CASE("clip model: float64 gradient check of encode_image and encode_text") {
  ClipConfig c = micro();
  CLIP model(c);
  Generator gen{7, 0};
  init_clip(model, gen);
  model.to(DType::F64);
  // Larger weights than CLIP's init so that every path carries a visible gradient.
  uint64_t stream = 0;
  for (auto& [n, p] : model.named_parameters())
    if (n.find("ln_") == std::string::npos && n != "logit_scale") {
      NoGradGuard ng;
      nn::copy_into(p, mul(rand_normal(p.shape(), 3, stream++, 0, 1, DType::F64), 0.3));
    }
  SUBCASE("vision tower: input and every visual parameter") {
    nn::Module& vis = *model.visual;
    gradcheck_module(vis, [&](const Tensor& x) { return model.encode_image(x); },
                     randn({2, 3, 8, 8}, 5), "encode_image");
  }
  SUBCASE("text tower: every parameter of the text side") {
    Tensor tok = tokens_of({{10, 3, 4, 11}, {10, 5, 11}}, c.context_length);
    // gradcheck over the text-side parameters only (the vision ones get no gradient).
    std::vector<std::pair<std::string, Tensor>> wrt;
    for (auto& [n, p] : model.named_parameters())
      if (n.rfind("visual.", 0) != 0 && n != "logit_scale") wrt.emplace_back(n, p);
    for (auto& [n, p] : wrt) p.zero_grad(), p.set_requires_grad(true);
    Tensor out = model.encode_text(tok);
    Tensor w = randn(out.shape(), 99);
    sum(mul(out, w)).backward();
    NoGradGuard ng;
    for (auto& [n, t] : wrt) {
      CAPTURE(n);
      REQUIRE(t.grad().defined());
      double* p = t.data<double>();
      Tensor numeric = Tensor::zeros(t.shape(), DType::F64);
      const double eps = 1e-6;
      for (int64_t i = 0; i < t.numel(); ++i) {
        double keep = p[i];
        p[i] = keep + eps;
        double up = sum(mul(model.encode_text(tok), w)).item();
        p[i] = keep - eps;
        double down = sum(mul(model.encode_text(tok), w)).item();
        p[i] = keep;
        numeric.data<double>()[i] = (up - down) / (2 * eps);
      }
      check_close(t.grad(), numeric, 1e-7, 1e-5, n);
    }
  }
  SUBCASE("logits: the gradient reaches logit_scale") {
    model.logit_scale.set_requires_grad(true);
    Tensor a = randn({3, c.embed_dim}, 8), b = randn({2, c.embed_dim}, 9);
    gradcheck([&](const TensorList& in) { return model.logits(in[0], in[1]); }, {a, b}, "logits");
  }
}

TEST_CASE("clip model: causal text tower, EOT pooling and exact padding trim") {
  ClipConfig c = micro();
  CLIP model(c);
  Generator gen{3, 0};
  init_clip(model, gen);
  model.eval();
  NoGradGuard ng;
  // Hidden states before pooling: a later token must not change an earlier position.
  auto hidden = [&](const Tensor& tok) {
    Tensor x = add(model.token_embedding->forward(tok), model.positional_embedding);
    nn::AttentionOptions causal;
    causal.mask = AttentionMask::causal();
    return model.ln_final->forward(model.transformer->forward(x, causal));
  };
  Tensor a = tokens_of({{10, 3, 4, 5, 6, 11}}, c.context_length);
  Tensor b = tokens_of({{10, 3, 4, 7, 8, 11}}, c.context_length);  // differs from position 3 on
  Tensor ha = hidden(a), hb = hidden(b);
  CHECK(max_abs_diff(ha.narrow(1, 0, 3), hb.narrow(1, 0, 3)) == 0);
  CHECK(max_abs_diff(ha.narrow(1, 3, 1), hb.narrow(1, 3, 1)) > 1e-4);
  // ... so features pooled at an early EOT ignore whatever padding follows it.
  Tensor e1 = tokens_of({{10, 3, 11, 0, 0, 0}}, c.context_length);
  Tensor e2 = tokens_of({{10, 3, 11, 5, 6, 7}}, c.context_length);
  CHECK(max_abs_diff(model.encode_text(e1), model.encode_text(e2)) == 0);
  // Pooling is at the end token (the highest id), not at the last position.
  Tensor f = model.encode_text(e1);
  Tensor h = hidden(e1).select(1, 2);
  check_close(f, matmul(h, model.text_projection), 1e-6, 1e-6, "EOT pooling");
  // trim_padding cuts trailing padding columns; the features are the same (up to the
  // float32 rounding of GEMMs of another size).
  Tensor batch = tokens_of({{10, 3, 4, 11}, {10, 11}}, c.context_length);
  Tensor trimmed = trim_padding(batch);
  CHECK(trimmed.shape() == Shape{2, 4});
  check_close(model.encode_text(trimmed), model.encode_text(batch), 1e-6, 1e-6, "trimmed");
}

// ---------------------------------------------------------------- an independent forward

namespace {

using Vec = std::vector<double>;

// Row-major [rows, n] layer norm with CLIP's eps.
Vec layer_norm_rows(const Vec& x, int64_t n, const Vec& w, const Vec& b) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / size_t(n); ++r) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < n; ++j) m += x[r * n + j];
    m /= double(n);
    for (int64_t j = 0; j < n; ++j) v += (x[r * n + j] - m) * (x[r * n + j] - m);
    double rs = 1.0 / std::sqrt(v / double(n) + 1e-5);
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = (x[r * n + j] - m) * rs * w[j] + b[j];
  }
  return y;
}

// x [rows, in] times W^T with W [out, in], plus bias.
Vec linear_rows(const Vec& x, int64_t in, const Vec& w, const Vec& b, int64_t out) {
  size_t rows = x.size() / size_t(in);
  Vec y(rows * size_t(out));
  for (size_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

}  // namespace

TEST_CASE("clip model: the vision tower equals a step-by-step computation written here") {
  ClipConfig c = micro();
  CLIP model(c);
  Generator gen{11, 0};
  init_clip(model, gen);
  model.to(DType::F64);
  model.eval();
  const int64_t N = 2, P = c.patch_size, g = c.grid(), L = g * g + 1, W = c.vision_width;
  const int64_t H = c.vision_heads, hd = W / H, S = c.image_size;
  Tensor images = rand_normal({N, 3, S, S}, 5, 0, 0, 1, DType::F64);
  Vec img = images.to_vector<double>();
  auto p = [&](const std::string& name) { return model.get(name).contiguous().to_vector<double>(); };

  Vec expected;
  for (int64_t n = 0; n < N; ++n) {
    // Patch embedding (a stride-P convolution without bias), class token, positions.
    Vec conv = p("visual.conv1.weight"), cls = p("visual.class_embedding");
    Vec pos = p("visual.positional_embedding");
    Vec x(size_t(L * W));
    for (int64_t w = 0; w < W; ++w) x[w] = cls[w];
    for (int64_t gy = 0; gy < g; ++gy)
      for (int64_t gx = 0; gx < g; ++gx)
        for (int64_t w = 0; w < W; ++w) {
          double s = 0;
          for (int64_t ch = 0; ch < 3; ++ch)
            for (int64_t i = 0; i < P; ++i)
              for (int64_t j = 0; j < P; ++j)
                s += conv[((w * 3 + ch) * P + i) * P + j] *
                     img[((n * 3 + ch) * S + gy * P + i) * S + gx * P + j];
          x[(1 + gy * g + gx) * W + w] = s;
        }
    for (size_t i = 0; i < x.size(); ++i) x[i] += pos[i];
    x = layer_norm_rows(x, W, p("visual.ln_pre.weight"), p("visual.ln_pre.bias"));
    for (int64_t layer = 0; layer < c.vision_layers; ++layer) {
      std::string b = "visual.transformer.resblocks." + std::to_string(layer) + ".";
      Vec h = layer_norm_rows(x, W, p(b + "ln_1.weight"), p(b + "ln_1.bias"));
      Vec qkv = linear_rows(h, W, p(b + "attn.in_proj_weight"), p(b + "attn.in_proj_bias"), 3 * W);
      Vec att(size_t(L * W), 0.0);
      for (int64_t head = 0; head < H; ++head)
        for (int64_t i = 0; i < L; ++i) {
          Vec score(static_cast<size_t>(L), 0.0);
          double mx = -1e300, z = 0;
          for (int64_t j = 0; j < L; ++j) {
            double s = 0;
            for (int64_t d = 0; d < hd; ++d)
              s += qkv[i * 3 * W + head * hd + d] * qkv[j * 3 * W + W + head * hd + d];
            score[j] = s / std::sqrt(double(hd));
            mx = std::max(mx, score[j]);
          }
          for (int64_t j = 0; j < L; ++j) z += std::exp(score[j] - mx);
          for (int64_t j = 0; j < L; ++j)
            for (int64_t d = 0; d < hd; ++d)
              att[i * W + head * hd + d] +=
                  std::exp(score[j] - mx) / z * qkv[j * 3 * W + 2 * W + head * hd + d];
        }
      Vec o = linear_rows(att, W, p(b + "attn.out_proj.weight"), p(b + "attn.out_proj.bias"), W);
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      Vec h2 = layer_norm_rows(x, W, p(b + "ln_2.weight"), p(b + "ln_2.bias"));
      Vec f = linear_rows(h2, W, p(b + "mlp.c_fc.weight"), p(b + "mlp.c_fc.bias"), 4 * W);
      for (double& v : f) v = v / (1.0 + std::exp(-1.702 * v));  // QuickGELU
      Vec m = linear_rows(f, 4 * W, p(b + "mlp.c_proj.weight"), p(b + "mlp.c_proj.bias"), W);
      for (size_t i = 0; i < x.size(); ++i) x[i] += m[i];
    }
    Vec cls_out = layer_norm_rows(Vec(x.begin(), x.begin() + W), W, p("visual.ln_post.weight"),
                                  p("visual.ln_post.bias"));
    Vec proj = p("visual.proj");  // [W, E]: features = cls_out @ proj
    for (int64_t e = 0; e < c.embed_dim; ++e) {
      double s = 0;
      for (int64_t w = 0; w < W; ++w) s += cls_out[w] * proj[w * c.embed_dim + e];
      expected.push_back(s);
    }
  }
  Tensor got = model.encode_image(images);
  REQUIRE(got.shape() == Shape{N, c.embed_dim});
  Vec g2 = got.to_vector<double>();
  for (size_t i = 0; i < expected.size(); ++i)
    CHECK_MESSAGE(std::abs(g2[i] - expected[i]) <= 1e-10 + 1e-9 * std::abs(expected[i]),
                  "feature ", i, ": ", g2[i], " vs ", expected[i]);
}

TEST_CASE("clip model: multi-positive contrastive loss on a batch with a repeated caption") {
  // B = 3 captions, the first and the last the same text, and one extra negative caption.
  const std::vector<double> z = {2.0, -1.0, 0.5, 0.3, 0.1, 1.5, -0.7, 0.9, 1.1, 0.2, 0.4, -2.0};  // [3, 4]
  const std::vector<int64_t> group = {7, 3, 7};
  const int64_t B = 3, C = 4;
  // Reference written here: targets 1/2 on captions {0, 2} for images 0 and 2, 1 on caption 1.
  auto target = [&](int64_t i, int64_t j) {
    if (j >= B) return 0.0;
    if (i == 1 || j == 1) return i == j ? 1.0 : 0.0;
    return 0.5;
  };
  // One direction's soft cross-entropy: row r is the logits z[at(r, k)] over k < n with targets
  // q(r, k); adds its loss to `sum` and half of its mean's gradient to `grad`.
  std::vector<double> grad(size_t(B * C), 0.0);
  auto soft_ce = [&](int64_t rows, int64_t n, auto at, auto q, double& sum) {
    for (int64_t r = 0; r < rows; ++r) {
      double m = -1e300, s = 0;
      for (int64_t k = 0; k < n; ++k) m = std::max(m, z[at(r, k)]);
      for (int64_t k = 0; k < n; ++k) s += std::exp(z[at(r, k)] - m);
      for (int64_t k = 0; k < n; ++k) {
        const double logp = z[at(r, k)] - m - std::log(s);
        sum -= q(r, k) * logp;
        grad[at(r, k)] += 0.5 * (std::exp(logp) - q(r, k)) / double(rows);
      }
    }
  };
  double to_text = 0, to_image = 0;
  // image i over the 4 captions, then caption j over the 3 images
  soft_ce(B, C, [&](int64_t i, int64_t j) { return size_t(i * C + j); }, target, to_text);
  soft_ce(B, B, [&](int64_t j, int64_t i) { return size_t(i * C + j); },
          [&](int64_t j, int64_t i) { return target(j, i); }, to_image);
  const double expected = 0.5 * (to_text / double(B) + to_image / double(B));

  Tensor logits = Tensor::from_vector(z, {B, C});
  logits.set_requires_grad(true);
  Tensor loss = multi_positive_clip_loss(logits, group);
  CHECK(loss.item() == doctest::Approx(expected).epsilon(1e-12));
  loss.backward();
  check_close(logits.grad(), Tensor::from_vector(grad, {B, C}), 1e-12, 1e-10, "multi-positive loss gradient");
  gradcheck([&](const TensorList& in) { return multi_positive_clip_loss(in[0], group); },
            {Tensor::from_vector(z, {B, C})}, "multi_positive_clip_loss");

  // CLIP's InfoNCE on square logits: targets arange(3) both ways, the two directions averaged.
  auto infonce = [](const Tensor& sims) {
    return mul(add(cross_entropy(sims, Tensor::arange(3)),
                   cross_entropy(sims.transpose(0, 1).contiguous(), Tensor::arange(3))), 0.5);
  };
  const Tensor square = Tensor::from_vector(std::vector<double>(z.begin(), z.begin() + 9), {3, 3});
  SUBCASE("distinct captions: CLIP's InfoNCE") {
    CHECK(multi_positive_clip_loss(square, {0, 1, 2}).item() == doctest::Approx(infonce(square).item()).epsilon(1e-12));
  }
  SUBCASE("a repeated caption with one text embedding: InfoNCE's loss and feature gradients") {
    // In pretrain-clip equal captions are the same tokens through the same tower, so their
    // features are equal. Then each pair of equal logits makes the soft target's loss equal
    // the one-hot loss, and the twins' feature gradients sum to the same total: the soft
    // targets change nothing (issue 12's note). Features: x [3, 2] images; the texts are
    // rows {0, 1, 0} of u [2, 2].
    auto run = [&](bool multi, std::vector<double>& gx, std::vector<double>& gu) {
      Tensor x = Tensor::from_vector(std::vector<double>{0.3, -1.2, 0.8, 0.5, -0.4, 1.1}, {3, 2});
      Tensor u = Tensor::from_vector(std::vector<double>{1.0, 0.2, -0.6, 0.9}, {2, 2});
      x.set_requires_grad(true);
      u.set_requires_grad(true);
      Tensor t = index_select(u, 0, Tensor::from_vector(std::vector<int64_t>{0, 1, 0}, {3}));
      Tensor sims = mul(matmul(x, t.transpose(0, 1)), 3.0);
      Tensor loss = multi ? multi_positive_clip_loss(sims, {7, 3, 7}) : infonce(sims);
      loss.backward();
      gx = x.grad().to_vector<double>();
      gu = u.grad().to_vector<double>();
      return loss.item();
    };
    std::vector<double> gx_info, gu_info, gx_multi, gu_multi;
    const double info = run(false, gx_info, gu_info), multi = run(true, gx_multi, gu_multi);
    CHECK(multi == doctest::Approx(info).epsilon(1e-12));
    for (size_t i = 0; i < gx_info.size(); ++i) CHECK(gx_multi[i] == doctest::Approx(gx_info[i]).epsilon(1e-12));
    for (size_t i = 0; i < gu_info.size(); ++i) CHECK(gu_multi[i] == doctest::Approx(gu_info[i]).epsilon(1e-12));
    // ...while with unequal logits for the twins the soft targets do change the loss.
    CHECK(std::abs(multi_positive_clip_loss(square, {7, 3, 7}).item() - infonce(square).item()) > 1e-3);
  }
  CHECK_THROWS_WITH_AS(multi_positive_clip_loss(Tensor::from_vector(z, {B, C}), {1, 2}),
                       doctest::Contains("multi_positive_clip_loss"), std::exception);
}
