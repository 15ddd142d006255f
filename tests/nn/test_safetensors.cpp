// safetensors: files written byte by byte from the format description (specs/ecosystem.md
// §3.6), round trips of every dtype, half/bfloat16 rounding, and a corpus of broken files
// that must each give a clear error naming the file and the tensor.
#include <cmath>
#include <cstring>
#include <fstream>

#include "tests/nn/nn_testing.h"

using namespace vc;
using namespace vc::nn;
using namespace vc::nn::testing;

namespace {

// u64 little-endian header length + header + data.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

template <class T> std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The error message of opening and loading every tensor of path ("" when it succeeds).
std::string load_error(const std::string& path) {
  try {
    SafetensorsFile f(path);
    f.load_all();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors: reads a file written by hand from the format description") {
  ScratchDir dir("st_hand");
  // F16: 1, -2, 65504, 2^-24 (smallest subnormal); BF16: 1, 3.140625; I32: -5, 7;
  // F64 scalar 0.1; I64 [2]; F32 [2, 2]; U8 [3].
  std::string data;
  data += bytes_of<uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0001});  // 0..8
  data += bytes_of<uint16_t>({0x3F80, 0x4049});                  // 8..12
  data += bytes_of<int32_t>({-5, 7});                             // 12..20
  data += bytes_of<double>({0.1});                                // 20..28
  data += bytes_of<int64_t>({-(int64_t(1) << 40), 3});            // 28..44
  data += bytes_of<float>({1.5f, -2.5f, 3.25f, 1e-30f});          // 44..60
  data += std::string("\x00\x7f\xff", 3);                         // 60..63
  std::string header =
      R"({"__metadata__":{"format":"pt","note":"hand"},)"
      R"("h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},)"
      R"("bf":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},)"
      R"("i32":{"dtype":"I32","shape":[2,1],"data_offsets":[12,20]},)"
      R"("s":{"dtype":"F64","shape":[],"data_offsets":[20,28]},)"
      R"("i64":{"dtype":"I64","shape":[2],"data_offsets":[28,44]},)"
      R"("f":{"dtype":"F32","shape":[2,2],"data_offsets":[44,60]},)"
      R"("u8":{"dtype":"U8","shape":[3],"data_offsets":[60,63]}})";
  std::string path = dir.file("hand.safetensors");
  write_bytes(path, make_file(header, data));

  Metadata meta;
  StateDict sd = load_safetensors(path, &meta);
  CHECK(meta == Metadata{{"format", "pt"}, {"note", "hand"}});
  CHECK(sd.keys() == std::vector<std::string>{"h", "bf", "i32", "s", "i64", "f", "u8"});  // by offset
  CHECK(sd.at("h").dtype() == DType::F32);
  CHECK(values(sd.at("h")) == std::vector<double>{1, -2, 65504, std::ldexp(1.0, -24)});
  CHECK(sd.at("bf").dtype() == DType::F32);
  CHECK(values(sd.at("bf")) == std::vector<double>{1, 3.140625});
  CHECK(sd.at("i32").dtype() == DType::I64);
  CHECK(sd.at("i32").shape() == Shape{2, 1});
  CHECK(values(sd.at("i32")) == std::vector<double>{-5, 7});
  CHECK(sd.at("s").shape() == Shape{});
  CHECK(sd.at("s").item() == 0.1);
  CHECK(sd.at("i64").to_vector<int64_t>() == std::vector<int64_t>{-(int64_t(1) << 40), 3});
  CHECK(sd.at("f").to_vector<float>() == std::vector<float>{1.5f, -2.5f, 3.25f, 1e-30f});
  CHECK(sd.at("u8").to_vector<uint8_t>() == std::vector<uint8_t>{0, 127, 255});

  SafetensorsFile f(path);
  CHECK(f.entry("i32").dtype == "I32");
  CHECK(f.entry("i32").begin == 12);
  CHECK_THROWS_WITH_AS(f.load("nope"), doctest::Contains("'nope': no such tensor"), Error);
}

