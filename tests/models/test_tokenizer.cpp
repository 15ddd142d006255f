// CLIP BPE tokenizer: the vectors of specs/ecosystem.md §3.5 (needs the shared vocabulary,
// skipped with a message when absent), the cleaning and splitting rules on their own, the
// Hugging Face file format, and errors. Expected ids come from the spec or from the
// vocabulary's construction rule, never from the code under test.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <nlohmann/json.hpp>

#include "models/clip/tokenizer.h"
#include "tests/common/testing.h"

using namespace vc;
using namespace vc::clip;
using Ids = std::vector<int64_t>;

namespace {

const std::string kVocabPath = VERBCLIP_SHARED_DIR "/data/clip/bpe_simple_vocab_16e6.txt.gz";

// The shared vocabulary, loaded once; null (and a SKIPPED message) when the file is absent.
const Tokenizer* openai_tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    std::unique_ptr<Tokenizer> t;
    if (std::filesystem::exists(kVocabPath))
      t = std::make_unique<Tokenizer>(Tokenizer::from_bpe_file(kVocabPath));
    return t;
  }();
  if (!tok) MESSAGE("SKIPPED: CLIP vocabulary not found at " << kVocabPath);
  return tok.get();
}

// bytes_to_unicode written out again from the spec: printable bytes keep their code point,
// the rest take U+0100.. in byte order; vocabulary order is printable ones first.
std::string utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += char(c);
  } else {
    s += char(0xC0 | (c >> 6));  // every byte character is below U+0800
    s += char(0x80 | (c & 0x3F));
  }
  return s;
}
std::vector<std::string> spec_byte_vocab() {
  auto printable = [](int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  };
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b)
    if (printable(b)) v.push_back(utf8(char32_t(b)));
  for (int b = 0, k = 0; b < 256; ++b)
    if (!printable(b)) v.push_back(utf8(char32_t(256 + k++)));
  return v;
}
// Id of the symbol of one byte (with "</w>" when it ends a word): printable bytes first.
int64_t spec_byte_id(char c, bool end_of_word) {
  auto printable = [](int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  };
  int byte = (unsigned char)c, index = printable(byte) ? 0 : 188;
  for (int b = 0; b < byte; ++b) index += printable(b) == printable(byte);
  return index + (end_of_word ? 256 : 0);
}

Ids with_specials(Ids ids) {
  ids.insert(ids.begin(), kStartOfText);
  ids.push_back(kEndOfText);
  return ids;
}

std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "verbclip_test_tokenizer";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

}  // namespace

TEST_CASE("tokenizer: spec vectors (ecosystem.md 3.5)") {
  const Tokenizer* tok = openai_tokenizer();
  if (!tok) return;
  const std::vector<std::pair<std::string, Ids>> vectors = {
      {"a diagram", {49406, 320, 22697, 49407}},
      {"a dog", {49406, 320, 1929, 49407}},
      {"a cat", {49406, 320, 2368, 49407}},
      {"a photo of a playing guitar.", {49406, 320, 1125, 539, 320, 1629, 5084, 269, 49407}},
      {"brush hair", {49406, 8594, 2225, 49407}},
      {"Apply Eye Makeup", {49406, 4356, 3272, 5853, 49407}},
      {"ApplyEyeMakeup", {49406, 882, 75, 693, 693, 5853, 49407}},
      {"abseiling", {49406, 596, 567, 3299, 49407}},
      {"passing American football (not in game)",
       {49406, 6589, 2151, 1882, 263, 783, 530, 1063, 264, 49407}},
      {"It's 2 o'clock!!", {49406, 585, 568, 273, 334, 262, 6716, 748, 49407}},
      {"  Hello   World \n", {49406, 3306, 1002, 49407}},
      {"&amp;lt;3", {49406, 283, 274, 49407}},
      {"Laying something on the table on its side, not upright",
       {49406, 12333, 2006, 525, 518, 2175, 525, 902, 1145, 267, 783, 29818, 49407}},
  };
  CHECK(tok->vocab_size() == 49408);
  CHECK(tok->sot() == 49406);
  CHECK(tok->eot() == 49407);
  std::vector<std::string> texts;
  for (const auto& [text, ids] : vectors) {
    CHECK_MESSAGE(with_specials(tok->encode(text)) == ids, "text: " << text);
    texts.push_back(text);
  }
  // The same through tokenize: one padded row per text.
  Tensor t = tok->tokenize(texts);
  REQUIRE(t.shape() == Shape{int64_t(texts.size()), 77});
  REQUIRE(t.dtype() == DType::I64);
  std::vector<int64_t> all = t.to_vector<int64_t>();
  for (size_t r = 0; r < vectors.size(); ++r) {
    Ids row(all.begin() + r * 77, all.begin() + (r + 1) * 77);
    Ids want = vectors[r].second;
    want.resize(77, 0);
    CHECK_MESSAGE(row == want, "row " << r << ": " << vectors[r].first);
  }
  // "app l ye ye makeup</w>" is the documented BPE of the squashed UCF101 name.
  CHECK(tok->bpe("applyeyemakeup") ==
        std::vector<std::string>{"app", "l", "ye", "ye", "makeup</w>"});
}

