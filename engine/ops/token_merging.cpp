// Bipartite soft matching and token merging. Forward and backward side by side:
//   matching      discrete, computed on the detached metric (no gradient, alt.md §2.2);
//   merge_tokens  y = size-weighted averages; backward g_x[row] = s[row] / s_new[slot] *
//                 g_y[slot] for rows that were averaged, g_y[slot] for copied rows;
//   unmerge       y[row] = x[slot(row)]; backward g_x[slot] = sum of g_y[rows in slot].
// Both directions are one kernel pair (token_merge / token_merge_backward) used either way.
#include "engine/ops/token_merging.h"

#include <algorithm>
#include <vector>

#include "engine/ops/op.h"

namespace vc {

namespace {

// The plan's tensors have the right shapes and form a partition of A; checked on the host
// so that a hand-built plan fails here with a message, not inside a kernel.
void check_plan(const char* op, const MergePlan& p, int64_t batch) {
  int64_t nA = (p.n + 1) / 2, nB = p.n / 2;
  VC_CHECK(p.r >= 0 && p.r <= nB, op, ": plan removes ", p.r, " of ", p.n, " tokens");
  if (p.r == 0) return;
  for (const Tensor* t : {&p.unm, &p.src, &p.dst}) check_dtype(op, *t, DType::I64);
  VC_CHECK(p.unm.shape() == Shape({batch, nA - p.r}) && p.src.shape() == Shape({batch, p.r}) &&
               p.dst.shape() == Shape({batch, p.r}),
           op, ": plan shapes unm ", p.unm.shape(), " src ", p.src.shape(), " dst ",
           p.dst.shape(), " do not fit batch ", batch, ", n = ", p.n, ", r = ", p.r);
  std::vector<int64_t> unm = p.unm.to_vector<int64_t>(), src = p.src.to_vector<int64_t>(),
                       dst = p.dst.to_vector<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int> seen(nA, 0);
    for (int64_t i = 0; i < nA - p.r; ++i) {
      int64_t a = unm[b * (nA - p.r) + i];
      VC_CHECK(a >= 0 && a < nA && !seen[a]++, op, ": plan unm index ", a, " in batch ", b,
               " is out of range or repeated (nA = ", nA, ")");
    }
    for (int64_t i = 0; i < p.r; ++i) {
      int64_t a = src[b * p.r + i], d = dst[b * p.r + i];
      VC_CHECK(a >= 0 && a < nA && !seen[a]++, op, ": plan src index ", a, " in batch ", b,
               " is out of range or repeated (nA = ", nA, ")");
      VC_CHECK(d >= 0 && d < nB, op, ": plan dst index ", d, " in batch ", b,
               " is out of range (nB = ", nB, ")");
    }
  }
}

}  // namespace

MergePlan bipartite_soft_matching(const Tensor& metric_in, int64_t r, bool protect_first,
                                  UnmergedOrder order) {
  check_floating("bipartite_soft_matching", metric_in);
  VC_CHECK(metric_in.dim() == 3, "bipartite_soft_matching: metric must be [B, n, c], got ",
           metric_in.shape());
  int64_t batch = metric_in.size(0), n = metric_in.size(1), c = metric_in.size(2);
  MergePlan plan;
  plan.n = n;
  // r' = min(r, floor((n - 1) / 2)) with a protected token, else min(r, floor(n / 2)).
  plan.r = std::max<int64_t>(0, std::min(r, protect_first ? (n - 1) / 2 : n / 2));
  if (plan.r == 0 || batch == 0) {
    plan.r = 0;
    return plan;
  }
  OpScope op("bipartite_soft_matching", {});  // no inputs recorded: the plan has no gradient
  Tensor m = metric_in.detach().contiguous();
  int64_t nA = (n + 1) / 2;
  plan.unm = make_tensor({batch, nA - plan.r}, DType::I64, m.device());
  plan.src = make_tensor({batch, plan.r}, DType::I64, m.device());
  plan.dst = make_tensor({batch, plan.r}, DType::I64, m.device());
  backend_of(m).special.bipartite_match(m.dtype(), m.raw(), batch, n, c, plan.r, protect_first,
                                        order == UnmergedOrder::Position,
                                        plan.unm.data<int64_t>(), plan.src.data<int64_t>(),
                                        plan.dst.data<int64_t>());
  op.finish_nondifferentiable(plan.src);
  return plan;
}

