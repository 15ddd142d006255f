// Module bookkeeping and the layers' forward passes: shapes, parameter counts, CLIP's
// state-dict names, strict loading, freezing, dtype moves, init, and each layer against a
// naive reference loop.
#include <array>
#include <cmath>
#include <vector>

#include "tests/nn/nn_testing.h"

using namespace vc;
using namespace vc::nn;
using namespace vc::nn::testing;

namespace {

// Shapes of every state-dict entry, "name [a, b]".
std::vector<std::string> described(const StateDict& sd) {
  std::vector<std::string> out;
  for (const auto& [n, t] : sd) out.push_back(n + " " + shape_str(t.shape()));
  return out;
}

}  // namespace

TEST_CASE("ResidualAttentionBlock: CLIP's state-dict names, order and shapes") {
  ResidualAttentionBlock block(512, 8, Activation::QuickGELU);
  std::vector<std::string> got = described(block.state_dict());
  // OpenAI CLIP ViT-B/32 text block (specs/ecosystem.md §3.2), in CLIP's registration order.
  std::vector<std::string> want = {
      "attn.in_proj_weight [1536, 512]", "attn.in_proj_bias [1536]",
      "attn.out_proj.weight [512, 512]", "attn.out_proj.bias [512]",
      "ln_1.weight [512]",               "ln_1.bias [512]",
      "mlp.c_fc.weight [2048, 512]",     "mlp.c_fc.bias [2048]",
      "mlp.c_proj.weight [512, 2048]",   "mlp.c_proj.bias [512]",
      "ln_2.weight [512]",               "ln_2.bias [512]"};
  CHECK(got == want);
  std::string listing;
  for (const auto& s : got) listing += "\n  " + s;
  MESSAGE("ResidualAttentionBlock(512, 8) state dict:", listing);
}

TEST_CASE("Transformer: resblocks.N names and CLIP ViT-B/32 parameter count") {
  Transformer t(16, 3, 2, Activation::QuickGELU);
  StateDict sd = t.state_dict();
  CHECK(sd.size() == 3 * 12);
  CHECK(sd.keys().front() == "resblocks.0.attn.in_proj_weight");
  CHECK(sd.keys().back() == "resblocks.2.ln_2.bias");
  CHECK(sd.contains("resblocks.1.mlp.c_proj.weight"));
  CHECK(t.layers() == 3);
  CHECK(t.width() == 16);

  // One ViT-B/32 vision block, and the whole tower against open_clip's 87.85 M profile
  // (specs/ecosystem.md §3.1): 12 blocks + conv1 + class/positional embeddings + ln_pre/post
  // + proj [768, 512].
  Transformer one(768, 1, 12, Activation::QuickGELU);
  CHECK(one.num_parameters() == 12 * 768 * 768 + 13 * 768);
  PatchEmbed conv1(3, 768, 32);
  CHECK(conv1.num_parameters() == 768 * 3 * 32 * 32);
  int64_t tower = 12 * one.num_parameters() + conv1.num_parameters() + 768 + 50 * 768 +
                  2 * 2 * 768 + 768 * 512;
  CHECK(tower == 87849216);
}

