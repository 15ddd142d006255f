// The debug switches (VERBCLIP_CHECK_NAN, VERBCLIP_LOG_OPS): set from the environment at
// start-up, switchable at run time through set_debug_flags.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/ops/op.h"
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {
// Restores the flags the environment gave, whatever the test does.
struct FlagsRestore {
  DebugFlags saved = debug_flags();
  ~FlagsRestore() { set_debug_flags(saved); }
};
}  // namespace

TEST_CASE("debug: the environment sets the flags at start-up") {
  auto env_on = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::string(v) != "0";
  };
  CHECK(debug_flags().check_nan == env_on("VERBCLIP_CHECK_NAN"));
  CHECK(debug_flags().log_ops == env_on("VERBCLIP_LOG_OPS"));
}

TEST_CASE("debug: the NaN/Inf check names the op that produced it") {
  FlagsRestore restore;
  set_debug_flags({/*check_nan=*/true, /*log_ops=*/false});
  CHECK(debug_flags().check_nan);
  Tensor neg = Tensor::from_vector<float>({1, -1}, {2});
  CHECK_THROWS_WITH_AS(log(neg), doctest::Contains("VERBCLIP_CHECK_NAN: op 'log' produced"), vc::Error);
  try {
    log(neg);
  } catch (const vc::Error& e) {
    CHECK(std::string(e.what()).find("nan at flat index 1 of output shape [2]") != std::string::npos);
  }
  Tensor big = Tensor::from_vector<double>({1, 1000}, {2});
  CHECK_THROWS_WITH_AS(exp(big), doctest::Contains("op 'exp' produced inf"), vc::Error);
  CHECK_THROWS_WITH_AS(div(Tensor::ones({2, 2}), Tensor::zeros({2})),
                       doctest::Contains("op 'div' produced inf at flat index 0 of output shape [2, 2]"),
                       vc::Error);
  CHECK_NOTHROW(exp(neg));  // finite outputs pass
  set_debug_flags({false, false});
  CHECK_NOTHROW(log(neg));  // off: NaN flows through
}

TEST_CASE("debug: the op log prints each op with its shapes") {
  FlagsRestore restore;
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({3, 4});
  // Capture stderr in a temporary file.
  std::fflush(stderr);
  char path[] = "/tmp/verbclip_oplog_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  int saved = dup(2);
  dup2(fd, 2);
  set_debug_flags({false, true});
  matmul(a, b);
  set_debug_flags({false, false});
  exp(a);  // not logged
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path);
  std::string log = ss.str();
  CHECK(log.find("[op] matmul") != std::string::npos);
  CHECK(log.find("[2, 3] [3, 4] -> [2, 4] float32") != std::string::npos);
  CHECK(log.find("exp") == std::string::npos);
}
