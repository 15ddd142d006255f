// The Fashion-Motion generator: class families behave as specified, and the files are a
// pure function of the seed. Uses a fake Fashion-MNIST so it runs without the package.
#include <doctest/doctest.h>

#include <cmath>

#include "data/annotations.h"
#include "data/fashion_motion.h"
#include "data/sampling.h"
#include "data_testing.h"

using namespace vc::data;
using namespace vc::data::testing;

namespace {

struct FrameStats {
  double cx = 0, cy = 0, mass = 0;  // object centroid and area (pixels clearly above background)
  double rgb[3] = {0, 0, 0};        // mean colour of those pixels
  double w = 0, h = 0;              // extent of the object
};

FrameStats stats(const Image& img) {
  FrameStats s;
  int64_t minx = 1 << 30, maxx = -1, miny = 1 << 30, maxy = -1;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = img.at(y, x);
      if (std::max({p[0], p[1], p[2]}) < 90) continue;  // background is below ~45
      s.mass += 1, s.cx += x, s.cy += y;
      for (int c = 0; c < 3; ++c) s.rgb[c] += p[c];
      minx = std::min<int64_t>(minx, x), maxx = std::max<int64_t>(maxx, x);
      miny = std::min<int64_t>(miny, y), maxy = std::max<int64_t>(maxy, y);
    }
  if (s.mass > 0) {
    s.cx /= s.mass, s.cy /= s.mass;
    for (double& c : s.rgb) c /= s.mass;
    s.w = double(maxx - minx + 1), s.h = double(maxy - miny + 1);
  }
  return s;
}

struct Rendered {
  fm::VideoSpec spec;
  std::vector<FrameStats> frames;
  std::vector<Image> images;
};

Rendered render(const fm::Mnist& m, int cls, int64_t n, uint64_t seed = 7) {
  std::array<std::vector<int64_t>, 10> by_noun;
  for (int64_t i = 0; i < m.count; ++i) by_noun[m.labels[size_t(i)]].push_back(i);
  fm::RenderOptions ro{seed, 16, 40};
  Rendered r;
  r.spec = fm::plan_video(ro, fm::Split::Train, cls, n, by_noun);
  r.images = fm::render_video(ro, fm::Split::Train, (int64_t(cls) << 20) | n, r.spec, m);
  for (auto& img : r.images) r.frames.push_back(stats(img));
  return r;
}

fm::Mnist t_mnist() {
  return fake_mnist(2, [](int, int y, int x) {
    bool stem = x >= 12 && x < 16 && y >= 2 && y < 26, top = y >= 2 && y < 8 && x >= 4 && x < 24;
    return uint8_t(stem || top ? 255 : 0);
  });
}

double colour_distance(const FrameStats& a, const FrameStats& b) {
  double d = 0;
  for (int c = 0; c < 3; ++c) d += std::abs(a.rgb[c] - b.rgb[c]);
  return d;
}

}  // namespace

TEST_CASE("class table matches the spec") {
  REQUIRE(fm::classes().size() == 18);
  CHECK(std::string(fm::classes()[0].name) == "moving left");
  CHECK(std::string(fm::classes()[10].name) == "flickering");
  CHECK(fm::classes()[12].family == fm::Family::A);
  CHECK(fm::classes()[11].family == fm::Family::B);
  CHECK(fm::classes()[17].family == fm::Family::D);
}

TEST_CASE("moving classes: the centroid goes the right way") {
  fm::Mnist m = square_mnist();
  struct Case {
    int cls, sx, sy;
  };
  for (Case c : {Case{0, -1, 0}, Case{1, 1, 0}, Case{2, 0, -1}, Case{3, 0, 1}, Case{14, -1, -1},
                 Case{15, 1, -1}, Case{16, -1, 1}, Case{17, 1, 1}}) {
    for (int64_t n = 0; n < 3; ++n) {
      Rendered r = render(m, c.cls, n);
      const FrameStats &a = r.frames.front(), &b = r.frames.back();
      CAPTURE(c.cls);
      REQUIRE(a.mass > 20);
      double dx = b.cx - a.cx, dy = b.cy - a.cy;
      if (c.sx != 0) CHECK(dx * c.sx > 5);
      else CHECK(std::abs(dx) < 1.5);
      if (c.sy != 0) CHECK(dy * c.sy > 5);
      else CHECK(std::abs(dy) < 1.5);
      // Monotone frame by frame (up to a pixel of rasterisation).
      for (size_t t = 1; t < r.frames.size(); ++t) {
        if (c.sx != 0) CHECK((r.frames[t].cx - r.frames[t - 1].cx) * c.sx > -0.6);
        if (c.sy != 0) CHECK((r.frames[t].cy - r.frames[t - 1].cy) * c.sy > -0.6);
      }
      // Mostly in frame: the centre never leaves [6, 34].
      for (auto& st : r.spec.frames) CHECK((st.cx >= 5.99 && st.cx <= 34.01 && st.cy >= 5.99 && st.cy <= 34.01));
    }
  }
}