TEST_CASE("layers: parameter counts and output shapes") {
  Linear lin(4, 3);
  CHECK(lin.num_parameters() == 15);
  CHECK(Linear(4, 3, false).num_parameters() == 12);
  CHECK(lin.forward(Tensor::ones({2, 5, 4})).shape() == Shape{2, 5, 3});
  CHECK(lin.forward(Tensor::ones({4})).shape() == Shape{3});
  CHECK(LayerNorm(8).num_parameters() == 16);
  Embedding emb(10, 4);
  CHECK(emb.num_parameters() == 40);
  CHECK(emb.forward(Tensor::from_vector<int64_t>({1, 2, 3, 9, 0, 0}, {2, 3})).shape() ==
        Shape{2, 3, 4});
  PatchEmbed pe(3, 8, 4);
  CHECK(pe.num_parameters() == 8 * 3 * 16);
  CHECK(PatchEmbed(3, 8, 4, true).num_parameters() == 8 * 3 * 16 + 8);
  CHECK(pe.forward(Tensor::ones({2, 3, 8, 12})).shape() == Shape{2, 6, 8});
  MLP mlp(8, 32, Activation::GELU);
  CHECK(mlp.num_parameters() == 8 * 32 + 32 + 32 * 8 + 8);
  MultiheadAttention mha(8, 2);
  CHECK(mha.num_parameters() == 3 * 64 + 24 + 64 + 8);
  CHECK(mha.forward(Tensor::ones({2, 5, 8})).shape() == Shape{2, 5, 8});
  CHECK(mha.forward(Tensor::ones({2, 5, 8}), Tensor::ones({2, 7, 8}), Tensor::ones({2, 7, 8}))
            .out.shape() == Shape{2, 5, 8});
  ResidualAttentionBlock block(8, 2, Activation::QuickGELU);
  CHECK(block.num_parameters() == 288 + 16 + 552 + 16);
  CHECK(block.forward(Tensor::ones({3, 4, 8})).shape() == Shape{3, 4, 8});

  CHECK_THROWS_WITH_AS(lin.forward(Tensor::ones({2, 5})), doctest::Contains("Linear"), Error);
  CHECK_THROWS_WITH_AS(pe.forward(Tensor::ones({2, 3, 7, 8})), doctest::Contains("PatchEmbed"),
                       Error);
  CHECK_THROWS_AS(MultiheadAttention(10, 3), Error);
}

TEST_CASE("Linear, LayerNorm, Embedding against naive loops") {
  Linear lin(3, 2);
  init_module(lin, 5, DType::F64);
  Tensor x = randn({4, 3}, 1);
  Tensor y = lin.forward(x);
  Tensor want = Tensor::zeros({4, 2}, DType::F64);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t o = 0; o < 2; ++o) {
      double s = at(lin.bias, {o});
      for (int64_t k = 0; k < 3; ++k) s += at(x, {i, k}) * at(lin.weight, {o, k});
      want.data<double>()[i * 2 + o] = s;
    }
  check_close(y, want, 1e-12, 1e-12, "linear");

  LayerNorm ln(5);
  ln.to(DType::F64);
  Tensor xs = randn({3, 5}, 2);
  Tensor got = ln.forward(xs);
  for (int64_t r = 0; r < 3; ++r) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < 5; ++k) m += at(xs, {r, k}) / 5;
    for (int64_t k = 0; k < 5; ++k) v += (at(xs, {r, k}) - m) * (at(xs, {r, k}) - m) / 5;
    for (int64_t k = 0; k < 5; ++k)
      CHECK(at(got, {r, k}) == doctest::Approx((at(xs, {r, k}) - m) / std::sqrt(v + 1e-5)).epsilon(1e-12));
  }

  Embedding emb(6, 3);
  init_module(emb, 3);
  Tensor ids = Tensor::from_vector<int64_t>({5, 0, 5}, {3});
  Tensor e = emb.forward(ids);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 3; ++k) CHECK(at(e, {i, k}) == at(emb.weight, {at(ids, {i}) == 5 ? 5 : 0, k}));
}

TEST_CASE("PatchEmbed equals a stride-P convolution") {
  PatchEmbed pe(2, 3, 2, /*bias=*/true);
  init_module(pe, 9, DType::F64);
  Tensor img = randn({2, 2, 4, 6}, 4);
  Tensor y = pe.forward(img);  // [2, 6, 3]
  REQUIRE(y.shape() == Shape{2, 6, 3});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t gy = 0; gy < 2; ++gy)
      for (int64_t gx = 0; gx < 3; ++gx)
        for (int64_t d = 0; d < 3; ++d) {
          double s = at(pe.bias, {d});
          for (int64_t c = 0; c < 2; ++c)
            for (int64_t i = 0; i < 2; ++i)
              for (int64_t j = 0; j < 2; ++j)
                s += at(img, {b, c, gy * 2 + i, gx * 2 + j}) * at(pe.weight, {d, c, i, j});
          CHECK(at(y, {b, gy * 3 + gx, d}) == doctest::Approx(s).epsilon(1e-12));
        }
}

