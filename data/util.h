// Small helpers the data layer shares: files, strings, integer parsing with good messages.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.h"

namespace vc::data {

using vc::fail;

// Whole file as bytes; throws "cannot open <what> <path>: <reason>".
std::string read_file_bytes(const std::string& path, const char* what = "file");
void write_file_bytes(const std::string& path, const void* data, size_t size);
void write_text_file(const std::string& path, const std::string& text);
// Lines without their '\n' (and a trailing '\r' removed, for CRLF files).
std::vector<std::string> read_lines(const std::string& path, const char* what = "file");
// The same from text in memory: LF or CRLF line ends, no trailing empty line.
std::vector<std::string> split_lines(const std::string& text);

std::string trim(const std::string& s);
std::string lower(std::string s);
std::vector<std::string> split_ws(const std::string& s);  // on runs of spaces/tabs
std::vector<std::string> split_char(const std::string& s, char sep);
bool starts_with(const std::string& s, const std::string& p);
bool ends_with(const std::string& s, const std::string& p);
// Text from a user's file made safe for a one-line message: at most `max` bytes (then
// "... (N bytes)"), control characters and bytes that are not valid UTF-8 as \xNN.
std::string excerpt(const std::string& text, size_t max = 120);
bool is_valid_utf8(const std::string& text);
// Parses a whole string as an integer; false on anything else.
bool parse_int(const std::string& s, int64_t& out);

// "a/b" joining that leaves absolute right-hand paths alone (lists may hold absolute paths).
std::string join_path(const std::string& root, const std::string& rel);
bool path_exists(const std::string& p);
bool is_directory(const std::string& p);

// Expands a frame-name template with one integer: python style "img_{:05d}.jpg",
// "{:05}", "{}", "{:d}", or printf style "img_%05d.jpg".
std::string format_frame_name(const std::string& tmpl, int64_t index);
// Throws naming the template when it has no (or an unsupported) placeholder.
void check_frame_template(const std::string& tmpl);

}  // namespace vc::data
