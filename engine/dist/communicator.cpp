// The single and MPI communicators (communicator.h has the reduction order and the timeouts).
#include "engine/dist/communicator.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "engine/core/error.h"

#if VERBCLIP_WITH_MPI
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only
#endif
#include <mpi.h>
#endif

namespace vc::dist {

namespace {

struct CollectiveError : Error {
  using Error::Error;
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

bool is_collective_error(const std::exception& e) { return dynamic_cast<const CollectiveError*>(&e) != nullptr; }
void fail_collectively(const std::string& message) { throw CollectiveError(message); }

double timeout_seconds() {
  const char* v = std::getenv("VERBCLIP_DIST_TIMEOUT");
  if (!v || !*v) return 600;
  char* end = nullptr;
  double s = std::strtod(v, &end);
  VC_CHECK(end && *end == 0 && s > 0, "VERBCLIP_DIST_TIMEOUT = '", v, "' must be a positive number of seconds");
  return s;
}

void SingleCommunicator::allreduce_sum(const float* mine, float* out, int64_t n, const float* init) {
  const double t0 = now_seconds();
  if (init)
    for (int64_t i = 0; i < n; ++i) out[i] = init[i] + mine[i];
  else if (out != mine)
    std::memcpy(out, mine, size_t(n) * sizeof(float));
  allreduce_seconds_ += now_seconds() - t0;
}

bool launched_by_mpirun() {
  for (const char* k : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    const char* v = std::getenv(k);
    if (v && std::atoi(v) > 1) return true;
  }
  return false;
}

bool built_with_mpi() {
#if VERBCLIP_WITH_MPI
  return true;
#else
  return false;
#endif
}
bool built_with_nccl() {
#if VERBCLIP_WITH_NCCL
  return true;
#else
  return false;
#endif
}

#if VERBCLIP_WITH_MPI

namespace {

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, buf, &len);
  return std::string(buf, size_t(len));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    int code = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    VC_CHECK(code == MPI_SUCCESS, "distributed: MPI_Init_thread failed: ", mpi_error_string(code));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    timeout_ = timeout_seconds();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void barrier() override {
    MPI_Request r;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &r), "barrier");
    wait(r, "barrier");
  }
  void broadcast(void* data, size_t bytes, int root) override {
    VC_CHECK(bytes <= size_t(INT32_MAX), "distributed: broadcast of ", bytes, " bytes is too large");
    MPI_Request r;
    check(MPI_Ibcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD, &r), "broadcast");
    wait(r, "broadcast");
  }
  std::vector<std::string> allgather(const std::string& mine) override {
    int n = int(mine.size());
    std::vector<int> counts(size_t(size_), 0), displs(size_t(size_), 0);
    MPI_Request r;
    check(MPI_Iallgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD, &r), "allgather (sizes)");
    wait(r, "allgather (sizes)");
    int total = 0;
    for (int i = 0; i < size_; ++i) displs[size_t(i)] = total, total += counts[size_t(i)];
    std::string all(size_t(total), '\0');
    check(MPI_Iallgatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                          MPI_COMM_WORLD, &r),
          "allgather");
    wait(r, "allgather");
    std::vector<std::string> out;
    for (int i = 0; i < size_; ++i) out.push_back(all.substr(size_t(displs[size_t(i)]), size_t(counts[size_t(i)])));
    return out;
  }

  void allreduce_sum(const float* mine, float* out, int64_t n, const float* init) override {
    const double t0 = now_seconds();
    VC_CHECK(n <= int64_t(INT32_MAX), "distributed: all-reduce of ", n, " floats is too large (split it into buckets)");
    const int W = size_;
    // Chunk c = [begin(c), begin(c + 1)), owned by rank c.
    auto begin = [&](int c) { return int(int64_t(n) * c / W); };
    std::vector<int> send_counts(static_cast<size_t>(W)), send_displs(static_cast<size_t>(W)),
        recv_counts(static_cast<size_t>(W)), recv_displs(static_cast<size_t>(W));
    const int own = begin(rank_ + 1) - begin(rank_);
    for (int c = 0; c < W; ++c) {
      send_counts[size_t(c)] = begin(c + 1) - begin(c), send_displs[size_t(c)] = begin(c);
      recv_counts[size_t(c)] = own, recv_displs[size_t(c)] = c * own;
    }
    recv_.resize(size_t(W) * size_t(own));
    MPI_Request r;
    check(MPI_Ialltoallv(mine, send_counts.data(), send_displs.data(), MPI_FLOAT, recv_.data(), recv_counts.data(),
                         recv_displs.data(), MPI_FLOAT, MPI_COMM_WORLD, &r),
          "all-reduce (all-to-all)");
    wait(r, "all-reduce (all-to-all)");
    // The fixed order: init, then rank 0, 1, ..., W-1.
    float* o = out + begin(rank_);
    const float* ini = init ? init + begin(rank_) : nullptr;
    for (int i = 0; i < own; ++i) {
      float s = ini ? ini[i] + recv_[size_t(i)] : recv_[size_t(i)];
      for (int c = 1; c < W; ++c) s += recv_[size_t(c) * size_t(own) + size_t(i)];
      o[i] = s;
    }
    check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, out, send_counts.data(), send_displs.data(), MPI_FLOAT,
                          MPI_COMM_WORLD, &r),
          "all-reduce (all-gather)");
    wait(r, "all-reduce (all-gather)");
    allreduce_seconds_ += now_seconds() - t0;
  }

 private:
  void check(int code, const char* what) const {
    VC_CHECK(code == MPI_SUCCESS, "distributed: rank ", rank_, ": MPI ", what, " failed: ", mpi_error_string(code));
  }
  // Polls the request until done or the timeout: a rank that died or hangs gives an error here
  // instead of a hang (mpirun usually ends every rank first when one dies).
  void wait(MPI_Request& r, const char* what) const {
    const double deadline = now_seconds() + timeout_;
    int done = 0, spins = 0;
    while (true) {
      check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      if (now_seconds() > deadline)
        fail("distributed: rank ", rank_, " of ", size_, " waited ", timeout_, " s in ", what,
             " for the other ranks (one died or stalls; the limit is VERBCLIP_DIST_TIMEOUT)");
      if (++spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  int rank_ = 0, size_ = 1;
  double timeout_ = 600;
  std::vector<float> recv_;
};

bool g_mpi_started = false;

}  // namespace

#endif  // VERBCLIP_WITH_MPI

namespace {
std::unique_ptr<Communicator> g_world;
}

Communicator& world() {
  if (g_world) return *g_world;
  if (launched_by_mpirun()) {
#if VERBCLIP_WITH_MPI
    g_world = std::make_unique<MpiCommunicator>();
    g_mpi_started = true;
#else
    fail("distributed: started by mpirun with several ranks, but this verbclip was built without MPI "
         "(configure with -DVERBCLIP_MPI=ON after installing libopenmpi-dev)");
#endif
  } else {
    g_world = std::make_unique<SingleCommunicator>();
  }
  return *g_world;
}

void finalize() {
#if VERBCLIP_WITH_MPI
  if (g_mpi_started) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
#endif
}

void abort_world(int code) {
#if VERBCLIP_WITH_MPI
  if (g_mpi_started) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  (void)code;
}

#if !VERBCLIP_WITH_NCCL
std::unique_ptr<Communicator> make_nccl(Communicator&) {
  fail("distributed: this verbclip was built without NCCL (it needs the CUDA backend, MPI and libnccl)");
}
#endif

}  // namespace vc::dist
