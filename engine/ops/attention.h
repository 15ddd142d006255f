// Attention: out = softmax(scale · Q Kᵀ + bias) V over [batch, heads, queries, dim], with
// structured masks, additive biases and extra key/value tokens.
//
// Who uses what:
//   - every transformer: no mask (ViT), causal (CLIP's text tower);
//   - CLAVER: Kronecker-structured masks over a frame-major sequence i = t·L + l
//     (KMTA, KMCTA and the ablation baselines of claver.md §2.2);
//   - ALT (ToMe proportional attention): a per-key bias log(size_j);
//   - TC-CLIP: context tokens appended as extra keys/values with a per-head bias (b_glob; the
//     local b_loc is a per-key bias broadcast over the keys), and the class token's attention
//     row returned to pick seed tokens (tcclip.md §2.4);
//   - STDD and anything else: a dense additive bias.
// It runs in tiles with an online softmax (engine/backend/cpu/attention.cpp): the full score
// matrix is never held, tiles that the mask hides entirely are skipped, and the backward
// recomputes scores from the saved row log-sum-exp. A query row with every key masked gives
// output 0 and gradient 0.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace vc {

// Visibility over a frame-major sequence of T frames × L tokens, i = t·L + l:
//   key j = (t', l') is visible to query i = (t, l) iff for some term k,
//   frame[k][t][t'] = 1 and token[k][l][l'] = 1,
// i.e. the visible set is a union of Kronecker products F_k ⊗ G_k (patterns are row-major
// 0/1 bytes, F_k [T, T], G_k [L, L]). The spec (claver.md §2.2) writes the *blocked*
// pattern Π; each constructor below gives its complement and quotes Π.
struct KronMask {
  struct Term {
    std::vector<uint8_t> frame;  // [T, T], row = query frame t, column = key frame t'
    std::vector<uint8_t> token;  // [L, L], row = query slot l, column = key slot l'
  };
  int64_t T = 0, L = 0;
  std::vector<Term> terms;

  bool visible(int64_t i, int64_t j) const;  // the rule above, for tests and drawings

  // Π = 0: every key visible.
  static KronMask joint(int64_t T, int64_t L);
  // Π = (J_T − I_T) ⊗ J_L: visible iff t' = t.
  static KronMask spatial(int64_t T, int64_t L);
  // Π = J_T ⊗ (J_L − I_L): visible iff l' = l.
  static KronMask pipeline(int64_t T, int64_t L);
  // KMTA, Π = I_T ⊗ (J_L − I_L): visible iff t' ≠ t, or j = i.
  static KronMask kmta(int64_t T, int64_t L);
  // KMCTA, Π = I_T ⊗ (J_L − I_L) + (U_T − I_T) ⊗ J_L: visible iff t' < t, or j = i.
  static KronMask kmcta(int64_t T, int64_t L);
  // Class-token-only temporal, Π = J⊗J − J⊗E00 − I⊗I + I⊗E00: visible iff l = l' = 0, or j = i.
  static KronMask class_token_only(int64_t T, int64_t L);
};

struct AttentionMask {
  enum class Kind { None, Causal, Kron };
  Kind kind = Kind::None;
  KronMask kron;

  static AttentionMask none() { return {}; }
  static AttentionMask causal() { return {Kind::Causal, {}}; }  // key j visible iff j <= i
  static AttentionMask kronecker(KronMask m) { return {Kind::Kron, std::move(m)}; }
};

// Shapes: q [B, H, Nq, d], k [B, H, Nk, d], v [B, H, Nk, dv]; out [B, H, Nq, dv].
struct AttentionOptions {
  AttentionMask mask;  // over the Nk own keys; a Kronecker mask needs Nq = Nk = T·L
  // Dense additive bias, broadcastable (NumPy rules) to [B, H, Nq, Nk]; may hold -inf.
  Tensor bias;
  // Additive per-key bias (ToMe: log of token sizes): [B, Nk], or [B|1, H|1, Nk].
  Tensor key_bias;
  // Extra keys/values appended after the Nk own keys (TC-CLIP context tokens):
  // [B, H, Ne, d] and [B, H, Ne, dv]. They are never masked and get no dense/key bias.
  Tensor extra_k, extra_v;
  // Added to the logits of the extra keys: [H] (one per head), or [B|1, H|1, Ne|1].
  Tensor extra_bias;
  // Query rows whose attention probabilities to return (no gradient through them).
  std::vector<int64_t> prob_rows;
  double scale = 0;  // 0 means 1 / sqrt(d)
};

struct AttentionResult {
  Tensor out;    // [B, H, Nq, dv]
  Tensor probs;  // [B, H, prob_rows.size(), Nk + Ne], undefined when no rows were asked for
};

// Differentiable in q, k, v, bias, key_bias, extra_k, extra_v and extra_bias.
AttentionResult attention_ex(const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionOptions& opt = {});
inline Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v,
                        const AttentionOptions& opt = {}) {
  return attention_ex(q, k, v, opt).out;
}

}  // namespace vc