TEST_CASE("safetensors: round trip of every dtype, metadata kept, atomic write") {
  ScratchDir dir("st_round");
  StateDict sd;
  sd.set("f32", rand_normal({3, 5}, 1, 0));
  sd.set("f64", rand_normal({2, 2, 2}, 2, 0, 0, 1, DType::F64));
  sd.set("i64", Tensor::from_vector<int64_t>({INT64_MIN, -1, 0, INT64_MAX}, {4}));
  sd.set("u8", Tensor::from_vector<uint8_t>({0, 1, 200, 255}, {2, 2}));
  sd.set("scalar", Tensor::scalar(4.6052));
  sd.set("empty", Tensor::zeros({0, 3}));
  // Values each narrow type holds exactly: these must come back bit for bit.
  std::vector<float> halfs = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 0.0009765625f,
                              float(std::ldexp(1.0, -24)), float(std::ldexp(1.0, -14)), INFINITY};
  sd.set("f16", Tensor::from_vector<float>(halfs, {9}));
  std::vector<float> bfs = {1.0f, -3.140625f, float(std::ldexp(255.0, 120)), float(std::ldexp(1.0, -130)), -INFINITY};
  sd.set("bf16", Tensor::from_vector<float>(bfs, {5}));
  sd.set("i32", Tensor::from_vector<int64_t>({INT32_MIN, -7, 0, INT32_MAX}, {2, 2}));
  SafetensorsSaveOptions opts;
  opts.store_as = {{"f16", "F16"}, {"bf16", "BF16"}, {"i32", "I32"}};
  Metadata meta = {{"format", "pt"}, {"verbclip", "round trip"}};
  std::string path = dir.file("round.safetensors");
  save_safetensors(path, sd, meta, opts);

  // Nothing but the file itself is left in the folder (the temporary was renamed).
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) files += 1, (void)e;
  CHECK(files == 1);

  // The layout is what the format says: 8-byte aligned header, dtypes as asked.
  std::string raw = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);
  SafetensorsHeader h = parse_safetensors_header(reinterpret_cast<const uint8_t*>(raw.data()),
                                                 raw.size(), path);
  std::map<std::string, std::string> dtypes;
  for (const auto& e : h.entries) dtypes[e.name] = e.dtype;
  CHECK(dtypes == std::map<std::string, std::string>{
                      {"f32", "F32"}, {"f64", "F64"}, {"i64", "I64"}, {"u8", "U8"},
                      {"scalar", "F32"}, {"empty", "F32"}, {"f16", "F16"}, {"bf16", "BF16"},
                      {"i32", "I32"}});

  Metadata got_meta;
  StateDict back = load_safetensors(path, &got_meta);
  CHECK(got_meta == meta);
  CHECK(back.keys() == sd.keys());
  for (const auto& [name, t] : sd) {
    const Tensor& u = back.at(name);
    CHECK_MESSAGE(u.shape() == t.shape(), name);
    CHECK_MESSAGE(u.dtype() == t.dtype(), name);
    CHECK_MESSAGE(hash_bits(u) == hash_bits(t), name, " changed in the round trip");
  }
  CHECK(std::signbit(back.at("f16").to_vector<float>()[1]));  // -0 stays -0

  // A narrow store rounds what it cannot hold: 1 + 2^-12 is not a half.
  sd.set("f16", Tensor::from_vector<float>({1.0f + float(std::ldexp(1.0, -12))}, {1}));
  save_safetensors(path, sd, meta, opts);
  CHECK(load_safetensors(path).at("f16").item() == 1.0);
  // Values outside I32 are refused, naming the tensor; the old file is intact.
  sd.set("i32", Tensor::from_vector<int64_t>({int64_t(1) << 40}, {1}));
  CHECK_THROWS_WITH_AS(save_safetensors(path, sd, meta, opts),
                       doctest::Contains("'i32': value 1099511627776 does not fit I32"), Error);
  CHECK(load_safetensors(path).at("i32").to_vector<int64_t>().size() == 4);
  opts.store_as["nope"] = "F16";
  CHECK_THROWS_WITH_AS(save_safetensors(path, sd, meta, opts), doctest::Contains("'nope'"), Error);
}

