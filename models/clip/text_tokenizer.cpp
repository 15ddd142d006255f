#include "models/clip/text_tokenizer.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "models/clip/tokenizer.h"

namespace vc::clip {

WordTokenizer::WordTokenizer(const std::string& vocab_text) {
  std::istringstream in(vocab_text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    VC_CHECK(ids_.emplace(line, int64_t(words_.size())).second,
             "word vocabulary: token '", line, "' appears twice");
    words_.push_back(line);
  }
  auto need = [&](const char* w) {
    auto it = ids_.find(w);
    VC_CHECK(it != ids_.end(), "word vocabulary: missing the token '", w, "'");
    return it->second;
  };
  pad_ = need("<pad>");
  unk_ = need("<unk>");
  sot_ = need("<|startoftext|>");
  eot_ = need("<|endoftext|>");
  VC_CHECK(eot_ == int64_t(words_.size()) - 1,
           "word vocabulary: <|endoftext|> must be the last line (CLIP pools at the highest id)");
}

std::unique_ptr<WordTokenizer> WordTokenizer::from_file(const std::string& path) {
  std::ifstream f(path);
  VC_CHECK(f.good(), "cannot read the word vocabulary '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return std::make_unique<WordTokenizer>(ss.str());
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

std::vector<std::string> WordTokenizer::split(const std::string& text) {
  std::vector<std::string> out;
  std::string run;
  for (unsigned char c : text) {
    if (std::isalnum(c) && c < 128) {
      run += char(std::tolower(c));
      continue;
    }
    if (!run.empty()) out.push_back(run), run.clear();
    if (!std::isspace(c)) out.push_back(std::string(1, char(c)));
  }
  if (!run.empty()) out.push_back(run);
  return out;
}

std::vector<int64_t> WordTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& w : split(text)) {
    auto it = ids_.find(w);
    ids.push_back(it == ids_.end() ? unk_ : it->second);
  }
  return ids;
}

Tensor WordTokenizer::tokenize(const std::vector<std::string>& texts, int64_t context,
                               bool truncate) const {
  VC_CHECK(context >= 2, "tokenize: context length ", context, " leaves no room");
  std::vector<int64_t> out(texts.size() * size_t(context), pad_);
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int64_t> ids = encode(texts[i]);
    ids.insert(ids.begin(), sot_);
    ids.push_back(eot_);
    if (int64_t(ids.size()) > context) {
      VC_CHECK(truncate, "tokenize: '", texts[i].substr(0, 60), texts[i].size() > 60 ? "..." : "", "' has ", ids.size(),
               " tokens, more than the context length ", context);
      ids.resize(size_t(context));
      ids.back() = eot_;
    }
    std::copy(ids.begin(), ids.end(), out.begin() + i * size_t(context));
  }
  return Tensor::from_vector(out, {int64_t(texts.size()), context});
}

std::string WordTokenizer::describe() const {
  std::string d = "word\n";
  for (const std::string& w : words_) d += w + "\n";
  return d;
}

namespace {
class BpeTokenizer : public TextTokenizer {
 public:
  explicit BpeTokenizer(Tokenizer t) : t_(std::move(t)) {}
  Tensor tokenize(const std::vector<std::string>& texts, int64_t context,
                  bool truncate) const override {
    return t_.tokenize(texts, context, truncate);
  }
  int64_t vocab_size() const override { return t_.vocab_size(); }
  std::string describe() const override { return "openai-bpe"; }

 private:
  Tokenizer t_;
};
}  // namespace

std::unique_ptr<TextTokenizer> openai_bpe_tokenizer(const std::string& bpe_path) {
  return std::make_unique<BpeTokenizer>(Tokenizer::from_bpe_file(bpe_path));
}

std::unique_ptr<TextTokenizer> tokenizer_from_description(const std::string& description,
                                                          const std::string& bpe_path) {
  if (description.rfind("word\n", 0) == 0)
    return std::make_unique<WordTokenizer>(description.substr(5));
  if (description == "openai-bpe") {
    VC_CHECK(!bpe_path.empty(), "these weights use OpenAI's BPE tokenizer: pass the path of "
             "bpe_simple_vocab_16e6.txt.gz (--bpe)");
    return openai_bpe_tokenizer(bpe_path);
  }
  fail("unknown tokenizer description '", description.substr(0, 32), "'");
}

}  // namespace vc::clip
