// Elementwise ops. The unary family shares one kernel pair (forward, backward) keyed by
// UnaryOp; the local derivatives live in backend/cpu/elementwise.cpp beside the forward
// formulas. Binary ops broadcast through strides (0 on a broadcast axis), so no input is
// ever materialised at the broadcast shape; their backward sums the gradient back down.
#include "engine/ops/elementwise.h"

#include "engine/ops/op.h"

namespace vc {

namespace {

Tensor unary(const char* name, UnaryOp kind, const Tensor& x_in, double p0 = 0, double p1 = 0) {
  check_floating(name, x_in);
  OpScope op(name, {x_in});
  Tensor x = x_in.contiguous().detach();
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  backend_of(x).elementwise.unary(kind, x.dtype(), x.raw(), y.raw(), x.numel(), p0, p1);
  Tensor y_saved = y.detach();  // no cycle: the node must not own its own output
  return op.finish(y, [=](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor gx = make_tensor(x.shape(), x.dtype(), x.device());
    backend_of(x).elementwise.unary_backward(kind, x.dtype(), x.raw(), y_saved.raw(), g.raw(),
                                             gx.raw(), x.numel(), p0, p1);
    return TensorList{gx};
  });
}

// Coalesces adjacent axes that every operand walks contiguously, so the kernel's inner
// loop is as long as possible.
BroadcastDesc broadcast_desc(const Shape& out, std::initializer_list<const Tensor*> ins,
                             const char* op) {
  std::vector<Shape> strides;
  for (const Tensor* t : ins) {
    Shape st(out.size(), 0);
    int64_t lead = int64_t(out.size()) - t->dim();
    for (int64_t i = 0; i < t->dim(); ++i)
      st[lead + i] = t->shape()[i] == 1 ? 0 : t->strides()[i];
    strides.push_back(st);
  }
  Shape shape;
  std::vector<Shape> cst(strides.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) continue;
    bool merge = !shape.empty();
    for (size_t k = 0; merge && k < strides.size(); ++k)
      merge = cst[k].back() == strides[k][i] * out[i];
    if (merge) {
      shape.back() *= out[i];
      for (size_t k = 0; k < strides.size(); ++k) cst[k].back() = strides[k][i];
    } else {
      shape.push_back(out[i]);
      for (size_t k = 0; k < strides.size(); ++k) cst[k].push_back(strides[k][i]);
    }
  }
  VC_CHECK(int(shape.size()) <= kMaxDims, op, ": more than ", kMaxDims, " dims after broadcast");
  BroadcastDesc d;
  d.ndim = int(shape.size());
  d.numel = numel_of(out);
  for (int i = 0; i < d.ndim; ++i) {
    d.shape[i] = shape[i];
    for (size_t k = 0; k < strides.size(); ++k) d.strides[k][i] = cst[k][i];
  }
  size_t k = 0;
  for (const Tensor* t : ins) d.offsets[k++] = t->offset();
  return d;
}

Tensor binary_forward(const char* name, BinaryOp kind, const Tensor& a, const Tensor& b) {
  check_same(name, {a, b});
  Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = make_tensor(out_shape, a.dtype(), a.device());
  BroadcastDesc d = broadcast_desc(out_shape, {&a, &b}, name);
  backend_of(a).elementwise.binary(kind, a.dtype(), a.impl().storage->data,
                                   b.impl().storage->data, out.raw(), d);
  return out;
}

Tensor binary(const char* name, BinaryOp kind, const Tensor& a, const Tensor& b) {
  check_floating(name, a);
  OpScope op(name, {a, b});
  Tensor out = binary_forward(name, kind, a, b);
  Tensor as = a.detach(), bs = b.detach();
  return op.finish(out, [=](const Tensor& g, const std::vector<bool>& needs) {
    Tensor ga, gb;
    switch (kind) {
      case BinaryOp::Add:
        ga = g, gb = g;
        break;
      case BinaryOp::Sub:
        ga = g, gb = needs[1] ? neg(g) : Tensor();
        break;
      case BinaryOp::Mul:
        if (needs[0]) ga = mul(g, bs);
        if (needs[1]) gb = mul(g, as);
        break;
      case BinaryOp::Div:  // d(a/b) = da / b - a db / b^2
        if (needs[0]) ga = div(g, bs);
        if (needs[1]) gb = neg(div(mul(g, as), mul(bs, bs)));
        break;
      case BinaryOp::Maximum:
      case BinaryOp::Minimum: {
        Tensor pick_a = kind == BinaryOp::Maximum ? ge(as, bs) : le(as, bs);
        if (needs[0]) ga = mul(g, pick_a);
        if (needs[1]) gb = mul(g, rsub(1.0, pick_a));
        break;
      }
      default:
        fail(name, ": no backward");
    }
    return TensorList{needs[0] ? sum_to(ga, as.shape()) : Tensor(),
                      needs[1] ? sum_to(gb, bs.shape()) : Tensor()};
  });
}

Tensor compare(const char* name, BinaryOp kind, const Tensor& a, const Tensor& b) {
  OpScope op(name, {a, b});
  return op.finish_nondifferentiable(binary_forward(name, kind, a, b));
}

Tensor scalar_like(const Tensor& t, double s) { return Tensor::scalar(s, t.dtype(), t.device()); }

}  // namespace

