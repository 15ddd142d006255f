// Data-parallel training under `mpirun` (engine/dist, nn/ddp.h, apps/cmd_train.cpp): the MPI
// communicator against one process, 2 ranks against 1 rank with the same micro-batches
// accumulated (bitwise), checkpoints written once and resumed under 2 ranks, and mismatched
// ranks stopped with an error on every rank within a time limit. Skipped (with a message) when
// the build has no MPI or mpirun is missing; the NCCL check skips without a GPU.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/common/run_log.h"
#include "engine/dist/communicator.h"
#include "nn/safetensors.h"
#include "tests/apps/run_verbclip.h"

namespace fs = std::filesystem;
using verbclip::testing::RunResult;
using verbclip::testing::run_command;
using verbclip::testing::shell_quote;
using verbclip::testing::check_same_float_tensors;

namespace {

// OpenMPI as root, on loopback, on a shared 2-core machine; one OpenMP thread per rank. Every
// run is bounded by `timeout` so a hang fails the test instead of the CI job.
std::string mpirun(int np, int seconds = 240) {
  return "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE timeout " + std::to_string(seconds) +
         " mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader"
         " -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -np " + std::to_string(np) + " ";
}

bool can_run_mpi() {
  if (!vc::dist::built_with_mpi()) {
    MESSAGE("SKIPPED: this build has no MPI (VERBCLIP_MPI)");
    return false;
  }
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    MESSAGE("SKIPPED: mpirun is not installed (openmpi-bin)");
    return false;
  }
  return true;
}

std::string verbclip_cmd(const std::vector<std::string>& args) {
  std::string cmd = std::string(VERBCLIP_BINARY_DIR) + "/bin/verbclip";
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return cmd;
}