TEST_CASE("tokenizer: byte symbols follow bytes_to_unicode") {
  auto want = spec_byte_vocab();
  REQUIRE(byte_vocabulary().size() == 256);
  CHECK(byte_vocabulary() == want);
  CHECK(byte_vocabulary()[0] == "!");
  CHECK(byte_vocabulary()[188] == "\u0100");  // Ā
  CHECK(byte_vocabulary()[255] == "\u0143");  // Ń
  CHECK(byte_encoder()[' '] == "\u0120");     // Ġ, as in GPT-2
  CHECK(byte_encoder()['a'] == "a");
  CHECK(byte_encoder()[0xAD] == "\u0143");  // soft hyphen is the last non-printable byte
  if (const Tokenizer* tok = openai_tokenizer()) {
    CHECK(tok->id_of("!") == 0);
    CHECK(tok->id_of("!</w>") == 256);
    CHECK(tok->id_of("\u0143</w>") == 511);
    CHECK(tok->id_of("<|startoftext|>") == 49406);
  }
}

TEST_CASE("tokenizer: cleaning (ftfy-lite, html unescape twice, whitespace, lowercase)") {
  CHECK(clean_text("  Hello   World \n") == "hello world");
  CHECK(clean_text("\t\r\n") == "");
  CHECK(clean_text("") == "");
  CHECK(clean_text("&amp;lt;3") == "<3");    // unescaped twice
  CHECK(clean_text("a&nbsp;b") == "a b");    // U+00A0 is whitespace
  CHECK(clean_text("It\u2019s") == "it's");  // ftfy uncurls quotes
  CHECK(clean_text("\u201Cquoted\u201D") == "\"quoted\"");
  CHECK(clean_text("\uFB01ne \uFF21\uFF22\uFF23") == "fine abc");  // ligature, fullwidth
  CHECK(clean_text("a\x01"
                   "b") == "ab");  // control characters removed
  CHECK(clean_text("\u00C0\u00C9\u00CE \u041F\u0420\u0418") ==
        "\u00E0\u00E9\u00EE \u043F\u0440\u0438");
  CHECK(clean_text("\u0130") == "i\u0307");  // İ lowercases to two code points
  CHECK(clean_text("\u039F\u0394\u039F\u03A3") == "\u03BF\u03B4\u03BF\u03C2");  // final sigma
  CHECK(clean_text("\u03A3\u0391") == "\u03C3\u03B1");                          // not final

  // Python's html.unescape rules.
  CHECK(html_unescape("&lt;&gt;&amp;&quot;&apos;") == "<>&\"'");
  CHECK(html_unescape("&lt") == "<");              // legacy names need no ';'
  CHECK(html_unescape("&notit;") == "\u00ACit;");  // longest legacy prefix
  CHECK(html_unescape("&bogus; & &;") == "&bogus; & &;");
  CHECK(html_unescape("&#65;&#x42;&#X43") == "ABC");
  CHECK(html_unescape("&#128;") == "\u20AC");  // Windows-1252 for C1 references
  CHECK(html_unescape("&#0;") == "\uFFFD");
  CHECK(html_unescape("&#x110000;") == "\uFFFD");
  CHECK(html_unescape("a&#1;b") == "ab");  // invalid code points vanish
  CHECK(html_unescape("&#x;") == "&#x;");
  CHECK(html_unescape("&eacute;&Eacute;") == "\u00E9\u00C9");  // case-sensitive names
}

