// Dataset over rawframes and the threaded loader: paths, templates, start index, bad
// input, determinism across worker counts, rank sharding.
#include <doctest/doctest.h>

#include <set>

#include "data/loader.h"
#include "data/util.h"
#include "data_testing.h"

using namespace vc::data;
using namespace vc::data::testing;

namespace {

// `videos` rawframe folders "v<i>/", each with `frames` 8×8 PNGs: channel 0 = 10·i + frame
// position (0-based), channel 1 = x, channel 2 = y. Returns the list text.
std::string make_rawframes(const TempDir& d, int videos, int frames, const std::string& tmpl = "img_{:05d}.jpg",
                           int64_t start = 1) {
  std::string list;
  for (int v = 0; v < videos; ++v) {
    for (int f = 0; f < frames; ++f) {
      Image img;
      img.height = img.width = 8;
      img.pixels.resize(8 * 8 * 3);
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          uint8_t* p = img.at(y, x);
          p[0] = uint8_t(10 * v + f), p[1] = uint8_t(x), p[2] = uint8_t(y);
        }
      std::string name = format_frame_name(tmpl, start + f);
      name = name.substr(0, name.find_last_of('.')) + ".png";  // lossless: exact values
      fs::create_directories(d.path / ("v" + std::to_string(v)));
      write_image(d / ("v" + std::to_string(v) + "/" + name), img);
    }
    list += "v" + std::to_string(v) + " " + std::to_string(frames) + " " + std::to_string(v % 3) + "\n";
  }
  return list;
}

DatasetOptions small_options(const TempDir& d) {
  DatasetOptions o;
  o.root = d.path.string();
  o.frame_template = "img_{:05d}.png";
  o.sampler.num_segments = 4;
  o.transform = TransformOptions::fashion_motion();
  o.transform.input_size = 6;
  o.transform.norm = Normalization::none();
  o.num_classes = 3;
  o.quiet = true;
  return o;
}

}  // namespace

TEST_CASE("image read/write: PNG exact, uint8 and float tensors, corrupt file named") {
  TempDir d("image");
  Image img;
  img.height = 2, img.width = 3;
  img.pixels = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  write_image(d / "a.png", img);
  vc::Tensor u = read_image_u8(d / "a.png");
  CHECK(u.shape() == vc::Shape{2, 3, 3});
  CHECK(u.to_vector<uint8_t>() == img.pixels);
  vc::Tensor f = read_image_f32(d / "a.png");
  CHECK(f.to_vector<float>()[17] == 18.f);
  write_image(d / "b.jpg", img);
  CHECK(read_image(d / "b.jpg").width == 3);
  write(d / "bad.jpg", "not a jpeg at all");
  CHECK(contains(error_of([&] { read_image(d / "bad.jpg"); }), "bad.jpg"));
  CHECK(contains(error_of([&] { read_image(d / "none.jpg"); }), "none.jpg"));
}

TEST_CASE("dataset: test sampling reads the right frame files (start index, offset, template)") {
  TempDir d("ds_paths");
  write(d / "list.txt", make_rawframes(d, 2, 10, "frame%03d.jpg", 0));
  DatasetOptions o = small_options(d);
  o.frame_template = "frame%03d.png";
  o.start_index = 0;
  VideoDataset ds = VideoDataset::from_list(d / "list.txt", o);
  REQUIRE(ds.size() == 2);
  std::vector<float> out(4 * 3 * 36);
  ds.get(1, false, 0, 0, 0, out.data());
  // TSN test on N = 10, T = 4: a = 2.5 -> frames 1, 3, 6, 8; video 1 -> channel 0 = 10 + f.
  const std::vector<int64_t> expect = {1, 3, 6, 8};
  for (int t = 0; t < 4; ++t) CHECK(out[size_t(t * 3 * 36)] == float(10 + expect[size_t(t)]));
  // Centre crop of 8 -> 6 starts at 1: channel 1 (x) at column 0 is 1.
  CHECK(out[36] == 1.f);
  CHECK(ds.frame_path(1, 3) == d / "v1/frame003.png");
}

TEST_CASE("dataset: offset lists, frame counting, and video names finding frame folders") {
  TempDir d("ds_offset");
  make_rawframes(d, 1, 12);
  write(d / "off.txt", "v0 4 8 0\n");
  write(d / "video.txt", "v0.avi 2\n");
  DatasetOptions o = small_options(d);
  VideoDataset a = VideoDataset::from_list(d / "off.txt", o);
  CHECK(a.frame_path(0, 0) == d / "v0/img_00005.png");  // start 1 + offset 4
  VideoDataset b = VideoDataset::from_list(d / "video.txt", o);
  CHECK(b.record(0).total_frames == 12);  // counted on disk
  CHECK(count_frames(d / "v0", "img_{:05d}.png", 1) == 12);
  CHECK(count_frames(d / "v0", "img_{:05d}.png", 0) == 0);
}

