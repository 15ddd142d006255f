#include "engine/core/tensor.h"

#include "engine/autograd/autograd.h"
#include "engine/backend/backend.h"

namespace vc {

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  data = backend_for(d).memory.alloc(n);
}

Storage::~Storage() { backend_for(device).memory.free(data, nbytes); }

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) VC_CHECK(s >= 0, "empty: negative size in shape ", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(numel_of(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor alias_with_layout(const Tensor& base, const Shape& shape, const Shape& strides,
                         int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return make_tensor(shape, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = make_tensor(shape, dtype, device);
  backend_for(device).memory.fill(dtype, t.raw(), t.numel(), value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  Tensor t = make_tensor({n}, DType::F64, cpu());
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = double(i);
  Tensor r = make_tensor({n}, dtype, cpu());
  backend_for(cpu()).memory.cast(DType::F64, p, dtype, r.raw(), n);
  return device == cpu() ? r : r.to(device);
}

int64_t Tensor::size(int64_t axis) const {
  return shape()[wrap_axis(axis, dim(), "size")];
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expect) return false;
    expect *= shape()[i];
  }
  return true;
}

void Tensor::copy_from_host(const void* src, size_t bytes) {
  VC_CHECK(is_contiguous() && bytes == size_t(numel()) * dtype_size(dtype()),
           "copy_from_host: ", bytes, " bytes into a ", dtype_name(dtype()), " tensor of shape ",
           shape(), (is_contiguous() ? "" : " (not contiguous)"));
  if (bytes) backend_for(device()).memory.from_host(raw(), src, bytes);
}

void Tensor::copy_to_host(void* dst, size_t bytes) const {
  VC_CHECK(bytes == size_t(numel()) * dtype_size(dtype()), "copy_to_host: ", bytes,
           " bytes from a tensor of shape ", shape());
  NoGradGuard no_grad;
  Tensor c = contiguous();
  if (bytes) backend_for(device()).memory.to_host(dst, c.raw(), bytes);
}

double Tensor::item() const {
  VC_CHECK(numel() == 1, "item: tensor of shape ", shape(), " has ", numel(), " elements");
  switch (dtype()) {
    case DType::F32: return to_vector<float>()[0];
    case DType::F64: return to_vector<double>()[0];
    case DType::I64: return double(to_vector<int64_t>()[0]);
    case DType::U8: return double(to_vector<uint8_t>()[0]);
  }
  return 0;
}

}  // namespace vc
