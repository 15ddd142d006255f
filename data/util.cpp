#include "data/util.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vc::data {

std::string read_file_bytes(const std::string& path, const char* what) {
  if (is_directory(path)) fail("cannot open ", what, " ", path, ": it is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", what, " ", path, ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("cannot read ", what, " ", path);
  return ss.str();
}

void write_file_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("cannot create ", path, ": ", std::strerror(errno));
  out.write(static_cast<const char*>(data), std::streamsize(size));
  if (!out) fail("cannot write ", path, ": ", std::strerror(errno));
}

void write_text_file(const std::string& path, const std::string& text) {
  write_file_bytes(path, text.data(), text.size());
}

std::vector<std::string> read_lines(const std::string& path, const char* what) {
  return split_lines(read_file_bytes(path, what));
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

namespace {

// Bytes of the whole, shortest-form UTF-8 sequence of a non-ASCII lead byte at text[i]; 0 when
// it is not one (a stray continuation, overlong, a surrogate, above U+10FFFF, cut short).
size_t utf8_length_at(const std::string& text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  bool ok = n > 0 && i + n <= text.size();
  for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
  if (ok && n == 3) {
    const auto c1 = static_cast<unsigned char>(text[i + 1]);
    ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
  }
  if (ok && n == 4) {
    const auto c1 = static_cast<unsigned char>(text[i + 1]);
    ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);  // overlong, > U+10FFFF
  }
  return ok ? n : 0;
}

}  // namespace

bool is_valid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_length_at(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string excerpt(const std::string& text, size_t max) {
  std::string out;
  auto hex = [&](unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02X", c);
    out += buf;
  };
  size_t i = 0;
  while (i < text.size() && i < max) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      hex(c), ++i;
      continue;
    }
    if (c < 0x80) {
      out += char(c), ++i;
      continue;
    }
    // A whole, shortest-form UTF-8 sequence is kept; anything else is escaped byte by byte.
    const size_t n = utf8_length_at(text, i);
    const bool ok = n > 0;
    if (!ok) {
      hex(c), ++i;
      continue;
    }
    out.append(text, i, n), i += n;
  }
  if (i < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string trim(const std::string& s) {
  // The same whitespace as split_ws (isspace): a line of only "\f" or "\v" is blank, not a
  // line with no columns (which read out of bounds; found by fuzz_list_file).
  const char* ws = " \t\r\n\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream ss(s);
  std::string tok;
  while (ss >> tok) out.push_back(tok);
  return out;
}

std::vector<std::string> split_char(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

bool starts_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    if (v > (INT64_MAX - 9) / 10) return false;  // overflow
    v = v * 10 + (s[i] - '0');
  }
  out = s[0] == '-' ? -v : v;
  return true;
}

std::string join_path(const std::string& root, const std::string& rel) {
  if (root.empty() || (!rel.empty() && rel[0] == '/')) return rel;
  if (root.back() == '/') return root + rel;
  return root + "/" + rel;
}

bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

bool is_directory(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

namespace {
// Finds the placeholder: [begin, end) and its zero-pad width (0 = none).
bool find_placeholder(const std::string& t, size_t& b, size_t& e, int& width) {
  width = 0;
  size_t brace = t.find('{');
  if (brace != std::string::npos) {
    size_t close = t.find('}', brace);
    if (close == std::string::npos) return false;
    std::string spec = t.substr(brace + 1, close - brace - 1);  // "", ":05d", ":05", ":d"
    if (!spec.empty()) {
      if (spec[0] != ':') return false;
      spec = spec.substr(1);
      if (!spec.empty() && spec.back() == 'd') spec.pop_back();
      for (char c : spec)
        if (c < '0' || c > '9') return false;
      if (!spec.empty()) width = std::stoi(spec);
    }
    b = brace, e = close + 1;
    return true;
  }
  size_t pct = t.find('%');
  if (pct == std::string::npos) return false;
  size_t i = pct + 1;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  if (i >= t.size() || t[i] != 'd') return false;
  std::string digits = t.substr(pct + 1, i - pct - 1);
  if (!digits.empty()) width = std::stoi(digits);
  b = pct, e = i + 1;
  return true;
}
}  // namespace

void check_frame_template(const std::string& tmpl) {
  size_t b, e;
  int w;
  if (!find_placeholder(tmpl, b, e, w))
    fail("frame template '", tmpl,
         "' has no integer placeholder (use e.g. img_{:05d}.jpg or img_%05d.jpg)");
}

std::string format_frame_name(const std::string& tmpl, int64_t index) {
  size_t b, e;
  int width;
  if (!find_placeholder(tmpl, b, e, width)) check_frame_template(tmpl);
  std::string num = std::to_string(index);
  if (int(num.size()) < width) num = std::string(width - num.size(), '0') + num;
  return tmpl.substr(0, b) + num + tmpl.substr(e);
}

}  // namespace vc::data
