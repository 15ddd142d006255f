#include "data/annotations.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/util.h"

namespace vc::data {

BadInput parse_bad_input(const std::string& s) {
  if (s == "fail") return BadInput::Fail;
  if (s == "skip") return BadInput::Skip;
  fail("unknown bad-input policy '", s, "' (use fail or skip)");
}

void Problems::report(const std::string& message) {
  if (policy == BadInput::Fail) fail(message);
  warnings.push_back(message);
  if (!quiet) std::cerr << "warning: " << message << " (skipped)\n";
}

// ---------------------------------------------------------------- CSV

std::vector<CsvRow> parse_csv(const std::string& text, const std::string& name, char sep) {
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string field;
  int64_t line = 1;
  row.line = 1;
  bool in_quotes = false, field_was_quoted = false, row_has_content = false;
  auto end_field = [&] {
    row.fields.push_back(field);
    field.clear();
    field_was_quoted = false;
  };
  auto end_row = [&] {
    end_field();
    // A blank line is no row at all.
    if (row_has_content) rows.push_back(row);
    row = CsvRow{};
    row_has_content = false;
  };
  int64_t quote_line = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
        else in_quotes = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"') {
      if (!field.empty() && !field_was_quoted)
        fail(name, ":", line, ": stray quote inside an unquoted field");
      in_quotes = field_was_quoted = row_has_content = true;
      quote_line = line;
    } else if (c == sep) {
      end_field();
      row_has_content = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
      row.line = ++line;
    } else {
      if (field_was_quoted)
        fail(name, ":", line, ": text after a closing quote (a field must be quoted whole)");
      if (c != ' ' && c != '\t') row_has_content = true;
      field += c;
    }
  }
  if (in_quotes) fail(name, ":", quote_line, ": quoted field is never closed");
  if (row_has_content || !field.empty()) end_row();
  return rows;
}

// ---------------------------------------------------------------- labels

int64_t LabelSet::id_of(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return int64_t(i);
  return -1;
}

namespace {
// Orders (id, name, where) pairs by id and checks ids are exactly 0..C-1, names unique.
LabelSet assemble_labels(std::vector<std::tuple<int64_t, std::string, std::string>> items,
                         const std::string& path) {
  if (items.empty()) fail("label file ", path, " holds no classes");
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  LabelSet set;
  std::map<std::string, std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    auto& [id, name, where] = items[i];
    if (id != int64_t(i)) {
      if (id < int64_t(i)) fail(where, ": class id ", id, " appears twice");
      fail(path, ": class ids must be 0..", items.size() - 1, " without gaps; id ", i,
           " is missing");
    }
    if (name.empty()) fail(where, ": class ", id, " has an empty name");
    auto [it, fresh] = seen.emplace(name, where);
    if (!fresh) fail(where, ": class name '", excerpt(name), "' already used at ", it->second);
    set.names.push_back(name);
  }
  return set;
}
}  // namespace

LabelSet read_labels_csv(const std::string& path) {
  auto rows = parse_csv(read_file_bytes(path, "label file"), path);
  std::vector<std::tuple<int64_t, std::string, std::string>> items;
  for (size_t r = 0; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    std::string where = path + ":" + std::to_string(row.line);
    if (row.fields.size() != 2)
      fail(where, ": expected 2 fields 'id,name', got ", row.fields.size(),
           " (quote names that contain commas)");
    int64_t id;
    if (!parse_int(trim(row.fields[0]), id)) {
      if (r == 0) continue;  // the "id,name" header
      fail(where, ": class id '", excerpt(row.fields[0], 40), "' is not an integer");
    }
    items.emplace_back(id, row.fields[1], where);
  }
  return assemble_labels(std::move(items), path);
}

LabelSet read_labels_json(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_bytes(path, "label file"));
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1E400
    fail("label file ", path, " is not valid JSON: ", excerpt(e.what(), 300));
  }
  std::vector<std::tuple<int64_t, std::string, std::string>> items;
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_string()) fail(path, ": entry ", i, " is not a string");
      items.emplace_back(int64_t(i), j[i].get<std::string>(), path + "[" + std::to_string(i) + "]");
    }
  } else if (j.is_object()) {
    for (auto& [key, value] : j.items()) {
      int64_t id;
      if (!parse_int(key, id)) fail(path, ": key '", excerpt(key, 40), "' is not a class id");
      if (!value.is_string()) fail(path, ": class ", key, " is not a string");
      items.emplace_back(id, value.get<std::string>(), path + "[\"" + key + "\"]");
    }
  } else {
    fail(path, ": expected a JSON object {\"0\": name, ...} or a list of names");
  }
  return assemble_labels(std::move(items), path);
}