TEST_CASE("half and bfloat16 conversions round to nearest even") {
  auto h = [](double x) { return float_to_half(float(x)); };
  CHECK(h(1.0) == 0x3C00);
  CHECK(h(-2.0) == 0xC000);
  CHECK(h(65504) == 0x7BFF);
  CHECK(h(65519) == 0x7BFF);  // below the midpoint to 65536
  CHECK(h(65520) == 0x7C00);  // the midpoint rounds to even: infinity
  CHECK(h(1e10) == 0x7C00);
  CHECK(h(1 + std::ldexp(1.0, -11)) == 0x3C00);      // tie -> even (down)
  CHECK(h(1 + 3 * std::ldexp(1.0, -11)) == 0x3C02);  // tie -> even (up)
  CHECK(h(1 + std::ldexp(1.0, -11) + std::ldexp(1.0, -20)) == 0x3C01);
  CHECK(h(std::ldexp(1.0, -24)) == 0x0001);
  CHECK(h(std::ldexp(1.0, -25)) == 0x0000);      // tie -> even (zero)
  CHECK(h(3 * std::ldexp(1.0, -25)) == 0x0002);  // tie -> even (2)
  CHECK(h(std::ldexp(1023.0, -24)) == 0x03FF);   // largest subnormal
  CHECK(h(std::ldexp(1.0, -14)) == 0x0400);      // smallest normal
  CHECK(std::isnan(half_to_float(h(NAN))));
  CHECK(half_to_float(0x7BFF) == 65504.0f);
  CHECK(half_to_float(0x8001) == -float(std::ldexp(1.0, -24)));
  for (uint32_t b = 0; b < 0x10000; ++b) {  // every finite half survives half -> float -> half
    uint16_t x = uint16_t(b);
    if ((x & 0x7C00) == 0x7C00) continue;
    REQUIRE(float_to_half(half_to_float(x)) == x);
  }
  CHECK(float_to_bf16(1.0f) == 0x3F80);
  CHECK(float_to_bf16(float(1 + std::ldexp(1.0, -8))) == 0x3F80);      // tie -> even
  CHECK(float_to_bf16(float(1 + 3 * std::ldexp(1.0, -8))) == 0x3F82);  // tie -> even
  CHECK(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  CHECK(bf16_to_float(0x4049) == 3.140625f);
}

TEST_CASE("safetensors: the broken-file corpus gives clear errors, never a crash") {
  ScratchDir dir("st_corpus");
  const std::string f4 = bytes_of<float>({1, 2, 3, 4});  // 16 bytes
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
  };
  struct Case {
    std::string name, bytes;
    std::vector<std::string> expect;  // substrings of the error
  };
  std::string huge_len(8, '\xff');
  std::vector<Case> corpus = {
      {"empty", "", {"truncated", "0 bytes"}},
      {"short_length", "\x05\x00\x00", {"truncated"}},
      {"header_past_end", make_file("{}", "").substr(0, 8) + "{", {"truncated", "needs 2 bytes"}},
      {"header_too_big", huge_len + "{}", {"exceeds the limit"}},
      {"not_json", make_file("{\"a\": ", ""), {"not valid JSON"}},
      {"binary_header", make_file(std::string("\x00\x01\x02", 3), ""), {"not valid JSON"}},
      {"json_array", make_file("[1, 2]", ""), {"not a JSON object"}},
      {"deep_nesting", make_file(std::string(20000, '[') + std::string(20000, ']'), ""),
       {"not a JSON object"}},
      {"entry_not_object", make_file("{\"w\": 5}", ""), {"'w'", "not an object"}},
      {"no_dtype", make_file("{\"w\":{\"shape\":[4],\"data_offsets\":[0,16]}}", f4), {"'w'", "dtype"}},
      {"unknown_dtype", make_file("{" + entry("w", "F17", "[4]", "[0,16]") + "}", f4),
       {"'w'", "unknown dtype 'F17'"}},
      {"negative_shape", make_file("{" + entry("w", "F32", "[-4]", "[0,16]") + "}", f4),
       {"'w'", "shape [-4]"}},
      {"float_shape", make_file("{" + entry("w", "F32", "[1.5]", "[0,16]") + "}", f4),
       {"'w'", "shape"}},
      {"shape_not_array", make_file("{" + entry("w", "F32", "4", "[0,16]") + "}", f4),
       {"'w'", "shape"}},
      {"overflowing_shape",
       make_file("{" + entry("w", "F32", "[4294967296,4294967296,16]", "[0,16]") + "}", f4),
       {"'w'", "overflows"}},
      {"offsets_one_number", make_file("{" + entry("w", "F32", "[4]", "[16]") + "}", f4),
       {"'w'", "data_offsets"}},
      {"offsets_negative", make_file("{" + entry("w", "F32", "[4]", "[-16,0]") + "}", f4),
       {"'w'", "data_offsets"}},
      {"offset_past_end", make_file("{" + entry("w", "F32", "[4]", "[0,1000]") + "}", f4),
       {"'w'", "past the end", "16 bytes"}},
      {"huge_offset",
       make_file("{" + entry("w", "F32", "[4]", "[18446744073709551600,18446744073709551615]") + "}", f4),
       {"'w'"}},
      {"begin_after_end", make_file("{" + entry("w", "F32", "[0]", "[16,0]") + "}", f4),
       {"'w'", "end before they begin"}},
      {"size_mismatch", make_file("{" + entry("w", "F32", "[3]", "[0,16]") + "}", f4),
       {"'w'", "needs 12 bytes", "hold 16"}},
      {"dtype_size_mismatch", make_file("{" + entry("w", "F64", "[4]", "[0,16]") + "}", f4),
       {"'w'", "needs 32 bytes"}},
      {"overlap",
       make_file("{" + entry("a", "F32", "[3]", "[0,12]") + "," + entry("b", "F32", "[2]", "[8,16]") + "}", f4),
       {"'b'", "overlap tensor 'a'"}},
      {"same_range",
       make_file("{" + entry("a", "F32", "[4]", "[0,16]") + "," + entry("b", "F32", "[4]", "[0,16]") + "}", f4),
       {"overlap"}},
      {"gap",
       make_file("{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[2]", "[8,16]") + "}", f4),
       {"'b'", "gap of 4 bytes"}},
      {"trailing_data", make_file("{" + entry("a", "F32", "[3]", "[0,12]") + "}", f4),
       {"4 bytes of data follow"}},
      {"truncated_data", make_file("{" + entry("w", "F32", "[4]", "[0,16]") + "}", f4.substr(0, 12)),
       {"'w'", "past the end"}},
      {"metadata_not_object", make_file("{\"__metadata__\": [1]}", ""), {"__metadata__"}},
      {"metadata_not_string", make_file("{\"__metadata__\": {\"epoch\": 3}}", ""), {"'epoch'", "not a string"}},
      {"unsupported_dtype", make_file("{" + entry("mask", "BOOL", "[16]", "[0,16]") + "}", f4),
       {"'mask'", "BOOL", "not loadable"}},
  };
  for (const Case& c : corpus) {
    std::string path = dir.file(c.name + ".safetensors");
    write_bytes(path, c.bytes);
    std::string err = load_error(path);
    CHECK_MESSAGE(!err.empty(), c.name, " loaded without an error");
    CHECK_MESSAGE(err.find(path) != std::string::npos, c.name, ": error does not name the file: ", err);
    for (const auto& want : c.expect)
      CHECK_MESSAGE(err.find(want) != std::string::npos, c.name, ": '", want, "' not in: ", err);
  }
  MESSAGE("example: ", load_error(dir.file("overlap.safetensors")));
  CHECK(load_error(dir.file("missing.safetensors")).find("cannot open") != std::string::npos);
}