TEST_CASE("Conv2d equals the convolution sum, with padding and strides") {
  // (kernel, stride, padding) on a 5x7 image: odd sizes, so a strided window runs off the edge.
  for (std::array<int64_t, 3> ksp : std::vector<std::array<int64_t, 3>>{{3, 1, 1}, {3, 2, 1}, {2, 2, 0}, {3, 2, 0}, {1, 1, 0}, {3, 3, 2}}) {
    const int64_t k = ksp[0], s = ksp[1], p = ksp[2];
    Conv2d conv(2, 3, k, s, p, /*bias=*/true);
    init_module(conv, 12, DType::F64);
    Tensor img = randn({2, 2, 5, 7}, 6);
    Tensor y = conv.forward(img);
    const int64_t Ho = (5 + 2 * p - k) / s + 1, Wo = (7 + 2 * p - k) / s + 1;
    CAPTURE(k);
    CAPTURE(s);
    CAPTURE(p);
    REQUIRE(y.shape() == Shape{2, 3, Ho, Wo});
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t o = 0; o < 3; ++o)
        for (int64_t i = 0; i < Ho; ++i)
          for (int64_t j = 0; j < Wo; ++j) {
            double sum = at(conv.bias, {o});
            for (int64_t c = 0; c < 2; ++c)
              for (int64_t dy = 0; dy < k; ++dy)
                for (int64_t dx = 0; dx < k; ++dx) {
                  const int64_t yy = i * s + dy - p, xx = j * s + dx - p;  // outside: zero padding
                  if (yy >= 0 && yy < 5 && xx >= 0 && xx < 7)
                    sum += at(img, {b, c, yy, xx}) * at(conv.weight, {o, c, dy, dx});
                }
            CHECK(at(y, {b, o, i, j}) == doctest::Approx(sum).epsilon(1e-12));
          }
  }
  CHECK_THROWS_WITH_AS(Conv2d(2, 3, 3, 1, 1).forward(Tensor::ones({1, 3, 5, 5})),
                       doctest::Contains("Conv2d"), vc::Error);
}

TEST_CASE("MLP activations: quick_gelu and gelu") {
  for (Activation act : {Activation::QuickGELU, Activation::GELU}) {
    MLP mlp(2, 3, act);
    init_module(mlp, 11, DType::F64);
    Tensor x = randn({1, 2}, 5);
    Tensor y = mlp.forward(x);
    for (int64_t o = 0; o < 2; ++o) {
      double s = at(mlp.c_proj->bias, {o});
      for (int64_t h = 0; h < 3; ++h) {
        double a = at(mlp.c_fc->bias, {h});
        for (int64_t k = 0; k < 2; ++k) a += at(x, {0, k}) * at(mlp.c_fc->weight, {h, k});
        double g = act == Activation::QuickGELU ? a / (1 + std::exp(-1.702 * a))
                                                : 0.5 * a * (1 + std::erf(a / std::sqrt(2.0)));
        s += g * at(mlp.c_proj->weight, {o, h});
      }
      CHECK(at(y, {0, o}) == doctest::Approx(s).epsilon(1e-12));
    }
  }
}

