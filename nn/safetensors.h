// safetensors (https://github.com/huggingface/safetensors), the format CLIP weights ship in:
//   u64 little-endian N | N bytes of JSON header | data
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data), plus an optional "__metadata__" string map.
//
// Nothing in a file is trusted: the parser checks every size and offset against the file
// and throws vc::Error naming the file and the tensor, never crashing on bad input (a
// libFuzzer target in tests/fuzz/ runs it on random bytes).
//
// Loading converts F16 and BF16 to float32 and I32 to int64 (the engine's types); F32, F64,
// I64 and U8 load as they are. Saving writes a temporary file and renames it.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/tensor_dict.h"

namespace vc::nn {

using Metadata = std::map<std::string, std::string>;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as in the file: "F32", "BF16", ...
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in file order (by begin offset)
  Metadata metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// Bytes per element of a safetensors dtype name; 0 for a name the format does not define.
size_t safetensors_dtype_size(const std::string& dtype);

// Parses and validates the header of a whole file image `bytes[0, size)`: truncation, JSON,
// dtypes, shapes, offsets inside the data, sizes = numel * dtype size, no overlaps or gaps.
// `file` names the file in errors.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size,
                                           const std::string& file);

// A memory-mapped file; tensors are decoded lazily by name.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const Metadata& metadata() const { return header_.metadata; }
  const std::vector<SafetensorsEntry>& entries() const { return header_.entries; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;
  Tensor load(const std::string& name) const;  // a fresh CPU tensor
  StateDict load_all() const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

StateDict load_safetensors(const std::string& path, Metadata* metadata = nullptr);

struct SafetensorsSaveOptions {
  // Per-tensor storage dtype: float tensors may be stored as "F16", "BF16", "F32" or "F64";
  // int64 ones as "I32" (range checked). Others keep their own dtype.
  std::map<std::string, std::string> store_as;
};

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const Metadata& metadata = {}, const SafetensorsSaveOptions& opts = {});

// IEEE half and bfloat16 conversions (round to nearest even; NaN stays NaN).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
uint16_t float_to_bf16(float f);
float bf16_to_float(uint16_t b);

// Runs `write` on a temporary file in path's folder, flushes it to disk and renames it to
// path, so a reader never sees a half-written file. The temporary is removed on failure.
void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& write);

}  // namespace vc::nn
