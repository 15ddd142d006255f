#!/usr/bin/env bash
# The tiny training step, verbclip against PyTorch, side by side (issue 13).
#
# Builds bench_step if needed, then for each round and each thread count runs bench_step's tiny
# step and benchmarks/torch_tiny_step.py one after the other (interleaved, so machine noise hits
# both), and prints per thread count the medians over rounds and the ratio torch_ms / verbclip_ms
# (> 1: verbclip is faster). PyTorch is skipped, with a message, when python3-torch is absent.
#
# Usage: scripts/bench.sh [ROUNDS (3)] [THREADS (1,2)] [STEPS per run (10)]
#   BUILD=build (the CMake build folder), OUT=bench-results (where each run's JSON goes),
#   PYTHON=/usr/bin/python3 (Debian's python3-torch is installed for the system Python).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
THREADS=${2:-1,2}
STEPS=${3:-10}
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results}
PYTHON=${PYTHON:-/usr/bin/python3}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
nice cmake --build "$BUILD" -j 2 --target bench_step > /dev/null  # a no-op when up to date

have_torch=1
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "bench.sh: PyTorch not found for $PYTHON (apt-get install python3-torch): timing verbclip only" >&2
fi

mkdir -p "$OUT"
IFS=, read -r -a thread_list <<< "$THREADS"
for ((r = 1; r <= ROUNDS; ++r)); do
  for t in "${thread_list[@]}"; do
    "$BUILD/bin/bench_step" --models tiny --threads "$t" --steps "$STEPS" --warmup 2 \
      --profile-steps "$([ "$r" = 1 ] && echo 3 || echo 0)" --out "$OUT/verbclip_t${t}_r${r}.json" > /dev/null
    if [ "$have_torch" = 1 ]; then
      "$PYTHON" benchmarks/torch_tiny_step.py --threads "$t" --steps "$STEPS" --warmup 2 \
        --out "$OUT/torch_t${t}_r${r}.json" > /dev/null
    fi
    echo "bench.sh: round $r, $t thread(s) done" >&2
  done
done

# Medians over rounds (each run's own figure is already the median of its steps).
python3 - "$OUT" "$ROUNDS" "$THREADS" "$have_torch" <<'EOF'
import json, statistics, sys
out, rounds, threads, have_torch = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4] == "1"
def tiny(path):
    with open(path) as f:
        j = json.load(f)
    runs = j["runs"][0] if "runs" in j else j
    return j, runs, runs["models"][0]
print("threads  verbclip_ms  torch_ms  torch/verbclip  verbclip_GFLOP/s  fma_peak  of_peak")
for t in threads:
    ours = [tiny(f"{out}/verbclip_t{t}_r{r}.json") for r in range(1, rounds + 1)]
    v = statistics.median(m["step_ms"] for _, _, m in ours)
    flop = ours[0][2]["gflop_per_step"]
    peak = statistics.median(run["fma_peak_gflops"] for _, run, _ in ours)
    line = f"{t:>7}  {v:11.1f}"
    if have_torch:
        theirs = [tiny(f"{out}/torch_t{t}_r{r}.json") for r in range(1, rounds + 1)]
        p = statistics.median(m["step_ms"] for _, _, m in theirs)
        if any(j["reference_blas"] for j, _, _ in theirs):
            print("bench.sh: WARNING: PyTorch ran on the reference BLAS: the ratio is meaningless", file=sys.stderr)
        line += f"  {p:8.1f}  {p / v:14.2f}"
    else:
        line += f"  {'-':>8}  {'-':>14}"
    g = flop / (v * 1e-3)
    line += f"  {g:16.1f}  {peak:8.1f}  {100 * g / peak:6.1f}%"
    print(line)
if have_torch:
    with open(f"{out}/torch_t{threads[0]}_r1.json") as f:
        j = json.load(f)
    print("PyTorch", j["torch"], "with", ", ".join(j["blas_libraries"]))
print(f"breakdown (round 1, from bench_step's profiler; {out}/verbclip_t*_r1.json):")
for t in threads:
    _, run, m = tiny(f"{out}/verbclip_t{t}_r1.json")
    fr = m["breakdown_fraction"]
    print(f"  {t} thread(s): " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in sorted(fr.items(), key=lambda kv: -kv[1])))
EOF
