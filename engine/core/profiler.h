// The op profiler: where a step's time goes, op by op, accumulated over any number of calls.
//
// Off by default; VERBCLIP_PROFILE=1 turns it on at start-up (and prints the table to stderr
// at exit), profiler::set_enabled() at run time. Off, it costs one relaxed atomic load per op.
//
// Scopes nest: OpScope opens one for every op, Tensor::backward one around every backward
// closure ("<op>" of kind "backward"), the optimizers one around their step. Each entry gets
// its scope's *self* time (its own time minus that of the scopes inside it), so an op called
// inside another op or inside a backward closure (a matmul inside matmul's backward, a clone
// inside matmul's operand preparation) is counted once, under its own name, and the sum of
// all self times is the time spent inside scopes. Entries are keyed by (phase, kind, name):
// the phase is "forward", or what a PhaseGuard set around the call ("backward" while
// Tensor::backward runs, "optimizer" in Optimizer::step), so a matmul run by a backward
// closure is ("backward", "op", "matmul").
//
// FLOPs: scopes may carry a FLOP count (dense_flops below). OpScope counts matmul (2·M·N·K per
// batch entry) and attention (2·B·H·Lq·Lk·(d + dv), dense: tiles a mask skips are counted);
// the attention backward closure counts twice its forward (dQ, dK, dV, dP: four GEMMs of the
// forward's size, no recomputation). matmul's backward closure counts nothing itself: the
// matmuls it runs count themselves. conv2d counts itself (count_flops): 2·B·O·Ho·Wo·C·k·k
// forward, and that once for each of the weight and input gradients asked for. Nothing else
// counts FLOPs.
//
// Scopes are per thread (a thread-local stack); the totals are shared under a mutex. An op
// run on a worker thread while its caller waits is counted on both threads' clocks, so
// profile single-threaded callers (the training step) — the ops' own OpenMP loops are fine.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/shape.h"

namespace vc::profiler {

bool enabled();
void set_enabled(bool on);
void reset();  // drops every entry

struct Entry {
  std::string phase;  // "forward", "backward", "optimizer", ... (PhaseGuard)
  std::string kind;   // "op" (OpScope), "backward" (a backward closure), "region" (others)
  std::string name;   // the op's name, or the region's
  int64_t calls = 0;
  double self_s = 0;   // seconds inside the scope minus nested scopes
  double total_s = 0;  // seconds inside the scope
  double flops = 0;    // summed FLOP counts (see above)
};
// Every entry, largest self time first.
std::vector<Entry> entries();
// A readable table of entries(), for VERBCLIP_PROFILE=1 and tools.
std::string table();

// The FLOPs counted for an op (kind "op") or a backward closure (kind "backward") of `op`
// with these input shapes; 0 for anything but matmul and attention.
double dense_flops(const char* op, const char* kind, const std::vector<Shape>& input_shapes);

// Adds to the FLOP count of this thread's innermost open scope: for ops whose count needs more
// than their input shapes (conv2d: stride, padding and which gradients are asked for).
void count_flops(double flops);

// One timed region. Does nothing (and costs one flag check) while the profiler is off.
class Scope {
 public:
  explicit Scope(const char* name, const char* kind = "region", double flops = 0) {
    begin(name, kind, flops);
  }
  Scope() = default;  // inactive until begin()
  // Opens the scope (when the profiler is on); call at most once.
  void begin(const char* name, const char* kind = "region", double flops = 0);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool active_ = false;
};

// Sets this thread's phase for its lifetime (nesting restores the previous one).
class PhaseGuard {
 public:
  explicit PhaseGuard(const char* phase);
  ~PhaseGuard();
  PhaseGuard(const PhaseGuard&) = delete;
  PhaseGuard& operator=(const PhaseGuard&) = delete;

 private:
  const char* previous_;
};

}  // namespace vc::profiler
