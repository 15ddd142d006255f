#!/usr/bin/env bash
# The tiny training step, verbclip against PyTorch, side by side (issue 13).
#
# Builds bench_step if needed, then for each round, thread count and OpenMP wait policy runs
# bench_step's tiny step and benchmarks/torch_tiny_step.py one after the other (interleaved, so
# machine noise hits both), and prints per thread count the medians over rounds under each
# policy, then each side at its faster policy and the ratio torch_ms / verbclip_ms (> 1: verbclip
# is faster). PyTorch is skipped, with a message, when python3-torch is absent.
# Both policies, because which one is faster depends on the machine and differs between the two
# (2026-12-08, an AMD EPYC Zen 5 VM, 2 threads: verbclip 71-95 ms with OpenMP's default policy
# and 103-246 ms with PASSIVE; PyTorch 430-504 ms with the default and 211-223 ms with PASSIVE),
# so one policy for both would measure the policy as much as the engines.
#
# Usage: scripts/bench.sh [ROUNDS (3)] [THREADS (1,2)] [STEPS per run (10)]
#   BUILD=build (the CMake build folder), OUT=bench-results (where each run's JSON goes),
#   PYTHON=/usr/bin/python3 (Debian's python3-torch is installed for the system Python),
#   POLICIES=passive,default (OMP_WAIT_POLICY=PASSIVE, and unset: libgomp spins a while, then sleeps).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
THREADS=${2:-1,2}
STEPS=${3:-10}
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results}
PYTHON=${PYTHON:-/usr/bin/python3}
POLICIES=${POLICIES:-passive,default}
for arg in "ROUNDS=$ROUNDS" "STEPS=$STEPS"; do
  [[ "${arg#*=}" =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: ${arg%%=*} must be a positive integer, got '${arg#*=}'" >&2; exit 2; }
done
[[ "$THREADS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "bench.sh: THREADS must be a list like 1,2, got '$THREADS'" >&2; exit 2; }
IFS=, read -r -a policy_list <<< "$POLICIES"
for p in "${policy_list[@]}"; do
  case "$p" in passive|default) ;; *) echo "bench.sh: POLICIES holds passive and/or default, got '$p'" >&2; exit 2 ;; esac
done

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
    for p in "${policy_list[@]}"; do
      policy=(env -u OMP_WAIT_POLICY)
      [ "$p" = passive ] && policy=(env OMP_WAIT_POLICY=PASSIVE)
      "${policy[@]}" "$BUILD/bin/bench_step" --models tiny --threads "$t" --steps "$STEPS" --warmup 2 \
        --profile-steps "$([ "$r" = 1 ] && echo 3 || echo 0)" --out "$OUT/verbclip_t${t}_${p}_r${r}.json" > /dev/null
      if [ "$have_torch" = 1 ]; then
        "${policy[@]}" "$PYTHON" benchmarks/torch_tiny_step.py --threads "$t" --steps "$STEPS" --warmup 2 \
          --out "$OUT/torch_t${t}_${p}_r${r}.json" > /dev/null
      fi
    done
    echo "bench.sh: round $r, $t thread(s) done" >&2
  done
done

# Medians over rounds (each run's own figure is already the median of its steps).
python3 - "$OUT" "$ROUNDS" "$THREADS" "$POLICIES" "$have_torch" <<'EOF'
import json, statistics, sys
out, rounds, threads, policies = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4].split(",")
have_torch = sys.argv[5] == "1"
def tiny(path):
    with open(path) as f:
        j = json.load(f)
    runs = j["runs"][0] if "runs" in j else j
    return j, runs, runs["models"][0]
def median_ms(side, t, p):
    return statistics.median(tiny(f"{out}/{side}_t{t}_{p}_r{r}.json")[2]["step_ms"] for r in range(1, rounds + 1))
sides = ["verbclip"] + (["torch"] if have_torch else [])
if have_torch and any(tiny(f"{out}/torch_t{t}_{p}_r{r}.json")[0]["reference_blas"]
                      for t in threads for p in policies for r in range(1, rounds + 1)):
    print("bench.sh: WARNING: PyTorch ran on the reference BLAS: the ratio is meaningless", file=sys.stderr)
print("medians (ms) under each OpenMP wait policy:")
print("threads  policy    verbclip_ms  torch_ms")
med = {}
for t in threads:
    for p in policies:
        for s in sides:
            med[s, t, p] = median_ms(s, t, p)
        torch_col = f"{med['torch', t, p]:8.1f}" if have_torch else f"{'-':>8}"
        print(f"{t:>7}  {p:8}  {med['verbclip', t, p]:11.1f}  {torch_col}")
print("each at its faster policy:")
print("threads  verbclip_ms (policy)  torch_ms (policy)  torch/verbclip  verbclip_GFLOP/s  fma_peak  of_peak")
for t in threads:
    best = {s: min(policies, key=lambda p: med[s, t, p]) for s in sides}
    pv = best["verbclip"]
    v = med["verbclip", t, pv]
    ours = [tiny(f"{out}/verbclip_t{t}_{pv}_r{r}.json") for r in range(1, rounds + 1)]
    flop = ours[0][2]["gflop_per_step"]
    peak = statistics.median(run["fma_peak_gflops"] for _, run, _ in ours)
    line = f"{t:>7}  {v:11.1f} ({pv:7})"
    if have_torch:
        pt = best["torch"]
        line += f"  {med['torch', t, pt]:8.1f} ({pt:7})  {med['torch', t, pt] / v:14.2f}"
    else:
        line += f"  {'-':>18}  {'-':>14}"
    g = flop / (v * 1e-3)
    line += f"  {g:16.1f}  {peak:8.1f}  {100 * g / peak:6.1f}%"
    print(line)
if have_torch:
    with open(f"{out}/torch_t{threads[0]}_{policies[0]}_r1.json") as f:
        j = json.load(f)
    print("PyTorch", j["torch"], "with", ", ".join(j["blas_libraries"]))
print(f"breakdown (round 1, from bench_step's profiler; {out}/verbclip_t*_r1.json):")
for t in threads:
    for p in policies:
        _, run, m = tiny(f"{out}/verbclip_t{t}_{p}_r1.json")
        fr = m["breakdown_fraction"]
        print(f"  {t} thread(s), {p}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in sorted(fr.items(), key=lambda kv: -kv[1])))
EOF