LabelSet read_labels_txt(const std::string& path) {
  auto lines = read_lines(path, "label file");
  std::vector<std::tuple<int64_t, std::string, std::string>> items;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string name = trim(lines[i]);
    if (name.empty()) continue;
    items.emplace_back(int64_t(items.size()), name, path + ":" + std::to_string(i + 1));
  }
  return assemble_labels(std::move(items), path);
}

LabelSet read_labels(const std::string& path) {
  std::string p = lower(path);
  if (ends_with(p, ".csv")) return read_labels_csv(path);
  if (ends_with(p, ".json")) return read_labels_json(path);
  return read_labels_txt(path);
}

void write_labels_csv(const std::string& path, const LabelSet& labels) {
  std::string out = "id,name\n";
  for (size_t i = 0; i < labels.names.size(); ++i) {
    const std::string& n = labels.names[i];
    bool quote = n.find_first_of(",\"\n") != std::string::npos;
    std::string field = n;
    if (quote) {
      field = "\"";
      for (char c : n) field += c == '"' ? std::string("\"\"") : std::string(1, c);
      field += "\"";
    }
    out += std::to_string(i) + "," + field + "\n";
  }
  write_text_file(path, out);
}

std::string split_camel_case(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i > 0 && std::isupper(static_cast<unsigned char>(name[i])) && name[i - 1] != ' ')
      out += ' ';
    out += name[i];
  }
  return out;
}

// ---------------------------------------------------------------- lists

ListFormat parse_list_format(const std::string& s) {
  if (s == "auto") return ListFormat::Auto;
  if (s == "video") return ListFormat::Video;
  if (s == "rawframe") return ListFormat::Rawframe;
  if (s == "rawframe_offset") return ListFormat::RawframeOffset;
  if (s == "csv") return ListFormat::Csv;
  if (s == "json") return ListFormat::Json;
  fail("unknown list format '", s, "' (use auto, video, rawframe, rawframe_offset, csv or json)");
}

namespace {

struct LineError {
  std::string why;
};

int64_t int_field(const std::string& s, const char* what) {
  int64_t v;
  if (!parse_int(s, v)) throw LineError{std::string(what) + " '" + excerpt(s, 40) + "' is not an integer"};
  return v;
}

void check_labels(const VideoRecord& r, const ListOptions& opt) {
  if (r.labels.empty() && opt.require_label) throw LineError{"no label"};
  for (int64_t l : r.labels) {
    if (l < 0) throw LineError{"negative label " + std::to_string(l)};
    if (opt.num_classes >= 0 && l >= opt.num_classes)
      throw LineError{"label " + std::to_string(l) + " out of range for " +
                      std::to_string(opt.num_classes) + " classes"};
  }
}

VideoRecord parse_columns(const std::vector<std::string>& cols, ListFormat fmt) {
  VideoRecord r;
  if (cols.empty()) throw LineError{"no path"};
  size_t first_label = 0;
  switch (fmt) {
    case ListFormat::Video:
      first_label = 1;
      break;
    case ListFormat::Rawframe:
      if (cols.size() < 2) throw LineError{"expected 'frame_dir total_frames label'"};
      r.total_frames = int_field(cols[1], "total_frames");
      first_label = 2;
      break;
    case ListFormat::RawframeOffset:
      if (cols.size() < 3) throw LineError{"expected 'frame_dir offset total_frames label'"};
      r.offset = int_field(cols[1], "offset");
      r.total_frames = int_field(cols[2], "total_frames");
      if (r.offset < 0) throw LineError{"negative offset"};
      first_label = 3;
      break;
    default:
      throw LineError{"internal: unexpected list format"};
  }
  r.path = cols[0];
  if (r.total_frames == 0 || r.total_frames < -1) throw LineError{"total_frames must be positive"};
  for (size_t i = first_label; i < cols.size(); ++i) r.labels.push_back(int_field(cols[i], "label"));
  return r;
}

std::vector<VideoRecord> parse_json_list(const std::string& text, const std::string& path,
                                         const ListOptions& opt, Problems& problems) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1E400
    fail("list file ", path, " is not valid JSON: ", excerpt(e.what(), 300));
  }
  if (!j.is_array()) fail(path, ": expected a JSON list of {frame_dir|filename, label} objects");
  std::vector<VideoRecord> out;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string where = path + "[" + std::to_string(i) + "]";
    try {
      const auto& e = j[i];
      if (!e.is_object()) throw LineError{"not an object"};
      VideoRecord r;
      if (e.contains("frame_dir")) r.path = e["frame_dir"].get<std::string>();
      else if (e.contains("filename")) r.path = e["filename"].get<std::string>();
      else throw LineError{"no frame_dir or filename"};
      if (e.contains("total_frames")) r.total_frames = e["total_frames"].get<int64_t>();
      if (e.contains("offset")) r.offset = e["offset"].get<int64_t>();
      if (e.contains("label")) {
        if (e["label"].is_array())
          for (auto& l : e["label"]) r.labels.push_back(l.get<int64_t>());
        else
          r.labels.push_back(e["label"].get<int64_t>());
      }
      check_labels(r, opt);
      r.source = where;
      out.push_back(std::move(r));
    } catch (const LineError& e) {
      problems.report(where + ": " + e.why);
    } catch (const nlohmann::json::exception& e) {
      problems.report(where + ": " + excerpt(e.what(), 300));
    }
  }
  return out;
}

}  // namespace