TEST_CASE("growing / shrinking change the area; fading changes the brightness") {
  fm::Mnist m = square_mnist();
  Rendered g = render(m, 4, 0), s = render(m, 5, 0);
  CHECK(g.frames.back().mass > 3 * g.frames.front().mass);
  CHECK(s.frames.front().mass > 3 * s.frames.back().mass);
  // Fading in: the first frame shows nothing, the last the full object.
  Rendered fi = render(m, 8, 0), fo = render(m, 9, 0);
  CHECK(fi.frames.front().mass == 0);
  CHECK(fi.frames.back().mass > 20);
  CHECK(fo.frames.front().mass > 20);
  CHECK(fo.frames.back().mass == 0);
}

TEST_CASE("flickering alternates between two colours; standing still keeps one") {
  fm::Mnist m = square_mnist();
  for (int64_t n = 0; n < 4; ++n) {
    Rendered f = render(m, 10, n);
    CHECK(f.spec.frames[0].color != f.spec.frames[2].color);
    for (size_t t = 1; t < f.frames.size(); ++t) {
      if (t % 2 == 1) CHECK(colour_distance(f.frames[t], f.frames[t - 1]) < 30);  // pairs of frames
      else CHECK(colour_distance(f.frames[t], f.frames[t - 1]) > 60);            // then the other colour
    }
    // What a model sees: the test sampler's 8 segment centres of the 16 frames show both colours,
    // alternating (a per-frame flicker would put every centre on the same colour).
    std::vector<int64_t> centres = segment_offsets_test(16, 8, 1);
    for (size_t i = 1; i < centres.size(); ++i)
      CHECK(colour_distance(f.frames[size_t(centres[i])], f.frames[size_t(centres[i - 1])]) > 60);
    Rendered s = render(m, 11, n);
    for (size_t t = 1; t < s.frames.size(); ++t) {
      CHECK(colour_distance(s.frames[t], s.frames[0]) < 30);
      CHECK(std::abs(s.frames[t].cx - s.frames[0].cx) < 0.5);
    }
  }
}

TEST_CASE("postures: lying on its side turns a tall item wide; upside down flips it") {
  // A tall thin bar: lying on its side makes it wide.
  fm::Mnist bar = fake_mnist(2, [](int, int y, int x) { return uint8_t(x >= 12 && x < 16 && y >= 2 && y < 26 ? 255 : 0); });
  Rendered up = render(bar, 11, 0), side = render(bar, 12, 0);
  CHECK(up.frames[0].h > 1.5 * up.frames[0].w);
  CHECK(side.frames[0].w > 1.5 * side.frames[0].h);
  // A "T" with a heavy top: its mass sits above the item centre upright, below it upside down.
  fm::Mnist t = t_mnist();
  Rendered tu = render(t, 11, 0), down = render(t, 13, 0);
  CHECK(tu.frames[0].cy - tu.spec.frames[0].cy < -1);
  CHECK(down.frames[0].cy - down.spec.frames[0].cy > 1);
  // Static: all frames alike.
  CHECK(std::abs(side.frames[15].cx - side.frames[0].cx) < 0.5);
}

TEST_CASE("turning: the angle sweeps 90-180 degrees in the named direction") {
  fm::Mnist m = square_mnist();
  for (int64_t n = 0; n < 5; ++n) {
    Rendered cw = render(m, 6, n), ccw = render(m, 7, n);
    double dcw = cw.spec.frames.back().angle_deg - cw.spec.frames.front().angle_deg;
    double dccw = ccw.spec.frames.back().angle_deg - ccw.spec.frames.front().angle_deg;
    CHECK((dcw >= 90 && dcw <= 180));
    CHECK((dccw <= -90 && dccw >= -180));
  }
  // Screen check with the "T": a clockwise quarter turn moves the heavy top to the right.
  Rendered r = render(t_mnist(), 6, 0);
  size_t q = 0;  // the first frame turned at least 80 degrees
  while (r.spec.frames[q].angle_deg - r.spec.frames[0].angle_deg < 80) ++q;
  CHECK(r.frames[q].cx - r.spec.frames[q].cx > 1);
}

