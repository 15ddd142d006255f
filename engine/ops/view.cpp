// Views and copies: reshape/view, permute/transpose, narrow/select, expand,
// squeeze/unsqueeze, flatten, contiguous, clone, to(device), to(dtype).
// A view shares storage and changes only (shape, strides, offset); its backward maps the
// gradient back through the inverse layout change.
#include <numeric>

#include "engine/ops/elementwise.h"
#include "engine/ops/op.h"
#include "engine/ops/reduce.h"

namespace vc {

namespace {

// Resolves one -1 in a requested shape against numel.
Shape infer_shape(Shape s, int64_t numel, const char* op, const Shape& from) {
  int64_t known = 1, neg = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      VC_CHECK(neg < 0, op, ": more than one -1 in ", s);
      neg = int64_t(i);
    } else {
      VC_CHECK(s[i] >= 0, op, ": negative size in ", s);
      known *= s[i];
    }
  }
  if (neg >= 0) {
    VC_CHECK(known > 0 && numel % known == 0, op, ": cannot infer -1 in ", s, " from ", from);
    s[neg] = numel / known;
  }
  VC_CHECK(numel_of(s) == numel, op, ": shape ", from, " (", numel,
           " elements) cannot become ", s);
  return s;
}

// Strides that view `t` as `shape` without a copy, or false. Walks both shapes from the
// back in chunks: each chunk of old dims that is contiguous within itself can be split
// into any new dims with the same element count (PyTorch's computeStride rule).
bool view_strides(const Tensor& t, const Shape& shape, Shape& out) {
  out.assign(shape.size(), 0);
  if (t.numel() == 0 || t.dim() == 0) {
    out = contiguous_strides(shape);
    return true;
  }
  const Shape& os = t.shape();
  const Shape& ost = t.strides();
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_stride = ost.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    bool chunk_ends = d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
      out[view_d] = view_numel * chunk_stride;
      view_numel *= shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return false;
    if (d > 0) {
      chunk_stride = ost[d - 1];
      tensor_numel = view_numel = 1;
    }
  }
  return view_d == -1;
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  Shape s = infer_shape(requested, numel(), "view", shape());
  Shape st;
  VC_CHECK(view_strides(*this, s, st), "view: shape ", shape(), " with strides ", strides(),
           " cannot be viewed as ", s, " without a copy (use reshape)");
  OpScope op("view", {*this});
  Shape in_shape = shape();
  return op.finish(alias_with_layout(*this, s, st, offset()),
                   [in_shape](const Tensor& g, const std::vector<bool>&) {
                     return TensorList{g.reshape(in_shape)};
                   });
}

Tensor Tensor::reshape(const Shape& requested) const {
  Shape s = infer_shape(requested, numel(), "reshape", shape());
  Shape st;
  if (view_strides(*this, s, st)) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& axes) const {
  VC_CHECK(int64_t(axes.size()) == dim(), "permute: ", axes.size(), " axes for shape ", shape());
  Shape s(dim()), st(dim());
  std::vector<int64_t> inverse(dim(), -1);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t a = wrap_axis(axes[i], dim(), "permute");
    VC_CHECK(inverse[a] < 0, "permute: axis ", a, " repeated for shape ", shape());
    inverse[a] = i;
    s[i] = shape()[a];
    st[i] = strides()[a];
  }
  OpScope op("permute", {*this});
  return op.finish(alias_with_layout(*this, s, st, offset()),
                   [inverse](const Tensor& g, const std::vector<bool>&) {
                     return TensorList{g.permute(inverse)};
                   });
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> axes(dim());
  std::iota(axes.begin(), axes.end(), 0);
  std::swap(axes[wrap_axis(a, dim(), "transpose")], axes[wrap_axis(b, dim(), "transpose")]);
  return permute(axes);
}

Tensor Tensor::narrow(int64_t axis, int64_t start, int64_t length) const {
  int64_t a = wrap_axis(axis, dim(), "narrow");
  VC_CHECK(start >= 0 && length >= 0 && start + length <= shape()[a], "narrow: [", start, ", ",
           start + length, ") out of range for axis ", a, " of shape ", shape());
  Shape s = shape();
  s[a] = length;
  OpScope op("narrow", {*this});
  Shape in_shape = shape();
  DType dt = dtype();
  Device dev = device();
  const int64_t offset0 = start * contiguous_strides(in_shape)[a];  // the window in a fresh sum
  // The adjoint of a slice: zeros with g written into the slice.
  auto padded = [=](const Tensor& g) {
    Tensor full = Tensor::zeros(in_shape, dt, dev);
    Tensor window = alias_with_layout(full, g.shape(), full.strides(), offset0);
    backend_for(dev).memory.copy_strided(dt, g.impl().storage->data, strided_desc(g),
                                         full.impl().storage->data, strided_desc(window));
    return full;
  };
  Tensor out = op.finish(alias_with_layout(*this, s, strides(), offset() + start * strides()[a]),
                         [=](const Tensor& g, const std::vector<bool>&) { return TensorList{padded(g)}; });
  // What backward() runs instead: g goes straight into its window of the input's running
  // gradient sum, so q/k/v-style splits (several narrows of one tensor) cost no zero-padded
  // full-size tensors and no full-size adds. The sum is written in place only when this
  // backward owns it; otherwise it is copied first.
  if (out.impl().grad_fn)
    out.impl().grad_fn->accumulate = [=](Tensor& sum, const Tensor& g) {
      if (!sum.defined()) {  // the first contribution: exactly the padded gradient
        sum = padded(g);
        return;
      }
      const Backend& be = backend_for(dev);
      if (!sole_contiguous_owner(sum)) {
        Tensor own = make_tensor(in_shape, dt, dev);
        be.memory.copy_strided(dt, sum.impl().storage->data, strided_desc(sum), own.raw(),
                               strided_desc(own));
        sum = own;
      }
      // window = window + g (old + new, the padded add's order) through a slice-sized
      // temporary; outside the window the padded add would have added 0.
      Tensor window = alias_with_layout(sum, g.shape(), sum.strides(), offset0);
      Tensor t = add(window, g);
      be.memory.copy_strided(dt, t.raw(), strided_desc(t), sum.impl().storage->data,
                             strided_desc(window));
    };
  return out;
}

