#include "nn/faults.h"

#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>

namespace vc::nn {

namespace {

struct Target {
  bool armed = false;
  std::string point;
  long count = 1;
  std::map<std::string, long> seen;
  std::mutex mutex;
};

Target& target(const char* env) {
  static std::map<std::string, Target> targets;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, fresh] = targets.try_emplace(env);
  if (fresh) {
    const char* v = std::getenv(env);
    if (v && *v) {
      std::string s = v;
      Target& t = it->second;
      t.armed = true;
      t.point = s;
      size_t colon = s.find_last_of(':');
      if (colon != std::string::npos && colon + 1 < s.size() &&
          s.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
        t.point = s.substr(0, colon);
        t.count = std::atol(s.c_str() + colon + 1);
      }
    }
  }
  return it->second;
}

bool reached(const char* env, const std::string& point) {
  Target& t = target(env);
  if (!t.armed || point != t.point) return false;
  std::lock_guard<std::mutex> lock(t.mutex);
  return ++t.seen[point] == t.count;
}

}  // namespace

bool kill_point_reached(const std::string& point) { return reached("VERBCLIP_TEST_KILL_AT", point); }

void kill_now() {
  std::raise(SIGKILL);
  std::abort();  // not reached
}

void kill_point(const std::string& point) {
  if (kill_point_reached(point)) kill_now();
}

bool write_failure_injected(const std::string& file_name) {
  return reached("VERBCLIP_TEST_FAIL_WRITE", file_name);
}

}  // namespace vc::nn