// Naive multi-head attention over [B, L, D] with CLIP's packed projection.
static Tensor naive_mha(const MultiheadAttention& m, const Tensor& x, bool causal) {
  int64_t B = x.size(0), L = x.size(1), D = m.dim, H = m.heads, d = D / H;
  auto proj = [&](int64_t b, int64_t l, int64_t row) {  // (W x + b)[row]
    double s = at(m.in_proj_bias, {row});
    for (int64_t k = 0; k < D; ++k) s += at(m.in_proj_weight, {row, k}) * at(x, {b, l, k});
    return s;
  };
  Tensor heads_out = Tensor::zeros({B, L, D}, DType::F64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> s(L);
        double mx = -1e300;
        for (int64_t j = 0; j < L; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += proj(b, i, h * d + c) * proj(b, j, D + h * d + c);
          s[j] = (causal && j > i) ? -INFINITY : dot / std::sqrt(double(d));
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (double& v : s) z += (v = std::exp(v - mx));
        for (int64_t c = 0; c < d; ++c) {
          double o = 0;
          for (int64_t j = 0; j < L; ++j) o += s[j] / z * proj(b, j, 2 * D + h * d + c);
          heads_out.data<double>()[(b * L + i) * D + h * d + c] = o;
        }
      }
  return m.out_proj->forward(heads_out);
}

TEST_CASE("MultiheadAttention against a naive loop, with and without the causal mask") {
  MultiheadAttention mha(6, 2);
  init_module(mha, 21, DType::F64);
  Generator gb{3, 0};
  init::normal_(mha.in_proj_bias, gb, 0, 0.5);  // non-zero biases, so they are tested
  Tensor x = randn({2, 4, 6}, 8);
  for (bool causal : {false, true}) {
    AttentionOptions o;
    o.mask = causal ? AttentionMask::causal() : AttentionMask::none();
    check_close(mha.forward(x, o), naive_mha(mha, x, causal), 1e-12, 1e-10,
                causal ? "mha causal" : "mha");
    // The (query, key, value) path is the same computation.
    check_close(mha.forward(x, x, x, o).out, mha.forward(x, o), 1e-12, 1e-12, "mha qkv path");
  }
  // CLIP's additive -inf mask is the causal mask.
  AttentionOptions add_mask;
  Tensor m = Tensor::zeros({4, 4}, DType::F64);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = i + 1; j < 4; ++j) m.data<double>()[i * 4 + j] = -INFINITY;
  add_mask.bias = m;
  check_close(mha.forward(x, add_mask), naive_mha(mha, x, true), 1e-12, 1e-10, "mha -inf bias");
}

TEST_CASE("attention core: padding, fully masked rows, probabilities, Kronecker masks") {
  Tensor q = randn({1, 1, 4, 3}, 1), k = randn({1, 1, 4, 3}, 2), v = randn({1, 1, 4, 2}, 3);
  AttentionOptions o;
  o.prob_rows = {0, 1, 2, 3};
  o.key_bias = padding_key_bias(Tensor::from_vector<int64_t>({0, 1, 0, 1}, {1, 4}), DType::F64);
  AttentionResult r = attention_core(q, k, v, o);
  for (int64_t i = 0; i < 4; ++i) {
    CHECK(at(r.probs, {0, 0, i, 1}) == 0.0);
    CHECK(at(r.probs, {0, 0, i, 3}) == 0.0);
    CHECK(at(r.probs, {0, 0, i, 0}) + at(r.probs, {0, 0, i, 2}) == doctest::Approx(1.0));
  }
  // Every key hidden: output 0, never NaN.
  o.key_bias = padding_key_bias(Tensor::from_vector<int64_t>({1, 1, 1, 1}, {1, 4}), DType::F64);
  r = attention_core(q, k, v, o);
  for (double val : values(r.out)) CHECK(val == 0.0);

  // CLAVER's KMCTA through a MultiheadAttention: the tokens of frame 0 see only themselves.
  const int64_t T = 3, L = 2;
  MultiheadAttention mha(4, 2);
  init_module(mha, 3, DType::F64);
  AttentionOptions km;
  km.mask = AttentionMask::kronecker(KronMask::kmcta(T, L));
  km.prob_rows = {0, 1, 4};
  Tensor x = randn({1, T * L, 4}, 4);
  AttentionResult kr = mha.forward(x, x, x, km);
  CHECK(at(kr.probs, {0, 1, 0, 0}) == doctest::Approx(1.0));
  CHECK(at(kr.probs, {0, 1, 1, 1}) == doctest::Approx(1.0));
  for (int64_t j = 0; j < T * L; ++j)  // frame 2, token 0 sees frames 0-1 and itself
    CHECK((at(kr.probs, {0, 0, 2, j}) > 0) == (j < 4 || j == 4));
}

