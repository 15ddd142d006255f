// Running the built `verbclip` binary from the app tests: one helper for every suite.
#pragma once
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>

#include "nn/safetensors.h"
#include <string>
#include <vector>

namespace verbclip::testing {

struct RunResult {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Single-quoted for the shell.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command line and collects its output and exit code.
inline RunResult run_command(const std::string& cmd) {
  RunResult r;
  std::FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `verbclip args...` (each argument quoted), with 2 threads as in CI.
inline RunResult run_verbclip(const std::vector<std::string>& args) {
  std::string cmd = std::string("OMP_NUM_THREADS=2 ") + VERBCLIP_BINARY_DIR "/bin/verbclip";
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_command(cmd + " 2>&1");
}

// Every float tensor of two checkpoints (model, optimizer moments) equal bit for bit, and the
// same step where they record one (exported CLIP weights do not). Returns how many tensors were compared (callers check it is not vacuous).
inline int check_same_float_tensors(const std::string& a, const std::string& b) {
  CAPTURE(a);
  CAPTURE(b);
  vc::nn::SafetensorsFile fa(a), fb(b);
  REQUIRE(fa.names() == fb.names());
  int compared = 0;
  for (const auto& name : fa.names()) {
    auto ta = fa.load(name), tb = fb.load(name);
    if (ta.dtype() != vc::DType::F32) continue;
    CAPTURE(name);
    CHECK(ta.to_vector<float>() == tb.to_vector<float>());
    ++compared;
  }
  const auto &ma = fa.metadata(), &mb = fb.metadata();
  CHECK(ma.count("step") == mb.count("step"));
  if (ma.count("step") && mb.count("step")) CHECK(ma.at("step") == mb.at("step"));
  return compared;
}

}  // namespace verbclip::testing
