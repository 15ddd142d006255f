#include "data/loader.h"

#include <algorithm>
#include <iostream>

#include "data/util.h"

namespace vc::data {

Loader::Loader(const VideoDataset& dataset, LoaderOptions opt) : ds_(dataset), opt_(opt) {
  VC_CHECK(opt_.batch_size > 0, "loader: batch size must be positive, got ", opt_.batch_size);
  VC_CHECK(opt_.world_size > 0 && opt_.rank >= 0 && opt_.rank < opt_.world_size,
           "loader: rank ", opt_.rank, " of world size ", opt_.world_size);
  VC_CHECK(opt_.workers >= 0, "loader: negative worker count");
  if (opt_.prefetch <= 0) opt_.prefetch = 2 * std::max(opt_.workers, 1);
}

Loader::~Loader() { stop(); }

std::vector<int64_t> Loader::epoch_order(uint64_t epoch) const {
  const int64_t N = ds_.size();
  std::vector<int64_t> order(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) order[size_t(i)] = i;
  if (opt_.train && opt_.shuffle) {
    // Rank 0's stream for every rank: all ranks must agree on the permutation.
    SampleRng rng(opt_.seed, epoch, 0, RngPurpose::Shuffle, 0);
    for (int64_t i = N - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(rng.randint(i + 1))]);
  }
  const int64_t W = opt_.world_size;
  if (W == 1) return order;
  std::vector<int64_t> mine;
  if (opt_.train) {
    // Whole batches of the one-process order: rank r takes batches r, r+W, r+2W, ... and every
    // rank the same number of them (the last < W batches of the epoch are dropped, as one
    // process accumulating W micro-batches per step drops them).
    const int64_t b = opt_.batch_size;
    const int64_t batches = opt_.drop_last ? N / b : (N + b - 1) / b;
    for (int64_t g = opt_.rank; g < batches / W * W; g += W)
      for (int64_t i = g * b; i < std::min(N, (g + 1) * b); ++i) mine.push_back(order[size_t(i)]);
    return mine;
  }
  // Evaluation: positions r, r+W, ... (every video exactly once, no padding).
  for (size_t i = size_t(opt_.rank); i < order.size(); i += size_t(W)) mine.push_back(order[i]);
  return mine;
}

int64_t Loader::num_batches() const {
  int64_t n = int64_t(epoch_order(0).size());
  if (opt_.train && opt_.drop_last) return n / opt_.batch_size;
  return (n + opt_.batch_size - 1) / opt_.batch_size;
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Loader::start_epoch(uint64_t epoch) {
  stop();
  std::lock_guard<std::mutex> lock(mu_);
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  int64_t n = int64_t(order_.size());
  num_batches_ = (opt_.train && opt_.drop_last) ? n / opt_.batch_size
                                                : (n + opt_.batch_size - 1) / opt_.batch_size;
  next_claim_ = next_out_ = 0;
  ready_.clear();
  errors_.clear();
  stopping_ = false;
  for (int w = 0; w < opt_.workers; ++w) threads_.emplace_back([this] { worker_loop(); });
}

void Loader::worker_loop() {
  while (true) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] {
        return stopping_ ||
               (next_claim_ < num_batches_ && next_claim_ < next_out_ + opt_.prefetch);
      });
      if (stopping_) return;
      b = next_claim_++;
    }
    Batch batch;
    std::exception_ptr err;
    try {
      batch = build(b);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (err) errors_[b] = err;
      else ready_[b] = std::move(batch);
    }
    cv_ready_.notify_all();
  }
}

bool Loader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mu_);
  if (next_out_ >= num_batches_) return false;
  int64_t b = next_out_;
  if (opt_.workers == 0) {
    lock.unlock();
    batch = build(b);
    lock.lock();
  } else {
    cv_ready_.wait(lock, [&] { return ready_.count(b) || errors_.count(b); });
    if (errors_.count(b)) {
      auto err = errors_[b];
      lock.unlock();
      stop();
      std::rethrow_exception(err);
    }
    batch = std::move(ready_[b]);
    ready_.erase(b);
  }
  ++next_out_;
  bool last = next_out_ == num_batches_;
  lock.unlock();
  cv_work_.notify_all();
  if (last && skipped() > 0 && !ds_.options().quiet)
    std::cerr << "warning: " << skipped() << " unreadable sample(s) were replaced this run\n";
  return true;
}

int64_t Loader::skipped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int64_t(skips_.size());
}

std::vector<std::string> Loader::skip_messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return skips_;
}

void Loader::fill_sample(int64_t index, float* out, int64_t& used) {
  const bool train = opt_.train;
  used = index;
  // Under Skip, an unreadable sample is replaced by the next readable one in dataset
  // order: a fixed choice, so the batch content still depends only on (seed, epoch).
  for (int64_t attempt = 0; attempt < ds_.size(); ++attempt) {
    used = (index + attempt) % ds_.size();
    try {
      ds_.get(used, train, opt_.seed, epoch_, /*rank=*/0, out);  // augmentation: not the rank's
      return;
    } catch (const Error& e) {
      if (ds_.options().bad_input == BadInput::Fail) throw;
      std::lock_guard<std::mutex> lock(mu_);
      skips_.push_back(e.what());
      if (!ds_.options().quiet) std::cerr << "warning: " << e.what() << " (replaced)\n";
    }
  }
  fail("loader: no readable sample in the dataset");
}

int64_t Loader::global_batch(int64_t b) const {
  return opt_.train && opt_.world_size > 1 ? b * opt_.world_size + opt_.rank : b;
}

Batch Loader::build(int64_t b) {
  const int64_t begin = b * opt_.batch_size;
  const int64_t end = std::min<int64_t>(begin + opt_.batch_size, int64_t(order_.size()));
  const int64_t B = end - begin, V = ds_.num_views(opt_.train), T = ds_.frames_per_clip(),
                S = ds_.input_size();
  Batch batch;
  batch.index = b;
  batch.views = V;
  batch.video = Tensor::empty({B * V, T, 3, S, S});
  float* v = batch.video.data<float>();
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < B; ++i) {
    int64_t used;
    fill_sample(order_[size_t(begin + i)], v + i * V * T * 3 * S * S, used);
    batch.indices.push_back(used);
    labels.push_back(ds_.record(used).label());
  }
  batch.labels = Tensor::from_vector(labels, {B});
  if (opt_.train && (opt_.soft_targets || opt_.mix.enabled())) {
    VC_CHECK(ds_.options().num_classes > 0, "loader: soft targets need the number of classes");
    SampleRng rng(opt_.seed, epoch_, 0, RngPurpose::Mixup, uint64_t(global_batch(b)));
    batch.targets = mix_batch(batch.video, labels, ds_.options().num_classes, opt_.mix, rng);
  }
  return batch;
}

}  // namespace vc::data