TEST_CASE("MultiheadAttention: extra key/value tokens equal appending them to the keys") {
  MultiheadAttention mha(6, 3);
  init_module(mha, 13, DType::F64);
  Tensor x = randn({2, 4, 6}, 14), ctx = randn({2, 2, 6}, 15);
  AttentionOptions o;
  std::tie(o.extra_k, o.extra_v) = mha.project_kv(ctx);
  Tensor with_extra = mha.forward(x, o);
  Tensor kv = concat({x, ctx}, 1);
  check_close(with_extra, mha.forward(x, kv, kv).out, 1e-12, 1e-10, "extra tokens");
}

TEST_CASE("strict load_state_dict reports every problem by name, in one message") {
  ResidualAttentionBlock block(8, 2, Activation::QuickGELU);
  StateDict sd;
  for (const auto& [n, t] : block.state_dict())
    if (n != "ln_1.bias" && n != "mlp.c_fc.weight") sd.set(n, Tensor::full(t.shape(), 0.5));
  sd.set("attn.out_proj.weight", Tensor::zeros({8, 9}));
  sd.set("visual.proj", Tensor::zeros({2}));
  sd.set("attn.q_proj.weight", Tensor::zeros({2}));
  std::string msg;
  try {
    block.load_state_dict(sd);
  } catch (const Error& e) {
    msg = e.what();
  }
  MESSAGE("strict load error: ", msg);
  for (const char* want : {"2 missing keys", "ln_1.bias", "mlp.c_fc.weight", "2 unexpected keys",
                           "visual.proj", "attn.q_proj.weight", "1 shape mismatch",
                           "attn.out_proj.weight: dict [8, 9] vs model [8, 8]"})
    CHECK_MESSAGE(msg.find(want) != std::string::npos, "missing '", want, "' in: ", msg);
  // A failed load changes nothing.
  CHECK(values(block.ln_1->weight) == std::vector<double>(8, 1.0));

  // Non-strict: missing and unexpected keys are reported, the rest loads; shapes still throw.
  sd.set("attn.out_proj.weight", Tensor::zeros({8, 8}));
  LoadReport rep = block.load_state_dict(sd, /*strict=*/false);
  CHECK(rep.missing == std::vector<std::string>{"ln_1.bias", "mlp.c_fc.weight"});
  CHECK(rep.unexpected == std::vector<std::string>{"visual.proj", "attn.q_proj.weight"});
  CHECK(values(block.ln_1->weight) == std::vector<double>(8, 0.5));
  sd.set("ln_2.bias", Tensor::zeros({3}));
  CHECK_THROWS_WITH_AS(block.load_state_dict(sd, false), doctest::Contains("ln_2.bias: dict [3]"),
                       Error);
  // int64 into a float parameter is refused (no silent casts); float64 into float32 is a cast.
  StateDict bad = block.state_dict();
  bad.set("ln_2.bias", Tensor::zeros({8}, DType::I64));
  CHECK_THROWS_WITH_AS(block.load_state_dict(bad), doctest::Contains("ln_2.bias: dict int64"), Error);
  StateDict f64;
  for (const auto& [n, t] : block.state_dict()) f64.set(n, Tensor::full(t.shape(), 0.25, DType::F64));
  block.load_state_dict(f64);
  CHECK(block.ln_2->bias.dtype() == DType::F32);
  CHECK(values(block.ln_2->bias) == std::vector<double>(8, 0.25));
}

