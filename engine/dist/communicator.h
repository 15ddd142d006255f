// Communicators for data-parallel training: one process per rank, launched by `mpirun -np N`
// (or one per GPU), each holding a full copy of the model.
//
// Why here (engine/dist, its own library): a communicator moves raw buffers between
// processes, as a backend moves them between host and device; it knows nothing of modules,
// models or files. nn/ddp.h packs the parameters' gradients into flat buckets on top of it, and
// apps/ shard the data and gather evaluation scores with it.
//
// Implementations:
//   single  one process (no mpirun): every collective is the identity. The default.
//   mpi     OpenMPI (VERBCLIP_MPI): host buffers. Its allreduce_sum is bitwise reproducible
//           and equal to a sequential sum in rank order (see below), so N ranks give the bits
//           of one process that accumulates the same micro-batches in the same order.
//   nccl    NCCL (VERBCLIP_WITH_NCCL, one GPU per rank), bootstrapped through MPI: rank 0's
//           ncclUniqueId is broadcast with MPI_Bcast. Device buffers; NCCL's ring sum is
//           reproducible run to run on a fixed topology but not equal to the sequential sum.
//
// The fixed reduction order (mpi): `allreduce_sum` splits the n floats into W contiguous
// chunks, chunk c owned by rank c. An all-to-all sends every rank's chunk c to rank c, which
// adds them in rank order, starting from `init` when given:
//     out[i] = ((init[i] + x_0[i]) + x_1[i]) + ... + x_{W-1}[i]     (no init: x_0[i] + x_1[i] ...)
// then an all-gather hands every owner's chunk to every rank. Each element is one chain of
// float additions in a fixed order, so the result has the same bits on every rank, in every run,
// and equals what one process gets by adding the W buffers one after the other. It moves
// 2 (W-1)/W of the buffer per rank, as a ring all-reduce does; MPI_Allreduce(MPI_SUM) is not
// used because its order of additions is the library's choice.
//
// No hangs: every blocking MPI call here waits at most VERBCLIP_DIST_TIMEOUT seconds (default
// 600), then throws naming the collective and the rank. A rank that exits with an error calls
// abort_world(), which makes mpirun end every rank.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vc::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"
  // True when the buffers of allreduce_sum are device (CUDA) memory.
  virtual bool device_buffers() const { return false; }

  virtual void barrier() = 0;
  // Host memory: root's bytes to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Host memory, any size per rank: every rank's bytes, in rank order.
  virtual std::vector<std::string> allgather(const std::string& mine) = 0;
  // out = init + x_0 + x_1 + ... + x_{W-1} (x_r = rank r's `mine`, n floats each), added left to
  // right; init may be null (then out = x_0 + x_1 + ...) and may equal out; mine may equal out.
  virtual void allreduce_sum(const float* mine, float* out, int64_t n, const float* init) = 0;

  // Seconds spent inside allreduce_sum since construction (for the step's all-reduce share).
  double allreduce_seconds() const { return allreduce_seconds_; }

 protected:
  double allreduce_seconds_ = 0;
};

// One process: rank 0 of 1.
class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  void barrier() override {}
  void broadcast(void*, size_t, int) override {}
  std::vector<std::string> allgather(const std::string& mine) override { return {mine}; }
  void allreduce_sum(const float* mine, float* out, int64_t n, const float* init) override;
};

// True when this process was started by mpirun / a PMI launcher with more than one rank
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE... in the environment).
bool launched_by_mpirun();
// Whether this build has MPI (VERBCLIP_MPI) and NCCL (VERBCLIP_WITH_NCCL).
bool built_with_mpi();
bool built_with_nccl();

// The process's communicator, made on first use: MPI when launched by mpirun (MPI_Init then),
// else single. Under mpirun without MPI support in the build, an error that says so.
Communicator& world();
// An NCCL communicator over world()'s ranks (one GPU per rank: device = local rank modulo the
// visible GPUs), bootstrapped through MPI; the error says when NCCL or a GPU is missing.
std::unique_ptr<Communicator> make_nccl(Communicator& mpi_world);

// MPI_Finalize when MPI was started (normal exit, and after an error every rank saw).
void finalize();
// After an error only this rank saw: MPI_Abort, so mpirun ends the others instead of leaving
// them waiting. Does nothing without MPI.
void abort_world(int code);

// VERBCLIP_DIST_TIMEOUT (seconds), default 600.
double timeout_seconds();

// An error every rank detected together (e.g. configurations that differ): ranks exit cleanly,
// each with the message, instead of aborting.
bool is_collective_error(const std::exception& e);
[[noreturn]] void fail_collectively(const std::string& message);

}  // namespace vc::dist
