// Run configs: YAML files with X-CLIP-style upper-case dotted keys (TRAIN.LR, DATA.ROOT),
// `BASE: [other.yaml]` inheritance, and `--opts KEY VALUE ...` overrides on the command line.
//
// An app declares every key with its default and a help line; anything else — in a file
// or in --opts — is an error naming the key, where it came from, and the closest known key.
// Values are kept as YAML scalar text and parsed on access, with errors naming the key.
// to_yaml() writes the resolved config (into logs and checkpoints: TrainingState::config).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace verbclip {

class Config {
 public:
  void declare(const std::string& key, const std::string& default_value, const std::string& help);
  bool has(const std::string& key) const { return entries_.count(key) != 0; }

  // Nested maps flatten to dotted keys; a sequence becomes "a,b,c". BASE files (relative to
  // the including file) are read first, so the including file wins.
  void load_yaml_file(const std::string& path);
  void load_yaml_text(const std::string& text, const std::string& source);
  void set(const std::string& key, const std::string& value, const std::string& source);
  // KEY VALUE pairs, e.g. {"TRAIN.LR", "1e-4", "TRAIN.EPOCHS", "3"}.
  void apply_opts(const std::vector<std::string>& key_values);

  std::string str(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  bool boolean(const std::string& key) const;  // true/false, yes/no, on/off, 1/0
  std::vector<std::string> list(const std::string& key) const;  // comma-separated
  // Where the current value came from: "default", a file name, "--opts", a flag.
  const std::string& source(const std::string& key) const;

  std::string to_yaml() const;  // nested, in key order, with each key's help as a comment
  std::string help() const;     // "KEY (default): help" lines
  std::vector<std::string> keys() const;

 private:
  struct Entry {
    std::string value, help, source;
  };
  const Entry& entry(const std::string& key) const;
  std::map<std::string, Entry> entries_;
};

// Splits argv at "--opts": everything before goes to cxxopts, everything after is KEY VALUE pairs.
void split_opts(int argc, char** argv, std::vector<char*>& args, std::vector<std::string>& opts);

}  // namespace verbclip
