// Timing and JSON helpers shared by the benchmark programs.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace vc::bench {

// Median seconds of `reps` calls after one warm-up call.
inline double time_median(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Fastest of `reps` calls: for a peak, where any slower run only measures interference.
inline double time_min(const std::function<void()>& fn, int reps) {
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  return best;
}

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// A minimal JSON writer: objects and arrays of numbers and strings, enough for reports.
class Json {
 public:
  Json& key(const std::string& k) {
    sep();
    os_ << '"' << k << "\": ";
    fresh_ = true;
    return *this;
  }
  Json& value(double v) {
    sep();
    os_ << v;
    return *this;
  }
  Json& value(const std::string& s) {
    sep();
    os_ << '"' << s << '"';
    return *this;
  }
  Json& begin_object() { return open('{'); }
  Json& end_object() { return close('}'); }
  Json& begin_array() { return open('['); }
  Json& end_array() { return close(']'); }
  std::string str() const { return os_.str(); }

 private:
  void sep() {
    if (!fresh_) os_ << ", ";
    fresh_ = false;
  }
  Json& open(char c) {
    sep();
    os_ << c;
    fresh_ = true;
    return *this;
  }
  Json& close(char c) {
    os_ << c;
    fresh_ = false;
    return *this;
  }
  std::ostringstream os_;
  bool fresh_ = true;
};

// Prints the report and writes it to `path` when given.
inline void emit(const Json& j, const std::string& path) {
  std::printf("%s\n", j.str().c_str());
  if (!path.empty()) std::ofstream(path) << j.str() << "\n";
}

}  // namespace vc::bench