TEST_CASE("tokenizer: pre-tokenisation pattern") {
  using P = std::vector<std::string>;
  CHECK(pre_tokenize("it's 2 o'clock!!") == P{"it", "'s", "2", "o", "'", "clock", "!!"});
  CHECK(pre_tokenize("we'll they're i'm you'd can't we've") ==
        P{"we", "'ll", "they", "'re", "i", "'m", "you", "'d", "can", "'t", "we", "'ve"});
  CHECK(pre_tokenize("2024") == P{"2", "0", "2", "4"});  // one digit per piece
  CHECK(pre_tokenize("abc123def") == P{"abc", "1", "2", "3", "def"});
  CHECK(pre_tokenize("hello!!'s") == P{"hello", "!!'", "s"});  // the run swallows the quote
  CHECK(pre_tokenize("a<|endoftext|>b") == P{"a", "<|endoftext|>", "b"});
  CHECK(pre_tokenize("(not in game)") == P{"(", "not", "in", "game", ")"});
  CHECK(pre_tokenize("na\u00EFve caf\u00E9") == P{"na\u00EFve", "caf\u00E9"});
  CHECK(pre_tokenize("x\u00B2\u00BD") == P{"x", "\u00B2", "\u00BD"});    // \p{N} includes No
  CHECK(pre_tokenize("\u65E5\u672C\u8A9E") == P{"\u65E5\u672C\u8A9E"});  // Lo run
  // Devanagari vowel signs are marks, not letters: they split the word.
  CHECK(pre_tokenize("\u0928\u092E\u0938\u094D\u0924\u0947") ==
        P{"\u0928\u092E\u0938", "\u094D", "\u0924", "\u0947"});
  CHECK(pre_tokenize("\U0001F600!") == P{"\U0001F600!"});
  CHECK(pre_tokenize("") == P{});
  CHECK(pre_tokenize("   ") == P{});
}

TEST_CASE("tokenizer: numbers, punctuation, empty text, padding") {
  const Tokenizer* tok = openai_tokenizer();
  if (!tok) return;
  // Single characters at a word end are ids 256.. by construction.
  CHECK(tok->encode("2024") == Ids{spec_byte_id('2', true), spec_byte_id('0', true),
                                   spec_byte_id('2', true), spec_byte_id('4', true)});
  CHECK(tok->encode("!") == Ids{256});
  CHECK(tok->encode("hello, world!") == Ids{3306, 267, 1002, 256});  // ids from the spec vectors
  CHECK(tok->encode("") == Ids{});
  CHECK(tok->encode(" \n\t ") == Ids{});
  Tensor t = tok->tokenize({"", "a dog"}, 8);
  CHECK(t.to_vector<int64_t>() ==
        Ids{49406, 49407, 0, 0, 0, 0, 0, 0, 49406, 320, 1929, 49407, 0, 0, 0, 0});
  CHECK(tok->tokenize({}).shape() == Shape{0, 77});
  CHECK_THROWS(tok->tokenize({"a"}, 1));
}

