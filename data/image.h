// Frames on disk: decoding with stb_image (JPEG, PNG, ...) and encoding with stb_image_write.
// An Image is interleaved RGB, row-major H×W×3, the layout stb and the list-file world use.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace vc::data {

struct Image {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // H*W*3, RGB
  uint8_t* at(int y, int x) { return &pixels[(size_t(y) * width + x) * 3]; }
  const uint8_t* at(int y, int x) const { return &pixels[(size_t(y) * width + x) * 3]; }
};

// Limits on what is decoded: 2^26 pixels (8192 x 8192) and 1 GiB of file. A larger image is
// refused from its header alone, before its pixels are allocated (decompression bombs).
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;
constexpr int64_t kMaxImageFileBytes = int64_t(1) << 30;

// Decodes any stb-supported file to RGB (grey, grey+alpha and RGBA are converted). Throws
// vc::Error naming the file and stb's reason when it is missing, empty, corrupt, truncated
// or over the limits above.
Image read_image(const std::string& path);
// Same, from bytes in memory; `name` is used in messages.
Image decode_image(const uint8_t* bytes, size_t size, const std::string& name);

// Tensors of shape [H, W, 3]: uint8 as stored, or float32 with the same 0–255 values.
Tensor image_to_tensor_u8(const Image& img);
Tensor image_to_tensor_f32(const Image& img);
Tensor read_image_u8(const std::string& path);
Tensor read_image_f32(const std::string& path);

// Encoders return the file bytes (deterministic: same pixels, same bytes).
std::vector<uint8_t> encode_jpeg(const Image& img, int quality = 95);
std::vector<uint8_t> encode_png(const Image& img);
// Writes by extension (.jpg/.jpeg or .png); throws naming the file on failure.
void write_image(const std::string& path, const Image& img, int jpeg_quality = 95);

}  // namespace vc::data
