// libFuzzer target for the list-file parser (data/annotations.cpp, parse_list_text: what
// read_list runs on a file's bytes). Any bytes, under each list format, must parse into
// records or give vc::Error naming the file; lines that fail under the Skip policy are counted.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVERBCLIP_FUZZ=ON
//   cmake --build build-fuzz --target fuzz_list_file
//   ./build-fuzz/tests/fuzz/fuzz_list_file -max_total_time=60 corpus/
#include <cstdint>
#include <cstdlib>
#include <string>

#include "data/annotations.h"
#include "engine/core/error.h"

using namespace vc::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the format, the separator and the policy; the rest is the file.
  const uint8_t sel = data[0];
  const ListFormat formats[] = {ListFormat::Auto, ListFormat::Video, ListFormat::Rawframe,
                                ListFormat::RawframeOffset, ListFormat::Csv, ListFormat::Json};
  ListOptions opt;
  opt.format = formats[sel % 6];
  opt.csv_sep = (sel & 8) ? ';' : ',';
  opt.num_classes = (sel & 16) ? 5 : -1;
  opt.require_label = !(sel & 32);
  Problems problems;
  problems.quiet = true;
  problems.policy = (sel & 64) ? BadInput::Skip : BadInput::Fail;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    auto records = parse_list_text(text, (sel & 128) ? "fuzz.json" : "fuzz.txt", opt, problems);
    for (const auto& r : records) {  // what the parser promises its callers
      if (r.source.empty() || (r.total_frames == 0 || r.total_frames < -1)) std::abort();
      for (int64_t l : r.labels)
        if (l < 0 || (opt.num_classes >= 0 && l >= opt.num_classes)) std::abort();
      (void)format_record(r);
    }
  } catch (const vc::Error&) {
  }
  return 0;
}