TEST_CASE("tokenizer: unicode, long words and decode round trips") {
  const Tokenizer* tok = openai_tokenizer();
  if (!tok) return;
  for (const std::string text : {"caf\u00E9 na\u00EFve", "\u65E5\u672C\u8A9E", "\U0001F600 party",
                                 "supercalifragilisticexpialidocious",
                                 "\u043F\u0440\u0438\u0432\u0435\u0442 \u043C\u0438\u0440"}) {
    Ids ids = tok->encode(text);
    CHECK(!ids.empty());
    for (int64_t id : ids) CHECK((id >= 0 && id < 49406));
    // Each piece decodes with "</w>" -> " ", so the words come back space-separated.
    std::string want = clean_text(text) + " ";
    CHECK_MESSAGE(tok->decode(ids) == want, "text: " << text);
  }
  Ids long_word = tok->encode("supercalifragilisticexpialidocious");
  CHECK(long_word.size() > 1);
  CHECK(long_word.size() < 34);  // merges happened
  CHECK(tok->decode({49406, 320, 1929, 49407}) == "<|startoftext|>a dog <|endoftext|>");
  CHECK(tok->decode({49406, 320, 1929, 49407, 0, 0}, /*skip_special=*/true) == "a dog ");
  CHECK(tok->decode({}) == "");
  // A lone continuation byte decodes to U+FFFD, as Python's errors="replace" does.
  CHECK(tok->decode({spec_byte_id(char(0x80), true)}) == "\uFFFD ");
  CHECK_THROWS_WITH_AS(tok->decode({49408}), doctest::Contains("49408"), Error);
  CHECK_THROWS(tok->decode({-1}));
  // Invalid UTF-8 input is read as U+FFFD rather than rejected.
  CHECK(tok->encode("a\xFF"
                    "b") == tok->encode("a\uFFFD"
                                        "b"));
}

TEST_CASE("tokenizer: truncation to the context length") {
  const Tokenizer* tok = openai_tokenizer();
  if (!tok) return;
  auto words = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "a ";
    return s;
  };
  // 75 words + start + end = 77 fits exactly.
  Ids full = tok->tokenize({words(75)}).to_vector<int64_t>();
  CHECK(full.front() == 49406);
  CHECK(full.back() == 49407);
  CHECK(full[75] == 320);
  CHECK_THROWS_WITH_AS(tok->tokenize({words(76)}), doctest::Contains("context length 77"), Error);
  Ids cut = tok->tokenize({words(100)}, 77, /*truncate=*/true).to_vector<int64_t>();
  REQUIRE(cut.size() == 77);
  CHECK(cut[0] == 49406);
  for (int i = 1; i < 76; ++i) CHECK(cut[size_t(i)] == 320);
  CHECK(cut[76] == 49407);  // end token forced last
  Ids short_cut = tok->tokenize({words(10)}, 5, true).to_vector<int64_t>();
  CHECK(short_cut == Ids{49406, 320, 320, 320, 49407});
}