Tensor Tensor::select(int64_t axis, int64_t index) const {
  int64_t a = wrap_axis(axis, dim(), "select");
  int64_t i = index < 0 ? index + shape()[a] : index;
  VC_CHECK(i >= 0 && i < shape()[a], "select: index ", index, " out of range for axis ", a,
           " of shape ", shape());
  return narrow(a, i, 1).squeeze(a);
}

Tensor Tensor::expand(const Shape& requested) const {
  VC_CHECK(int64_t(requested.size()) >= dim(), "expand: cannot expand ", shape(), " to ",
           requested);
  int64_t lead = int64_t(requested.size()) - dim();
  Shape s(requested.size()), st(requested.size(), 0);
  for (int64_t i = 0; i < int64_t(requested.size()); ++i) {
    int64_t have = i < lead ? 1 : shape()[i - lead];
    int64_t want = requested[i] == -1 && i >= lead ? have : requested[i];
    VC_CHECK(want >= 0 && (have == want || have == 1), "expand: cannot expand ", shape(), " to ",
             requested);
    s[i] = want;
    st[i] = i < lead || (have == 1 && want != 1) ? 0 : strides()[i - lead];
  }
  OpScope op("expand", {*this});
  Shape in_shape = shape();
  return op.finish(alias_with_layout(*this, s, st, offset()),
                   [in_shape](const Tensor& g, const std::vector<bool>&) {
                     return TensorList{sum_to(g, in_shape)};
                   });
}

Tensor Tensor::squeeze(int64_t axis) const {
  int64_t a = wrap_axis(axis, dim(), "squeeze");
  VC_CHECK(shape()[a] == 1, "squeeze: axis ", a, " of shape ", shape(), " is not 1");
  Shape s = shape();
  s.erase(s.begin() + a);
  return view(s);
}

Tensor Tensor::unsqueeze(int64_t axis) const {
  int64_t a = wrap_axis(axis, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + a, 1);
  return view(s);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  int64_t s0 = wrap_axis(start, dim(), "flatten"), s1 = wrap_axis(end, dim(), "flatten");
  Shape s(shape().begin(), shape().begin() + s0);
  int64_t n = 1;
  for (int64_t i = s0; i <= s1; ++i) n *= shape()[i];
  s.push_back(n);
  s.insert(s.end(), shape().begin() + s1 + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::clone() const {
  OpScope op("clone", {*this});
  Tensor out = make_tensor(shape(), dtype(), device());
  backend_of(*this).memory.copy_strided(dtype(), impl().storage->data, strided_desc(*this),
                                        out.raw(), strided_desc(out));
  return op.finish(out, [](const Tensor& g, const std::vector<bool>&) { return TensorList{g}; });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  OpScope op("to_device", {*this});
  Tensor src = contiguous().detach();
  Tensor out = make_tensor(shape(), dtype(), target);
  size_t bytes = size_t(numel()) * dtype_size(dtype());
  if (bytes) {
    if (target.type == DeviceType::CPU) {
      backend_of(src).memory.to_host(out.raw(), src.raw(), bytes);
    } else {
      VC_CHECK(device().type == DeviceType::CPU, "to: ", device().str(), " -> ", target.str(),
               " goes through the host; copy to cpu first");
      backend_for(target).memory.from_host(out.raw(), src.raw(), bytes);
    }
  }
  Device from = device();
  return op.finish(out, [from](const Tensor& g, const std::vector<bool>&) {
    return TensorList{g.to(from)};
  });
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  OpScope op("to_dtype", {*this});
  Tensor src = contiguous().detach();
  Tensor out = make_tensor(shape(), target, device());
  backend_of(src).memory.cast(dtype(), src.raw(), target, out.raw(), numel());
  DType from = dtype();
  BackwardFn back = nullptr;
  if (is_floating(from) && is_floating(target))
    back = [from](const Tensor& g, const std::vector<bool>&) { return TensorList{g.to(from)}; };
  return is_floating(target) ? op.finish(out, back) : op.finish_nondifferentiable(out);
}

}  // namespace vc
