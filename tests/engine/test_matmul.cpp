// matmul: 2-d, batched, transposed operands passed to the GEMM without a copy, broadcast
// batch dims, size-1 and prime sizes, against a triple loop; gradients of both operands.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

// Naive product over the last two dims, batch dims broadcast NumPy-style.
Tensor matmul_ref(const Tensor& a, const Tensor& b) {
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ab, bb, "ref");
  int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Shape out = batch;
  out.push_back(M);
  out.push_back(N);
  // The operand's index for an output batch index: size-1 dims pin to 0.
  auto operand_index = [&](const Tensor& t, const Shape& i, int64_t r, int64_t c) {
    Shape idx;
    int64_t lead = int64_t(batch.size()) - (t.dim() - 2);
    for (int64_t d = 0; d < t.dim() - 2; ++d) idx.push_back(t.shape()[d] == 1 ? 0 : i[lead + d]);
    idx.push_back(r);
    idx.push_back(c);
    return idx;
  };
  return tensor_from(out, [&](const Shape& i) {
    int64_t m = i[i.size() - 2], n = i.back();
    double s = 0;
    for (int64_t k = 0; k < K; ++k)
      s += at(a, operand_index(a, i, m, k)) * at(b, operand_index(b, i, k, n));
    return s;
  });
}

struct Case {
  const char* name;
  std::function<Tensor(uint64_t, DType)> a, b;
};

// Each operand builder returns a possibly non-contiguous view of fresh random data.
std::vector<Case> cases() {
  auto r = [](Shape s) { return [s](uint64_t seed, DType dt) { return randn(s, seed, dt); }; };
  auto t = [](Shape s) {  // a view whose last two dims are stored transposed
    return [s](uint64_t seed, DType dt) {
      Shape st = s;
      std::swap(st[st.size() - 1], st[st.size() - 2]);
      return randn(st, seed, dt).transpose(-1, -2);
    };
  };
  return {
      {"2-d primes", r({7, 13}), r({13, 5})},
      {"A^T", t({7, 13}), r({13, 5})},
      {"B^T", r({7, 13}), t({13, 5})},
      {"A^T B^T", t({7, 13}), t({13, 5})},
      {"size-1 M, N", r({1, 13}), r({13, 1})},
      {"size-1 K", r({7, 1}), r({1, 5})},
      {"batched", r({2, 3, 7, 5}), r({2, 3, 5, 4})},
      {"batched transposed", t({2, 3, 7, 5}), t({2, 3, 5, 4})},
      {"broadcast batch", r({3, 1, 7, 5}), r({4, 5, 6})},
      {"shared 2-d B", r({2, 3, 7, 5}), r({5, 4})},
      {"shared 2-d B^T, A^T", t({3, 7, 5}), t({5, 4})},
      {"shared 2-d A", r({7, 5}), r({3, 5, 4})},
      {"permuted batch",
       [](uint64_t s, DType dt) { return randn({7, 3, 5}, s, dt).permute({1, 0, 2}); },
       r({3, 5, 2})},
      {"expanded batch",
       [](uint64_t s, DType dt) { return randn({1, 7, 5}, s, dt).expand({3, 7, 5}); },
       r({3, 5, 2})},
      {"narrowed columns",
       [](uint64_t s, DType dt) { return randn({2, 7, 9}, s, dt).narrow(2, 2, 5); },
       r({2, 5, 3})},
  };
}

}  // namespace

TEST_CASE("matmul: forward against a triple loop") {
  for (const Case& c : cases()) {
    for (DType dt : {DType::F64, DType::F32}) {
      Tensor a = c.a(71, dt), b = c.b(72, dt);
      Tensor y = matmul(a, b);
      double tol = dt == DType::F64 ? 1e-13 : 2e-5;
      check_close(y, matmul_ref(a, b), tol, tol, std::string(c.name) + " " + dtype_name(dt));
    }
  }
  // Bigger than one GEMM block, with awkward sizes.
  Tensor a = randn({67, 131}, 73, DType::F32), b = randn({131, 45}, 74, DType::F32);
  check_close(matmul(a, b), matmul_ref(a, b), 1e-4, 1e-4, "67x131x45");
  check_close(matmul(b.transpose(0, 1), a.transpose(0, 1)),
              matmul_ref(b.transpose(0, 1), a.transpose(0, 1)), 1e-4, 1e-4, "transposed 45x131x67");
  // K = 0 gives zeros.
  CHECK(values(matmul(Tensor::zeros({2, 0}), Tensor::zeros({0, 3}))) == std::vector<double>(6, 0.0));
}

TEST_CASE("matmul: errors name the op and the shapes") {
  Tensor a = randn({2, 3}, 75), b = randn({4, 5}, 76);
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul: inner sizes differ, [2, 3] @ [4, 5]"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(matmul(randn({3}, 77), b), doctest::Contains("matmul: operands must be at least 2-d"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(matmul(randn({2, 2, 3}, 78), randn({3, 3, 1}, 79)),
                       doctest::Contains("matmul: shapes [2] and [3] do not broadcast"), vc::Error);
  CHECK_THROWS_WITH_AS(matmul(a, randn({3, 2}, 80, DType::F32)), doctest::Contains("matmul: dtype mismatch"),
                       vc::Error);
}

TEST_CASE("matmul: float64 gradients of both operands") {
  for (const Case& c : cases()) {
    Tensor a0 = c.a(81, DType::F64), b0 = c.b(82, DType::F64);
    // Keep each case's layout: rebuild the same view of the gradcheck's contiguous leaf.
    Tensor a = a0.contiguous(), b = b0.contiguous();
    auto relayout = [](const Tensor& leaf, const Tensor& like) {
      if (like.is_contiguous()) return leaf;
      // Transposed last two dims: go through a transposed copy so the view matches.
      return leaf.transpose(-1, -2).contiguous().transpose(-1, -2);
    };
    gradcheck([&](const TensorList& in) { return matmul(relayout(in[0], a0), relayout(in[1], b0)); },
              {a, b}, c.name);
  }
  // Gradients through a broadcast (expanded) batch and a narrowed operand.
  gradcheck([](const TensorList& in) {
    return matmul(in[0].expand({3, 2, 4}), in[1].narrow(2, 1, 2));
  }, {randn({1, 2, 4}, 83), randn({3, 4, 4}, 84)}, "expanded A, narrowed B");
}
