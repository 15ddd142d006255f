#include "engine/autograd/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/core/profiler.h"
#include "engine/ops/elementwise.h"

namespace vc {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool any_requires_grad(const TensorList& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* op, const TensorList& inputs, BackwardFn fn) {
  if (!any_requires_grad(inputs)) return;
  VC_CHECK(fn != nullptr, op, ": has no backward, but an input requires grad "
           "(detach it or run under NoGradGuard)");
  auto node = std::make_shared<Node>();
  node->op = op;
  for (const Tensor& t : inputs) {
    bool need = t.defined() && t.requires_grad();
    node->inputs.push_back(need ? t.impl_ptr() : nullptr);
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
    node->needs.push_back(need);
  }
  node->backward = std::move(fn);
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
}

Tensor& Tensor::set_requires_grad(bool on) {
  VC_CHECK(!on || is_floating(dtype()), "set_requires_grad: ", dtype_name(dtype()),
           " tensors cannot require grad");
  VC_CHECK(is_leaf(), "set_requires_grad: only a leaf can be marked; this tensor came from op '",
           impl().grad_fn->op, "'");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  return alias_with_layout(*this, shape(), strides(), offset());
}

bool sole_contiguous_owner(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1 && t.is_contiguous() &&
         t.offset() == 0;
}

void Tensor::backward(const Tensor& grad) const {
  VC_CHECK(requires_grad(), "backward: tensor does not require grad");
  Tensor seed = grad;
  if (!seed.defined()) {
    VC_CHECK(numel() == 1, "backward: implicit gradient needs a scalar, got shape ", shape());
    seed = Tensor::ones(shape(), dtype(), device());
  }
  VC_CHECK(seed.shape() == shape(), "backward: gradient shape ", seed.shape(),
           " does not match tensor shape ", shape());
  NoGradGuard no_grad;
  profiler::PhaseGuard phase("backward");

  auto accumulate_leaf = [](TensorImpl& leaf, const Tensor& g) {
    if (!leaf.requires_grad) return;
    // The leaf owns its gradient: later in-place updates never touch another tensor. A
    // first gradient that nothing else refers to (a fresh contiguous result of this
    // backward) is taken as it is; any other is copied.
    if (leaf.grad) {
      leaf.grad = add(Tensor(leaf.grad), g).impl_ptr();
    } else if (sole_contiguous_owner(g) && !g.requires_grad() && g.is_leaf()) {
      leaf.grad = g.impl_ptr();
    } else {
      leaf.grad = g.clone().impl_ptr();
    }
  };
  if (is_leaf()) {
    accumulate_leaf(impl(), seed);
    return;
  }

  // Post-order DFS over nodes (inputs in order) with an explicit stack; reversed, it is a
  // topological order that starts at this tensor's node.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{impl().grad_fn.get(), 0}};
  seen.insert(impl().grad_fn.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const auto& in = node->inputs[next++];
      if (in && in->grad_fn && seen.insert(in->grad_fn.get()).second)
        stack.push_back({in->grad_fn.get(), 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> pending{{impl().grad_fn.get(), seed}};
  std::unordered_map<TensorImpl*, Tensor> leaf_sums;  // this backward's gradient of each leaf
  std::vector<TensorImpl*> leaves;                     // in the order they were reached
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    Tensor g = pending[node];
    pending.erase(node);
    if (node->accumulate) {  // a window of the one input's gradient (narrow)
      const auto& in = node->inputs[0];
      Tensor* sum = nullptr;
      if (in && in->grad_fn) {
        sum = &pending[in->grad_fn.get()];
      } else if (in && in->requires_grad) {
        auto [it, fresh] = leaf_sums.try_emplace(in.get(), Tensor());
        if (fresh) leaves.push_back(in.get());
        sum = &it->second;
      }
      if (!sum) continue;
      profiler::Scope closure;
      if (profiler::enabled()) closure.begin(node->op, "backward", 0);
      node->accumulate(*sum, g);
      VC_CHECK(sum->defined() && sum->shape() == node->input_shapes[0], "autograd: '", node->op,
               "' accumulated a gradient of shape ", sum->defined() ? sum->shape() : Shape{},
               " for an input of shape ", node->input_shapes[0]);
      continue;
    }
    TensorList grads;
    {
      profiler::Scope closure;
      if (profiler::enabled())
        closure.begin(node->op, "backward", profiler::dense_flops(node->op, "backward", node->input_shapes));
      grads = node->backward(g, node->needs);
    }
    VC_CHECK(grads.size() == node->inputs.size(), "autograd: backward of '", node->op,
             "' returned ", grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const auto& in = node->inputs[i];
      if (!in) continue;
      VC_CHECK(grads[i].defined(), "autograd: backward of '", node->op,
               "' gave no gradient for input ", i, ", which requires grad");
      VC_CHECK(grads[i].shape() == node->input_shapes[i], "autograd: backward of '", node->op,
               "' gave gradient of shape ", grads[i].shape(), " for input ", i, " of shape ",
               node->input_shapes[i]);
      if (in->grad_fn) {
        Tensor& slot = pending[in->grad_fn.get()];
        slot = slot.defined() ? add(slot, grads[i]) : grads[i];
      } else if (in->requires_grad) {
        auto [it, fresh] = leaf_sums.try_emplace(in.get(), grads[i]);
        if (fresh) leaves.push_back(in.get());
        else it->second = add(it->second, grads[i]);
      }
    }
  }
  // A leaf used several times gets the sum of this backward's contributions first, then one
  // addition to its .grad: .grad = .grad + (c1 + c2), as PyTorch's AccumulateGrad does. So a
  // micro-batch's gradient is one term whether or not .grad already holds others, and data-
  // parallel ranks (nn/ddp.h), which each backward from an empty .grad, add up to the bits of
  // one process that accumulates the same micro-batches.
  for (TensorImpl* leaf : leaves) accumulate_leaf(*leaf, leaf_sums[leaf]);
}

}  // namespace vc
