// Run logs, progress line and plots: what every long-running app (pretrain-clip, train,
// eval) writes.
//
//   RunLog       <dir>/log.txt   readable, one timestamped line per event (also echoed to
//                                stdout unless quiet)
//                <dir>/log.jsonl one JSON object per line ({"event": "train", "step": ...})
//                                for plots and scripts; flushed on every write, so a
//                                crashed run keeps everything up to its last step.
//   Progress     the live line on stderr: epoch, step, loss, LR, items/s, ETA. On a TTY it
//                redraws in place; otherwise (logs, CI) it prints a plain line every
//                `every` steps and at the last step.
//   write_curves an SVG line chart (hand-written, no dependency) of one or more series.
#pragma once
#include <cstdint>
#include <cstdio>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace verbclip {

class RunLog {
 public:
  // Creates `dir` if needed. append: continue existing logs (resume), else start fresh.
  // write false: writes and prints nothing (data-parallel ranks other than 0).
  RunLog(const std::string& dir, bool append, bool echo = true, bool write = true);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // Each line or record is one write(): a killed run leaves no torn line. A failed write (a
  // full disk) throws naming the file.
  void info(const std::string& line);            // log.txt (+ stdout)
  void record(const nlohmann::ordered_json& j);  // log.jsonl; adds "time" (seconds since start)
  const std::string& dir() const { return dir_; }

  // Kill and resume: mark() stores both logs' lengths in a checkpoint's extras when it is
  // saved; rewind() (before a resumed run opens its logs) cuts what was written after that
  // checkpoint, since the resumed run writes those steps again. Returns the bytes dropped.
  void mark(std::map<std::string, std::string>& extra) const;
  static int64_t rewind(const std::string& dir, const std::map<std::string, std::string>& extra);

 private:
  std::string dir_;
  int text_ = -1;
  int json_ = -1;
  bool echo_;
  std::chrono::steady_clock::time_point start_;
};

// Every event of log.jsonl whose "event" equals `event`, in order (for curves after a resume).
std::vector<nlohmann::json> read_jsonl_events(const std::string& path, const std::string& event);

struct ProgressInfo {
  int64_t epoch = 0, epochs = 0;  // 1-based for display
  int64_t step = 0, steps = 0;    // optimizer steps done / in the whole run
  double loss = 0, lr = 0;
  std::string extra;              // e.g. "acc 83.1%"
};

class Progress {
 public:
  // every: on a non-TTY, print one line every `every` steps. quiet: never print.
  Progress(const std::string& label, int64_t every, bool quiet = false);
  // Call after each step; `items` is how many samples that step processed.
  void update(const ProgressInfo& p, int64_t items);
  void finish();  // ends the TTY line
  // Rate and ETA since construction (resumed runs count from the resume).
  double items_per_second() const;
  static std::string format_duration(double seconds);  // "1:02:03" / "2:03"

 private:
  std::string label_;
  int64_t every_;
  bool quiet_, tty_, drawn_ = false;
  int64_t items_ = 0, first_step_ = -1;
  std::chrono::steady_clock::time_point start_;
};

struct Series {
  std::string name;
  std::vector<double> x, y;
};

// s with < > & " as XML/HTML entities (SVG text, the report page).
std::string xml_escape(const std::string& s);

// A line chart of the series with axes, ticks and a legend, as SVG text (W x H pixels)...
std::string curves_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series, double W = 720, double H = 420);
// ... and written atomically to `path`.
void write_curves(const std::string& path, const std::string& title, const std::string& x_label,
                  const std::string& y_label, const std::vector<Series>& series);

// Memory of this process in MiB: resident now (/proc/self/statm) and the peak so far
// (getrusage's ru_maxrss); 0 where the system does not say.
double current_rss_mib();
double peak_rss_mib();

// Local time "YYYY-mm-dd HH:MM:SS".
std::string timestamp();

}  // namespace verbclip
