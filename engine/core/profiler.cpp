#include "engine/core/profiler.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

namespace vc::profiler {

namespace {

using Clock = std::chrono::steady_clock;

bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

struct Frame {
  const char* name;
  const char* kind;
  const char* phase;
  Clock::time_point start;
  double child_s;
  double flops;
};

// The shared totals. With VERBCLIP_PROFILE set, the table goes to stderr when the program ends.
struct State {
  std::mutex mu;
  std::map<std::tuple<std::string, std::string, std::string>, Entry> entries;
  bool print_at_exit = env_on("VERBCLIP_PROFILE");
  ~State() {
    if (print_at_exit) std::fprintf(stderr, "%s", table().c_str());
  }
};
State& state() {
  static State s;
  return s;
}

std::atomic<bool> g_enabled{env_on("VERBCLIP_PROFILE")};
thread_local std::vector<Frame> t_stack;
thread_local const char* t_phase = "forward";

}  // namespace

bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void set_enabled(bool on) {
  if (on) state();  // constructed before any entry, so destroyed after the last one
  g_enabled = on;
}

void reset() {
  std::lock_guard<std::mutex> lock(state().mu);
  state().entries.clear();
}

std::vector<Entry> entries() {
  std::vector<Entry> out;
  {
    std::lock_guard<std::mutex> lock(state().mu);
    for (const auto& [key, e] : state().entries) out.push_back(e);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Entry& a, const Entry& b) { return a.self_s > b.self_s; });
  return out;
}

std::string table() {
  std::vector<Entry> es = entries();
  double total = 0;
  for (const Entry& e : es) total += e.self_s;
  std::string s = "[profile] phase      kind      name                       calls    self ms   share  GFLOP\n";
  char line[256];
  for (const Entry& e : es) {
    std::snprintf(line, sizeof line, "[profile] %-10s %-9s %-24s %8lld %10.3f %6.2f%% %6.3f\n",
                  e.phase.c_str(), e.kind.c_str(), e.name.c_str(), (long long)e.calls,
                  e.self_s * 1e3, total > 0 ? 100 * e.self_s / total : 0.0, e.flops / 1e9);
    s += line;
  }
  std::snprintf(line, sizeof line, "[profile] total self time %.3f ms\n", total * 1e3);
  return s + line;
}

double dense_flops(const char* op, const char* kind, const std::vector<Shape>& in) {
  const bool backward = std::strcmp(kind, "backward") == 0;
  if (std::strcmp(op, "matmul") == 0 && !backward && in.size() == 2 && in[0].size() >= 2 &&
      in[1].size() >= 2) {
    const Shape &a = in[0], &b = in[1];
    const double M = double(a[a.size() - 2]), K = double(a.back()), N = double(b.back());
    // Batch: the broadcast of the leading dims (each dim is the larger of the two, or 1).
    double batch = 1;
    const size_t da = a.size() - 2, db = b.size() - 2, d = std::max(da, db);
    for (size_t i = 0; i < d; ++i) {
      int64_t x = i + da >= d ? a[i + da - d] : 1, y = i + db >= d ? b[i + db - d] : 1;
      batch *= double(std::max(x, y));
    }
    return 2 * batch * M * N * K;
  }
  if (std::strcmp(op, "attention") == 0 && in.size() >= 3 && in[0].size() == 4 &&
      in[1].size() == 4 && in[2].size() == 4) {
    // q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv]: S = q kᵀ and O = P v.
    const double fwd = 2.0 * double(in[0][0]) * double(in[0][1]) * double(in[0][2]) *
                       double(in[1][2]) * double(in[0][3] + in[2][3]);
    return backward ? 2 * fwd : fwd;
  }
  return 0;
}

void count_flops(double flops) {
  if (enabled() && !t_stack.empty()) t_stack.back().flops += flops;
}

void Scope::begin(const char* name, const char* kind, double flops) {
  if (active_ || !enabled()) return;
  active_ = true;
  t_stack.push_back({name, kind, t_phase, Clock::now(), 0.0, flops});
}

Scope::~Scope() {
  if (!active_) return;
  Frame f = t_stack.back();
  t_stack.pop_back();
  const double total = std::chrono::duration<double>(Clock::now() - f.start).count();
  if (!t_stack.empty()) t_stack.back().child_s += total;
  std::lock_guard<std::mutex> lock(state().mu);
  Entry& e = state().entries[{f.phase, f.kind, f.name}];
  if (e.calls == 0) e.phase = f.phase, e.kind = f.kind, e.name = f.name;
  e.calls += 1;
  e.self_s += total - f.child_s;
  e.total_s += total;
  e.flops += f.flops;
}

PhaseGuard::PhaseGuard(const char* phase) : previous_(t_phase) { t_phase = phase; }
PhaseGuard::~PhaseGuard() { t_phase = previous_; }

}  // namespace vc::profiler
