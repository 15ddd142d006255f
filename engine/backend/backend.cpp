#include "engine/backend/backend.h"

#include "engine/core/error.h"

namespace vc {

const Backend& cpu_backend();  // engine/backend/cpu/cpu_backend.cpp

namespace {
const Backend* g_cuda = nullptr;
}

void register_backend(DeviceType type, const Backend* b) {
  VC_CHECK(type == DeviceType::CUDA, "register_backend: only CUDA registers at run time");
  g_cuda = b;
}

const Backend& backend_for(Device d) {
  if (d.type == DeviceType::CPU) return cpu_backend();
  VC_CHECK(g_cuda != nullptr, "device ", d.str(),
           ": this build of verbclip has no CUDA backend (configure with nvcc available)");
  return *g_cuda;
}

}  // namespace vc
