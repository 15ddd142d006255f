// Annotation files (ecosystem.md §1.1, §1.3): list files that name the videos and their
// labels, and label files that name the classes. Every parse error names the file and line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vc::data {

// ---------------------------------------------------------------- bad-input policy
// Fail: the first bad line or frame throws (default for evaluation: a silently smaller
// test set changes the reported accuracy). Skip: warn on stderr, count, go on (default for
// training); the count is reported at the end, so nothing disappears silently.
enum class BadInput { Fail, Skip };
BadInput parse_bad_input(const std::string& s);  // "fail" | "skip"

// Collects the warnings of a Skip policy; the message of the first error under Fail.
struct Problems {
  BadInput policy = BadInput::Fail;
  std::vector<std::string> warnings;
  bool quiet = false;  // tests turn the stderr echo off
  // Under Fail throws `message`; under Skip records it and prints "warning: message".
  void report(const std::string& message);
  size_t count() const { return warnings.size(); }
};

// ---------------------------------------------------------------- CSV
// RFC 4180 CSV: fields separated by `sep`, double-quoted fields may hold separators, quotes
// ("" inside quotes) and newlines. Returns rows with the 1-based line each row starts on.
struct CsvRow {
  std::vector<std::string> fields;
  int64_t line = 0;
};
std::vector<CsvRow> parse_csv(const std::string& text, const std::string& name, char sep = ',');

// ---------------------------------------------------------------- label files
struct LabelSet {
  std::vector<std::string> names;  // names[id]
  int64_t size() const { return int64_t(names.size()); }
  int64_t id_of(const std::string& name) const;  // -1 when absent
};

// By extension: .csv ("id,name" with or without the header; ids must be 0..C-1 in any
// order), .json ({"0": "name", ...} or ["name", ...]), anything else: one name per line
// (mmaction2 label maps). Throws naming the file and line on duplicates, gaps, bad ids.
LabelSet read_labels(const std::string& path);
LabelSet read_labels_csv(const std::string& path);
LabelSet read_labels_json(const std::string& path);
LabelSet read_labels_txt(const std::string& path);
void write_labels_csv(const std::string& path, const LabelSet& labels);

// TC-CLIP's `parse_ucf101` option: "ApplyEyeMakeup" -> "Apply Eye Makeup" (a space before
// every capital that follows another character).
std::string split_camel_case(const std::string& name);

// ---------------------------------------------------------------- list files
// One video. `path` is a frame directory (rawframes) or a video file name; frames are
// read from root/path (see dataset.h). total_frames = -1 when the list does not say
// (the dataset counts the frames on disk).
struct VideoRecord {
  std::string path;
  int64_t offset = 0;        // first frame of the clip within the directory (offset lists)
  int64_t total_frames = -1;
  std::vector<int64_t> labels;  // usually one; empty = unlabelled (inference lists)
  std::string source;        // "file:line" for messages
  int64_t label() const { return labels.empty() ? -1 : labels[0]; }
};

enum class ListFormat {
  Auto,            // by column count of the lines: 1-2 -> Video, 3 -> Rawframe, 4 -> RawframeOffset
  Video,           // "path [label ...]"            (mmaction2 VideoDataset, ViFi/TC-CLIP splits)
  Rawframe,        // "frame_dir total_frames [label ...]"
  RawframeOffset,  // "frame_dir offset total_frames [label ...]"
  Csv,             // "path<sep>label"              (PySlowFast / STDD train.csv)
  Json,            // [{"frame_dir"|"filename": ..., "total_frames": n, "offset": k, "label": l}]
};
ListFormat parse_list_format(const std::string& s);  // auto|video|rawframe|rawframe_offset|csv|json

struct ListOptions {
  ListFormat format = ListFormat::Auto;
  char csv_sep = ',';
  int64_t num_classes = -1;  // when >= 0, labels outside [0, num_classes) are bad lines
  bool require_label = true;  // false: inference lists, missing label becomes -1
};

// Parses a list file. Blank lines and lines starting with '#' are ignored; trailing
// spaces and CRLF are tolerated. A line that does not parse goes to `problems` as
// "<file>:<line>: <why>: '<line text>'".
std::vector<VideoRecord> read_list(const std::string& path, const ListOptions& opt,
                                   Problems& problems);
// Fail-policy convenience.
std::vector<VideoRecord> read_list(const std::string& path, const ListOptions& opt = {});
// The parser behind read_list, on the file's bytes in memory (the fuzz target's entry point);
// `name` stands for the path in messages and picks JSON by its extension under Auto.
std::vector<VideoRecord> parse_list_text(const std::string& text, const std::string& name,
                                         const ListOptions& opt, Problems& problems);

// Writes "frame_dir total label" (rawframe) or "path label" (video, when total is unknown).
void write_list(const std::string& path, const std::vector<VideoRecord>& records);
std::string format_record(const VideoRecord& r);

}  // namespace vc::data
