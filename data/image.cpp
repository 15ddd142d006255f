#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include "data/image.h"

// stb is third-party code compiled here (its implementation): its own warnings
// (-Wmissing-field-initializers in stb_image_write) are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include <cstring>
#include <fstream>

#include "data/util.h"

namespace vc::data {

Image decode_image(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size == 0) fail("cannot decode image ", name, ": the file is empty (0 bytes)");
  if (size > size_t(kMaxImageFileBytes))
    fail("cannot decode image ", name, ": ", size, " bytes is more than the ", kMaxImageFileBytes, "-byte limit");
  int w = 0, h = 0, channels = 0;
  // A PNG's IHDR says its size in the first 24 bytes (stb rejects a huge one with a generic
  // "not of any known type"): name the size.
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 24 && std::memcmp(bytes, kPng, 8) == 0 && std::memcmp(bytes + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t at) {
      return (uint32_t(bytes[at]) << 24) | (uint32_t(bytes[at + 1]) << 16) | (uint32_t(bytes[at + 2]) << 8) | bytes[at + 3];
    };
    const uint64_t pw = be32(16), ph = be32(20);
    if (pw * ph > uint64_t(kMaxImagePixels))
      fail("cannot decode image ", name, ": it declares ", pw, "x", ph, " pixels, more than the limit of ",
           kMaxImagePixels, " (refused before decoding)");
  }
  // The header first: a decompression bomb (a tiny file that declares a huge image) is refused
  // before anything is allocated for its pixels.
  if (!stbi_info_from_memory(bytes, int(size), &w, &h, &channels))
    fail("cannot decode image ", name, ": ", stbi_failure_reason());
  if (w <= 0 || h <= 0 || int64_t(w) * int64_t(h) > kMaxImagePixels)
    fail("cannot decode image ", name, ": it declares ", w, "x", h, " pixels, more than the limit of ",
         kMaxImagePixels, " (refused before decoding)");
  uint8_t* p = stbi_load_from_memory(bytes, int(size), &w, &h, &channels, 3);
  if (!p) fail("cannot decode image ", name, ": ", stbi_failure_reason());
  Image img;
  img.width = w, img.height = h;
  img.pixels.assign(p, p + size_t(w) * h * 3);
  stbi_image_free(p);
  return img;
}

Image read_image(const std::string& path) {
  std::string bytes = read_file_bytes(path, "frame");
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

Tensor image_to_tensor_u8(const Image& img) {
  return Tensor::from_vector(img.pixels, {img.height, img.width, 3});
}

Tensor image_to_tensor_f32(const Image& img) {
  std::vector<float> v(img.pixels.begin(), img.pixels.end());
  return Tensor::from_vector(v, {img.height, img.width, 3});
}

Tensor read_image_u8(const std::string& path) { return image_to_tensor_u8(read_image(path)); }
Tensor read_image_f32(const std::string& path) { return image_to_tensor_f32(read_image(path)); }

static void append_bytes(void* ctx, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

std::vector<uint8_t> encode_jpeg(const Image& img, int quality) {
  std::vector<uint8_t> out;
  if (!stbi_write_jpg_to_func(append_bytes, &out, img.width, img.height, 3, img.pixels.data(),
                              quality))
    fail("jpeg encoder failed on a ", img.width, "x", img.height, " image");
  return out;
}

std::vector<uint8_t> encode_png(const Image& img) {
  std::vector<uint8_t> out;
  if (!stbi_write_png_to_func(append_bytes, &out, img.width, img.height, 3, img.pixels.data(),
                              img.width * 3))
    fail("png encoder failed on a ", img.width, "x", img.height, " image");
  return out;
}

void write_image(const std::string& path, const Image& img, int jpeg_quality) {
  std::string ext = lower(path.substr(path.find_last_of('.') + 1));
  std::vector<uint8_t> bytes;
  if (ext == "jpg" || ext == "jpeg") bytes = encode_jpeg(img, jpeg_quality);
  else if (ext == "png") bytes = encode_png(img);
  else fail("write_image: ", path, ": unknown image extension (use .jpg or .png)");
  write_file_bytes(path, bytes.data(), bytes.size());
}

}  // namespace vc::data
