#include "apps/common/pictures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "apps/common/run_log.h"
#include "data/image.h"
#include "engine/core/error.h"
#include "nn/safetensors.h"

namespace verbclip {

namespace {

void write_bytes(const std::string& path, const void* data, size_t size) {
  vc::nn::write_file_atomically(path, [&](std::FILE* f) {
    VC_CHECK(std::fwrite(data, 1, size, f) == size, "cannot write '", path, "'");
  });
}

// A dark-blue -> yellow colour ramp for v in [0, 1].
void heat(double v, uint8_t* rgb) {
  v = std::clamp(v, 0.0, 1.0);
  rgb[0] = uint8_t(std::lround(255 * std::min(1.0, 1.6 * v)));
  rgb[1] = uint8_t(std::lround(255 * std::pow(v, 1.5)));
  rgb[2] = uint8_t(std::lround(255 * (0.45 * (1 - v))));
}

// A picture of `rows` rows of the clip's T frames (each pixel `scale`x, 2 px gaps, dark
// background), with the clip's values normalised to [0, 1] over all its pixels.
struct FrameRows {
  FrameRows(const vc::Tensor& frames, int64_t rows, int scale_)
      : T(frames.size(0)), S(frames.size(2)), scale(scale_), cell(int(S) * scale_),
        px(frames.contiguous().to_vector<float>()) {
    img.width = int(T) * (cell + gap) - gap;
    img.height = int(rows) * (cell + gap) - gap;
    img.pixels.assign(size_t(img.width * img.height * 3), 40);
    const auto [l, h] = std::minmax_element(px.begin(), px.end());
    lo = *l;
    range = std::max(1e-12, double(*h - *l));
  }
  // Channel c of source pixel (sy, sx) of frame t, in [0, 1].
  double value(int64_t t, int c, int64_t sy, int64_t sx) const {
    return (px[size_t(((t * 3 + c) * S + sy) * S + sx)] - lo) / range;
  }
  // The output pixel (y, x) of frame t's cell in `row`.
  uint8_t* at(int64_t row, int64_t t, int y, int x) {
    return img.at(int(row) * (cell + gap) + y, int(t) * (cell + gap) + x);
  }
  void write(const std::string& path) const {
    const std::vector<uint8_t> bytes = vc::data::encode_png(img);
    write_bytes(path, bytes.data(), bytes.size());
  }