TEST_CASE("tokenizer: tiny hand-made vocabularies (merges and Hugging Face files)") {
  // 512 byte symbols, then one id per merge: "do" = 512, "dog</w>" = 513, then the specials.
  std::vector<std::pair<std::string, std::string>> merges = {{"d", "o"}, {"do", "g</w>"}};
  auto check = [&](const Tokenizer& tok) {
    CHECK(tok.vocab_size() == 516);
    CHECK(tok.sot() == 514);
    CHECK(tok.eot() == 515);
    CHECK(tok.encode("Dog") == Ids{513});
    CHECK(tok.encode("dogs") == Ids{512, spec_byte_id('g', false), spec_byte_id('s', true)});
    CHECK(tok.encode("god") ==
          Ids{spec_byte_id('g', false), spec_byte_id('o', false), spec_byte_id('d', true)});
    CHECK(tok.tokenize({"dog"}, 4).to_vector<int64_t>() == Ids{514, 513, 515, 0});
    CHECK(tok.decode(tok.encode("a dog, a god")) == "a dog , a god ");
  };
  check(Tokenizer::from_merges(merges));

  nlohmann::json vocab = nlohmann::json::object();
  auto bytes = spec_byte_vocab();
  for (int i = 0; i < 256; ++i)
    vocab[bytes[size_t(i)]] = i, vocab[bytes[size_t(i)] + "</w>"] = 256 + i;
  vocab["do"] = 512;
  vocab["dog</w>"] = 513;
  vocab["<|startoftext|>"] = 514;
  vocab["<|endoftext|>"] = 515;
  std::string vj = temp_path("tiny_vocab.json"), mt = temp_path("tiny_merges.txt");
  write_file(vj, vocab.dump());
  write_file(mt, "#version: 0.2\nd o\ndo g</w>\n");
  check(Tokenizer::from_hf_files(vj, mt));

  write_file(mt, "#version: 0.2\nd o\nd x y\n");
  CHECK_THROWS_WITH_AS(Tokenizer::from_hf_files(vj, mt), doctest::Contains("line 3"), Error);
  write_file(mt, "#version: 0.2\nq z\n");  // "qz" is not in the vocabulary
  CHECK_THROWS_WITH_AS(Tokenizer::from_hf_files(vj, mt), doctest::Contains("qz"), Error);
  write_file(vj, "{not json");
  CHECK_THROWS_WITH_AS(Tokenizer::from_hf_files(vj, mt), doctest::Contains(vj.c_str()), Error);
}

TEST_CASE("tokenizer: Hugging Face files built from the OpenAI vocabulary give the same ids") {
  if (!openai_tokenizer()) return;
  // Read the gz here (zlib directly) and write HF's vocab.json / merges.txt by the spec's
  // construction, so the HF reader is checked against the spec vectors independently.
  gzFile f = gzopen(kVocabPath.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.append(buf, size_t(n));
  gzclose(f);
  std::vector<std::string> lines;
  size_t pos = 0;
  while (lines.size() < 1 + 48894) {
    size_t nl = data.find('\n', pos);
    lines.push_back(data.substr(pos, nl - pos));
    pos = nl + 1;
  }
  nlohmann::json vocab = nlohmann::json::object();
  auto bytes = spec_byte_vocab();
  int64_t id = 0;
  for (const auto& b : bytes) vocab[b] = id++;
  for (const auto& b : bytes) vocab[b + "</w>"] = id++;
  std::string merges = "#version: 0.2\n";
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string sym = lines[i];
    sym.erase(sym.find(' '), 1);
    vocab[sym] = id++;
    merges += lines[i] + "\n";
  }
  vocab["<|startoftext|>"] = id++;
  vocab["<|endoftext|>"] = id++;
  std::string vj = temp_path("vocab.json"), mt = temp_path("merges.txt");
  write_file(vj, vocab.dump());
  write_file(mt, merges);
  Tokenizer hf = Tokenizer::from_hf_files(vj, mt);
  CHECK(hf.vocab_size() == 49408);
  CHECK(with_specials(hf.encode("passing American football (not in game)")) ==
        Ids{49406, 6589, 2151, 1882, 263, 783, 530, 1063, 264, 49407});
  CHECK(with_specials(hf.encode("ApplyEyeMakeup")) == Ids{49406, 882, 75, 693, 693, 5853, 49407});
  CHECK(with_specials(hf.encode("Laying something on the table on its side, not upright")) ==
        Ids{49406, 12333, 2006, 525, 518, 2175, 525, 902, 1145, 267, 783, 29818, 49407});
}

