#include "apps/common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>

#include "data/util.h"
#include "engine/core/error.h"

namespace verbclip {

using vc::fail;

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> d(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = d[0];
    d[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return d[b.size()];
}

void flatten(const YAML::Node& node, const std::string& prefix, const std::string& source,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string k = kv.first.as<std::string>();
      flatten(kv.second, prefix.empty() ? k : prefix + "." + k, source, out);
    }
  } else if (node.IsSequence()) {
    std::string joined;
    for (size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar()) fail(source, ": '", prefix, "' must be a list of plain values");
      joined += (i ? "," : "") + node[i].as<std::string>();
    }
    out.emplace_back(prefix, joined);
  } else if (node.IsScalar()) {
    out.emplace_back(prefix, node.as<std::string>());
  } else if (node.IsNull()) {
    out.emplace_back(prefix, "");
  }
}

}  // namespace

void Config::declare(const std::string& key, const std::string& value, const std::string& help) {
  VC_CHECK(!entries_.count(key), "config: key '", key, "' declared twice");
  entries_[key] = Entry{value, help, "default"};
}

const Config::Entry& Config::entry(const std::string& key) const {
  auto it = entries_.find(key);
  VC_CHECK(it != entries_.end(), "config: no key '", key, "' (declared keys only)");
  return it->second;
}

void Config::set(const std::string& key, const std::string& value, const std::string& source) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    std::string best;
    size_t best_d = SIZE_MAX;
    for (const auto& kv : entries_) {
      size_t d = edit_distance(key, kv.first);
      if (d < best_d) best_d = d, best = kv.first;
    }
    fail(source, ": unknown config key '", vc::data::excerpt(key), "'",
         best_d <= std::max<size_t>(3, key.size() / 3) ? " (did you mean '" + best + "'?)" : std::string());
  }
  // to_yaml() (the config stored in logs and checkpoints) cannot hold other bytes: yaml-cpp
  // writes U+FFFD for them, so a resumed run would read another value (found by fuzz_config).
  if (!vc::data::is_valid_utf8(value))
    fail(source, ": the value of '", key, "' is not valid UTF-8: '", vc::data::excerpt(value), "'");
  it->second.value = value;
  it->second.source = source;
}

void Config::load_yaml_text(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(source, ": not valid YAML: ", e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) fail(source, ": a config must be a map of keys to values");
  std::vector<std::pair<std::string, std::string>> kv;
  try {
    for (const auto& item : root) {
      std::string k = item.first.as<std::string>();
      if (k == "BASE") continue;  // handled by load_yaml_file
      flatten(item.second, k, source, kv);
    }
  } catch (const YAML::Exception& e) {  // e.g. a key that is itself a map or a list
    fail(source, ": not a config of KEY: value entries: ", e.what());
  }
  for (const auto& [k, v] : kv) set(k, v, source);
}

