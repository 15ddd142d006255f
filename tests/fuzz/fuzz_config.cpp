// libFuzzer target for the YAML config loader (apps/common/config.cpp): any bytes as a config
// file must load or give vc::Error; the typed getters on every key then return a value or
// give vc::Error, and the resolved config written back by to_yaml() loads again unchanged.
// Half the inputs go through load_yaml_file (a file in a temporary folder, so BASE loops,
// missing BASE files and relative paths run too).
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVERBCLIP_FUZZ=ON
//   cmake --build build-fuzz --target fuzz_config
//   ./build-fuzz/tests/fuzz/fuzz_config -max_total_time=60 corpus/
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "apps/common/config.h"
#include "engine/core/error.h"

namespace {

verbclip::Config declared() {
  verbclip::Config c;
  c.declare("TRAIN.LR", "1e-4", "a number");
  c.declare("TRAIN.EPOCHS", "3", "an integer");
  c.declare("TRAIN.AMP", "false", "a boolean");
  c.declare("DATA.ROOT", "", "a string");
  c.declare("DATA.MEAN", "0.5,0.5,0.5", "a list");
  c.declare("MODEL.NAME", "baseline", "a string");
  c.declare("SEED", "1", "a top-level integer");
  return c;
}

void read_all(const verbclip::Config& c) {
  for (const std::string& k : c.keys()) {
    try { (void)c.integer(k); } catch (const vc::Error&) {}
    try { (void)c.number(k); } catch (const vc::Error&) {}
    try { (void)c.boolean(k); } catch (const vc::Error&) {}
    (void)c.list(k);
    (void)c.str(k);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  verbclip::Config c = declared();
  try {
    if (data[0] & 1) {
      static const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                               ("verbclip-fuzz-config-" + std::to_string(getpid()));
      std::filesystem::create_directories(dir);
      std::ofstream(dir / "fuzz.yaml", std::ios::binary | std::ios::trunc) << text;
      c.load_yaml_file((dir / "fuzz.yaml").string());
    } else {
      c.load_yaml_text(text, "fuzz.yaml");
    }
  } catch (const vc::Error&) {
    return 0;
  }
  read_all(c);
  // The resolved config round-trips: what a checkpoint stores loads back to the same values.
  verbclip::Config again = declared();
  try {
    again.load_yaml_text(c.to_yaml(), "to_yaml");
  } catch (const vc::Error&) {
    std::abort();
  }
  for (const std::string& k : c.keys())
    if (again.str(k) != c.str(k)) {
      std::fprintf(stderr, "round trip changed %s: '%s' -> '%s'\n", k.c_str(), c.str(k).c_str(),
                   again.str(k).c_str());
      std::abort();
    }
  return 0;
}
