// Fault injection for the crash and fault tests. Off unless an environment variable names a
// point; a normal run pays one getenv per process and a string compare per point passed.
//
//   VERBCLIP_TEST_KILL_AT=POINT[:N]     the process kills itself with SIGKILL the N-th time
//                                       (1-based, default 1) it passes POINT. Points:
//       train_step                        `verbclip train`/`pretrain-clip`: a step's gradients
//                                         are computed, the optimizer has not stepped
//       eval_batch                        evaluation: after scoring a batch
//       write:<file name>                 an atomic write of <file name> (e.g.
//                                         checkpoint_last.safetensors): half its bytes are in
//                                         the temporary file, nothing renamed yet
//       renamed:<file name>               the same write just after its rename
//   VERBCLIP_TEST_FAIL_WRITE=NAME[:N]   the N-th atomic write of a file named NAME fails as a
//                                       full disk would (ENOSPC), after half its bytes.
// scripts/kill_resume_sweep.sh and tests/apps/test_reliability.cpp use them.
#pragma once
#include <string>

namespace vc::nn {

// True the one time this passage of `point` is the one VERBCLIP_TEST_KILL_AT names.
bool kill_point_reached(const std::string& point);
[[noreturn]] void kill_now();
// kill_now() when kill_point_reached(point).
void kill_point(const std::string& point);
// True when this atomic write of `file_name` is the one VERBCLIP_TEST_FAIL_WRITE names.
bool write_failure_injected(const std::string& file_name);

}  // namespace vc::nn