  const int64_t T, S;
  const int scale, cell, gap = 2;
  const std::vector<float> px;
  float lo = 0;
  double range = 1;
  vc::data::Image img;
};

}  // namespace

void write_confusion_svg(const std::string& path, const std::string& title,
                         const std::vector<std::vector<int64_t>>& confusion,
                         const std::vector<std::string>& names) {
  const int K = int(confusion.size());
  VC_CHECK(int(names.size()) == K, "confusion matrix: ", K, " classes but ", names.size(), " names");
  const int cell = 26, left = 200, top = 60, bottom = 200;
  const int w = left + K * cell + 20, h = top + K * cell + bottom;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << w / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << xml_escape(title) << "</text>\n";
  s << "<text x=\"" << left + K * cell / 2 << "\" y=\"" << h - 8
    << "\" text-anchor=\"middle\">predicted class</text>\n";
  s << "<text x=\"12\" y=\"" << top + K * cell / 2 << "\" transform=\"rotate(-90 12 " << top + K * cell / 2
    << ")\" text-anchor=\"middle\">true class (rows normalised)</text>\n";
  for (int i = 0; i < K; ++i) {
    int64_t row = 0;
    for (int j = 0; j < K; ++j) row += confusion[size_t(i)][size_t(j)];
    s << "<text x=\"" << left - 4 << "\" y=\"" << top + i * cell + cell / 2 + 4 << "\" text-anchor=\"end\">"
      << xml_escape(names[size_t(i)]) << "</text>\n";
    const int cx = left + i * cell + cell / 2, cy = top + K * cell + 6;
    s << "<text x=\"" << cx << "\" y=\"" << cy << "\" transform=\"rotate(60 " << cx << " " << cy << ")\">"
      << xml_escape(names[size_t(i)]) << "</text>\n";
    for (int j = 0; j < K; ++j) {
      const int64_t n = confusion[size_t(i)][size_t(j)];
      const double f = row ? double(n) / double(row) : 0.0;
      const int shade = int(std::lround(255 * (1 - f)));
      s << "<rect x=\"" << left + j * cell << "\" y=\"" << top + i * cell << "\" width=\"" << cell << "\" height=\""
        << cell << "\" fill=\"rgb(" << shade << "," << shade << ",255)\" stroke=\"#ccc\"/>";
      if (n) {
        s << "<text x=\"" << left + j * cell + cell / 2 << "\" y=\"" << top + i * cell + cell / 2 + 4
          << "\" text-anchor=\"middle\" fill=\"" << (f > 0.5 ? "white" : "black") << "\">" << n << "</text>";
      }
      s << "\n";
    }
  }
  s << "</svg>\n";
  const std::string text = s.str();
  write_bytes(path, text.data(), text.size());
}

void write_attention_png(const std::string& path, const vc::Tensor& frames, const vc::Tensor& attention, int scale) {
  VC_CHECK(frames.dim() == 4 && frames.size(1) == 3 && attention.dim() == 3 && attention.size(0) == frames.size(0),
           "attention picture: frames ", frames.shape(), " and attention ", attention.shape(), " do not fit");
  const int64_t T = frames.size(0), S = frames.size(2), g = attention.size(1);
  const std::vector<float> px = frames.contiguous().to_vector<float>();
  const std::vector<float> at = attention.contiguous().to_vector<float>();
  const int cell = int(S) * scale, gap = 2;
  vc::data::Image img;
  img.width = int(T) * (cell + gap) - gap;
  img.height = 2 * cell + gap;
  img.pixels.assign(size_t(img.width * img.height * 3), 40);
  auto [lo, hi] = std::minmax_element(px.begin(), px.end());
  const double range = std::max(1e-12, double(*hi - *lo));
  for (int64_t t = 0; t < T; ++t) {
    const float* a = at.data() + t * g * g;
    const double amax = std::max(1e-12, double(*std::max_element(a, a + g * g)));
    const int x0 = int(t) * (cell + gap);
    for (int y = 0; y < cell; ++y)
      for (int x = 0; x < cell; ++x) {
        const int64_t sy = y / scale, sx = x / scale;
        uint8_t* top = img.at(y, x0 + x);
        double lum = 0;
        for (int c = 0; c < 3; ++c) {
          double v = (px[size_t(((t * 3 + c) * S + sy) * S + sx)] - *lo) / range;
          top[c] = uint8_t(std::lround(255 * v));
          lum += v / 3;
        }
        // The heat map over a dimmed copy of the frame.
        uint8_t h[3];
        heat(a[(sy * g / S) * g + (sx * g / S)] / amax, h);
        uint8_t* bot = img.at(cell + gap + y, x0 + x);
        for (int c = 0; c < 3; ++c) bot[c] = uint8_t(std::lround(0.75 * h[c] + 0.25 * 255 * lum));
      }
  }
  const std::vector<uint8_t> bytes = vc::data::encode_png(img);
  write_bytes(path, bytes.data(), bytes.size());
}

void write_membership_png(const std::string& path, const vc::Tensor& frames, int64_t grid,
                          const std::vector<std::vector<int64_t>>& seeds,
                          const std::vector<std::vector<int64_t>>& groups, int scale) {
  VC_CHECK(frames.dim() == 4 && frames.size(1) == 3 && seeds.size() == groups.size() && grid >= 1,
           "membership picture: frames ", frames.shape(), ", ", seeds.size(), " seed lists, ", groups.size(),
           " group lists");
  const int64_t rows = 1 + int64_t(seeds.size());
  FrameRows pic(frames, rows, scale);
  const int64_t T = pic.T, S = pic.S;
  const int cell = pic.cell;
  // A fixed palette of well-separated hues, one per context token (cycled past 24).
  auto colour = [](int64_t g, uint8_t* rgb) {
    const double h = std::fmod(double(g) * 0.618033988749895, 1.0) * 6.0, v = (g / 24) % 2 ? 0.7 : 1.0;
    const int i = int(h);
    const double f = h - i, q = 1 - f;
    double r = 0, gg = 0, b = 0;
    switch (i % 6) {
      case 0: r = 1, gg = f; break;
      case 1: r = q, gg = 1; break;
      case 2: gg = 1, b = f; break;
      case 3: gg = q, b = 1; break;
      case 4: r = f, b = 1; break;
      default: r = 1, b = q; break;
    }
    rgb[0] = uint8_t(std::lround(255 * v * r)), rgb[1] = uint8_t(std::lround(255 * v * gg)),
    rgb[2] = uint8_t(std::lround(255 * v * b));
  };
  for (int64_t row = 0; row < rows; ++row) {
    std::vector<int64_t> owner(size_t(T * grid * grid), -1);  // group of each (frame, patch), -1: no seed
    if (row > 0) {
      const auto& sd = seeds[size_t(row - 1)];
      const auto& gr = groups[size_t(row - 1)];
      VC_CHECK(sd.size() == gr.size() && int64_t(sd.size()) % T == 0, "membership picture: ", sd.size(),
               " seeds and ", gr.size(), " groups for ", T, " frames");
      const int64_t k = int64_t(sd.size()) / T;
      for (size_t i = 0; i < sd.size(); ++i) owner[size_t((int64_t(i) / k) * grid * grid + sd[i])] = gr[i];
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int y = 0; y < cell; ++y)
        for (int x = 0; x < cell; ++x) {
          const int64_t sy = y / scale, sx = x / scale;
          double v[3];
          for (int c = 0; c < 3; ++c) v[c] = pic.value(t, c, sy, sx);
          uint8_t* out = pic.at(row, t, y, x);
          const int64_t g = row == 0 ? -1 : owner[size_t(t * grid * grid + (sy * grid / S) * grid + sx * grid / S)];
          if (row == 0) {
            for (int c = 0; c < 3; ++c) out[c] = uint8_t(std::lround(255 * v[c]));
          } else if (g < 0) {
            for (int c = 0; c < 3; ++c) out[c] = uint8_t(std::lround(0.3 * 255 * (v[0] + v[1] + v[2]) / 3));
          } else {
            uint8_t rgb[3];
            colour(g, rgb);
            for (int c = 0; c < 3; ++c) out[c] = uint8_t(std::lround(0.8 * rgb[c] + 0.2 * 255 * v[c]));
          }
        }
    }
  }
  pic.write(path);
}