MergeResult merge_tokens(const Tensor& x_in, const Tensor& sizes_in, const MergePlan& plan) {
  check_floating("merge_tokens", x_in);
  VC_CHECK(x_in.dim() == 3, "merge_tokens: x must be [B, n, C], got ", x_in.shape());
  int64_t batch = x_in.size(0), n = x_in.size(1), c = x_in.size(2);
  VC_CHECK(n == plan.n, "merge_tokens: x ", x_in.shape(), " has ", n,
           " tokens, the plan was made for ", plan.n);
  if (sizes_in.defined()) {
    check_same("merge_tokens", {x_in, sizes_in});
    VC_CHECK(sizes_in.shape() == Shape({batch, n}), "merge_tokens: sizes ", sizes_in.shape(),
             " for x ", x_in.shape());
    VC_CHECK(!any_requires_grad({sizes_in}), "merge_tokens: sizes ", sizes_in.shape(),
             " are constants and get no gradient; detach them");
  }
  check_plan("merge_tokens", plan, batch);
  Tensor sizes = sizes_in.defined() ? sizes_in
                                    : Tensor::ones({batch, n}, x_in.dtype(), x_in.device());
  if (plan.r == 0) return {x_in, sizes};  // the identity plan

  OpScope op("merge_tokens", {x_in});
  Tensor x = x_in.contiguous().detach(), s = sizes.contiguous().detach();
  int64_t n_out = n - plan.r;
  Tensor y = make_tensor({batch, n_out, c}, x.dtype(), x.device());
  Tensor s_new = make_tensor({batch, n_out}, x.dtype(), x.device());
  Tensor unm = plan.unm.contiguous(), src = plan.src.contiguous(), dst = plan.dst.contiguous();
  int64_t r = plan.r;
  backend_of(x).special.token_merge(x.dtype(), x.raw(), s.raw(), unm.data<int64_t>(),
                                    src.data<int64_t>(), dst.data<int64_t>(), y.raw(),
                                    s_new.raw(), batch, n, r, c);
  y = op.finish(y, [=](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor gx = make_tensor({batch, n, c}, g.dtype(), g.device());
    backend_of(g).special.token_merge_backward(g.dtype(), g.raw(), s.raw(), s_new.raw(),
                                               unm.data<int64_t>(), src.data<int64_t>(),
                                               dst.data<int64_t>(), gx.raw(), batch, n, r, c);
    return TensorList{gx};
  });
  return {y, s_new};
}

Tensor unmerge_tokens(const Tensor& y_in, const MergePlan& plan) {
  check_floating("unmerge_tokens", y_in);
  VC_CHECK(y_in.dim() == 3, "unmerge_tokens: y must be [B, n - r, C], got ", y_in.shape());
  int64_t batch = y_in.size(0), c = y_in.size(2), n = plan.n, r = plan.r;
  VC_CHECK(y_in.size(1) == n - r, "unmerge_tokens: y ", y_in.shape(), " has ", y_in.size(1),
           " tokens, the plan leaves ", n - r);
  check_plan("unmerge_tokens", plan, batch);
  if (r == 0) return y_in;

  OpScope op("unmerge_tokens", {y_in});
  Tensor y = y_in.contiguous().detach();
  Tensor x = make_tensor({batch, n, c}, y.dtype(), y.device());
  Tensor unm = plan.unm.contiguous(), src = plan.src.contiguous(), dst = plan.dst.contiguous();
  // sizes == null: the backward kernel of the merge is a plain copy from each token's slot.
  backend_of(y).special.token_merge_backward(y.dtype(), y.raw(), nullptr, nullptr,
                                             unm.data<int64_t>(), src.data<int64_t>(),
                                             dst.data<int64_t>(), x.raw(), batch, n, r, c);
  return op.finish(x, [=](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor gy = make_tensor({batch, n - r, c}, g.dtype(), g.device());
    backend_of(g).special.token_merge(g.dtype(), g.raw(), nullptr, unm.data<int64_t>(),
                                      src.data<int64_t>(), dst.data<int64_t>(), gy.raw(),
                                      nullptr, batch, n, r, c);
    return TensorList{gy};
  });
}

