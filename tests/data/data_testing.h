// Helpers for the data tests: scratch folders, files, fake Fashion-MNIST, error messages.
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/fashion_motion.h"
#include "data/image.h"

namespace vc::data::testing {

namespace fs = std::filesystem;

// A fresh empty folder, removed when the object goes away.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("verbclip_test_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return (path / rel).string(); }
};

inline void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The message of the exception f throws ("" when it does not throw).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A fake Fashion-MNIST: per noun k, a solid `shape` drawn by `pixel(k, y, x)`.
inline fm::Mnist fake_mnist(int per_noun, const std::function<uint8_t(int, int, int)>& pixel) {
  fm::Mnist m;
  m.count = 10 * per_noun;
  m.pixels.resize(size_t(m.count * 28 * 28));
  for (int64_t i = 0; i < m.count; ++i) {
    int k = int(i % 10);
    m.labels.push_back(uint8_t(k));
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) m.pixels[size_t(i * 784 + y * 28 + x)] = pixel(k, y, x);
  }
  return m;
}
// A centred filled 12×12 square.
inline fm::Mnist square_mnist() {
  return fake_mnist(3, [](int, int y, int x) { return uint8_t(y >= 8 && y < 20 && x >= 8 && x < 20 ? 255 : 0); });
}

// Writes the four IDX files (uncompressed, which the reader also accepts) into `dir`.
inline void write_fake_idx(const std::string& dir, int train_count = 30, int test_count = 20) {
  fs::create_directories(dir);
  auto be = [](std::string& s, uint32_t v) {
    for (int sh = 24; sh >= 0; sh -= 8) s += char((v >> sh) & 0xFF);
  };
  for (auto [prefix, n] : {std::pair<std::string, int>{"train", train_count}, {"t10k", test_count}}) {
    std::string img, lab;
    be(img, 0x803), be(img, uint32_t(n)), be(img, 28), be(img, 28);
    be(lab, 0x801), be(lab, uint32_t(n));
    for (int i = 0; i < n; ++i) {
      lab += char(i % 10);
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x)
          img += char((y >= 6 && y < 22 && x >= 10 + (i % 3) && x < 18) ? 200 + i % 50 : 0);
    }
    write(dir + "/" + prefix + "-images-idx3-ubyte", img);
    write(dir + "/" + prefix + "-labels-idx1-ubyte", lab);
  }
}

// Every regular file under root, relative path → bytes.
inline std::map<std::string, std::string> tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = slurp(e.path().string());
  return out;
}

}  // namespace vc::data::testing
