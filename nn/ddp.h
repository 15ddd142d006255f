// Data-parallel gradients (DDP): every rank holds the whole model, backpropagates its own
// micro-batches, and the ranks' gradients are summed before the optimizer step, so every rank
// takes the same step and the replicas stay equal.
//
//   GradientReducer r(trainable_params, dist::world());
//   for each micro-step:  loss.backward();  r.reduce_micro_step();
//   r.finish();           // .grad = the sum over ranks and micro-steps, the same on every rank
//   opt.step();
//
// The gradients travel in flat float buckets (about `bucket_bytes` each, parameters in the
// given order, never split): one all-reduce per bucket, not one per parameter. After every
// micro-step's backward the reducer adds every rank's bucket to a running sum in rank order
// (dist::Communicator::allreduce_sum with the running sum as `init`) and clears .grad, so the
// next backward starts empty. With micro-step m of rank r holding the micro-batch m·W + r of
// one process that accumulates W·A micro-batches, the result is bitwise that process's .grad
// on the CPU (engine/dist/communicator.h has the order; engine/autograd adds each backward's
// gradient to .grad as one term). This all-reduces every micro-step, as X-CLIP does without
// no_sync: the price of the bitwise equality when ACCUMULATION_STEPS > 1. Calling
// reduce_micro_step() only after the last micro-step (TRAIN.DDP_REDUCE step, DDP's no_sync)
// sums each rank's locally accumulated .grad instead: A times less traffic, equal to the
// one-process run within float rounding (the additions are grouped by rank), not bitwise.
//
// A parameter whose gradient is undefined on a rank (unused in its forward) contributes zeros;
// its .grad stays undefined only if it was unused on every rank in every micro-step.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/engine.h"

namespace vc::nn {

class GradientReducer {
 public:
  GradientReducer(std::vector<Tensor> params, dist::Communicator& comm, int64_t bucket_bytes = 25 << 20);

  void reduce_micro_step();
  void finish();

  int64_t num_buckets() const { return int64_t(buckets_.size()); }
  int64_t numel() const { return numel_; }
  // Seconds in the communicator's all-reduce, and in the whole reducer (packing included).
  double allreduce_seconds() const { return comm_.allreduce_seconds(); }
  double seconds() const { return seconds_; }

 private:
  struct Bucket {
    size_t first = 0, last = 0;  // parameters [first, last)
    int64_t numel = 0;
    Tensor sum;                  // the running sum (undefined before the first micro-step)
  };
  std::vector<Tensor> params_;
  dist::Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::vector<char> used_;       // parameter had a gradient on some rank this step
  int64_t numel_ = 0;
  double seconds_ = 0;
};

// Broadcasts rank 0's values of these tensors (CPU) to every rank: replicas start equal.
void broadcast_tensors(const std::vector<Tensor>& tensors, dist::Communicator& comm);

}  // namespace vc::nn
