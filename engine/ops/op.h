// What every op file uses: input checks that name the op and the shapes, the backend of a
// tensor, and OpScope, which records the autograd node, runs the debug switches and, when the
// profiler is on (engine/core/profiler.h), times the op from construction to destruction.
//
// The shape of an op:
//
//   Tensor exp(const Tensor& x) {
//     OpScope op("exp", {x});            // checks are done before this line
//     Tensor y = ...allocate + call a kernel...;
//     return op.finish(y, [=](const Tensor& g, auto& needs) { return TensorList{...}; });
//   }
#pragma once
#include <chrono>
#include <initializer_list>

#include "engine/autograd/autograd.h"
#include "engine/backend/backend.h"
#include "engine/core/profiler.h"
#include "engine/core/tensor.h"

namespace vc {

inline const Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }

StridedDesc strided_desc(const Tensor& t);

void check_floating(const char* op, const Tensor& t);
void check_dtype(const char* op, const Tensor& t, DType want);
// Same dtype and device for all defined tensors; the error names both.
void check_same(const char* op, std::initializer_list<Tensor> ts);

// The debug switches. The environment sets them once at start-up (VERBCLIP_CHECK_NAN=1,
// VERBCLIP_LOG_OPS=1); tests and tools may change them at run time.
struct DebugFlags {
  bool check_nan = false;  // every float op output is checked for NaN/Inf, naming the op
  bool log_ops = false;    // every op is logged to stderr with shapes, dtype and time
};
DebugFlags debug_flags();
void set_debug_flags(const DebugFlags& flags);

class OpScope {
 public:
  OpScope(const char* name, TensorList inputs);
  // Records `out` (see record()) and runs VERBCLIP_CHECK_NAN / VERBCLIP_LOG_OPS.
  Tensor finish(Tensor out, BackwardFn backward);
  // For outputs that carry no gradient (indices, comparisons, masks).
  Tensor finish_nondifferentiable(Tensor out);

 private:
  void debug_checks(const Tensor& out);
  const char* name_;
  TensorList inputs_;
  std::chrono::steady_clock::time_point start_;
  profiler::Scope profile_;  // last: opened after the members above, closed before them
};

// Sums `g` down to `shape` (the adjoint of broadcasting `shape` up to g's shape).
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace vc
