// CLIP's byte-level BPE tokenizer, identical to OpenAI's `simple_tokenizer.py`
// (specs/ecosystem.md §3.5).
//
//   text -> clean (ftfy-lite, HTML-unescape twice, collapse whitespace, lowercase)
//        -> pre-tokenise (specials | 's 't 're 've 'm 'll 'd | \p{L}+ | \p{N} | other runs)
//        -> each piece's UTF-8 bytes -> printable characters (bytes_to_unicode), "</w>" on
//           the last one -> BPE merges by rank -> ids.
//
// Documented deviations from the Python original:
//  * ftfy is not available: only its cheap fixes are done (curly quotes -> ASCII quotes,
//    Latin ligatures, fullwidth ASCII, C1 controls read as Windows-1252, control-character
//    removal). Mojibake repair, NFC normalisation and ftfy's own HTML pass are not, so only
//    mojibake-damaged, decomposed-accent or triply-escaped text can differ.
//  * html.unescape knows the HTML 4 entities (+ &apos;), not all 2,231 of HTML5.
//  * Unicode letter / number / whitespace / lowercase tables come from Python 3.11's
//    unicodedata (Unicode 14.0); the `regex` module OpenAI uses may be a version or two newer.
//  * Input is UTF-8; invalid bytes are read as U+FFFD (Python strings cannot hold them).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace vc::clip {

constexpr int64_t kStartOfText = 49406;  // <|startoftext|> in OpenAI's vocabulary
constexpr int64_t kEndOfText = 49407;    // <|endoftext|>
constexpr int64_t kContextLength = 77;
constexpr int64_t kOpenAIMerges = 48894;  // merges OpenAI reads from the gz (49152 - 256 - 2)

class Tokenizer {
 public:
  // OpenAI's bpe_simple_vocab_16e6.txt.gz (a plain-text copy also works: zlib reads both).
  static Tokenizer from_bpe_file(const std::string& path);
  // Hugging Face vocab.json (token -> id) + merges.txt ("#version" header, then "a b" lines).
  static Tokenizer from_hf_files(const std::string& vocab_json, const std::string& merges_txt);
  // OpenAI's construction from merge pairs: 256 byte characters, the same with "</w>",
  // one id per merge, then <|startoftext|> and <|endoftext|>. Also serves small BPEs.
  static Tokenizer from_merges(const std::vector<std::pair<std::string, std::string>>& merges);

  // Ids of the text, without start/end tokens.
  std::vector<int64_t> encode(const std::string& text) const;
  // int64 [N, context_length]: start, ids, end, then 0-padding. Text too long throws unless
  // truncate, which keeps context_length tokens and puts the end token last (OpenAI's
  // truncate=True, open_clip's only behaviour).
  Tensor tokenize(const std::vector<std::string>& texts, int64_t context_length = kContextLength,
                  bool truncate = false) const;
  // Python's decode: symbols joined, bytes decoded (bad UTF-8 -> U+FFFD), "</w>" -> " ".
  // skip_special drops the start token and everything from the first end token on (padding).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const;

  int64_t vocab_size() const { return int64_t(decoder_.size()); }
  int64_t sot() const { return sot_; }
  int64_t eot() const { return eot_; }
  // Id of a vocabulary symbol (e.g. "dog</w>"), or -1.
  int64_t id_of(const std::string& symbol) const;
  // The BPE symbols of one pre-tokenised piece, e.g. "applyeyemakeup" -> app l ye ye makeup</w>.
  std::vector<std::string> bpe(const std::string& piece) const;

 private:
  Tokenizer() = default;
  void finish(const std::string& source);  // looks up specials, validates, names source

  std::unordered_map<std::string, int64_t> encoder_;  // symbol -> id
  std::vector<std::string> decoder_;                  // id -> symbol
  std::unordered_map<std::string, int64_t> ranks_;    // "first second" -> merge rank
  int64_t sot_ = -1, eot_ = -1;
  // piece -> BPE symbols; shared by copies (the vocabulary never changes after loading) and
  // locked because encode may run on loader threads.
  struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::string>> words;
  };
  std::shared_ptr<Cache> cache_;
};

// ---- the steps, exposed for tests and for other tokenizers ----

// basic_clean + whitespace_clean + lower, as OpenAI's encode does them.
std::string clean_text(const std::string& text);
// Python's html.unescape (HTML 4 entity names + &apos;; numeric references exactly).
std::string html_unescape(const std::string& text);
// OpenAI's split pattern on cleaned text; whitespace is dropped.
std::vector<std::string> pre_tokenize(const std::string& cleaned);
// bytes_to_unicode: the UTF-8 of the character each byte maps to.
const std::vector<std::string>& byte_encoder();
// The 256 byte characters in vocabulary order (printable bytes first): ids 0..255.
const std::vector<std::string>& byte_vocabulary();

}  // namespace vc::clip