void write_merge_png(const std::string& path, const vc::Tensor& frames, const vc::Tensor& slots, int scale) {
  VC_CHECK(frames.dim() == 4 && frames.size(1) == 3 && slots.dim() == 2 && slots.size(0) == frames.size(0),
           "merge picture: frames ", frames.shape(), " and slots ", slots.shape(), " do not fit");
  const int64_t T = frames.size(0), S = frames.size(2);
  const int64_t g = std::llround(std::sqrt(double(slots.size(1))));
  VC_CHECK(g * g == slots.size(1), "merge picture: ", slots.size(1), " patches are not a square grid");
  const std::vector<float> px = frames.contiguous().to_vector<float>();
  const std::vector<int64_t> sl = slots.contiguous().to_vector<int64_t>();
  const int cell = int(S) * scale, gap = 2;
  vc::data::Image img;
  img.width = int(T) * (cell + gap) - gap;
  img.height = 2 * cell + gap;
  img.pixels.assign(size_t(img.width * img.height * 3), 40);
  auto [lo, hi] = std::minmax_element(px.begin(), px.end());
  const double range = std::max(1e-12, double(*hi - *lo));
  auto colour = [](int64_t k, int c) {  // a fixed, well-spread palette (golden-ratio hues)
    const double h = std::fmod(double(k) * 0.618033988749895, 1.0) * 6, f = h - std::floor(h);
    const double rgb[6][3] = {{1, f, 0}, {1 - f, 1, 0}, {0, 1, f}, {0, 1 - f, 1}, {f, 0, 1}, {1, 0, 1 - f}};
    return 0.25 + 0.75 * rgb[int(h) % 6][c];
  };
  for (int64_t t = 0; t < T; ++t) {
    const int x0 = int(t) * (cell + gap);
    for (int y = 0; y < cell; ++y)
      for (int x = 0; x < cell; ++x) {
        const int64_t sy = y / scale, sx = x / scale, gy = sy * g / S, gx = sx * g / S;
        uint8_t* top = img.at(y, x0 + x);
        double lum = 0;
        for (int c = 0; c < 3; ++c) {
          double v = (px[size_t(((t * 3 + c) * S + sy) * S + sx)] - *lo) / range;
          top[c] = uint8_t(std::lround(255 * v));
          lum += v / 3;
        }
        const int64_t k = sl[size_t(t * g * g + gy * g + gx)];
        // A border where the right or lower neighbour patch went to another token.
        const int64_t ry = (y + 1) * g / cell, rx = (x + 1) * g / cell;
        const bool edge = (rx != gx && rx < g && sl[size_t(t * g * g + gy * g + rx)] != k) ||
                          (ry != gy && ry < g && sl[size_t(t * g * g + ry * g + gx)] != k);
        uint8_t* bot = img.at(cell + gap + y, x0 + x);
        for (int c = 0; c < 3; ++c)
          bot[c] = edge ? 0 : uint8_t(std::lround(255 * (0.7 * colour(k, c) + 0.3 * lum)));
      }
  }
  const std::vector<uint8_t> bytes = vc::data::encode_png(img);
  write_bytes(path, bytes.data(), bytes.size());
}

}  // namespace verbclip

