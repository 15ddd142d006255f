// Where a tensor's storage lives.
#pragma once
#include <string>

namespace vc {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const {
    return type == DeviceType::CPU ? std::string("cpu") : "cuda:" + std::to_string(index);
  }
};

inline Device cpu() { return Device{}; }
inline Device cuda(int index = 0) { return Device{DeviceType::CUDA, index}; }

}  // namespace vc
