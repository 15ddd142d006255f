// The op profiler (engine/core/profiler.h): off by default, self times that add up, FLOP
// counts for matmul and attention, backward closures under the "backward" phase, and no
// effect on any result.
#include <cstdlib>
#include <map>

#include "engine/engine.h"
#include "tests/engine/ref.h"

using namespace vc;
using namespace vc::testing;

namespace {

// Turns the profiler on with no entries, and back to what it was after.
struct Profiling {
  bool saved = profiler::enabled();
  Profiling() {
    profiler::reset();
    profiler::set_enabled(true);
  }
  ~Profiling() {
    profiler::set_enabled(saved);
    profiler::reset();
  }
};

std::map<std::string, profiler::Entry> by_key() {
  std::map<std::string, profiler::Entry> m;
  for (const auto& e : profiler::entries()) m[e.phase + "/" + e.kind + "/" + e.name] = e;
  return m;
}

}  // namespace

TEST_CASE("profiler: off unless VERBCLIP_PROFILE is set, and then it records nothing") {
  const char* v = std::getenv("VERBCLIP_PROFILE");
  const bool env = v && *v && std::string(v) != "0";
  CHECK(profiler::enabled() == env);
  if (env) return;
  profiler::reset();
  Tensor a = randn({4, 3}, 1, DType::F32), b = randn({3, 5}, 2, DType::F32);
  matmul(a, b);
  { profiler::Scope s("region"); }
  CHECK(profiler::entries().empty());
}

TEST_CASE("profiler: matmul forward and backward, with FLOPs and phases") {
  Tensor a = randn({6, 4}, 1, DType::F32).set_requires_grad(true);
  Tensor b = randn({4, 5}, 2, DType::F32).set_requires_grad(true);
  Profiling on;
  sum(matmul(a, b)).backward();
  auto m = by_key();
  REQUIRE(m.count("forward/op/matmul"));
  CHECK(m["forward/op/matmul"].calls == 1);
  CHECK(m["forward/op/matmul"].flops == 2.0 * 6 * 5 * 4);
  REQUIRE(m.count("backward/backward/matmul"));  // the closure: its matmuls count themselves
  CHECK(m["backward/backward/matmul"].calls == 1);
  CHECK(m["backward/backward/matmul"].flops == 0);
  REQUIRE(m.count("backward/op/matmul"));  // dA = G Bᵀ and dB = Aᵀ G
  CHECK(m["backward/op/matmul"].calls == 2);
  CHECK(m["backward/op/matmul"].flops == 2 * (2.0 * 6 * 5 * 4));
  REQUIRE(m.count("forward/op/sum"));
  REQUIRE(m.count("backward/backward/sum"));
  // The closure's total includes its matmuls; its self time excludes them.
  const auto& c = m["backward/backward/matmul"];
  CHECK(c.total_s >= c.self_s);
  CHECK(c.total_s >= m["backward/op/matmul"].self_s * 0.999);
  for (const auto& [k, e] : m) CHECK(e.self_s >= 0);
}

TEST_CASE("profiler: nested scopes split time into self times that add up") {
  Tensor x = randn({64, 64}, 3, DType::F32);
  Profiling on;
  {
    profiler::Scope outer("outer");
    matmul(x, x.transpose(0, 1));  // the transpose's non-contiguous operand stays a view
    { profiler::Scope inner("inner"); }
  }
  auto m = by_key();
  REQUIRE(m.count("forward/region/outer"));
  REQUIRE(m.count("forward/region/inner"));
  const auto& o = m["forward/region/outer"];
  double nested = 0;
  for (const auto& [k, e] : m)
    if (k != "forward/region/outer") nested += e.total_s;  // the scopes directly inside outer
  // Only direct children here (no op in this test runs another op), so self + children = total.
  CHECK(o.self_s == doctest::Approx(o.total_s - nested).epsilon(1e-6));
  CHECK(m["forward/op/matmul"].flops == 2.0 * 64 * 64 * 64);
}

TEST_CASE("profiler: attention counts dense FLOPs, twice as many in its backward") {
  Tensor q = randn({1, 2, 5, 4}, 1, DType::F32).set_requires_grad(true);
  Tensor k = randn({1, 2, 7, 4}, 2, DType::F32).set_requires_grad(true);
  Tensor v = randn({1, 2, 7, 3}, 3, DType::F32).set_requires_grad(true);
  Profiling on;
  sum(attention(q, k, v)).backward();
  auto m = by_key();
  const double fwd = 2.0 * 1 * 2 * 5 * 7 * (4 + 3);
  REQUIRE(m.count("forward/op/attention"));
  CHECK(m["forward/op/attention"].flops == fwd);
  REQUIRE(m.count("backward/backward/attention"));
  CHECK(m["backward/backward/attention"].flops == 2 * fwd);
}

TEST_CASE("profiler: conv2d counts its own FLOPs, once per gradient asked for") {
  // [2, 3, 9, 8] -> stride 2, padding 1, k 3: Ho = 5, Wo = 4; 2·B·O·Ho·Wo·C·k·k
  const double fwd = 2.0 * 2 * 4 * 5 * 4 * 3 * 3 * 3;
  for (bool input_grad : {false, true}) {
    CAPTURE(input_grad);
    Tensor x = randn({2, 3, 9, 8}, 4, DType::F32).set_requires_grad(input_grad);
    Tensor w = randn({4, 3, 3, 3}, 5, DType::F32).set_requires_grad(true);
    Profiling on;
    sum(conv2d(x, w, Tensor(), 2, 1)).backward();
    auto m = by_key();
    REQUIRE(m.count("forward/op/conv2d"));
    CHECK(m["forward/op/conv2d"].flops == fwd);
    REQUIRE(m.count("backward/backward/conv2d"));
    CHECK(m["backward/backward/conv2d"].flops == (input_grad ? 2 : 1) * fwd);
  }
}

TEST_CASE("profiler: phases from PhaseGuard, and reset drops every entry") {
  Profiling on;
  {
    profiler::PhaseGuard phase("optimizer");
    profiler::Scope s("AdamW");
  }
  auto m = by_key();
  CHECK(m.count("optimizer/region/AdamW") == 1);
  profiler::reset();
  CHECK(profiler::entries().empty());
  CHECK(profiler::table().find("total self time 0.000 ms") != std::string::npos);
}

TEST_CASE("profiler: results and gradients are bitwise the same with it on") {
  auto run = [](bool on) {
    Profiling p;
    profiler::set_enabled(on);
    Tensor a = randn({9, 7}, 4, DType::F32).set_requires_grad(true);
    Tensor w = randn({5, 7}, 5, DType::F32).set_requires_grad(true);
    Tensor y = quick_gelu(layer_norm(matmul(a, w.transpose(0, 1)), Tensor::ones({5}), Tensor::zeros({5}), 1e-5));
    sum(mul(y, y)).backward();
    return std::vector<uint64_t>{hash_bits(y), hash_bits(a.grad()), hash_bits(w.grad())};
  };
  CHECK(run(false) == run(true));
}