TEST_CASE("safetensors: every truncation and many byte edits of a valid file fail cleanly") {
  StateDict sd;
  sd.set("a", rand_normal({2, 3}, 1, 0));
  sd.set("b", Tensor::from_vector<int64_t>({1, 2}, {2}));
  ScratchDir dir("st_mutate");
  std::string path = dir.file("ok.safetensors");
  save_safetensors(path, sd, {{"k", "v"}});
  const std::string good = read_bytes(path);
  auto parse = [&](const std::string& bytes) {
    try {
      parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m");
      return true;
    } catch (const Error&) {
      return false;
    }  // anything else escapes and fails the test
  };
  CHECK(parse(good));
  for (size_t n = 0; n < good.size(); ++n) CHECK_MESSAGE(!parse(good.substr(0, n)), "prefix ", n);
  uint64_t hlen = 0;
  std::memcpy(&hlen, good.data(), 8);
  const char subs[] = {'\0', '"', '}', '9', '-', ',', ':', '[', 'x', '\xff'};
  int accepted = 0;
  for (size_t i = 0; i < 8 + hlen; ++i)
    for (char s : subs) {
      std::string m = good;
      m[i] = s;
      accepted += parse(m);  // must not crash or throw anything but vc::Error
    }
  MESSAGE("byte edits that still parse (e.g. inside strings): ", accepted);
}
