// Each layer as a whole against float64 central differences: the input and every parameter.
#include "tests/nn/nn_testing.h"

using namespace vc;
using namespace vc::nn;
using namespace vc::nn::testing;

TEST_CASE("gradcheck: Linear, LayerNorm, Embedding, PatchEmbed") {
  Linear lin(3, 4);
  init_module(lin, 1, DType::F64);
  gradcheck_module(lin, [&](const Tensor& x) { return lin.forward(x); }, randn({2, 5, 3}, 1), "Linear");

  LayerNorm ln(5);
  init_module(ln, 2, DType::F64);
  Generator g{3, 0};
  init::normal_(ln.weight, g, 1, 0.3);  // not all ones, so weight and bias both matter
  init::normal_(ln.bias, g, 0, 0.3);
  gradcheck_module(ln, [&](const Tensor& x) { return ln.forward(x); }, randn({3, 5}, 2), "LayerNorm");

  Embedding emb(5, 3);
  init_module(emb, 4, DType::F64);
  Tensor ids = Tensor::from_vector<int64_t>({4, 0, 4, 2, 1, 4}, {2, 3});  // repeats accumulate
  gradcheck_module(emb, [&](const Tensor& i) { return emb.forward(i); }, ids, "Embedding");

  for (bool bias : {false, true}) {
    PatchEmbed pe(2, 3, 2, bias);
    init_module(pe, 5, DType::F64);
    gradcheck_module(pe, [&](const Tensor& x) { return pe.forward(x); }, randn({2, 2, 4, 6}, 3),
                     bias ? "PatchEmbed+bias" : "PatchEmbed");
  }
}

TEST_CASE("gradcheck: Conv2d (padding, stride 1 and 2)") {
  for (int64_t s : {1, 2}) {
    Conv2d conv(2, 3, 3, s, 1);
    init_module(conv, 13, DType::F64);
    gradcheck_module(conv, [&](const Tensor& x) { return conv.forward(x); }, randn({2, 2, 5, 4}, 7),
                     s == 1 ? "Conv2d stride 1" : "Conv2d stride 2");
  }
}

TEST_CASE("gradcheck: Dropout and DropPath with a fixed stream") {
  Generator gen{11, 0};
  Dropout d(0.3);
  d.set_generator(&gen);
  gradcheck_module(d, [&](const Tensor& x) { gen.next_stream = 0; return d.forward(x); },
                   randn({4, 6}, 4), "Dropout");
  DropPath dp(0.5);
  dp.set_generator(&gen);
  gradcheck_module(dp, [&](const Tensor& x) { gen.next_stream = 0; return dp.forward(x); },
                   randn({6, 2, 3}, 5), "DropPath");
}

TEST_CASE("gradcheck: MLP with each activation") {
  for (Activation act : {Activation::QuickGELU, Activation::GELU}) {
    MLP mlp(4, 6, act);
    init_module(mlp, 6, DType::F64);
    gradcheck_module(mlp, [&](const Tensor& x) { return mlp.forward(x); }, randn({2, 3, 4}, 6),
                     std::string("MLP ") + activation_name(act));
  }
}

TEST_CASE("gradcheck: MultiheadAttention (plain, causal, padding, cross)") {
  MultiheadAttention mha(6, 2);
  init_module(mha, 7, DType::F64);
  Generator g{8, 0};
  init::normal_(mha.in_proj_bias, g, 0, 0.5);
  init::normal_(mha.out_proj->bias, g, 0, 0.5);
  gradcheck_module(mha, [&](const Tensor& x) { return mha.forward(x); }, randn({2, 4, 6}, 7), "MHA");
  AttentionOptions o;
  o.mask = AttentionMask::causal();
  o.key_bias = padding_key_bias(Tensor::from_vector<int64_t>({0, 0, 0, 1, 0, 1, 0, 0}, {2, 4}),
                                DType::F64);
  gradcheck_module(mha, [&](const Tensor& x) { return mha.forward(x, o); }, randn({2, 4, 6}, 8),
                   "MHA causal+padding");
  Tensor kv = randn({2, 5, 6}, 9);
  gradcheck_module(mha, [&](const Tensor& q) { return mha.forward(q, kv, kv).out; },
                   randn({2, 3, 6}, 10), "MHA cross");
}

TEST_CASE("gradcheck: ResidualAttentionBlock and Transformer") {
  ResidualAttentionBlock block(4, 2, Activation::QuickGELU);
  init_module(block, 9, DType::F64);
  AttentionOptions causal;
  causal.mask = AttentionMask::causal();
  gradcheck_module(block, [&](const Tensor& x) { return block.forward(x, causal); },
                   randn({2, 3, 4}, 11), "ResidualAttentionBlock");

  Transformer tr(4, 2, 2, Activation::GELU, /*drop_path=*/0.3);
  init_module(tr, 10, DType::F64);
  Generator gen{12, 0};
  tr.set_generator(&gen);
  gradcheck_module(tr, [&](const Tensor& x) { gen.next_stream = 0; return tr.forward(x); },
                   randn({3, 3, 4}, 12), "Transformer with DropPath");
}