Tensor merge_slots(const MergePlan& plan) {
  int64_t n = plan.n, r = plan.r;
  if (r == 0) fail("merge_slots: the identity plan has no batch size; use arange(n)");
  int64_t batch = plan.src.size(0), nA = (n + 1) / 2, nU = nA - r;
  std::vector<int64_t> unm = plan.unm.to_vector<int64_t>(), src = plan.src.to_vector<int64_t>(),
                       dst = plan.dst.to_vector<int64_t>(), slots(size_t(batch * n));
  for (int64_t b = 0; b < batch; ++b) {
    int64_t* s = slots.data() + b * n;
    for (int64_t i = 0; i < nU; ++i) s[2 * unm[b * nU + i]] = i;
    for (int64_t i = 0; i < r; ++i) s[2 * src[b * r + i]] = nU + dst[b * r + i];
    for (int64_t p = 1; p < n; p += 2) s[p] = nU + (p - 1) / 2;
  }
  return Tensor::from_vector(slots, {batch, n}).to(plan.src.device());
}

std::vector<int64_t> merge_schedule(int64_t n, int64_t target, int64_t r_step) {
  VC_CHECK(n >= 0 && target >= 1 && r_step >= 1, "merge_schedule: cannot merge ", n, " tokens to ", target,
           " in steps of ", r_step);
  std::vector<int64_t> steps;
  if (target >= n) return steps;
  int64_t left = n;
  for (int64_t i = 0; i < (n - target) / r_step; ++i) {
    steps.push_back(std::min(r_step, left / 2));
    left -= steps.back();
  }
  while (left > target) {
    steps.push_back(std::min(left - target, left / 2));
    left -= steps.back();
  }
  return steps;
}

IterativeMerge merge_to_count(const Tensor& x, int64_t target, int64_t r_step) {
  check_floating("merge_to_count", x);
  VC_CHECK(x.dim() == 3, "merge_to_count: x must be [B, n, C], got ", x.shape());
  int64_t batch = x.size(0), n = x.size(1);
  VC_CHECK(target >= 1 && target <= n && r_step >= 1, "merge_to_count: cannot merge ", n,
           " tokens of ", x.shape(), " to ", target, " in steps of ", r_step);
  const std::vector<int64_t> steps = merge_schedule(n, target, r_step);
  IterativeMerge out;
  out.x = x;
  out.sizes = Tensor::ones({batch, n}, x.dtype(), x.device());
  std::vector<int64_t> assign(size_t(batch * n));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n; ++i) assign[b * n + i] = i;
  for (int64_t r : steps) {
    MergePlan plan = bipartite_soft_matching(out.x.detach(), r, /*protect_first=*/false,
                                             UnmergedOrder::Score);
    if (plan.r == 0) continue;
    MergeResult m = merge_tokens(out.x, out.sizes, plan);
    std::vector<int64_t> slots = merge_slots(plan).to_vector<int64_t>();
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < n; ++i)
        assign[b * n + i] = slots[b * plan.n + assign[b * n + i]];
    out.x = m.x;
    out.sizes = m.sizes;
  }
  out.assign = Tensor::from_vector(assign, {batch, n}).to(x.device());
  return out;
}

}  // namespace vc
