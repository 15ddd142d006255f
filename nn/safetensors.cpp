#include "nn/safetensors.h"
#include "nn/faults.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

namespace vc::nn {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's cap

[[noreturn]] void bad(const std::string& file, const std::string& tensor, const std::string& msg) {
  if (tensor.empty()) fail("safetensors '", file, "': ", msg);
  fail("safetensors '", file, "': tensor '", tensor, "': ", msg);
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

// ---------------------------------------------------------------- half / bfloat16

uint16_t float_to_half(float f) {
  uint32_t x = float_bits(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u)  // inf or NaN (NaN keeps a payload bit so it stays NaN)
    return sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u);
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (a < 0x38800000u) {                        // below 2^-14: a half subnormal (or zero)
    // a * 2^24 is exact in float; nearbyint rounds it to nearest even.
    return sign | uint16_t(std::nearbyint(bits_float(a) * 16777216.0f));
  }
  uint32_t h = ((((a >> 23) - 127 + 15) << 10) | ((a & 0x7fffffu) >> 13));
  uint32_t rest = a & 0x1fffu;  // the 13 dropped bits
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry may reach inf: right
  return sign | uint16_t(h);
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {
    float v = float(m) * (1.0f / 16777216.0f);  // subnormal: m * 2^-24, exact
    return sign ? -v : v;
  }
  if (e == 31) return bits_float(sign | 0x7f800000u | (m << 13));
  return bits_float(sign | ((e - 15 + 127) << 23) | (m << 13));
}

uint16_t float_to_bf16(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // quiet NaN
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

// ---------------------------------------------------------------- header

size_t safetensors_dtype_size(const std::string& d) {
  static const std::map<std::string, size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
      {"U16", 2},  {"F16", 2}, {"BF16", 2}, {"I32", 4},    {"U32", 4},     {"F32", 4},
      {"F64", 8},  {"I64", 8}, {"U64", 8}};
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size,
                                           const std::string& file) {
  if (size < 8)
    bad(file, "", "truncated: " + std::to_string(size) +
                      " bytes, too short for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes)
    bad(file, "", "header length " + std::to_string(n) + " exceeds the limit of " +
                      std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > size - 8)
    bad(file, "", "truncated: the header needs " + std::to_string(n) + " bytes, the file has " +
                      std::to_string(size - 8) + " after the length");

  json root;
  try {
    root = json::parse(bytes + 8, bytes + 8 + n);
  } catch (const json::exception& e) {
    bad(file, "", std::string("header is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) bad(file, "", "header is not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = size - h.data_start;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(file, "", "__metadata__ is not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          bad(file, "", "__metadata__ entry '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) bad(file, name, "entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) bad(file, name, "missing or non-string 'dtype'");
    if (sh == v.end() || !sh->is_array()) bad(file, name, "missing or non-array 'shape'");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      bad(file, name, "'data_offsets' is not [begin, end]");

    SafetensorsEntry e;
    e.name = name;
    e.dtype = dt->get<std::string>();
    size_t elem = safetensors_dtype_size(e.dtype);
    if (elem == 0) bad(file, name, "unknown dtype '" + e.dtype + "'");
    uint64_t numel = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        bad(file, name, "shape " + sh->dump() + " holds something other than sizes >= 0");
      uint64_t s = d.get<uint64_t>();
      if (s > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, s, &numel))
        bad(file, name, "shape " + sh->dump() + " overflows");
      e.shape.push_back(int64_t(s));
    }
    for (const json& o : *off)
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
        bad(file, name, "data_offsets " + off->dump() + " are not byte offsets >= 0");
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) bad(file, name, "data_offsets " + off->dump() + " end before they begin");
    if (e.end > data_size)
      bad(file, name, "data_offsets " + off->dump() + " point past the end of the data (" +
                          std::to_string(data_size) + " bytes)");
    uint64_t nbytes = 0;
    bool overflow = __builtin_mul_overflow(numel, uint64_t(elem), &nbytes);
    if (overflow || nbytes != e.end - e.begin)
      bad(file, name, "shape " + sh->dump() + " of " + e.dtype + " needs " +
                          (overflow ? std::string("too many") : std::to_string(nbytes)) +
                          " bytes, data_offsets " + off->dump() + " hold " +
                          std::to_string(e.end - e.begin));
    h.entries.push_back(std::move(e));
  }

  // The buffers must tile the data exactly: no overlaps, no holes (as the reference reader).
  std::sort(h.entries.begin(), h.entries.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  uint64_t pos = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const auto& e : h.entries) {
    if (e.begin < pos)
      bad(file, e.name, "bytes [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            ") overlap tensor '" + prev->name + "'");
    if (e.begin > pos)
      bad(file, e.name, "a gap of " + std::to_string(e.begin - pos) + " bytes precedes it");
    pos = e.end;
    prev = &e;
  }
  if (pos != data_size)
    bad(file, "", std::to_string(data_size - pos) + " bytes of data follow the last tensor");
  return h;
}

// ---------------------------------------------------------------- reading

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("safetensors '", path, "': cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("safetensors '", path, "': cannot stat: ", std::strerror(err));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail("safetensors '", path, "': cannot map: ", std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid
  static const uint8_t empty = 0;
  try {
    header_ = parse_safetensors_header(data_ ? data_ : &empty, size_, path);
  } catch (...) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = nullptr;
    throw;
  }
  for (size_t i = 0; i < header_.entries.size(); ++i) index_[header_.entries[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> n;
  for (const auto& e : header_.entries) n.push_back(e.name);
  return n;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) bad(path_, name, "no such tensor in the file");
  return header_.entries[it->second];
}

Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  const uint8_t* src = data_ + header_.data_start + e.begin;
  const int64_t n = numel_of(e.shape);
  auto raw_copy = [&](DType t) {
    Tensor out = Tensor::empty(e.shape, t);
    if (n) std::memcpy(out.raw(), src, size_t(e.end - e.begin));
    return out;
  };
  auto widen16 = [&](float (*conv)(uint16_t)) {
    Tensor out = Tensor::empty(e.shape, DType::F32);
    float* dst = out.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, src + 2 * i, 2);
      dst[i] = conv(b);
    }
    return out;
  };
  if (e.dtype == "F32") return raw_copy(DType::F32);
  if (e.dtype == "F64") return raw_copy(DType::F64);
  if (e.dtype == "I64") return raw_copy(DType::I64);
  if (e.dtype == "U8") return raw_copy(DType::U8);
  if (e.dtype == "F16") return widen16(half_to_float);
  if (e.dtype == "BF16") return widen16(bf16_to_float);
  if (e.dtype == "I32") {
    Tensor out = Tensor::empty(e.shape, DType::I64);
    int64_t* dst = out.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, src + 4 * i, 4);
      dst[i] = v;
    }
    return out;
  }
  bad(path_, name, "dtype " + e.dtype +
                       " is valid safetensors but not loadable here (F32, F16, BF16, F64, I64, "
                       "I32, U8 are)");
}

