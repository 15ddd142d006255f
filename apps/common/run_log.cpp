#include "apps/common/run_log.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/core/error.h"
#include "nn/safetensors.h"

namespace verbclip {

using vc::fail;

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

double current_rss_mib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long long pages = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? double(resident) * double(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0) : 0;
}

double peak_rss_mib() {
  struct rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return double(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

// ---------------------------------------------------------------- RunLog

namespace {

// One write() per record (looping only on a short write), so a killed process leaves whole
// lines; a failed write (a full disk) is an error naming the file.
void write_all(int fd, const std::string& s, const std::string& path) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write the log '", path, "': ", std::strerror(n < 0 ? errno : EIO));
    done += size_t(n);
  }
}

}  // namespace

RunLog::RunLog(const std::string& dir, bool append, bool echo, bool write)
    : dir_(dir), echo_(echo && write), start_(std::chrono::steady_clock::now()) {
  if (!write) return;  // a data-parallel rank other than 0: rank 0 writes the logs
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create the output folder '", dir, "': ", ec.message());
  auto open = [&](const std::string& name) {
    std::string p = dir + "/" + name;
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) fail("cannot write the log '", p, "': ", std::strerror(errno));
    return fd;
  };
  text_ = open("log.txt");
  json_ = open("log.jsonl");
}

RunLog::~RunLog() {
  if (text_ >= 0) ::close(text_);
  if (json_ >= 0) ::close(json_);
}

void RunLog::info(const std::string& line) {
  if (text_ < 0) return;
  write_all(text_, "[" + timestamp() + "] " + line + "\n", dir_ + "/log.txt");
  if (echo_) std::cout << line << std::endl;
}

void RunLog::record(const nlohmann::ordered_json& j) {
  if (!json_) return;
  nlohmann::ordered_json out = j;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  out["time"] = std::round(secs * 1000) / 1000;
  if (json_ < 0) return;
  write_all(json_, out.dump() + "\n", dir_ + "/log.jsonl");
}

void RunLog::mark(std::map<std::string, std::string>& extra) const {
  for (auto [name, fd] : {std::pair<const char*, int>{"log.txt", text_}, {"log.jsonl", json_}}) {
    struct stat st{};
    if (fd >= 0 && ::fstat(fd, &st) == 0) extra[std::string(name) + "_bytes"] = std::to_string(st.st_size);
  }
}

int64_t RunLog::rewind(const std::string& dir, const std::map<std::string, std::string>& extra) {
  int64_t dropped = 0;
  for (const char* name : {"log.txt", "log.jsonl"}) {
    auto it = extra.find(std::string(name) + "_bytes");
    if (it == extra.end()) continue;  // a checkpoint from before the marks: logs as they are
    const std::string p = dir + "/" + name;
    struct stat st{};
    const long long keep = std::atoll(it->second.c_str());
    if (::stat(p.c_str(), &st) != 0 || st.st_size <= keep) continue;
    if (::truncate(p.c_str(), keep) != 0) fail("cannot truncate the log '", p, "': ", std::strerror(errno));
    dropped += int64_t(st.st_size) - keep;
  }
  return dropped;
}

std::vector<nlohmann::json> read_jsonl_events(const std::string& path, const std::string& event) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("event", std::string()) == event) out.push_back(std::move(j));
  }
  return out;
}

// ---------------------------------------------------------------- Progress

Progress::Progress(const std::string& label, int64_t every, bool quiet)
    : label_(label), every_(std::max<int64_t>(every, 1)), quiet_(quiet),
      tty_(isatty(fileno(stderr)) != 0), start_(std::chrono::steady_clock::now()) {}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int64_t t = int64_t(s + 0.5), h = t / 3600, m = (t / 60) % 60, sec = t % 60;
  char buf[32];
  if (h > 0) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)h, (long long)m, (long long)sec);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)m, (long long)sec);
  return buf;
}

double Progress::items_per_second() const {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return secs > 0 ? double(items_) / secs : 0;
}