// A tiny Fashion-Motion (6 classes, 4 training videos each) and a tiny CLIP, made once.
struct Fixture {
  fs::path dir;
  std::string data, clip;
  bool ok = false;
  Fixture() {
    dir = fs::temp_directory_path() / ("verbclip-dist-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    data = (dir / "fm").string();
    RunResult g = verbclip::testing::run_verbclip(
        {"make-data", "--out", data, "--classes", "0,1,2,3,11,12", "--train-per-class", "4", "--val-per-class", "1",
         "--test-per-class", "1", "--captions", "40", "--threads", "2", "--quiet"});
    if (g.code != 0) {
      MESSAGE(g.output);
      return;
    }
    RunResult p = verbclip::testing::run_verbclip(
        {"pretrain-clip", "--data", data, "--out", (dir / "clip").string(), "--steps", "1", "--batch-size", "8",
         "--zero-shot-images", "0", "--quiet", "--opts", "MODEL.VISION_WIDTH", "64", "MODEL.VISION_LAYERS", "2",
         "MODEL.TEXT_WIDTH", "64", "MODEL.TEXT_LAYERS", "1", "MODEL.EMBED_DIM", "32", "MODEL.PATCH_SIZE", "8"});
    if (p.code != 0) {
      MESSAGE(p.output);
      return;
    }
    clip = (dir / "clip" / "clip.safetensors").string();
    ok = true;
  }
  ~Fixture() { fs::remove_all(dir); }
  // CLAVER (new modules at their own LR), mixup and label smoothing, clipping, validation.
  std::vector<std::string> train(const std::string& out, int64_t batch, int64_t accum, int64_t steps,
                                 const std::string& data_root = "") const {
    return {"train", "--config", std::string(VERBCLIP_SOURCE_DIR) + "/models/configs/fm_tiny_claver.yaml",
            "--output", out, "--quiet", "--threads", "1", "--opts", "DATA.ROOT", data_root.empty() ? data : data_root,
            "MODEL.PRETRAINED", clip, "TRAIN.BATCH_SIZE", std::to_string(batch), "TRAIN.ACCUMULATION_STEPS",
            std::to_string(accum), "TRAIN.EPOCHS", "1", "TRAIN.MAX_STEPS", std::to_string(steps), "TRAIN.CLIP_GRAD",
            "1.0", "AUG.MIXUP", "0.4", "MODEL.PROMPTS_PER_STEP", "2", "TEST.BATCH_SIZE", "4", "PRINT_FREQ", "1",
            "DATA.NUM_WORKERS", "1"};
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

RunResult run_ranks(int np, const std::vector<std::string>& args, int seconds = 240) {
  return run_command(mpirun(np, seconds) + verbclip_cmd(args) + " 2>&1");
}
RunResult run_one(const std::vector<std::string>& args) {
  return run_command("OMP_NUM_THREADS=1 " + verbclip_cmd(args) + " 2>&1");
}

bool any_model_tensor_differs(const std::string& a, const std::string& b) {
  vc::nn::SafetensorsFile fa(a), fb(b);
  for (const auto& name : fa.names())
    if (name.rfind("model.", 0) == 0 && fa.load(name).dtype() == vc::DType::F32 &&
        fa.load(name).to_vector<float>() != fb.load(name).to_vector<float>())
      return true;
  return false;
}

// (event, step, loss / top1) of log.jsonl, in order: what the two runs must both have logged.
std::vector<std::string> logged(const std::string& dir) {
  std::vector<std::string> out;
  for (const char* ev : {"train", "val"})
    for (const auto& j : verbclip::read_jsonl_events(dir + "/log.jsonl", ev)) {
      nlohmann::json k = j;
      for (const char* drop : {"time", "clips_per_s", "rss_mib", "peak_rss_mib"}) k.erase(drop);
      out.push_back(k.dump());
    }
  return out;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("dist: the MPI all-reduce is the sequential sum in rank order, bitwise, for 1, 2 and 3 ranks") {
  if (!can_run_mpi()) return;
  const std::string check = std::string(VERBCLIP_BINARY_DIR) + "/bin/dist_check";
  for (int np : {1, 2, 3}) {
    CAPTURE(np);
    RunResult r = run_command(mpirun(np, 120) + check + " 2>&1");
    CAPTURE(r.output);
    CHECK(r.code == 0);
    CHECK(count(r.output, "dist_check OK") == np);
    if (np > 1) CHECK(count(r.output, "the reverse order gives other bits") == np);  // the check can fail
  }
}

TEST_CASE("dist: 2 ranks train bitwise as 1 process accumulating the same micro-batches; logs and checkpoints once") {
  if (!can_run_mpi()) return;
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string one = (fx.dir / "one").string(), two = (fx.dir / "two").string();
  // 24 videos, batches of 2: 1 process x 2 accumulated == 2 ranks x 1.
  RunResult a = run_one(fx.train(one, 2, 2, 4));
  CAPTURE(a.output);
  REQUIRE(a.code == 0);
  RunResult b = run_ranks(2, fx.train(two, 2, 1, 4));
  CAPTURE(b.output);
  REQUIRE(b.code == 0);
  CHECK(check_same_float_tensors(one + "/checkpoint_last.safetensors", two + "/checkpoint_last.safetensors") > 10);
  const auto la = logged(one), lb = logged(two);
  CHECK(la.size() == 5);  // 4 train events and 1 validation, written once by rank 0
  CHECK(la == lb);        // the same losses, batch accuracy and (sharded) validation
  std::ifstream t(two + "/log.txt");
  std::stringstream text;
  text << t.rdbuf();
  CHECK(count(text.str(), "epoch 1/1 done") == 1);
  CHECK(count(text.str(), "data-parallel: 2 ranks") == 1);
  for (const auto& e : fs::directory_iterator(two)) CHECK(e.path().extension() != ".tmp");
  // The check can fail: training moved the weights away from a 1-step run.
  const std::string short_run = (fx.dir / "short").string();
  REQUIRE(run_one(fx.train(short_run, 2, 2, 1)).code == 0);
  CHECK(any_model_tensor_differs(one + "/checkpoint_last.safetensors", short_run + "/checkpoint_last.safetensors"));
}

TEST_CASE("dist: 2 ranks with 2 accumulated micro-batches each == 1 process with 4") {
  if (!can_run_mpi()) return;
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string one = (fx.dir / "one4").string(), two = (fx.dir / "two2").string();
  REQUIRE(run_one(fx.train(one, 2, 4, 2)).code == 0);
  RunResult b = run_ranks(2, fx.train(two, 2, 2, 2));
  CAPTURE(b.output);
  REQUIRE(b.code == 0);
  CHECK(check_same_float_tensors(one + "/checkpoint_last.safetensors", two + "/checkpoint_last.safetensors") > 10);
  CHECK(logged(one) == logged(two));
  // TRAIN.DDP_REDUCE step (one all-reduce per optimizer step): the same run within rounding.
  const std::string once = (fx.dir / "two2_step").string();
  auto args = fx.train(once, 2, 2, 2);
  args.insert(args.end(), {"TRAIN.DDP_REDUCE", "step"});
  RunResult c = run_ranks(2, args);
  CAPTURE(c.output);
  REQUIRE(c.code == 0);
  vc::nn::SafetensorsFile fa(one + "/checkpoint_last.safetensors"), fc(once + "/checkpoint_last.safetensors");
  // Adam may turn a rounding-level gradient into a full-size update of a few weights, so the
  // measure is the relative distance of all weights together, not the worst element.
  double d2 = 0, n2 = 0;
  for (const auto& name : fa.names()) {
    if (name.rfind("model.", 0) != 0 || fa.load(name).dtype() != vc::DType::F32) continue;
    const auto a = fa.load(name).to_vector<float>(), b = fc.load(name).to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) d2 += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), n2 += double(a[i]) * a[i];
  }
  const double rel = std::sqrt(d2 / n2);
  MESSAGE("DDP_REDUCE step against the one-process run: |a - b| / |a| over the weights = " << rel);
  CHECK(rel < 1e-6);  // measured 1.1e-9
}

TEST_CASE("dist: --resume under 2 ranks continues bitwise") {
  if (!can_run_mpi()) return;
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  const std::string straight = (fx.dir / "two").string(), half = (fx.dir / "two_resumed").string();
  if (!fs::exists(straight + "/checkpoint_last.safetensors"))
    REQUIRE(run_ranks(2, fx.train(straight, 2, 1, 4)).code == 0);
  auto args = fx.train(half, 2, 1, 4);
  args.insert(args.begin() + 1, {"--stop-at", "2"});
  RunResult h = run_ranks(2, args);
  CAPTURE(h.output);
  REQUIRE(h.code == 0);
  CHECK(vc::nn::SafetensorsFile(half + "/checkpoint_last.safetensors").metadata().at("step") == "2");
  CHECK(any_model_tensor_differs(straight + "/checkpoint_last.safetensors", half + "/checkpoint_last.safetensors"));
  RunResult r = run_ranks(2, {"train", "--output", half, "--resume", "--quiet", "--threads", "1"});
  CAPTURE(r.output);
  REQUIRE(r.code == 0);
  CHECK(check_same_float_tensors(straight + "/checkpoint_last.safetensors", half + "/checkpoint_last.safetensors") > 10);
}

TEST_CASE("dist: ranks that disagree (config, dataset size) stop with an error on every rank, not a hang") {
  if (!can_run_mpi()) return;
  Fixture& fx = fixture();
  REQUIRE(fx.ok);
  // Another config on rank 1 (MPMD launch: one command per rank).
  auto a = fx.train((fx.dir / "mismatch").string(), 2, 1, 2), b = a;
  b.insert(b.end(), {"TRAIN.LR", "0.5"});
  RunResult r = run_command(mpirun(1, 120) + verbclip_cmd(a) + " : -np 1 " + verbclip_cmd(b) + " 2>&1");
  CAPTURE(r.output);
  CHECK(r.code != 0);
  CHECK(r.code != 124);  // not the time limit
  CHECK(count(r.output, "must run the same configuration") == 2);
  CHECK(count(r.output, "(rank 0 of 2)") == 1);
  CHECK(count(r.output, "(rank 1 of 2)") == 1);
  CHECK(r.output.find("config hash") != std::string::npos);
  CHECK(!fs::exists(fx.dir / "mismatch" / "checkpoint_last.safetensors"));
  // The same config (relative DATA.ROOT) on another dataset: rank 1's training list is shorter.
  for (const char* side : {"a", "b"}) {
    fs::create_directories(fx.dir / side / "fm");
    for (const auto& e : fs::directory_iterator(fx.data))
      if (e.path().filename() != "train.txt") fs::create_symlink(e.path(), fx.dir / side / "fm" / e.path().filename());
    std::ifstream in(fx.data + "/train.txt");
    std::ofstream out(fx.dir / side / "fm" / "train.txt");
    std::string line;
    for (int i = 0; std::getline(in, line); ++i)
      if (std::string(side) == "a" || i < 20) out << line << "\n";
  }
  auto rel = fx.train("out", 2, 1, 2, "fm");
  RunResult d = run_command(mpirun(1, 120) + "-wdir " + shell_quote((fx.dir / "a").string()) + " " + verbclip_cmd(rel) +
                            " : -np 1 -wdir " + shell_quote((fx.dir / "b").string()) + " " + verbclip_cmd(rel) + " 2>&1");
  CAPTURE(d.output);
  CHECK(d.code != 0);
  CHECK(d.code != 124);
  CHECK(count(d.output, "must run the same configuration") == 2);
  CHECK(d.output.find("rank 1 has training videos=20 where rank 0 has training videos=24") != std::string::npos);
  CHECK(d.output.find("config hash") == std::string::npos);  // the configs are the same text
}

TEST_CASE("dist: the NCCL communicator") {
  if (!vc::dist::built_with_nccl()) {
    MESSAGE("SKIPPED: this build has no NCCL (needs the CUDA backend, MPI and libnccl)");
    return;
  }
  if (std::system("nvidia-smi -L >/dev/null 2>&1") != 0) {
    MESSAGE("SKIPPED: no GPU");
    return;
  }
  // With a GPU: dist_check --nccl all-reduces device buffers over 1 and 2 ranks.
  const std::string check = std::string(VERBCLIP_BINARY_DIR) + "/bin/dist_check --nccl";
  for (int np : {1, 2}) {
    RunResult r = run_command(mpirun(np, 120) + check + " 2>&1");
    CAPTURE(r.output);
    CHECK(r.code == 0);
    CHECK(count(r.output, "nccl_check OK") == np);
  }
}