StateDict SafetensorsFile::load_all() const {
  StateDict d;
  for (const auto& e : header_.entries) d.set(e.name, load(e.name));
  return d;
}

StateDict load_safetensors(const std::string& path, Metadata* metadata) {
  SafetensorsFile f(path);
  if (metadata) *metadata = f.metadata();
  return f.load_all();
}

// ---------------------------------------------------------------- writing

void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& write) {
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("write '", path, "': cannot create '", tmp, "': ", std::strerror(errno));
  const std::string name = std::filesystem::path(path).filename().string();
  try {
    write(f);
    if (std::fflush(f) == 0 && !std::ferror(f)) {
      // Fault tests (nn/faults.h): a crash or a full disk half way through this file.
      const bool kill = kill_point_reached("write:" + name), full = !kill && write_failure_injected(name);
      if (kill || full) {
        const long size = std::ftell(f);
        if (::ftruncate(::fileno(f), size / 2) != 0) {}
        if (kill) kill_now();
        errno = ENOSPC;
        fail("write '", path, "': writing '", tmp, "' failed: ", std::strerror(errno),
             " (injected by VERBCLIP_TEST_FAIL_WRITE)");
      }
    }
    if (std::fflush(f) != 0 || std::ferror(f) || ::fsync(::fileno(f)) != 0)
      fail("write '", path, "': writing '", tmp, "' failed: ", std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    fail("write '", path, "': closing '", tmp, "' failed: ", std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    fail("write '", path, "': rename from '", tmp, "' failed: ", std::strerror(err));
  }
  // The rename itself reaches the disk with the folder's entry (power loss; a killed process
  // needs nothing more).
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  kill_point("renamed:" + name);
}

namespace {

std::string natural_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

// A tensor's bytes as stored in the file.
std::string encode(const std::string& file, const std::string& name, const Tensor& t,
                   const std::string& as) {
  const int64_t n = t.numel();
  std::string out;
  auto put = [&](const void* p, size_t k) { out.append(static_cast<const char*>(p), k); };
  if (as == natural_dtype(t.dtype())) {  // the bytes as they are
    out.resize(size_t(n) * dtype_size(t.dtype()));
    if (n) t.copy_to_host(out.data(), out.size());
    return out;
  }
  if (as == "F32" || as == "F64" || as == "F16" || as == "BF16") {
    if (!is_floating(t.dtype()))
      bad(file, name, std::string("cannot store a ") + dtype_name(t.dtype()) + " tensor as " + as);
    std::vector<double> v = t.to(DType::F64).to_vector<double>();
    for (double x : v) {
      if (as == "F64") put(&x, 8);
      float f = float(x);
      if (as == "F32") put(&f, 4);
      if (as == "F16" || as == "BF16") {
        uint16_t b = as == "F16" ? float_to_half(f) : float_to_bf16(f);
        put(&b, 2);
      }
    }
    return out;
  }
  if (as == "I64" || as == "I32") {
    if (t.dtype() != DType::I64)
      bad(file, name, std::string("cannot store a ") + dtype_name(t.dtype()) + " tensor as " + as);
    for (int64_t x : t.to_vector<int64_t>()) {
      if (as == "I64") {
        put(&x, 8);
      } else {
        if (x < INT32_MIN || x > INT32_MAX)
          bad(file, name, "value " + std::to_string(x) + " does not fit I32");
        int32_t y = int32_t(x);
        put(&y, 4);
      }
    }
    return out;
  }
  if (as == "U8") {
    if (t.dtype() != DType::U8)
      bad(file, name, std::string("cannot store a ") + dtype_name(t.dtype()) + " tensor as U8");
    std::vector<uint8_t> v = t.to_vector<uint8_t>();
    put(v.data(), v.size());
    return out;
  }
  bad(file, name, "cannot store as dtype '" + as + "'");
}

}  // namespace

void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata,
                      const SafetensorsSaveOptions& opts) {
  for (const auto& [name, as] : opts.store_as)
    if (!tensors.contains(name)) bad(path, name, "store_as names a tensor that is not saved");
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<std::string> blobs;
  uint64_t pos = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__") bad(path, name, "reserved or empty tensor name");
    if (!t.defined()) bad(path, name, "undefined tensor");
    auto it = opts.store_as.find(name);
    std::string as = it != opts.store_as.end() ? it->second : natural_dtype(t.dtype());
    blobs.push_back(encode(path, name, t, as));
    header[name] = {{"dtype", as},
                    {"shape", t.shape()},
                    {"data_offsets", {pos, pos + blobs.back().size()}}};
    pos += blobs.back().size();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as writers do
  uint64_t n = h.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
  write_file_atomically(path, [&](std::FILE* f) {
    std::fwrite(len, 1, 8, f);
    std::fwrite(h.data(), 1, h.size(), f);
    for (const auto& b : blobs) std::fwrite(b.data(), 1, b.size(), f);
  });
}

}  // namespace vc::nn