TEST_CASE("dataset: missing folders and out-of-range labels fail or are skipped and counted") {
  TempDir d("ds_bad");
  make_rawframes(d, 2, 4);
  write(d / "list.txt", "v0 4 0\nmissing 4 1\nv1 4 2\n");
  DatasetOptions o = small_options(d);
  std::string msg = error_of([&] { VideoDataset::from_list(d / "list.txt", o); });
  CHECK(contains(msg, "list.txt:2"));
  CHECK(contains(msg, "missing"));
  write(d / "list2.txt", "v0 4 0\nmissing 4 1\nv1 4 7\nv1 4 2\n");
  CHECK(contains(error_of([&] { VideoDataset::from_list(d / "list2.txt", o); }), "list2.txt:3: label 7 out of range"));
  o.bad_input = BadInput::Skip;
  VideoDataset ds = VideoDataset::from_list(d / "list2.txt", o);
  CHECK(ds.size() == 2);
  REQUIRE(ds.problems().count() == 2);
  std::string all = ds.problems().warnings[0] + ds.problems().warnings[1];
  CHECK(contains(all, "list2.txt:2"));
  CHECK(contains(all, "list2.txt:3"));
}

TEST_CASE("loader: batches identical for 0, 1 and 3 workers; shape [B,T,3,H,W]") {
  TempDir d("loader_det");
  write(d / "list.txt", make_rawframes(d, 11, 9));
  DatasetOptions o = small_options(d);
  o.transform.flip_prob = 0.5;  // exercise random augmentation too
  o.transform.jitter_prob = 0.8;
  o.transform.gray_prob = 0.2;
  VideoDataset ds = VideoDataset::from_list(d / "list.txt", o);
  auto run = [&](int workers, uint64_t epoch) {
    LoaderOptions lo;
    lo.batch_size = 3;
    lo.workers = workers;
    lo.seed = 42;
    lo.soft_targets = true;
    lo.mix = MixOptions{};  // mixup/cutmix with smoothing 0.1
    Loader l(ds, lo);
    l.start_epoch(epoch);
    std::vector<std::vector<float>> out;
    std::vector<int64_t> idx;
    Batch b;
    while (l.next(b)) {
      CHECK(b.video.shape() == vc::Shape{3, 4, 3, 6, 6});
      CHECK(b.targets.shape() == vc::Shape{3, 3});
      out.push_back(b.video.to_vector<float>());
      out.push_back(b.targets.to_vector<float>());
      idx.insert(idx.end(), b.indices.begin(), b.indices.end());
    }
    CHECK(out.size() == 6);  // 11 / 3 = 3 batches (drop_last), video + targets each
    return std::make_pair(out, idx);
  };
  auto a = run(0, 0), b = run(1, 0), c = run(3, 0);
  CHECK(a.first == b.first);
  CHECK(a.first == c.first);
  CHECK(a.second == c.second);
  std::set<int64_t> uniq(a.second.begin(), a.second.end());
  CHECK(uniq.size() == 9);
  auto e1 = run(2, 1);
  CHECK(e1.second != a.second);  // another epoch, another order
}

