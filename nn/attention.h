// The attention core of MultiheadAttention: softmax(scale Q K^T + masks and biases) V.
//
// It is one isolated function over the engine's tiled attention op (engine/ops/attention.h)
// and takes that op's options unchanged, so every mask kind of the op (causal, Kronecker
// KMTA/KMCTA/..., dense bias, per-key bias, extra key/value tokens with their bias, returned
// probability rows) is available to every transformer layer.
#pragma once
#include "engine/ops/attention.h"

namespace vc::nn {

using vc::AttentionMask;
using vc::AttentionOptions;
using vc::AttentionResult;
using vc::KronMask;

// q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv] -> out [B, H, Lq, dv].
AttentionResult attention_core(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& opts = {});

// A per-key bias [B, Lk] that hides padded keys (-inf where padding != 0), for
// AttentionOptions::key_bias.
Tensor padding_key_bias(const Tensor& key_padding_mask, DType dtype);

}  // namespace vc::nn
