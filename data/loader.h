// Batches from a VideoDataset. Worker threads decode and transform whole batches ahead of
// the consumer into a bounded queue; batch b always holds the same samples with the same
// augmentation, so the output depends only on (seed, epoch, rank) — not on the number of
// workers or their timing. A sample's augmentation and a batch's mixup are keyed by the
// dataset index and the one-process batch number, never by the rank: rank r of W trains on
// exactly the batches one process would see at positions r, r+W, ... (data-parallel training).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace vc::data {

struct Batch {
  int64_t index = 0;            // batch number within the epoch
  Tensor video;                 // [B·V, T, 3, S, S] float; sample i's views are rows i·V .. i·V+V-1
  Tensor labels;                // [B] int64
  Tensor targets;               // [B, C] float soft targets (mixup / label smoothing), or undefined
  std::vector<int64_t> indices; // dataset index of each sample (after any skip substitution)
  int64_t views = 1;
  int64_t size() const { return int64_t(indices.size()); }
};

struct LoaderOptions {
  int64_t batch_size = 8;
  int workers = 2;        // 0: build batches on the calling thread
  int prefetch = 0;       // batches ready or in flight at most; 0 = 2 × max(workers, 1)
  bool train = true;      // random sampler and augmentation, shuffling
  bool shuffle = true;    // (train only) permute by (seed, epoch)
  bool drop_last = true;  // (train only) evaluation always keeps the last partial batch
  uint64_t seed = 0;
  int64_t rank = 0, world_size = 1;
  // Training targets: label smoothing always when > 0; mixup / cutmix when mix.enabled().
  bool soft_targets = false;
  MixOptions mix{0, 0, 0.5, 1.0, 0.0};
};

class Loader {
 public:
  Loader(const VideoDataset& dataset, LoaderOptions opt);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The dataset indices this rank sees in `epoch`, in order. Shuffled by (seed, epoch)
  // identically on every rank (the global order does not depend on W). Training: the
  // one-process batches of batch_size are dealt out whole, batch g to rank g mod W, and the
  // epoch's last (batches mod W) batches are dropped so every rank takes as many steps; no
  // padding, no sample twice. Evaluation: rank r takes positions r, r+W, ... (every sample
  // exactly once over the ranks).
  std::vector<int64_t> epoch_order(uint64_t epoch) const;
  // The one-process batch number of this rank's batch b (training: b·W + rank).
  int64_t global_batch(int64_t b) const;
  int64_t num_batches() const;

  // Starts producing the batches of `epoch` (stops any epoch in progress).
  void start_epoch(uint64_t epoch);
  // The next batch in order; false at the end of the epoch. Rethrows a worker's error.
  bool next(Batch& batch);

  // Samples replaced under the Skip policy so far (each also printed as a warning).
  int64_t skipped() const;
  std::vector<std::string> skip_messages() const;

 private:
  Batch build(int64_t b);
  void fill_sample(int64_t position_index, float* out, int64_t& used_index);
  void stop();
  void worker_loop();

  const VideoDataset& ds_;
  LoaderOptions opt_;
  uint64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  std::vector<std::thread> threads_;
  int64_t next_claim_ = 0, next_out_ = 0;
  bool stopping_ = false;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  std::vector<std::string> skips_;
};

}  // namespace vc::data
