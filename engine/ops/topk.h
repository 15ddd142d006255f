// Top-k and argsort along an axis (TC-CLIP picks its seed tokens with top-k, tcclip.md §2.4
// and §6 O1; the bipartite matching ranks edges with the same order).
//
// One total order everywhere: by value (descending when largest, else ascending; NaN counts
// as the largest value), ties by the lower index. So the indices are unique and the same on
// every backend and thread count (torch.topk leaves ties unspecified).
#pragma once
#include <cstdint>

#include "engine/core/tensor.h"

namespace vc {

struct TopK {
  Tensor values;   // differentiable: the gradient scatters back to the selected positions
  Tensor indices;  // int64, no gradient
};

// The k first elements of x along axis under the order above; both outputs have x's shape
// with size k on axis, in that order.
TopK topk(const Tensor& x, int64_t k, int64_t axis = -1, bool largest = true);

// The permutation that sorts x along axis (stable: equal values keep index order), int64.
Tensor argsort(const Tensor& x, int64_t axis = -1, bool descending = false);

}  // namespace vc