TEST_CASE("tokenizer: missing or corrupt vocabulary files name the path") {
  std::string missing = temp_path("no_such_vocab.txt.gz");
  std::filesystem::remove(missing);
  CHECK_THROWS_WITH_AS(Tokenizer::from_bpe_file(missing), doctest::Contains(missing.c_str()),
                       Error);

  std::string corrupt = temp_path("corrupt.txt.gz");
  write_file(corrupt, std::string("\x1f\x8b\x08\x00garbage-after-a-gzip-magic", 30));
  CHECK_THROWS_WITH_AS(Tokenizer::from_bpe_file(corrupt), doctest::Contains(corrupt.c_str()),
                       Error);

  std::string not_bpe = temp_path("not_bpe.txt");
  write_file(not_bpe, "hello\nworld\n");
  CHECK_THROWS_WITH_AS(Tokenizer::from_bpe_file(not_bpe), doctest::Contains("#version"), Error);

  // A valid gzip that stops after a few merges: truncated.
  std::string short_gz = temp_path("short.txt.gz");
  gzFile f = gzopen(short_gz.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::string text = "\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\nt h\n";
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
  CHECK_THROWS_WITH_AS(Tokenizer::from_bpe_file(short_gz), doctest::Contains("truncated"), Error);
}

namespace {

// OpenAI's merge loop as written in simple_tokenizer.py (rescan the word, merge every
// occurrence of the lowest-ranked pair left to right): the reference for the heap version.
std::vector<std::string> reference_bpe(const std::string& piece,
                                       const std::vector<std::pair<std::string, std::string>>& merges) {
  std::map<std::pair<std::string, std::string>, size_t> ranks;
  for (size_t i = 0; i < merges.size(); ++i) ranks[merges[i]] = i;  // a repeat keeps the last
  std::vector<std::string> word;
  for (char c : piece) word.push_back(std::string(1, c));
  word.back() += "</w>";
  while (word.size() > 1) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks.find({word[i], word[i + 1]});
      if (it != ranks.end() && it->second < best) best = it->second, at = i;
    }
    if (best == SIZE_MAX) break;
    std::string a = word[at], b = word[at + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();)
      if (i + 1 < word.size() && word[i] == a && word[i + 1] == b) merged.push_back(a + b), i += 2;
      else merged.push_back(word[i++]);
    word = merged;
  }
  return word;
}

}  // namespace

TEST_CASE("tokenizer: the heap merge equals OpenAI's rescanning loop, and a long word is not quadratic") {
  // Random merge lists over "abc" whose later merges may use symbols made earlier or not
  // (real vocabularies never make a pair cheaper than the one that made its symbol; these
  // do, which is where a plain priority queue would differ from the reference).
  std::mt19937 gen(20);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::string> symbols{"a", "b", "c", "a</w>", "b</w>", "c</w>"};
    std::vector<std::pair<std::string, std::string>> merges;
    int m = 1 + int(gen() % 12);
    for (int k = 0; k < m; ++k) {
      std::string x = symbols[gen() % symbols.size()];
      std::string y = symbols[gen() % symbols.size()];
      if (x.find("</w>") != std::string::npos) continue;  // "</w>" ends a word: never on the left
      merges.push_back({x, y});
      symbols.push_back(x + y);
    }
    Tokenizer t = Tokenizer::from_merges(merges);
    for (int w = 0; w < 5; ++w) {
      std::string word;
      for (size_t len = 1 + gen() % 14; len > 0; --len) word += char('a' + gen() % 3);
      Ids want;
      for (const std::string& s : reference_bpe(word, merges)) want.push_back(t.id_of(s));
      CAPTURE(word);
      CAPTURE(trial);
      CHECK(t.encode(word) == want);
    }
  }
  // One 200 KB word of random letters: the rescanning loop needs minutes for it (about 9 s
  // for 30 KB; a 1 MB word hours), the heap a fraction of a second. The ids decode back.
  if (const Tokenizer* tok = openai_tokenizer()) {
    std::string word;
    for (int i = 0; i < 200000; ++i) word += char('a' + gen() % 26);
    Ids ids = tok->encode(word);
    CHECK(ids.size() > 1000);
    CHECK(tok->decode(ids) == word + " ");
  }
}