Tensor neg(const Tensor& x) { return unary("neg", UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary("exp", UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary("log", UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary("sqrt", UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary("rsqrt", UnaryOp::Rsqrt, x); }
Tensor abs(const Tensor& x) { return unary("abs", UnaryOp::Abs, x); }
Tensor tanh(const Tensor& x) { return unary("tanh", UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary("sigmoid", UnaryOp::Sigmoid, x); }
Tensor relu(const Tensor& x) { return unary("relu", UnaryOp::Relu, x); }
Tensor gelu(const Tensor& x) { return unary("gelu", UnaryOp::GeluErf, x); }
Tensor gelu_tanh(const Tensor& x) { return unary("gelu_tanh", UnaryOp::GeluTanh, x); }
Tensor quick_gelu(const Tensor& x) { return unary("quick_gelu", UnaryOp::QuickGelu, x); }
Tensor pow(const Tensor& x, double p) { return unary("pow", UnaryOp::Pow, x, p); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  VC_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi);
  return unary("clamp", UnaryOp::Clamp, x, lo, hi);
}
Tensor add(const Tensor& a, double s) { return unary("add_scalar", UnaryOp::AddScalar, a, s); }
Tensor mul(const Tensor& a, double s) { return unary("mul_scalar", UnaryOp::MulScalar, a, s); }
Tensor sub(const Tensor& a, double s) { return add(a, -s); }
Tensor div(const Tensor& a, double s) { return mul(a, 1.0 / s); }
Tensor rsub(double s, const Tensor& a) { return add(neg(a), s); }
Tensor rdiv(double s, const Tensor& a) { return mul(pow(a, -1.0), s); }

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary("div", BinaryOp::Div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary("maximum", BinaryOp::Maximum, a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary("minimum", BinaryOp::Minimum, a, b);
}

Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", BinaryOp::Ne, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", BinaryOp::Ge, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", BinaryOp::Le, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same("where", {a, b});
  VC_CHECK(cond.device() == a.device(), "where: cond on ", cond.device().str(), ", values on ",
           a.device().str());
  OpScope op("where", {cond, a, b});
  Shape out_shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"),
                                     b.shape(), "where");
  Tensor out = make_tensor(out_shape, a.dtype(), a.device());
  BroadcastDesc d = broadcast_desc(out_shape, {&cond, &a, &b}, "where");
  backend_of(a).elementwise.where(cond.dtype(), cond.impl().storage->data, a.dtype(),
                                  a.impl().storage->data, b.impl().storage->data, out.raw(), d);
  if (!is_floating(a.dtype())) return op.finish_nondifferentiable(out);
  Tensor cs = cond.detach();
  Shape a_shape = a.shape(), b_shape = b.shape();
  return op.finish(out, [=](const Tensor& g, const std::vector<bool>& needs) {
    VC_CHECK(!needs[0], "where: cond cannot require grad");
    Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
    return TensorList{Tensor(), needs[1] ? sum_to(where(cs, g, zero), a_shape) : Tensor(),
                      needs[2] ? sum_to(where(cs, zero, g), b_shape) : Tensor()};
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  Shape s = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  VC_CHECK(s == x.shape(), "masked_fill: mask ", mask.shape(), " does not broadcast to ",
           x.shape());
  return where(mask, scalar_like(x, value), x);
}

}  // namespace vc