void Progress::update(const ProgressInfo& p, int64_t items) {
  items_ += items;
  if (first_step_ < 0) first_step_ = p.step - 1;
  if (quiet_) return;
  const bool last = p.step >= p.steps;
  if (!tty_ && p.step % every_ != 0 && !last) return;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  int64_t done = p.step - first_step_;
  double eta = done > 0 ? secs / double(done) * double(p.steps - p.step) : NAN;
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s: epoch %lld/%lld  step %lld/%lld  loss %.4f  lr %.3g  %.0f items/s  ETA %s%s%s",
                label_.c_str(), (long long)p.epoch, (long long)p.epochs, (long long)p.step,
                (long long)p.steps, p.loss, p.lr, items_per_second(), format_duration(eta).c_str(),
                p.extra.empty() ? "" : "  ", p.extra.c_str());
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K", buf);
    drawn_ = true;
  } else {
    std::fprintf(stderr, "%s\n", buf);
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_ && drawn_ && !quiet_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

// ---------------------------------------------------------------- SVG curves

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

namespace {

// "Nice" tick step (1, 2 or 5 × 10^k) giving about `n` ticks over [lo, hi].
double nice_step(double lo, double hi, int n) {
  double raw = (hi - lo) / std::max(n, 1);
  if (!(raw > 0)) return 1;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

}  // namespace

std::string curves_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series, double W, double H) {
  const double left = 70, right = 160, top = 40, bottom = 55;
  const double pw = W - left - right, ph = H - top - bottom;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& s : series) {
    VC_CHECK(s.x.size() == s.y.size(), "write_curves: series '", s.name, "' has ", s.x.size(),
             " x values and ", s.y.size(), " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw: empty axes
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  double xs = nice_step(x0, x1, 6), ys = nice_step(y0, y1, 5);
  x0 = std::floor(x0 / xs) * xs, x1 = std::ceil(x1 / xs) * xs;
  y0 = std::floor(y0 / ys) * ys, y1 = std::ceil(y1 / ys) * ys;
  auto X = [&](double v) { return left + (v - x0) / (x1 - x0) * pw; };
  auto Y = [&](double v) { return top + (1 - (v - y0) / (y1 - y0)) * ph; };
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << left + pw / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
    << xml_escape(title) << "</text>\n";
  // grid and ticks
  for (double v = x0; v <= x1 + xs * 1e-6; v += xs)
    o << "<line x1=\"" << X(v) << "\" y1=\"" << top << "\" x2=\"" << X(v) << "\" y2=\"" << top + ph
      << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << X(v) << "\" y=\"" << top + ph + 16
      << "\" text-anchor=\"middle\">" << fmt(v) << "</text>\n";
  for (double v = y0; v <= y1 + ys * 1e-6; v += ys)
    o << "<line x1=\"" << left << "\" y1=\"" << Y(v) << "\" x2=\"" << left + pw << "\" y2=\"" << Y(v)
      << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << left - 6 << "\" y=\"" << Y(v) + 4
      << "\" text-anchor=\"end\">" << fmt(v) << "</text>\n";
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#333\"/>\n"
    << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">"
    << xml_escape(x_label) << "</text>\n"
    << "<text transform=\"translate(18," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << xml_escape(y_label) << "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const char* c = colors[k % 6];
    o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.6\" points=\"";
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) o << X(s.x[i]) << "," << Y(s.y[i]) << " ";
    o << "\"/>\n";
    if (s.x.size() == 1)
      o << "<circle cx=\"" << X(s.x[0]) << "\" cy=\"" << Y(s.y[0]) << "\" r=\"3\" fill=\"" << c << "\"/>\n";
    double ly = top + 10 + 18 * double(k);
    o << "<line x1=\"" << left + pw + 12 << "\" y1=\"" << ly << "\" x2=\"" << left + pw + 32
      << "\" y2=\"" << ly << "\" stroke=\"" << c << "\" stroke-width=\"2\"/>\n<text x=\""
      << left + pw + 38 << "\" y=\"" << ly + 4 << "\">" << xml_escape(s.name) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

void write_curves(const std::string& path, const std::string& title, const std::string& x_label,
                  const std::string& y_label, const std::vector<Series>& series) {
  const std::string svg = curves_svg(title, x_label, y_label, series);
  vc::nn::write_file_atomically(path, [&](std::FILE* f) {
    VC_CHECK(std::fwrite(svg.data(), 1, svg.size(), f) == svg.size(), "cannot write '", path, "'");
  });
}

}  // namespace verbclip
