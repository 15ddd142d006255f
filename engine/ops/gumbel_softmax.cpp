// Gumbel-softmax (+ straight-through). The soft path is composed from existing ops
// (add noise, scale, softmax), so its backward is softmax's: g_z = y * (g - sum(g * y)),
// g_logits = g_z / tau. The hard path adds one op, hard_straight_through, whose forward is a
// one-hot and whose backward is the identity, so the gradient reaching the logits is exactly
// the soft path's (no hard - soft.detach() + soft arithmetic, which rounds).
#include "engine/ops/gumbel_softmax.h"

#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/nn_functional.h"
#include "engine/ops/op.h"
#include "engine/ops/random.h"
#include "engine/ops/reduce.h"

namespace vc {

Tensor hard_straight_through(const Tensor& probs, int64_t axis) {
  check_floating("hard_straight_through", probs);
  int64_t a = wrap_axis(axis, probs.dim(), "hard_straight_through");
  OpScope op("hard_straight_through", {probs});
  Tensor onehot;
  {
    NoGradGuard no_grad;
    Tensor idx = argmax(probs.detach(), a, /*keepdim=*/true);  // first maximum
    Tensor ones = Tensor::ones(idx.shape(), probs.dtype(), probs.device());
    onehot = scatter_add(Tensor::zeros(probs.shape(), probs.dtype(), probs.device()), a, idx,
                         ones).detach();
  }
  return op.finish(onehot, [](const Tensor& g, const std::vector<bool>&) {
    return TensorList{g};
  });
}

Tensor gumbel_softmax(const Tensor& logits, double tau, bool hard, uint64_t seed,
                      uint64_t stream, bool noise_on, int64_t axis) {
  check_floating("gumbel_softmax", logits);
  VC_CHECK(tau > 0, "gumbel_softmax: tau = ", tau, " must be positive (logits ",
           logits.shape(), ")");
  int64_t a = wrap_axis(axis, logits.dim(), "gumbel_softmax");
  Tensor z = logits;
  if (noise_on)
    z = add(z, rand_gumbel(logits.shape(), seed, stream, logits.dtype(), logits.device()));
  if (tau != 1.0) z = div(z, tau);
  Tensor soft = softmax(z, a);
  return hard ? hard_straight_through(soft, a) : soft;
}

}  // namespace vc
