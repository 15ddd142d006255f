// Autograd: an eager define-by-run tape.
//
// Every op output that depends on a tensor requiring grad points to a Node: the op's name,
// the inputs, and a closure that maps the output's gradient to the inputs' gradients.
// Saved tensors live in the closure. backward() orders the nodes by an iterative
// depth-first search (inputs in order), so the visiting order, and therefore every sum of
// gradients, is fixed. There are no higher-order gradients: backward runs without grad.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/core/tensor.h"

namespace vc {

using TensorList = std::vector<Tensor>;
// Maps the output's gradient to one gradient per input. `needs[i]` says whether input i
// wants one; an input that does not gets an undefined Tensor.
using BackwardFn = std::function<TensorList(const Tensor& grad_out, const std::vector<bool>& needs)>;
// For a one-input op whose gradient is the output's gradient placed in a window of the input
// (narrow): adds grad_out into that window of `sum`, the input's running gradient sum of this
// backward (undefined before its first contribution), instead of padding grad_out with zeros
// to the input's shape and adding the padded tensor. The sum is the same: each element is
// old + new in the order the contributions arrive, as with the padded add.
using AccumulateFn = std::function<void(Tensor& sum, const Tensor& grad_out)>;

// True when nothing but `t` refers to its storage and it is one contiguous block from the
// start: backward may then keep it as a gradient or update it in place without a copy.
bool sole_contiguous_owner(const Tensor& t);

struct Node {
  const char* op;
  std::vector<std::shared_ptr<TensorImpl>> inputs;  // null where the input needs no grad
  std::vector<Shape> input_shapes;
  std::vector<bool> needs;
  BackwardFn backward;
  AccumulateFn accumulate;  // optional; when set, backward() uses it instead of `backward`
};

bool grad_enabled();

// While alive, ops record nothing (inference, optimizer steps, backward itself).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when recording is on and one of the inputs requires grad.
bool any_requires_grad(const TensorList& inputs);

// Attaches a node for `op` to `out` when any input requires grad. A null `fn` means the op
// has no backward: then it throws, naming the op, instead of dropping the gradient.
void record(Tensor& out, const char* op, const TensorList& inputs, BackwardFn fn);

}  // namespace vc
