#include "engine/backend/backend.h"

#include <mutex>

#include "engine/core/error.h"

namespace vc {

const Backend& cpu_backend();  // engine/backend/cpu/cpu_backend.cpp
#ifdef VERBCLIP_WITH_CUDA
// engine/backend/cuda/cuda_backend.cu: the table, or null when no device is usable.
const Backend* cuda_backend_init();
#endif

namespace {
const Backend* g_cuda = nullptr;
std::once_flag g_cuda_once;

// The built-in CUDA backend, looked up once, the first time a CUDA device is asked for.
void init_cuda() {
#ifdef VERBCLIP_WITH_CUDA
  std::call_once(g_cuda_once, [] {
    if (!g_cuda) g_cuda = cuda_backend_init();
  });
#endif
}
}  // namespace

bool cuda_available() {
  init_cuda();
  return g_cuda != nullptr;
}

void register_backend(DeviceType type, const Backend* b) {
  VC_CHECK(type == DeviceType::CUDA, "register_backend: only CUDA registers at run time");
  g_cuda = b;
}

const Backend& backend_for(Device d) {
  if (d.type == DeviceType::CPU) return cpu_backend();
  init_cuda();
#ifdef VERBCLIP_WITH_CUDA
  VC_CHECK(g_cuda != nullptr, "device ", d.str(), ": no usable CUDA device on this machine");
#endif
  VC_CHECK(g_cuda != nullptr, "device ", d.str(),
           ": this build of verbclip has no CUDA backend (configure with nvcc available)");
  VC_CHECK(d.index == 0, "device ", d.str(), ": the CUDA backend runs on cuda:0 only");
  return *g_cuda;
}

}  // namespace vc
