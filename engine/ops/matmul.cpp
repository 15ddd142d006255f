#include "engine/ops/matmul.h"

#include "engine/ops/op.h"

namespace vc {

namespace {

// How a [batch..., R, C] operand is handed to the GEMM: a base pointer, whether its last
// two dims are stored transposed, and a batch stride (0 when it broadcasts over the batch).
struct Operand {
  Tensor storage;  // keeps the buffer alive
  const void* ptr;
  bool trans;
  int64_t batch_stride;
};

Operand prepare(const Tensor& t, const Shape& batch) {
  int64_t nb = numel_of(batch), d = t.dim();
  int64_t rows = t.shape()[d - 2], cols = t.shape()[d - 1];
  int64_t tb = 1;
  for (int64_t i = 0; i < d - 2; ++i) tb *= t.shape()[i];
  const Shape& st = t.strides();
  // Batch dims must be one uniform stride (or all broadcast) to pass without a copy.
  auto batch_ok = [&](int64_t mat_stride) {
    if (tb == 1) return true;
    if (tb != nb) return false;
    int64_t expect = mat_stride;
    for (int64_t i = d - 3; i >= 0; --i) {
      if (t.shape()[i] == 1) continue;
      if (st[i] != expect) return false;
      expect *= t.shape()[i];
    }
    return true;
  };
  bool plain = (cols == 1 || st[d - 1] == 1) && (rows == 1 || st[d - 2] == cols);
  bool trans = !plain && (rows == 1 || st[d - 2] == 1) && (cols == 1 || st[d - 1] == rows);
  if ((plain || trans) && batch_ok(rows * cols)) {
    return {t, t.raw(), trans, tb == 1 ? 0 : rows * cols};
  }
  // Otherwise materialise [batch, rows, cols] contiguously.
  Shape full = batch;
  full.push_back(rows);
  full.push_back(cols);
  Tensor c = tb == 1 ? t.contiguous() : t.expand(full).contiguous();
  return {c, c.raw(), false, tb == 1 ? 0 : rows * cols};
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_floating("matmul", a);
  check_same("matmul", {a, b});
  VC_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands must be at least 2-d, got ",
           a.shape(), " and ", b.shape());
  int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  VC_CHECK(b.size(-2) == K, "matmul: inner sizes differ, ", a.shape(), " @ ", b.shape());
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ab, bb, "matmul");
  OpScope op("matmul", {a, b});
  Tensor ad = a.detach(), bd = b.detach();
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor c = make_tensor(out_shape, a.dtype(), a.device());
  // Fold a batch of rows into M when b is shared by every batch entry: one big GEMM.
  Operand pb = prepare(bd, batch);
  int64_t nb = numel_of(batch);
  if (pb.batch_stride == 0 && nb > 1 && ad.dim() > 2 && numel_of(ab) == nb) {
    Tensor a2 = ad.reshape({nb * M, K});
    Operand pa = prepare(a2, {});
    backend_of(a).matmul.gemm(a.dtype(), pa.trans, pb.trans, 1, nb * M, N, K, 1.0, pa.ptr, 0,
                              pb.ptr, 0, 0.0, c.raw(), 0);
  } else {
    Operand pa = prepare(ad, batch);
    backend_of(a).matmul.gemm(a.dtype(), pa.trans, pb.trans, nb, M, N, K, 1.0, pa.ptr,
                              pa.batch_stride, pb.ptr, pb.batch_stride, 0.0, c.raw(), M * N);
  }
  return op.finish(c, [ad, bd](const Tensor& g, const std::vector<bool>& needs) {
    // dA = G B^T, dB = A^T G, summed over batch dims that were broadcast.
    Tensor ga, gb;
    if (needs[0]) ga = sum_to(matmul(g, bd.transpose(-1, -2)), ad.shape());
    if (needs[1] && bd.dim() == 2 && ad.dim() > 2) {
      // A weight shared by the batch: one GEMM over all rows instead of a sum of GEMMs.
      int64_t K = ad.size(-1), N = g.size(-1);
      gb = matmul(ad.reshape({-1, K}).transpose(0, 1), g.reshape({-1, N}));
    } else if (needs[1]) {
      gb = sum_to(matmul(ad.transpose(-1, -2), g), bd.shape());
    }
    return TensorList{ga, gb};
  });
}

}  // namespace vc
