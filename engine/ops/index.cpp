#include "engine/ops/index.h"

#include "engine/ops/op.h"

namespace vc {

namespace {

// [outer, n, inner] around `axis`.
void split_dims(const Shape& s, int64_t axis, int64_t& outer, int64_t& inner) {
  outer = inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  for (int64_t i = axis + 1; i < int64_t(s.size()); ++i) inner *= s[i];
}

void check_indices(const char* op, const Tensor& idx, int64_t bound) {
  check_dtype(op, idx, DType::I64);
  if (idx.device().type != DeviceType::CPU) return;  // the CUDA kernels check on device
  Tensor c = idx.contiguous();
  const int64_t* p = c.data<int64_t>();
  for (int64_t i = 0; i < c.numel(); ++i)
    VC_CHECK(p[i] >= 0 && p[i] < bound, op, ": index ", p[i], " at position ", i,
             " is out of range [0, ", bound, ")");
}

void copy_into(const Tensor& src, const Tensor& dst_view) {
  backend_of(src).memory.copy_strided(src.dtype(), src.impl().storage->data, strided_desc(src),
                                      dst_view.impl().storage->data, strided_desc(dst_view));
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  VC_CHECK(!xs.empty(), "concat: no tensors");
  int64_t a = wrap_axis(axis, xs[0].dim(), "concat");
  Shape out_shape = xs[0].shape();
  out_shape[a] = 0;
  for (const Tensor& t : xs) {
    check_same("concat", {xs[0], t});
    Shape s = t.shape(), ref = xs[0].shape();
    VC_CHECK(t.dim() == xs[0].dim(), "concat: shapes ", ref, " and ", s, " differ in rank");
    s[a] = ref[a] = 0;
    VC_CHECK(s == ref, "concat: shapes ", xs[0].shape(), " and ", t.shape(),
             " differ off axis ", a);
    out_shape[a] += t.shape()[a];
  }
  OpScope op("concat", xs);
  Tensor out = make_tensor(out_shape, xs[0].dtype(), xs[0].device());
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const Tensor& t : xs) {
    starts.push_back(at);
    copy_into(t, alias_with_layout(out, t.shape(), out.strides(), at * out.strides()[a]));
    at += t.shape()[a];
  }
  std::vector<int64_t> lens;
  for (const Tensor& t : xs) lens.push_back(t.shape()[a]);
  return op.finish(out, [=](const Tensor& g, const std::vector<bool>& needs) {
    TensorList gs(lens.size());
    for (size_t i = 0; i < lens.size(); ++i)
      if (needs[i]) gs[i] = g.narrow(a, starts[i], lens[i]).contiguous();
    return gs;
  });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  VC_CHECK(!xs.empty(), "stack: no tensors");
  int64_t a = wrap_axis(axis, xs[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  for (const Tensor& t : xs) {
    VC_CHECK(t.shape() == xs[0].shape(), "stack: shapes ", xs[0].shape(), " and ", t.shape(),
             " differ");
    us.push_back(t.unsqueeze(a));
  }
  return concat(us, a);
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t axis) {
  int64_t a = wrap_axis(axis, x.dim(), "split");
  VC_CHECK(size > 0, "split: size ", size, " must be positive");
  std::vector<Tensor> out;
  for (int64_t at = 0; at < x.shape()[a]; at += size)
    out.push_back(x.narrow(a, at, std::min(size, x.shape()[a] - at)));
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis) {
  int64_t a = wrap_axis(axis, x.dim(), "chunk");
  VC_CHECK(n > 0, "chunk: ", n, " chunks");
  int64_t len = x.shape()[a];
  return split(x, std::max<int64_t>(1, (len + n - 1) / n), a);
}

Tensor index_select(const Tensor& x_in, int64_t axis, const Tensor& idx_in) {
  int64_t a = wrap_axis(axis, x_in.dim(), "index_select");
  VC_CHECK(idx_in.dim() == 1, "index_select: indices must be 1-d, got ", idx_in.shape());
  check_indices("index_select", idx_in, x_in.shape()[a]);
  OpScope op("index_select", {x_in, idx_in});
  Tensor x = x_in.contiguous(), idx = idx_in.contiguous().detach();
  int64_t outer, inner, n_src = x.shape()[a], n_idx = idx.numel();
  split_dims(x.shape(), a, outer, inner);
  Shape out_shape = x.shape();
  out_shape[a] = n_idx;
  Tensor y = make_tensor(out_shape, x.dtype(), x.device());
  backend_of(x).index.index_select(x.dtype(), x.raw(), idx.data<int64_t>(), y.raw(), outer,
                                   n_src, n_idx, inner);
  if (!is_floating(x.dtype())) return op.finish_nondifferentiable(y);
  Shape in_shape = x.shape();
  return op.finish(y, [=](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor gx = make_tensor(in_shape, g.dtype(), g.device());
    backend_of(g).index.index_add(g.dtype(), g.raw(), idx.data<int64_t>(), gx.raw(), outer,
                                  n_idx, n_src, inner);
    return TensorList{gx, Tensor()};
  });
}

Tensor gather(const Tensor& x_in, int64_t axis, const Tensor& idx_in) {
  int64_t a = wrap_axis(axis, x_in.dim(), "gather");
  VC_CHECK(idx_in.dim() == x_in.dim(), "gather: index shape ", idx_in.shape(),
           " and input shape ", x_in.shape(), " differ in rank");
  for (int64_t i = 0; i < x_in.dim(); ++i)
    VC_CHECK(i == a || idx_in.shape()[i] == x_in.shape()[i], "gather: index shape ",
             idx_in.shape(), " and input shape ", x_in.shape(), " differ off axis ", a);
  check_indices("gather", idx_in, x_in.shape()[a]);
  OpScope op("gather", {x_in, idx_in});
  Tensor x = x_in.contiguous(), idx = idx_in.contiguous().detach();
  int64_t outer, inner;
  split_dims(x.shape(), a, outer, inner);
  int64_t n_src = x.shape()[a], n_idx = idx.shape()[a];
  Tensor y = make_tensor(idx.shape(), x.dtype(), x.device());
  backend_of(x).index.gather(x.dtype(), x.raw(), idx.data<int64_t>(), y.raw(), outer, n_src,
                             n_idx, inner);
  if (!is_floating(x.dtype())) return op.finish_nondifferentiable(y);
  Shape in_shape = x.shape();
  return op.finish(y, [=](const Tensor& g, const std::vector<bool>&) {
    Tensor zeros = Tensor::zeros(in_shape, g.dtype(), g.device());
    return TensorList{scatter_add(zeros, a, idx, g), Tensor()};
  });
}

Tensor scatter_add(const Tensor& base, int64_t axis, const Tensor& idx_in, const Tensor& src_in) {
  int64_t a = wrap_axis(axis, base.dim(), "scatter_add");
  check_floating("scatter_add", base);
  check_same("scatter_add", {base, src_in});
  VC_CHECK(idx_in.shape() == src_in.shape(), "scatter_add: index shape ", idx_in.shape(),
           " and source shape ", src_in.shape(), " differ");
  VC_CHECK(idx_in.dim() == base.dim(), "scatter_add: index shape ", idx_in.shape(),
           " and base shape ", base.shape(), " differ in rank");
  for (int64_t i = 0; i < base.dim(); ++i)
    VC_CHECK(i == a || idx_in.shape()[i] == base.shape()[i], "scatter_add: index shape ",
             idx_in.shape(), " and base shape ", base.shape(), " differ off axis ", a);
  check_indices("scatter_add", idx_in, base.shape()[a]);
  OpScope op("scatter_add", {base, idx_in, src_in});
  Tensor out = base.clone().detach();
  Tensor src = src_in.contiguous(), idx = idx_in.contiguous().detach();
  int64_t outer, inner;
  split_dims(base.shape(), a, outer, inner);
  backend_of(out).index.scatter_add(out.dtype(), src.raw(), idx.data<int64_t>(), out.raw(),
                                    outer, idx.shape()[a], base.shape()[a], inner);
  return op.finish(out, [=](const Tensor& g, const std::vector<bool>& needs) {
    return TensorList{needs[0] ? g : Tensor(), Tensor(),
                      needs[2] ? gather(g, a, idx) : Tensor()};
  });
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  VC_CHECK(weight.dim() == 2, "embedding: weight must be [V, D], got ", weight.shape());
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.shape()[1]);
  return index_select(weight, 0, ids.reshape({-1})).reshape(out_shape);
}

}  // namespace vc
