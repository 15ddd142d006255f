// Tensor = shared storage + layout (shape, strides, offset) + dtype + device + autograd
// metadata. A Tensor is a cheap handle: copies share the same TensorImpl. Views share the
// storage and change only the layout.
#pragma once
#include <cstring>
#include <memory>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/core/error.h"
#include "engine/core/shape.h"

namespace vc {

struct Node;  // engine/autograd/autograd.h

// A block of device memory, returned to the backend's allocator when the last view dies.
struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated by backward() on leaves
  std::shared_ptr<Node> grad_fn;     // the op that made this tensor (null for leaves)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = {});
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = {});
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = {});
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = {});
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = {});
  // 0, 1, ..., n-1.
  static Tensor arange(int64_t n, DType dtype = DType::I64, Device device = {});
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = {}) {
    VC_CHECK(int64_t(values.size()) == numel_of(shape), "from_vector: ", values.size(),
             " values for shape ", shape);
    Tensor t = empty(shape, dtype_of<T>::value, device);
    t.copy_from_host(values.data(), values.size() * sizeof(T));
    return t;
  }

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t axis) const;
  int64_t numel() const { return numel_of(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  bool is_contiguous() const;
  TensorImpl& impl() const {
    VC_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- raw data ----
  // Pointer to element 0 of this view (device memory for a CUDA tensor).
  void* raw() const {
    return static_cast<char*>(impl().storage->data) + impl().offset * dtype_size(dtype());
  }
  template <class T> T* data() const {
    VC_CHECK(dtype() == dtype_of<T>::value, "data<", dtype_name(dtype_of<T>::value),
             ">: tensor is ", dtype_name(dtype()));
    return static_cast<T*>(raw());
  }
  // The elements in logical (row-major) order, copied to the host.
  template <class T> std::vector<T> to_vector() const {
    VC_CHECK(dtype() == dtype_of<T>::value, "to_vector<", dtype_name(dtype_of<T>::value),
             ">: tensor is ", dtype_name(dtype()));
    std::vector<T> out(numel());
    copy_to_host(out.data(), out.size() * sizeof(T));
    return out;
  }
  // The single element as a double (any dtype).
  double item() const;
  void copy_from_host(const void* src, size_t bytes);  // this must be contiguous
  void copy_to_host(void* dst, size_t bytes) const;    // logical order

  // ---- views (engine/ops/view.cpp); all are differentiable ----
  Tensor view(const Shape& shape) const;     // requires a compatible layout
  Tensor reshape(const Shape& shape) const;  // view when possible, else a copy; one -1 allowed
  Tensor permute(const std::vector<int64_t>& axes) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t axis, int64_t start, int64_t length) const;
  Tensor select(int64_t axis, int64_t index) const;  // narrow + squeeze
  Tensor expand(const Shape& shape) const;           // -1 keeps a size
  Tensor squeeze(int64_t axis) const;
  Tensor unsqueeze(int64_t axis) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor contiguous() const;
  Tensor clone() const;           // always a fresh copy (differentiable)
  Tensor to(Device device) const;  // differentiable
  Tensor to(DType dtype) const;    // differentiable between float types

  // ---- autograd (engine/autograd/autograd.cpp) ----
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as a parameter whose gradient backward() accumulates.
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) const { impl().grad = g.impl_; }
  void zero_grad() const { impl().grad = nullptr; }
  // Back-propagates from this tensor (a scalar unless `grad` is given), accumulating into
  // the .grad of every leaf that requires grad. The graph is kept: a second call
  // accumulates again.
  void backward(const Tensor& grad = Tensor()) const;
  // The same data with no history and requires_grad off.
  Tensor detach() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A fresh contiguous tensor with the given layout and a new storage.
Tensor make_tensor(const Shape& shape, DType dtype, Device device);
// A view of `base`'s storage with another layout (no autograd; ops/view.cpp records it).
Tensor alias_with_layout(const Tensor& base, const Shape& shape, const Shape& strides,
                         int64_t offset);

}  // namespace vc
