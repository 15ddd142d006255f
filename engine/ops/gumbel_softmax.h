// Gumbel-softmax with a straight-through estimator (ALT, alt.md §2.3 and §6 ops 7-8: each
// region token picks one entity of the text corpus, differentiably).
//
//   soft = softmax((logits + g) / tau) along axis, g ~ Gumbel(0, 1) from Philox(seed, stream)
//          (element i of the contiguous logits draws counter i; u stays inside (0, 1)).
//   hard = one-hot of argmax(soft) (ties to the lowest index); its backward is the soft
//          path's: the straight-through op passes the gradient to soft unchanged.
//
// ALT writes softmax(W/tau + g); it equals this one at tau = 1 (the paper's setting), and
// for another tau pass logits = W/tau with tau = 1.
#pragma once
#include <cstdint>

#include "engine/core/tensor.h"

namespace vc {

// noise_on = false drops g (inference): soft = softmax(logits / tau).
Tensor gumbel_softmax(const Tensor& logits, double tau, bool hard, uint64_t seed,
                      uint64_t stream, bool noise_on = true, int64_t axis = -1);

// The straight-through op alone: forward the one-hot of argmax(probs) along axis (ties to
// the lowest index); backward the identity (g_probs = g_hard).
Tensor hard_straight_through(const Tensor& probs, int64_t axis = -1);

}  // namespace vc