TEST_CASE("loader: evaluation keeps order and the last partial batch; multi-view layout") {
  TempDir d("loader_eval");
  write(d / "list.txt", make_rawframes(d, 5, 8));
  DatasetOptions o = small_options(d);
  o.test_clips = 2;
  o.transform.test_crop = TestCrop::Three;
  VideoDataset ds = VideoDataset::from_list(d / "list.txt", o);
  LoaderOptions lo;
  lo.batch_size = 2;
  lo.train = false;
  lo.workers = 2;
  Loader l(ds, lo);
  l.start_epoch(0);
  std::vector<int64_t> seen;
  Batch b;
  while (l.next(b)) {
    CHECK(b.views == 6);
    CHECK(b.video.size(0) == b.size() * 6);
    seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    auto lab = b.labels.to_vector<int64_t>();
    for (size_t i = 0; i < lab.size(); ++i) CHECK(lab[i] == b.indices[i] % 3);
  }
  CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("loader: rank shards cover the epoch exactly once for 1, 2 and 3 ranks; the order does not depend on W") {
  TempDir d("loader_rank");
  write(d / "list.txt", make_rawframes(d, 13, 4));
  VideoDataset ds = VideoDataset::from_list(d / "list.txt", small_options(d));
  LoaderOptions one;
  one.seed = 9;
  one.batch_size = 2;
  const auto global = Loader(ds, one).epoch_order(3);  // the one-process order
  REQUIRE(global.size() == 13);
  CHECK(global != Loader(ds, one).epoch_order(4));     // keyed by the epoch
  for (int64_t W : {1, 2, 3}) {
    CAPTURE(W);
    // Evaluation: every sample exactly once over the ranks, at positions r, r+W, ...
    std::vector<int64_t> seen(13, 0);
    for (int64_t r = 0; r < W; ++r) {
      LoaderOptions lo = one;
      lo.train = false, lo.rank = r, lo.world_size = W;
      const auto order = Loader(ds, lo).epoch_order(3);
      for (size_t i = 0; i < order.size(); ++i) {
        CHECK(order[i] == int64_t(size_t(r) + i * size_t(W)));  // eval does not shuffle
        ++seen[size_t(order[i])];
      }
    }
    CHECK(seen == std::vector<int64_t>(13, 1));
    // Training: the one-process batches of 2 (6 full ones), batch g to rank g mod W, the last
    // 6 mod W dropped; ranks take equal counts and no sample twice.
    std::vector<int64_t> covered(global.size(), 0);
    for (int64_t r = 0; r < W; ++r) {
      LoaderOptions lo = one;
      lo.rank = r, lo.world_size = W;
      Loader l(ds, lo);
      const auto order = l.epoch_order(3);
      CHECK(int64_t(order.size()) == (W == 1 ? 13 : 6 / W * 2));  // 1 rank: batching drops the partial batch
      CHECK(l.num_batches() == 6 / W);
      for (int64_t b = 0; b < l.num_batches(); ++b) {
        const int64_t g = l.global_batch(b);
        CHECK(g == b * W + r);
        for (int64_t i = 0; i < 2; ++i) {
          CHECK(order[size_t(2 * b + i)] == global[size_t(2 * g + i)]);
          ++covered[size_t(2 * g + i)];
        }
      }
    }
    for (size_t i = 0; i < covered.size(); ++i) CHECK(covered[i] == (i < size_t(6 / W * W * 2) ? 1 : 0));
  }
  LoaderOptions bad;
  bad.rank = 2;
  bad.world_size = 2;
  CHECK(contains(error_of([&] { Loader l(ds, bad); }), "rank 2 of world size 2"));
}

TEST_CASE("loader: rank r's batches hold the one-process batches r, r+W with the same augmentation") {
  TempDir d("loader_rank_bits");
  write(d / "list.txt", make_rawframes(d, 8, 4));
  DatasetOptions o = small_options(d);
  VideoDataset ds = VideoDataset::from_list(d / "list.txt", o);
  LoaderOptions one;
  one.seed = 5;
  one.batch_size = 2;
  one.workers = 0;
  Loader l1(ds, one);
  l1.start_epoch(1);
  std::vector<Batch> all;
  for (Batch b; l1.next(b);) all.push_back(b);
  REQUIRE(all.size() == 4);
  for (int64_t r = 0; r < 2; ++r) {
    LoaderOptions lo = one;
    lo.rank = r, lo.world_size = 2;
    Loader l(ds, lo);
    l.start_epoch(1);
    int64_t k = 0;
    for (Batch b; l.next(b); ++k) {
      const Batch& ref = all[size_t(k * 2 + r)];
      CHECK(b.indices == ref.indices);
      CHECK(b.video.to_vector<float>() == ref.video.to_vector<float>());
    }
    CHECK(k == 2);
  }
}

TEST_CASE("loader: a corrupt frame fails naming the file, or is replaced and counted") {
  TempDir d("loader_corrupt");
  write(d / "list.txt", make_rawframes(d, 4, 4));
  write(d / "v2/img_00003.png", "garbage");
  DatasetOptions o = small_options(d);
  auto drain = [&](BadInput policy) {
    o.bad_input = policy;
    VideoDataset ds = VideoDataset::from_list(d / "list.txt", o);
    LoaderOptions lo;
    lo.batch_size = 2;
    lo.train = false;
    lo.workers = 2;
    Loader l(ds, lo);
    l.start_epoch(0);
    Batch b;
    std::vector<int64_t> idx;
    while (l.next(b)) idx.insert(idx.end(), b.indices.begin(), b.indices.end());
    CHECK(l.skipped() == 1);
    CHECK(contains(l.skip_messages()[0], "img_00003.png"));
    return idx;
  };
  std::string msg = error_of([&] { drain(BadInput::Fail); });
  CHECK(contains(msg, "v2/img_00003.png"));
  CHECK(contains(msg, "list.txt:3"));
  CHECK(drain(BadInput::Skip) == std::vector<int64_t>{0, 1, 3, 3});  // 2 replaced by the next
}