TEST_CASE("load_state_dict copies in place; state_dict shares storage") {
  Linear lin(2, 2);
  Tensor w = lin.weight;
  StateDict sd;
  sd.set("weight", Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}));
  sd.set("bias", Tensor::from_vector<float>({5, 6}, {2}));
  lin.load_state_dict(sd);
  CHECK(w.same(lin.weight));
  CHECK(values(w) == std::vector<double>{1, 2, 3, 4});
  CHECK(lin.state_dict().at("bias").raw() == lin.bias.raw());
}

TEST_CASE("freeze and unfreeze by name pattern") {
  Transformer t(8, 2, 2, Activation::QuickGELU);
  int64_t all = t.num_parameters();
  CHECK(t.freeze("^resblocks\\.0\\.") == 12);
  CHECK(t.freeze("ln_") == 8);  // 4 already frozen in block 0, 4 more in block 1
  CHECK_FALSE(t.get("resblocks.0.attn.in_proj_weight").requires_grad());
  CHECK(t.get("resblocks.1.attn.in_proj_weight").requires_grad());
  CHECK_FALSE(t.get("resblocks.1.ln_2.bias").requires_grad());
  CHECK(t.num_parameters(true) == all / 2 - 4 * 8);
  CHECK_THROWS_WITH_AS(t.freeze("visual"), doctest::Contains("matches no parameter"), Error);
  CHECK_THROWS_WITH_AS(t.freeze("("), doctest::Contains("bad pattern"), Error);
  t.unfreeze(".");
  CHECK(t.num_parameters(true) == all);
  // Frozen parameters get no gradient and are left out of optimizer groups.
  t.freeze("attn");
  Tensor x = Tensor::ones({1, 3, 8});
  sum(t.forward(x)).backward();
  CHECK_FALSE(t.get("resblocks.0.attn.in_proj_weight").grad().defined());
  CHECK(t.get("resblocks.0.mlp.c_fc.weight").grad().defined());
  for (const auto& g : make_param_groups(t, 0.1))
    for (const auto& [n, p] : g.params) CHECK(n.find("attn") == std::string::npos);
}

TEST_CASE("Module::to(F64), train/eval, named_modules") {
  ResidualAttentionBlock b(4, 2, Activation::QuickGELU, 0.1);
  Tensor handle = b.attn->in_proj_weight;
  b.to(DType::F64);
  for (const auto& [n, p] : b.named_parameters()) CHECK_MESSAGE(p.dtype() == DType::F64, n);
  CHECK(handle.dtype() == DType::F64);  // members see the change: same tensor object
  Generator gen{1, 0};
  b.set_generator(&gen);  // drop_path 0.1 draws in training
  CHECK(b.forward(randn({2, 3, 4}, 1)).dtype() == DType::F64);
  CHECK(b.is_training());
  b.eval();
  CHECK_FALSE(b.drop_path->is_training());
  b.train();
  CHECK(b.mlp->c_fc->is_training());
  std::vector<std::string> mods;
  for (auto& [n, m] : b.named_modules()) mods.push_back(n);
  CHECK(mods == std::vector<std::string>{"", "attn", "attn.out_proj", "ln_1", "mlp", "mlp.c_fc",
                                         "mlp.c_proj", "ln_2", "drop_path"});
}

TEST_CASE("Dropout and DropPath: seeded, identity in eval, scaled in training") {
  Dropout d(0.25);
  Tensor x = Tensor::ones({4000});
  CHECK_THROWS_WITH_AS(d.forward(x), doctest::Contains("generator"), Error);
  Generator gen{7, 0};
  d.set_generator(&gen);
  Tensor a = d.forward(x);
  CHECK(gen.next_stream == 1);
  int64_t zeros = 0;
  for (double v : values(a)) {
    CHECK((v == 0.0 || v == doctest::Approx(1 / 0.75)));
    zeros += v == 0.0;
  }
  CHECK(std::abs(double(zeros) / 4000 - 0.25) < 0.03);
  Generator again{7, 0};
  d.set_generator(&again);
  CHECK(hash_bits(d.forward(x)) == hash_bits(a));
  CHECK(hash_bits(d.forward(x)) != hash_bits(a));  // the next stream differs
  d.eval();
  CHECK(d.forward(x).same(x));

  DropPath dp(0.5);
  dp.set_generator(&gen);
  Tensor y = dp.forward(Tensor::ones({64, 3, 2}));
  int64_t dropped = 0;
  for (int64_t b = 0; b < 64; ++b) {
    double first = at(y, {b, 0, 0});
    CHECK((first == 0.0 || first == 2.0));
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 2; ++j) CHECK(at(y, {b, i, j}) == first);  // whole sample
    dropped += first == 0.0;
  }
  CHECK(dropped > 16);
  CHECK(dropped < 48);
  dp.eval();
  CHECK(values(dp.forward(Tensor::ones({4, 2}))) == std::vector<double>(8, 1.0));
}

