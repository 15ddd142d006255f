#include "engine/ops/op.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/ops/reduce.h"

namespace vc {

StridedDesc strided_desc(const Tensor& t) {
  VC_CHECK(t.dim() <= kMaxDims, "tensor of ", t.dim(), " dims: at most ", kMaxDims,
           " are supported");
  StridedDesc d;
  d.ndim = int(t.dim());
  for (int i = 0; i < d.ndim; ++i) {
    d.shape[i] = t.shape()[i];
    d.strides[i] = t.strides()[i];
  }
  d.offset = t.offset();
  return d;
}

void check_floating(const char* op, const Tensor& t) {
  VC_CHECK(is_floating(t.dtype()), op, ": expected a float tensor, got ", dtype_name(t.dtype()),
           " of shape ", t.shape());
}

void check_dtype(const char* op, const Tensor& t, DType want) {
  VC_CHECK(t.dtype() == want, op, ": expected ", dtype_name(want), ", got ",
           dtype_name(t.dtype()), " of shape ", t.shape());
}

void check_same(const char* op, std::initializer_list<Tensor> ts) {
  const Tensor* first = nullptr;
  for (const Tensor& t : ts) {
    if (!t.defined()) continue;
    if (!first) {
      first = &t;
      continue;
    }
    VC_CHECK(t.device() == first->device(), op, ": tensors on different devices, ",
             first->device().str(), " ", first->shape(), " and ", t.device().str(), " ",
             t.shape());
    VC_CHECK(t.dtype() == first->dtype(), op, ": dtype mismatch, ", dtype_name(first->dtype()),
             " ", first->shape(), " and ", dtype_name(t.dtype()), " ", t.shape());
  }
}

namespace {
bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}
// Atomics: a flag may be flipped while OpenMP or loader threads run ops.
std::atomic<bool> g_check_nan{env_on("VERBCLIP_CHECK_NAN")};
std::atomic<bool> g_log_ops{env_on("VERBCLIP_LOG_OPS")};
}  // namespace

DebugFlags debug_flags() { return {g_check_nan.load(), g_log_ops.load()}; }

void set_debug_flags(const DebugFlags& flags) {
  g_check_nan = flags.check_nan;
  g_log_ops = flags.log_ops;
}

OpScope::OpScope(const char* name, TensorList inputs)
    : name_(name), inputs_(std::move(inputs)), start_(std::chrono::steady_clock::now()) {
  if (profiler::enabled()) {
    std::vector<Shape> shapes;
    for (const Tensor& t : inputs_) shapes.push_back(t.defined() ? t.shape() : Shape{});
    profile_.begin(name_, "op", profiler::dense_flops(name_, "op", shapes));
  }
}

Tensor OpScope::finish(Tensor out, BackwardFn backward) {
  record(out, name_, inputs_, std::move(backward));
  debug_checks(out);
  return out;
}

Tensor OpScope::finish_nondifferentiable(Tensor out) {
  debug_checks(out);
  return out;
}

namespace {
// Set while a debug check runs its own ops (the copy to host float64), so those ops are
// neither checked nor logged: a NaN must be reported under the op that made it.
thread_local bool t_in_debug_check = false;
}  // namespace

void OpScope::debug_checks(const Tensor& out) {
  if (t_in_debug_check) return;
  if (g_check_nan && is_floating(out.dtype())) {
    NoGradGuard no_grad;
    t_in_debug_check = true;
    Tensor host;
    try {
      host = out.to(DType::F64).to(cpu()).contiguous();
    } catch (...) {
      t_in_debug_check = false;
      throw;
    }
    t_in_debug_check = false;
    const double* p = host.data<double>();
    for (int64_t i = 0; i < host.numel(); ++i)
      VC_CHECK(std::isfinite(p[i]), "VERBCLIP_CHECK_NAN: op '", name_, "' produced ", p[i],
               " at flat index ", i, " of output shape ", out.shape());
  }
  if (g_log_ops) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          start_).count();
    std::string in;
    for (const Tensor& t : inputs_) in += t.defined() ? shape_str(t.shape()) + " " : "- ";
    std::fprintf(stderr, "[op] %-20s %s-> %s %s %.3f ms\n", name_, in.c_str(),
                 shape_str(out.shape()).c_str(), dtype_name(out.dtype()), ms);
  }
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  // Leading axes that broadcasting added, then axes where shape has size 1.
  int64_t lead = g.dim() - int64_t(shape.size());
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(i);
  Tensor s = axes.empty() ? g : sum(g, axes, /*keepdim=*/true);
  return s.reshape(shape);
}

}  // namespace vc
