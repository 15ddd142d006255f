// Token merging by bipartite soft matching (ToMe, Bolya et al. 2023), as used by
//   ALT     (alt.md §2.2, §6 ops 1-4): r tokens merged per ViT block, class token protected,
//           size-weighted averages, sizes fed to proportional attention as log(size);
//   TC-CLIP (tcclip.md §2.5, §6 O4-O5): the T·k seed tokens of a video merged iteratively
//           into m context tokens, each the mean of its group of seeds.
//
// The matching (no gradient): split the n tokens into A = even positions and B = odd
// positions, score every (a, b) by cosine similarity of the metric, give each A token its
// best B partner (ties: smallest b), rank A by that score (stable, descending) and merge the
// first r into their partners. The merge (differentiable in x):
//   out = [ x_A[unm] ..., x_B[b] merged with its sources ... ]          (n - r tokens)
//   x_new[b] = (s_B[b] x_B[b] + sum_{a -> b} s_A[a] x_A[a]) / s_new[b],
//   s_new[b] = s_B[b] + sum_{a -> b} s_A[a].
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace vc {

// How the A tokens that stay unmerged are ordered in the output.
enum class UnmergedOrder {
  Position,  // ascending position: ToMe / ALT (keeps the class token at slot 0)
  Score,     // in the ranking order, as TC-CLIP's reference does (tcclip.md §2.5 step 4)
};

// A merge plan: indices only, no gradient. r == 0 is the identity plan.
struct MergePlan {
  Tensor unm;      // int64 [B, nA - r]: A-indices that stay, in output order
  Tensor src;      // int64 [B, r]: A-indices merged away, in ranking order
  Tensor dst;      // int64 [B, r]: the B-index each src merges into
  int64_t n = 0;   // tokens before the merge
  int64_t r = 0;   // tokens removed
  int64_t tokens_after() const { return n - r; }
};

// metric [B, n, c] (ToMe: the keys averaged over heads; TC-CLIP: the tokens themselves).
// r is clamped to floor((n - 1) / 2) when protect_first (token 0, the class token, is never
// merged and stays at slot 0 with Position order), else to floor(n / 2).
MergePlan bipartite_soft_matching(const Tensor& metric, int64_t r, bool protect_first = true,
                                  UnmergedOrder order = UnmergedOrder::Position);

struct MergeResult {
  Tensor x;      // [B, n - r, C], differentiable in the input x
  Tensor sizes;  // [B, n - r], constants (no gradient)
};
// x [B, n, C]; sizes [B, n] in x's dtype, or undefined for all ones. Sizes are constants:
// passing sizes that require grad throws.
MergeResult merge_tokens(const Tensor& x, const Tensor& sizes, const MergePlan& plan);

// The inverse map for visualisation and dense outputs: y [B, n - r, C] -> [B, n, C], every
// original token gets the value of the slot it went to. Backward: each slot sums the
// gradients of its tokens.
Tensor unmerge_tokens(const Tensor& y, const MergePlan& plan);

// For each original token of the plan, its slot after the merge: int64 [B, n]
// (alt.md §2.2 step 8). Compose two steps with gather(next, 1, previous).
Tensor merge_slots(const MergePlan& plan);

// TC-CLIP's context summarisation (tcclip.md §2.5): sizes start at 1, then bipartite
// matching on the current tokens (cosine on the raw features, no class token, Score order)
// merges r_step tokens at a time (and a last smaller step) until `target` tokens remain.
// Each result token is the mean of the input tokens of its group (`assign`).
struct IterativeMerge {
  Tensor x;       // [B, target, C]
  Tensor sizes;   // [B, target]: the group sizes
  Tensor assign;  // int64 [B, n]: the group (output slot) of every input token
};
IterativeMerge merge_to_count(const Tensor& x, int64_t target, int64_t r_step);
// The tokens merge_to_count removes at each step (tcclip.md §2.5): floor((n - target) / r_step)
// steps of min(r_step, n / 2), then steps of min(n - target, n / 2) until target remain.
// merge_schedule(928, 96, 100) = [100 x 8, 32]; target >= n gives no step.
std::vector<int64_t> merge_schedule(int64_t n, int64_t target, int64_t r_step);

}  // namespace vc
