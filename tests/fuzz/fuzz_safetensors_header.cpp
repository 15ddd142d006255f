// libFuzzer target for the safetensors header parser: any bytes must either parse into a
// header whose every tensor lies inside the buffer, or throw vc::Error. Anything else (a
// crash, a sanitizer report, another exception) is a bug.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVERBCLIP_FUZZ=ON
//   cmake --build build-fuzz --target fuzz_safetensors_header
//   ./build-fuzz/tests/fuzz/fuzz_safetensors_header -max_total_time=60 corpus/
#include <cstdint>
#include <cstdlib>

#include "nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    vc::nn::SafetensorsHeader h = vc::nn::parse_safetensors_header(data, size, "fuzz");
    for (const auto& e : h.entries)  // what the parser promises its callers
      if (e.begin > e.end || h.data_start + e.end > size) std::abort();
  } catch (const vc::Error&) {
  }
  return 0;
}
