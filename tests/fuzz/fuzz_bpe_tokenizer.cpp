// libFuzzer target for CLIP's BPE tokenizer (models/clip/tokenizer.cpp) with OpenAI's
// vocabulary: any bytes (invalid UTF-8, huge words, entities, controls) must encode to ids in
// the vocabulary and tokenize with truncate to [1, 77]; decode of the ids must not fail.
// VERBCLIP_BPE_VOCAB overrides the vocabulary path (default: ../shared/data/clip/).
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVERBCLIP_FUZZ=ON
//   cmake --build build-fuzz --target fuzz_bpe_tokenizer
//   ./build-fuzz/tests/fuzz/fuzz_bpe_tokenizer -max_total_time=60 -max_len=65536 corpus/
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/core/error.h"
#include "models/clip/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const vc::clip::Tokenizer tok = [] {
    const char* p = std::getenv("VERBCLIP_BPE_VOCAB");
    return vc::clip::Tokenizer::from_bpe_file(
        p ? p : VERBCLIP_SOURCE_DIR "/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz");
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int64_t> ids = tok.encode(text);
  for (int64_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  (void)tok.decode(ids);
  vc::Tensor t = tok.tokenize({text}, vc::clip::kContextLength, /*truncate=*/true);
  if (t.numel() != vc::clip::kContextLength) std::abort();
  return 0;
}
