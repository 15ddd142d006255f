// Kernels of the attention family: softmax(scale · Q Kᵀ + bias) V, tiled with an online
// softmax (engine/backend/cpu/attention.cpp is the reference; a device backend implements the
// same two entries). The op layer (engine/ops/attention.cpp) builds the descriptor.
//
// Layouts, all contiguous row-major:
//   q [B, H, Nq, d], k [B, H, Nk, d], v [B, H, Nk, dv], out [B, H, Nq, dv], lse [B, H, Nq].
// Keys 0..n_main-1 are the sequence's own keys: the mask and the dense bias cover them.
// Keys n_main..Nk-1 are extra keys (TC-CLIP's context tokens): never masked, no dense bias.
#pragma once
#include <cstdint>

#include "engine/core/dtype.h"

namespace vc {

enum class AttnMaskKind : int32_t {
  None,    // every key visible
  Causal,  // key j visible to query i iff j <= i
  Kron,    // Kronecker-structured, see KronMaskDesc
};

// Visibility over a frame-major sequence, i = t·L + l (query) and j = t'·L + l' (key):
//   visible(i, j) = OR over terms k of frame[k][t][t'] AND token[k][l][l'].
// Both pattern arrays are 0/1 bytes in HOST memory (a device backend uploads them).
struct KronMaskDesc {
  int64_t T = 0, L = 0, n_terms = 0;
  const uint8_t* frame = nullptr;  // [n_terms, T, T]
  const uint8_t* token = nullptr;  // [n_terms, L, L]
};

struct AttentionDesc {
  DType dtype = DType::F32;
  int64_t B = 0, H = 0, Nq = 0, Nk = 0, n_main = 0, d = 0, dv = 0;
  double scale = 1.0;
  AttnMaskKind mask = AttnMaskKind::None;
  KronMaskDesc kron;
  // Optional dense additive bias over [B, H, Nq, n_main]; element (b, h, i, j) sits at
  // b*s[0] + h*s[1] + i*s[2] + j*s[3] (a stride of 0 repeats it). May hold -inf.
  const void* bias = nullptr;
  int64_t bias_strides[4] = {0, 0, 0, 0};
  // Optional additive per-key bias over [B, H, Nk], keys contiguous; element (b, h, j) sits
  // at b*key_bias_sb + h*key_bias_sh + j.
  const void* key_bias = nullptr;
  int64_t key_bias_sb = 0, key_bias_sh = 0;
};

struct AttentionKernels {
  // out and lse (the row log-sum-exp, -inf for a row with every key masked; such a row's
  // output is 0). When n_prob_rows > 0, probs [B, H, n_prob_rows, Nk] receives the
  // probabilities of the query rows prob_rows (host memory).
  void (*forward)(const AttentionDesc& a, const void* q, const void* k, const void* v,
                  void* out, void* lse, const int64_t* prob_rows, int64_t n_prob_rows,
                  void* probs);
  // gq, gk, gv always (overwritten). gbias [B, H, Nq, n_main] = dS when not null (0 at masked
  // and skipped entries); gkey_bias [B, H, Nk] = column sums of dS when not null.
  void (*backward)(const AttentionDesc& a, const void* q, const void* k, const void* v,
                   const void* out, const void* lse, const void* gout, void* gq, void* gk,
                   void* gv, void* gbias, void* gkey_bias);
};

}  // namespace vc