TEST_CASE("init: seeded, CLIP's stds, Xavier and Kaiming") {
  Transformer a(64, 2, 4, Activation::QuickGELU), b(64, 2, 4, Activation::QuickGELU);
  Generator g1{1, 0}, g2{1, 0}, g3{2, 0};
  init::clip_transformer_(a, g1);
  init::clip_transformer_(b, g2);
  for (const auto& [n, t] : a.state_dict()) CHECK_MESSAGE(hash_bits(t) == hash_bits(b.get(n)), n);
  init::clip_transformer_(b, g3);
  CHECK(hash_bits(a.get("resblocks.0.attn.in_proj_weight")) !=
        hash_bits(b.get("resblocks.0.attn.in_proj_weight")));

  auto sample_std = [](const Tensor& t) {
    std::vector<double> v = values(t);
    double m = 0, s = 0;
    for (double x : v) m += x / double(v.size());
    for (double x : v) s += (x - m) * (x - m) / double(v.size());
    return std::sqrt(s);
  };
  // CLIP: attn width^-0.5, proj width^-0.5 (2 layers)^-0.5, fc (2 width)^-0.5.
  CHECK(sample_std(a.get("resblocks.1.attn.in_proj_weight")) == doctest::Approx(0.125).epsilon(0.03));
  CHECK(sample_std(a.get("resblocks.1.attn.out_proj.weight")) == doctest::Approx(0.0625).epsilon(0.05));
  CHECK(sample_std(a.get("resblocks.1.mlp.c_fc.weight")) == doctest::Approx(1 / std::sqrt(128.0)).epsilon(0.03));
  CHECK(sample_std(a.get("resblocks.1.mlp.c_proj.weight")) == doctest::Approx(0.0625).epsilon(0.03));
  CHECK(values(a.get("resblocks.0.mlp.c_fc.bias")) == std::vector<double>(256, 0.0));
  init::ClipStd s = init::clip_std(768, 12);
  CHECK(s.attn == doctest::Approx(0.036084391824351615));
  CHECK(s.proj == doctest::Approx(0.036084391824351615 / std::sqrt(24.0)));
  CHECK(s.fc == doctest::Approx(0.025515518153991442));

  Tensor w = Tensor::zeros({200, 100});
  Generator g{5, 0};
  init::xavier_uniform_(w, g);
  double bound = std::sqrt(6.0 / 300.0), mx = 0;
  for (double v : values(w)) mx = std::max(mx, std::abs(v));
  CHECK(mx <= bound);
  CHECK(mx > 0.99 * bound);
  init::kaiming_normal_(w, g);  // fan_in 100, ReLU gain sqrt(2)
  CHECK(sample_std(w) == doctest::Approx(std::sqrt(2.0 / 100)).epsilon(0.03));
  init::kaiming_uniform_(w, g, 0, init::FanMode::FanOut);
  CHECK(sample_std(w) == doctest::Approx(std::sqrt(2.0 / 200)).epsilon(0.03));
  init::xavier_normal_(w, g, 2.0);
  CHECK(sample_std(w) == doctest::Approx(2.0 * std::sqrt(2.0 / 300)).epsilon(0.03));
}