TEST_CASE("rendering is a pure function of (seed, split, class, index)") {
  fm::Mnist m = square_mnist();
  Rendered a = render(m, 3, 5), b = render(m, 3, 5), c = render(m, 3, 5, 8), d = render(m, 3, 6);
  for (size_t t = 0; t < a.images.size(); ++t) CHECK(a.images[t].pixels == b.images[t].pixels);
  CHECK(a.images[0].pixels != c.images[0].pixels);
  CHECK(a.images[0].pixels != d.images[0].pixels);
}

TEST_CASE("IDX reader checks magic and size") {
  TempDir d("idx");
  write_fake_idx(d.path.string());
  fm::Mnist m = fm::read_fashion_mnist(d.path.string(), true);
  CHECK(m.count == 30);
  CHECK(m.labels[13] == 3);
  write(d / "bad-idx", std::string("\x00\x00\x08\x03\x00\x00\x00\x05", 8));
  std::vector<int64_t> dims;
  CHECK(contains(error_of([&] { fm::read_idx(d / "bad-idx", 3, dims); }), "too short"));
  std::string msg = error_of([&] { fm::read_fashion_mnist(d / "nowhere", true); });
  CHECK(contains(msg, "apt-get install dataset-fashion-mnist"));
}

TEST_CASE("generate: a tiny dataset, byte-identical for a seed whatever the threads") {
  TempDir d("generate");
  write_fake_idx(d / "fmnist");
  fm::Options o;
  o.fashion_mnist_dir = d / "fmnist";
  o.train_per_class = 2;
  o.val_per_class = 1;
  o.test_per_class = 1;
  o.frames = 4;
  o.captions = 10;
  o.seed = 3;
  o.out_dir = d / "a";
  o.threads = 1;
  fm::Summary s = fm::generate(o);
  CHECK(s.videos == 18 * 4);
  o.out_dir = d / "b";
  o.threads = 3;
  fm::generate(o);
  auto ta = tree(d / "a"), tb = tree(d / "b");
  CHECK(ta.size() == tb.size());
  CHECK(ta == tb);
  CHECK(ta.count("rawframes/train_000000/img_00004.jpg") == 1);
  CHECK(ta.count("splits/fewshot_k2_seed3.txt") == 1);
  CHECK(ta.count("splits/fewshot_k4_seed1.txt") == 0);  // only 2 train videos per class
  CHECK(ta.count("splits/zeroshot_test_labels.csv") == 1);
  CHECK(contains(ta["README.md"], "--seed 3"));
  CHECK(contains(ta["text/vocab.txt"], "\nsneaker\n"));
  CHECK(!contains(ta["text/vocab.txt"], "000000"));  // file names are not words
  CHECK(contains(ta["captions/train.tsv"], "images/000000.jpg\ta "));

  // The lists load through the same code as any real dataset.
  LabelSet labels = read_labels(d / "a/labels.csv");
  CHECK(labels.size() == 18);
  CHECK(labels.names[17] == "moving down and right");
  ListOptions lo;
  lo.num_classes = 18;
  auto train = read_list(d / "a/train.txt", lo);
  CHECK(train.size() == 36);
  CHECK(train[2].path == "train_000002");
  CHECK(train[2].label() == 1);
  CHECK(read_list(d / "a/splits/zeroshot_test.txt").size() == 4);
  CHECK(read_labels(d / "a/splits/b2n_base_labels.csv").names[1] == "moving up");

  // Another seed changes the frames; nothing temporary is left; an existing folder is kept.
  o.seed = 4;
  o.out_dir = d / "c";
  fm::generate(o);
  CHECK(tree(d / "c")["rawframes/train_000000/img_00001.jpg"] != ta["rawframes/train_000000/img_00001.jpg"]);
  for (auto& e : fs::directory_iterator(d.path)) CHECK(!contains(e.path().filename().string(), ".tmp-"));
  CHECK(contains(error_of([&] { fm::generate(o); }), "already exists"));
  o.force = true;
  o.class_ids = {0, 10};
  fm::generate(o);
  CHECK(read_labels(d / "c/labels.csv").names == std::vector<std::string>{"moving left", "flickering"});
  CHECK(!fs::exists(d / "c/splits/zeroshot_train.txt"));
}
