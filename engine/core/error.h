// Errors. Every error a user or a caller can cause names the op and the shapes.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <cstdint>

namespace vc {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

inline std::ostream& operator<<(std::ostream& os, const std::vector<int64_t>& s) {
  return os << shape_str(s);
}

// Builds a message from any streamable parts: fail("matmul: ", a, " vs ", b).
template <class... Parts> [[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

}  // namespace vc

// VC_CHECK(cond, "op", parts...) throws vc::Error("op: parts...") when cond is false.
#define VC_CHECK(cond, ...)              \
  do {                                   \
    if (!(cond)) ::vc::fail(__VA_ARGS__); \
  } while (0)
