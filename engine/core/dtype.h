// Element types. float32 is the training type; float64 exists on the CPU for
// gradient checks; int64 holds indices and labels; uint8 holds decoded images.
// There are no silent casts: an op that gets the wrong dtype throws.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vc {

enum class DType : uint8_t { F32, F64, I64, U8 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
    case DType::U8: return "uint8";
  }
  return "?";
}

inline bool is_floating(DType t) { return t == DType::F32 || t == DType::F64; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };

// Calls f(T{}) with T the C++ type of a floating dtype. Kernels use it to pick a template.
template <class F> auto dispatch_floating(DType t, F&& f) {
  if (t == DType::F64) return f(double{});
  return f(float{});
}

}  // namespace vc
