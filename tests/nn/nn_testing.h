// Helpers for the nn tests: a gradient check of a whole module (input and every parameter),
// and a scratch folder.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include "nn/nn.h"
#include "tests/common/testing.h"

namespace vc::nn::testing {

using namespace vc::testing;

// Float64 central differences against autograd for x (when it is float) and every
// parameter of m. L = sum(f(x) * w) with fixed random w. Parameters are perturbed in place.
inline void gradcheck_module(Module& m, const std::function<Tensor(const Tensor&)>& f, Tensor x,
                             const std::string& what, double eps = 1e-6, double atol = 1e-7,
                             double rtol = 1e-5) {
  std::vector<std::pair<std::string, Tensor>> wrt;
  if (is_floating(x.dtype())) {
    REQUIRE(x.dtype() == DType::F64);
    x = x.contiguous().detach();
    x.set_requires_grad(true);
    wrt.emplace_back("input", x);
  }
  for (auto& [name, p] : m.named_parameters()) {
    REQUIRE_MESSAGE(p.dtype() == DType::F64, what, ": parameter ", name, " is not float64");
    p.zero_grad();
    p.set_requires_grad(true);
    wrt.emplace_back(name, p);
  }
  Tensor out = f(x);
  Tensor w = randn(out.shape(), 99);
  sum(mul(out, w)).backward();
  NoGradGuard no_grad;
  for (auto& [name, t] : wrt) {
    REQUIRE_MESSAGE(t.grad().defined(), what, ": ", name, " got no gradient");
    double* p = t.data<double>();
    Tensor numeric = Tensor::zeros(t.shape(), DType::F64);
    for (int64_t i = 0; i < t.numel(); ++i) {
      double keep = p[i];
      p[i] = keep + eps;
      double up = sum(mul(f(x), w)).item();
      p[i] = keep - eps;
      double down = sum(mul(f(x), w)).item();
      p[i] = keep;
      numeric.data<double>()[i] = (up - down) / (2 * eps);
    }
    check_close(t.grad(), numeric, atol, rtol, what + " d/d " + name);
  }
}

// A fresh folder under the system temp dir, removed when the object dies.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("verbclip_nn_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Every parameter of m, re-drawn from a seed; float64 when asked.
inline void init_module(Module& m, uint64_t seed, DType dtype = DType::F32) {
  Generator gen{seed, 0};
  m.reset_parameters(gen);
  m.to(dtype);
}

}  // namespace vc::nn::testing