namespace verbclip {

void write_windows_png(const std::string& path, const vc::Tensor& frames, int64_t grid, int64_t window,
                       const std::vector<std::vector<int64_t>>& visible, int scale) {
  VC_CHECK(frames.dim() == 4 && frames.size(1) == 3 && grid >= 1 && window >= 1 && grid % window == 0,
           "windows picture: frames ", frames.shape(), ", grid ", grid, ", window ", window);
  const int64_t rows = 1 + int64_t(visible.size());
  FrameRows pic(frames, rows, scale);
  const int64_t T = pic.T, S = pic.S;
  const int cell = pic.cell;
  for (int64_t row = 0; row < rows; ++row) {
    std::vector<char> shown(size_t(T * grid * grid), row == 0 ? 1 : 0);
    if (row > 0) {
      const auto& v = visible[size_t(row - 1)];
      VC_CHECK(!v.empty() && int64_t(v.size()) % T == 0, "windows picture: ", v.size(), " visible ids for ", T, " frames");
      const int64_t per = int64_t(v.size()) / T;
      for (size_t i = 0; i < v.size(); ++i) {
        VC_CHECK(v[i] >= 0 && v[i] < grid * grid, "windows picture: patch id ", v[i], " outside the ", grid, "x", grid, " grid");
        shown[size_t((int64_t(i) / per) * grid * grid + v[i])] = 1;
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int y = 0; y < cell; ++y)
        for (int x = 0; x < cell; ++x) {
          const int64_t sy = y / scale, sx = x / scale, gy = sy * grid / S, gx = sx * grid / S;
          uint8_t* out = pic.at(row, t, y, x);
          // Window borders (every `window` patches) in orange on the mask rows.
          const int64_t wpx = cell * window / grid;
          if (row > 0 && (x % wpx == 0 || y % wpx == 0)) {
            out[0] = 255, out[1] = 150, out[2] = 0;
            continue;
          }
          const bool vis = shown[size_t(t * grid * grid + gy * grid + gx)] != 0;
          for (int c = 0; c < 3; ++c) {
            const double v = pic.value(t, c, sy, sx);
            out[c] = uint8_t(std::lround(255 * (vis ? v : 0.15 * v)));
          }
          if (!vis) out[2] = uint8_t(std::min(255, out[2] + 50));  // masked: dark blue tint
        }
    }
  }
  pic.write(path);
}

}  // namespace verbclip
