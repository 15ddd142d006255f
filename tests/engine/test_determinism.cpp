// Determinism: a small multi-op step and its gradients give the same bits run after run and
// with 1 or 2 threads. The GEMM is big enough that it runs threaded.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

struct StepHashes {
  std::vector<uint64_t> h;
  bool operator==(const StepHashes& o) const { return h == o.h; }
};

StepHashes step() {
  const int64_t N = 256, D = 384, H = 512, C = 10;
  Tensor x = rand_normal({N, D}, 1, 0);
  Tensor w1 = mul(rand_normal({D, H}, 1, 1), 0.05).detach().set_requires_grad(true);
  Tensor g = Tensor::ones({H}).set_requires_grad(true);
  Tensor b = Tensor::zeros({H}).set_requires_grad(true);
  Tensor w2 = mul(rand_normal({H, C}, 1, 2), 0.05).detach().set_requires_grad(true);
  Tensor labels = rand_uniform({N}, 1, 3, 0, C - 1e-3, DType::F64).to(DType::I64);
  Tensor groups = rand_uniform({N, C}, 1, 4, 0, 8 - 1e-3, DType::F64).to(DType::I64);

  Tensor h = gelu(layer_norm(matmul(x, w1), g, b));         // [N, H], threaded GEMM
  Tensor logits = matmul(h, w2);                             // [N, C]
  Tensor p = softmax(logits, -1);
  // Scatter the probabilities into 8 groups per class, summed in a fixed order.
  Tensor pooled = scatter_add(Tensor::zeros({8, C}), 0, groups, p);
  CrossEntropyOptions opt;
  opt.label_smoothing = 0.1;
  Tensor loss = add(cross_entropy(logits, labels, opt), mul(sum(mul(pooled, pooled)), 1e-3));
  loss.backward();
  return {{hash_bits(h), hash_bits(logits), hash_bits(pooled), hash_bits(loss), hash_bits(w1.grad()),
           hash_bits(g.grad()), hash_bits(b.grad()), hash_bits(w2.grad())}};
}

}  // namespace

TEST_CASE("determinism: same bits across runs and thread counts") {
  set_num_threads(2);
  StepHashes a = step(), b = step();
  set_num_threads(1);
  StepHashes c = step();
  set_num_threads(2);
  CHECK(a == b);
  for (size_t i = 0; i < a.h.size(); ++i) CHECK_MESSAGE(a.h[i] == c.h[i], "hash ", i, " differs, 1 vs 2 threads");
}

TEST_CASE("determinism: GEMM bits do not depend on the thread count") {
  // Shapes where a library would pick thread-dependent blockings: long K, odd sizes, batches.
  struct S {
    int64_t b, m, k, n;
    bool ta, tb;
  };
  for (S s : {S{1, 256, 384, 512, false, false}, S{1, 300, 2048, 257, false, false},
              S{1, 513, 777, 129, true, false}, S{1, 96, 1500, 640, false, true},
              S{4, 64, 1024, 96, true, true}}) {
    Tensor a = s.ta ? rand_normal({s.b, s.k, s.m}, 2, 0).transpose(-1, -2)
                    : rand_normal({s.b, s.m, s.k}, 2, 0);
    Tensor bm = s.tb ? rand_normal({s.b, s.n, s.k}, 2, 1).transpose(-1, -2)
                     : rand_normal({s.b, s.k, s.n}, 2, 1);
    set_num_threads(2);
    uint64_t h2 = hash_bits(matmul(a, bm));
    set_num_threads(1);
    uint64_t h1 = hash_bits(matmul(a, bm));
    set_num_threads(2);
    CHECK_MESSAGE(h1 == h2, "gemm ", s.b, "x", s.m, "x", s.k, "x", s.n, " ta ", s.ta, " tb ", s.tb);
  }
}
