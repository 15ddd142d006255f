#include "nn/ddp.h"

#include <chrono>
#include <algorithm>
#include <cstring>

namespace vc::nn {

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

GradientReducer::GradientReducer(std::vector<Tensor> params, dist::Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  VC_CHECK(bucket_bytes > 0, "GradientReducer: bucket size must be positive");
  const int64_t cap = std::max<int64_t>(1, bucket_bytes / int64_t(sizeof(float)));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    VC_CHECK(p.dtype() == DType::F32, "GradientReducer: parameter ", i, " is ", dtype_name(p.dtype()),
             ", only float32 gradients are reduced");
    VC_CHECK(comm_.device_buffers() || p.device().type == DeviceType::CPU, "GradientReducer: parameter ", i,
             " is on a GPU but the communicator '", comm_.name(), "' reduces host buffers (use NCCL)");
    if (buckets_.empty() || (buckets_.back().numel > 0 && buckets_.back().numel + p.numel() > cap)) {
      Bucket b;
      b.first = b.last = i;
      buckets_.push_back(b);
    }
    buckets_.back().last = i + 1;
    buckets_.back().numel += p.numel();
    numel_ += p.numel();
  }
  used_.assign(params_.size(), 0);
}

void GradientReducer::reduce_micro_step() {
  const double t0 = now();
  // Which parameters have a gradient on some rank (rare: all of them, unless a module was unused).
  std::string mine(params_.size(), '\0');
  for (size_t i = 0; i < params_.size(); ++i) mine[i] = params_[i].grad().defined() ? 1 : 0;
  const auto all = comm_.size() > 1 ? comm_.allgather(mine) : std::vector<std::string>{mine};
  for (const auto& s : all)
    for (size_t i = 0; i < params_.size(); ++i) used_[i] |= s[i];

  for (auto& b : buckets_) {
    if (b.numel == 0) continue;
    if (comm_.device_buffers()) {
      // Device (NCCL): pack with the engine, reduce, add the running sum on the device.
      std::vector<Tensor> parts;
      for (size_t i = b.first; i < b.last; ++i) {
        const Tensor g = params_[i].grad();
        parts.push_back(g.defined() ? g.reshape({-1})
                                    : Tensor::zeros({params_[i].numel()}, DType::F32, params_[i].device()));
      }
      Tensor flat = concat(parts, 0).contiguous();
      Tensor red = Tensor::empty({b.numel}, DType::F32, flat.device());
      comm_.allreduce_sum(flat.data<float>(), red.data<float>(), b.numel, nullptr);
      b.sum = b.sum.defined() ? add(b.sum, red) : red;
    } else {
      Tensor flat = Tensor::empty({b.numel});
      float* f = flat.data<float>();
      for (size_t i = b.first; i < b.last; ++i) {
        const int64_t n = params_[i].numel();
        const Tensor g = params_[i].grad();
        if (g.defined()) {
          const Tensor c = g.contiguous();
          std::memcpy(f, c.data<float>(), size_t(n) * sizeof(float));
        } else {
          std::memset(f, 0, size_t(n) * sizeof(float));
        }
        f += n;
      }
      const bool first = !b.sum.defined();
      if (first) b.sum = Tensor::empty({b.numel});
      comm_.allreduce_sum(flat.data<float>(), b.sum.data<float>(), b.numel, first ? nullptr : b.sum.data<float>());
    }
  }
  for (auto& p : params_) p.zero_grad();
  seconds_ += now() - t0;
}

void GradientReducer::finish() {
  const double t0 = now();
  for (auto& b : buckets_) {
    int64_t off = 0;
    for (size_t i = b.first; i < b.last; ++i) {
      const int64_t n = params_[i].numel();
      if (used_[i] && b.sum.defined()) params_[i].set_grad(b.sum.narrow(0, off, n).reshape(params_[i].shape()).clone());
      else params_[i].zero_grad();
      off += n;
    }
    b.sum = Tensor();
  }
  used_.assign(params_.size(), 0);
  seconds_ += now() - t0;
}

void broadcast_tensors(const std::vector<Tensor>& tensors, dist::Communicator& comm) {
  if (comm.size() == 1) return;
  for (const Tensor& t : tensors) {
    VC_CHECK(t.device().type == DeviceType::CPU && t.is_contiguous(), "broadcast_tensors: CPU contiguous tensors only");
    comm.broadcast(t.raw(), size_t(t.numel()) * dtype_size(t.dtype()), 0);
  }
}

}  // namespace vc::nn