std::vector<VideoRecord> read_list(const std::string& path, const ListOptions& opt,
                                   Problems& problems) {
  return parse_list_text(read_file_bytes(path, "list file"), path, opt, problems);
}

std::vector<VideoRecord> parse_list_text(const std::string& text_in, const std::string& path,
                                         const ListOptions& opt, Problems& problems) {
  if (opt.format == ListFormat::Json ||
      (opt.format == ListFormat::Auto && ends_with(lower(path), ".json")))
    return parse_json_list(text_in, path, opt, problems);
  auto lines = split_lines(text_in);
  ListFormat fmt = opt.format;
  size_t auto_cols = 0;
  std::vector<VideoRecord> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string text = trim(lines[i]);
    if (text.empty() || text[0] == '#') continue;
    std::string where = path + ":" + std::to_string(i + 1);
    try {
      VideoRecord r;
      if (fmt == ListFormat::Csv) {
        auto cols = split_char(text, opt.csv_sep);
        if (cols.size() < 1 || trim(cols[0]).empty()) throw LineError{"empty path"};
        r.path = trim(cols[0]);
        for (size_t c = 1; c < cols.size(); ++c) r.labels.push_back(int_field(trim(cols[c]), "label"));
      } else {
        auto cols = split_ws(text);
        ListFormat f = fmt;
        if (f == ListFormat::Auto) {
          // The first line decides; later lines must have the same columns (a line with
          // a different count is malformed, not another format).
          if (auto_cols == 0) auto_cols = cols.size();
          if (cols.size() != auto_cols)
            throw LineError{"has " + std::to_string(cols.size()) + " columns, earlier lines " +
                            std::to_string(auto_cols) + " (use an explicit list format for "
                            "multi-label lists)"};
          f = cols.size() <= 2   ? ListFormat::Video
              : cols.size() == 3 ? ListFormat::Rawframe
              : cols.size() == 4 ? ListFormat::RawframeOffset
                                 : ListFormat::Auto;
          if (f == ListFormat::Auto)
            throw LineError{"has " + std::to_string(cols.size()) +
                            " columns; cannot guess the list format"};
        }
        r = parse_columns(cols, f);
      }
      check_labels(r, opt);
      r.source = where;
      out.push_back(std::move(r));
    } catch (const LineError& e) {
      problems.report(where + ": " + e.why + ": '" + excerpt(text) + "'");
    }
  }
  return out;
}

std::vector<VideoRecord> read_list(const std::string& path, const ListOptions& opt) {
  Problems p;
  return read_list(path, opt, p);
}

std::string format_record(const VideoRecord& r) {
  std::string s = r.path;
  if (r.offset != 0) s += " " + std::to_string(r.offset);
  if (r.total_frames >= 0) s += " " + std::to_string(r.total_frames);
  for (int64_t l : r.labels) s += " " + std::to_string(l);
  return s;
}

void write_list(const std::string& path, const std::vector<VideoRecord>& records) {
  std::string out;
  for (const auto& r : records) out += format_record(r) + "\n";
  write_text_file(path, out);
}

}  // namespace vc::data
