// The text side's tokenizer, whichever the weights were trained with:
//   - OpenAI's byte-level BPE (models/clip/tokenizer.h) for OpenAI / Hugging Face weights;
//   - a word-level vocabulary for the tiny CLIP trained on Fashion-Motion, whose `make-data`
//     writes text/vocab.txt (id = line number: <pad>, <unk>, words, <|startoftext|>,
//     <|endoftext|> last, so the end token has the highest id as CLIP's pooling expects).
// A checkpoint records which one it used (describe()/from_description), so train, eval
// and predict pick it without being told.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/tensor.h"

namespace vc::clip {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // int64 [N, context]: start, ids, end, zero padding. Too long: the end token is kept last
  // when truncate, else it throws naming the text.
  virtual Tensor tokenize(const std::vector<std::string>& texts, int64_t context,
                          bool truncate = true) const = 0;
  virtual int64_t vocab_size() const = 0;
  // A self-contained description stored in checkpoint metadata ("word\n<vocab>" or
  // "openai-bpe").
  virtual std::string describe() const = 0;
};

class WordTokenizer : public TextTokenizer {
 public:
  // The vocabulary text: one token per line.
  explicit WordTokenizer(const std::string& vocab_text);
  static std::unique_ptr<WordTokenizer> from_file(const std::string& path);
  // Lower-cased runs of [a-z0-9]; every other non-space character is a token of its own.
  static std::vector<std::string> split(const std::string& text);
  std::vector<int64_t> encode(const std::string& text) const;
  Tensor tokenize(const std::vector<std::string>& texts, int64_t context,
                  bool truncate = true) const override;
  int64_t vocab_size() const override { return int64_t(words_.size()); }
  std::string describe() const override;

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> ids_;
  int64_t pad_ = 0, unk_ = 1, sot_ = -1, eot_ = -1;
};

// The tokenizer a checkpoint describes. "openai-bpe" needs the BPE vocabulary's path
// (bpe_simple_vocab_16e6.txt.gz), which the user passes; the error says so when missing.
std::unique_ptr<TextTokenizer> tokenizer_from_description(const std::string& description,
                                                          const std::string& bpe_path = "");
// OpenAI's BPE from bpe_simple_vocab_16e6.txt.gz behind the interface.
std::unique_ptr<TextTokenizer> openai_bpe_tokenizer(const std::string& bpe_path);

}  // namespace vc::clip