void Config::load_yaml_file(const std::string& path) {
  std::vector<std::string> stack;
  // Files are compared by their canonical path, so a loop spelt "./a.yaml" or "../x/a.yaml"
  // is found too; a chain deeper than kMaxBaseDepth is an error, not a stack overflow.
  constexpr size_t kMaxBaseDepth = 64;
  std::function<void(const std::string&)> load = [&](const std::string& p) {
    if (!std::filesystem::is_regular_file(p)) {
      if (stack.empty()) fail("config file '", p, "' does not exist");
      fail(stack.back(), ": BASE file '", p, "' does not exist");
    }
    std::error_code ec;
    std::string canonical = std::filesystem::weakly_canonical(p, ec).string();
    if (ec) canonical = p;
    if (std::find(stack.begin(), stack.end(), canonical) != stack.end())
      fail(p, ": BASE includes itself (a loop of ", stack.size(), " file(s) from ", stack.front(), ")");
    if (stack.size() >= kMaxBaseDepth) fail(p, ": BASE chain deeper than ", kMaxBaseDepth, " files");
    YAML::Node root;
    try {
      root = YAML::LoadFile(p);
    } catch (const YAML::Exception& e) {
      fail(p, ": not valid YAML: ", e.what());
    }
    stack.push_back(canonical);
    if (root.IsMap() && root["BASE"]) {
      YAML::Node base = root["BASE"];
      std::vector<std::string> bases;
      if (base.IsScalar()) {
        bases.push_back(base.as<std::string>());
      } else if (base.IsSequence()) {
        for (const auto& b : base) {
          if (!b.IsScalar()) fail(p, ": BASE must be a file name or a list of file names");
          bases.push_back(b.as<std::string>());
        }
      } else if (!base.IsNull()) {
        fail(p, ": BASE must be a file name or a list of file names");
      }
      for (const std::string& b : bases) {
        if (b.empty()) continue;
        std::filesystem::path bp(b);
        if (bp.is_relative()) bp = std::filesystem::path(p).parent_path() / bp;
        load(bp.string());
      }
    }
    std::stringstream ss;
    ss << root;
    load_yaml_text(ss.str(), p);
    stack.pop_back();
  };
  load(path);
}

void Config::apply_opts(const std::vector<std::string>& kv) {
  VC_CHECK(kv.size() % 2 == 0, "--opts takes KEY VALUE pairs; '", kv.empty() ? "" : kv.back(),
           "' has no value");
  for (size_t i = 0; i < kv.size(); i += 2) set(kv[i], kv[i + 1], "--opts");
}

std::string Config::str(const std::string& key) const { return entry(key).value; }
const std::string& Config::source(const std::string& key) const { return entry(key).source; }

int64_t Config::integer(const std::string& key) const {
  const Entry& e = entry(key);
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(e.value.c_str(), &end, 10);
  if (e.value.empty() || *end != '\0' || errno == ERANGE)
    fail("config ", key, " = '", e.value, "' (", e.source, ") is not an integer");
  return v;
}

double Config::number(const std::string& key) const {
  const Entry& e = entry(key);
  char* end = nullptr;
  double v = std::strtod(e.value.c_str(), &end);
  if (e.value.empty() || *end != '\0') fail("config ", key, " = '", e.value, "' (", e.source, ") is not a number");
  return v;
}

bool Config::boolean(const std::string& key) const {
  const Entry& e = entry(key);
  std::string v = e.value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  fail("config ", key, " = '", e.value, "' (", e.source, ") is not true or false");
}

std::vector<std::string> Config::list(const std::string& key) const {
  std::vector<std::string> out;
  std::stringstream ss(entry(key).value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
  }
  return out;
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> k;
  for (const auto& kv : entries_) k.push_back(kv.first);
  return k;
}

std::string Config::to_yaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::vector<std::string> open;  // the current nesting
  for (const auto& [key, e] : entries_) {
    std::vector<std::string> parts;
    std::stringstream ss(key);
    std::string p;
    while (std::getline(ss, p, '.')) parts.push_back(p);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) ++common;
    while (open.size() > common) out << YAML::EndMap, open.pop_back();
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      out << YAML::Key << parts[i] << YAML::Value << YAML::BeginMap;
      open.push_back(parts[i]);
    }
    out << YAML::Key << parts.back() << YAML::Value << e.value;
    if (!e.help.empty()) out << YAML::Comment(e.help);
  }
  while (!open.empty()) out << YAML::EndMap, open.pop_back();
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string Config::help() const {
  std::string s;
  for (const auto& [k, e] : entries_) s += "  " + k + " (" + e.value + "): " + e.help + "\n";
  return s;
}

void split_opts(int argc, char** argv, std::vector<char*>& args, std::vector<std::string>& opts) {
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--opts") {
      for (int k = i + 1; k < argc; ++k) opts.push_back(argv[k]);
      return;
    }
    args.push_back(argv[i]);
  }
}

}  // namespace verbclip
