// The NCCL communicator (communicator.h): one GPU per rank, bootstrapped through MPI.
//
// Rank 0 makes the ncclUniqueId, MPI broadcasts it, every rank picks its GPU (local rank modulo
// the visible devices; OMPI_COMM_WORLD_LOCAL_RANK or the world rank) and calls ncclCommInitRank.
// allreduce_sum is ncclAllReduce(sum) on the engine's stream (the legacy default stream, so it
// is ordered after the backward's kernels); it takes no `init`: nn/ddp.cpp adds the running sum
// on the device itself. NCCL's ring fixes the order of additions for a given number of ranks and
// topology, so results repeat run to run, but they are not the sequential sum of the MPI
// communicator: against one process they agree within float rounding, not bitwise.
#include "engine/dist/communicator.h"

#if VERBCLIP_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "engine/core/error.h"

namespace vc::dist {

namespace {

void cuda_check(cudaError_t e, const char* what) {
  VC_CHECK(e == cudaSuccess, "distributed (nccl): ", what, ": ", cudaGetErrorString(e));
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& host) : host_(host) {
    VC_CHECK(host.name() == "mpi" || host.size() == 1, "distributed (nccl): bootstrapping needs MPI, got ",
             host.name());
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
      fail("distributed (nccl): rank ", host.rank(), " sees no GPU (NCCL needs one GPU per rank)");
    int local = host.rank();
    if (const char* v = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) local = std::atoi(v);
    else if (const char* v2 = std::getenv("LOCAL_RANK")) local = std::atoi(v2);
    device_ = local % devices;
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id;
    if (host.rank() == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host.broadcast(&id, sizeof id, 0);
    nccl_check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string name() const override { return "nccl"; }
  bool device_buffers() const override { return true; }
  void barrier() override { host_.barrier(); }
  void broadcast(void* data, size_t bytes, int root) override { host_.broadcast(data, bytes, root); }
  std::vector<std::string> allgather(const std::string& mine) override { return host_.allgather(mine); }

  void allreduce_sum(const float* mine, float* out, int64_t n, const float* init) override {
    VC_CHECK(init == nullptr, "distributed (nccl): allreduce_sum adds no init (nn/ddp adds it on the device)");
    const auto t0 = std::chrono::steady_clock::now();
    cudaStream_t stream = cudaStreamLegacy;
    nccl_check(ncclAllReduce(mine, out, size_t(n), ncclFloat, ncclSum, comm_, stream), "ncclAllReduce");
    // Bounded wait: a dead peer leaves the kernel spinning, so poll and abort the communicator.
    const double limit = timeout_seconds();
    while (true) {
      cudaError_t q = cudaStreamQuery(stream);
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) cuda_check(q, "ncclAllReduce");
      ncclResult_t async;
      nccl_check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      nccl_check(async, "ncclAllReduce (asynchronous error)");
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > limit) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        fail("distributed (nccl): rank ", rank(), " waited ", limit,
             " s in ncclAllReduce for the other ranks (the limit is VERBCLIP_DIST_TIMEOUT)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    allreduce_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  void nccl_check(ncclResult_t r, const char* what) const {
    VC_CHECK(r == ncclSuccess, "distributed (nccl): rank ", host_.rank(), ": ", what, ": ", ncclGetErrorString(r));
  }
  Communicator& host_;
  ncclComm_t comm_ = nullptr;
  int device_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl(Communicator& mpi_world) {
  return std::make_unique<NcclCommunicator>(mpi_world);
}

}  // namespace vc::dist

#endif  // VERBCLIP_WITH_NCCL
