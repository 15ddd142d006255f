// Movement and indexing: concat, stack, split/chunk, index_select, gather, scatter_add,
// embedding, against index loops; repeated indices; gradients of every float input.
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {
Tensor ids(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector(v, s); }
}  // namespace

TEST_CASE("concat and stack on any axis, with non-contiguous inputs") {
  Tensor a = randn_permuted({2, 3, 4}, 91), b = randn_narrowed({2, 1, 4}, 92),
         c = randn({2, 5, 4}, 93);
  Tensor y = concat({a, b, c}, 1);
  REQUIRE(y.shape() == Shape{2, 9, 4});
  check_close(y, tensor_from(y.shape(), [&](const Shape& i) {
    int64_t j = i[1];
    if (j < 3) return at(a, {i[0], j, i[2]});
    if (j < 4) return at(b, {i[0], j - 3, i[2]});
    return at(c, {i[0], j - 4, i[2]});
  }), 0, 0, "concat axis 1");
  Tensor z = concat({a, a}, -1);
  check_close(z, tensor_from(z.shape(), [&](const Shape& i) {
    return at(a, {i[0], i[1], i[2] % 4});
  }), 0, 0, "concat axis -1");

  Tensor s = stack({a, a.narrow(0, 1, 1).expand({2, 3, 4})}, 1);
  REQUIRE(s.shape() == Shape{2, 2, 3, 4});
  check_close(s, tensor_from(s.shape(), [&](const Shape& i) {
    return at(a, {i[1] == 0 ? i[0] : 1, i[2], i[3]});
  }), 0, 0, "stack");
  CHECK(stack({a, a}, -1).shape() == Shape{2, 3, 4, 2});

  CHECK_THROWS_WITH_AS(concat({a, randn({3, 3, 4}, 94)}, 1),
                       doctest::Contains("concat: shapes [2, 3, 4] and [3, 3, 4] differ off axis 1"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(stack({a, c}, 0), doctest::Contains("stack: shapes"), vc::Error);
  gradcheck([](const TensorList& in) {
    return concat({in[0].transpose(0, 1), in[1], in[0].narrow(0, 1, 1).transpose(0, 1)}, 1);
  }, {randn({2, 3}, 95), randn({3, 4}, 96)}, "concat");
  gradcheck([](const TensorList& in) { return stack({in[0], mul(in[1], 2.0), in[0]}, 1); },
            {randn({2, 3}, 97), randn({2, 3}, 98)}, "stack");
}

TEST_CASE("split and chunk: views of the right sizes") {
  Tensor x = randn({3, 7}, 101);
  std::vector<Tensor> parts = split(x, 3, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == Shape{3, 3});
  CHECK(parts[2].shape() == Shape{3, 1});
  CHECK(parts[1].impl().storage == x.impl().storage);
  check_close(parts[1], tensor_from({3, 3}, [&](const Shape& i) { return at(x, {i[0], i[1] + 3}); }),
              0, 0, "split");
  std::vector<Tensor> ch = chunk(x, 3, -1);  // ceil(7 / 3) = 3: sizes 3, 3, 1
  REQUIRE(ch.size() == 3);
  CHECK(ch[2].shape() == Shape{3, 1});
  CHECK(chunk(x, 5, 0).size() == 3);  // fewer when the axis is shorter
  CHECK(chunk(randn({6}, 102), 4, 0).size() == 3);  // ceil(6 / 4) = 2 each
  CHECK_THROWS_WITH_AS(split(x, 0, 1), doctest::Contains("split"), vc::Error);
  gradcheck([](const TensorList& in) {
    std::vector<Tensor> p = chunk(in[0], 2, 1);
    return concat({mul(p[1], 3.0), p[0]}, 1);
  }, {randn({2, 5}, 103)}, "chunk");
}

TEST_CASE("index_select and embedding with repeated indices") {
  Tensor x = randn_permuted({3, 5, 2}, 111);
  Tensor idx = ids({4, 0, 4, 2}, {4});
  Tensor y = index_select(x, 1, idx);
  REQUIRE(y.shape() == Shape{3, 4, 2});
  check_close(y, tensor_from(y.shape(), [&](const Shape& i) {
    return at(x, {i[0], int64_t(at(idx, {i[1]})), i[2]});
  }), 0, 0, "index_select");
  check_close(index_select(x, -1, ids({1, 1, 0}, {3})), tensor_from({3, 5, 3}, [&](const Shape& i) {
    return at(x, {i[0], i[1], i[2] < 2 ? 1 : 0});
  }), 0, 0, "index_select last axis");
  gradcheck([&](const TensorList& in) { return index_select(in[0].transpose(0, 1), 1, idx); },
            {randn({5, 3}, 112)}, "index_select");

  Tensor w = randn({6, 3}, 113);
  Tensor tok = ids({5, 0, 5, 1, 2, 5}, {2, 3});
  Tensor e = embedding(w, tok);
  REQUIRE(e.shape() == Shape{2, 3, 3});
  check_close(e, tensor_from(e.shape(), [&](const Shape& i) {
    return at(w, {int64_t(at(tok, {i[0], i[1]})), i[2]});
  }), 0, 0, "embedding");
  gradcheck([&](const TensorList& in) { return embedding(in[0], tok); }, {w}, "embedding");
  // Repeated rows accumulate: row 5 is used three times.
  Tensor wg = w.clone().detach().set_requires_grad(true);
  sum(embedding(wg, tok)).backward();
  check_close(wg.grad(), tensor_from({6, 3}, [](const Shape& i) {
    return std::vector<double>{1, 1, 1, 0, 0, 3}[i[0]];
  }), 0, 0, "embedding grad counts");
  CHECK_THROWS_WITH_AS(index_select(x, 1, ids({5}, {1})),
                       doctest::Contains("index_select: index 5 at position 0 is out of range [0, 5)"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(index_select(x, 1, Tensor::zeros({1})),
                       doctest::Contains("index_select: expected int64"), vc::Error);
  CHECK_THROWS_WITH_AS(embedding(w, ids({-1}, {1})), doctest::Contains("out of range"), vc::Error);
}

TEST_CASE("gather and scatter_add along any axis") {
  Tensor x = randn_permuted({3, 4, 5}, 121);
  for (int64_t axis : {0, 1, 2}) {
    Shape is = x.shape();
    is[axis] = 6;  // more indices than rows: repeats
    Tensor raw = rand_uniform(is, 122, 0, 0, double(x.shape()[axis]) - 1e-9, DType::F64);
    Tensor idx = raw.to(DType::I64);
    Tensor g = gather(x, axis, idx);
    REQUIRE(g.shape() == is);
    check_close(g, tensor_from(is, [&](const Shape& i) {
      Shape j = i;
      j[axis] = int64_t(at(idx, i));
      return at(x, j);
    }), 0, 0, "gather axis " + std::to_string(axis));

    Tensor base = randn(x.shape(), 123);
    Tensor src = randn_permuted(is, 124);
    Tensor s = scatter_add(base, axis, idx, src);
    // Reference: a loop that adds each source into its destination.
    Tensor ref = base.clone();
    double* p = ref.data<double>();
    Shape st = ref.strides();
    for_each_index(is, [&](const Shape& i) {
      Shape j = i;
      j[axis] = int64_t(at(idx, i));
      int64_t off = 0;
      for (size_t d = 0; d < j.size(); ++d) off += j[d] * st[d];
      p[off] += at(src, i);
    });
    check_close(s, ref, 1e-14, 1e-14, "scatter_add axis " + std::to_string(axis));
    CHECK(values(base) == values(randn(x.shape(), 123)));  // base untouched

    gradcheck([&](const TensorList& in) { return gather(in[0].permute({0, 2, 1}).permute({0, 2, 1}), axis, idx); },
              {randn(x.shape(), 125)}, "gather axis " + std::to_string(axis));
    gradcheck([&](const TensorList& in) { return scatter_add(in[0], axis, idx, in[1]); },
              {randn(x.shape(), 126), randn(is, 127)}, "scatter_add axis " + std::to_string(axis));
  }
  Tensor x2 = randn({2, 3}, 128);
  CHECK_THROWS_WITH_AS(gather(x2, 1, ids({0, 1}, {1, 2})),
                       doctest::Contains("gather: index shape [1, 2] and input shape [2, 3] differ off axis 1"),
                       vc::Error);
  CHECK_THROWS_WITH_AS(scatter_add(x2, 1, ids({0, 3}, {2, 1}), randn({2, 1}, 129)),
                       doctest::Contains("scatter_add: index 3"), vc::Error);
}

TEST_CASE("scatter_add: many sources into one row sum in source order, any thread count") {
  // Big enough that the kernel runs threaded; all sources land on two destinations.
  Tensor src = randn({4000, 40}, 131, DType::F32);
  Tensor idx = lt(rand_uniform({4000, 40}, 132, 0), Tensor::scalar(0.5)).to(DType::I64);
  Tensor base = Tensor::zeros({2, 40});
  set_num_threads(2);
  uint64_t h2 = hash_bits(scatter_add(base, 0, idx, src));
  set_num_threads(1);
  uint64_t h1 = hash_bits(scatter_add(base, 0, idx, src));
  set_num_threads(2);
  CHECK(h1 == h2);
  // In source order, in float: the exact float sum of a sequential loop.
  Tensor s = scatter_add(base, 0, idx, src);
  std::vector<float> want(80, 0.0f), sv = src.to_vector<float>();
  std::vector<int64_t> iv = idx.to_vector<int64_t>();
  for (int64_t i = 0; i < 4000; ++i)
    for (int64_t k = 0; k < 40; ++k) want[iv[i * 40 + k] * 40 + k] += sv[i * 40 + k];
  CHECK(s.to_vector<float>() == want);
}
