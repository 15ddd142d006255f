#!/usr/bin/env bash
# The CUDA verification a GPU session runs (issue 5): build with CUDA, run the CPU-vs-CUDA
# suite, a subset under compute-sanitizer (memcheck, racecheck) with caching off, and the
# CUDA benchmark; every log goes to $LOGDIR (default cuda-logs/), a summary at the end.
#
#   scripts/cuda-check.sh [build-dir]        (default build-cuda)
#   JOBS=16 LOGDIR=/tmp/logs scripts/cuda-check.sh
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build-cuda}
LOGDIR=${LOGDIR:-cuda-logs}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$LOGDIR"
status=0
step() { echo "== $*" | tee -a "$LOGDIR/summary.txt"; }
result() {  # name rc
  if [ "$2" -eq 0 ]; then echo "   ok: $1" | tee -a "$LOGDIR/summary.txt"
  else echo "   FAILED ($2): $1" | tee -a "$LOGDIR/summary.txt"; status=1; fi
}
: > "$LOGDIR/summary.txt"

step "device"
nvidia-smi > "$LOGDIR/nvidia-smi.txt" 2>&1; result nvidia-smi $?
/usr/local/cuda/bin/nvcc --version > "$LOGDIR/nvcc.txt" 2>&1

step "configure + build ($BUILD, -j$JOBS)"
start=$(date +%s)
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVERBCLIP_CUDA=ON > "$LOGDIR/configure.txt" 2>&1
result configure $?
cmake --build "$BUILD" -j"$JOBS" --target test_cuda test_engine bench_cuda bench_attention \
  > "$LOGDIR/build.txt" 2>&1
result build $?
echo "   build seconds: $(( $(date +%s) - start ))" | tee -a "$LOGDIR/summary.txt"

step "test_cuda (parity, determinism, allocator)"
"$BUILD/tests/test_cuda" > "$LOGDIR/test_cuda.txt" 2>&1
result test_cuda $?
grep -c "SKIPPED" "$LOGDIR/test_cuda.txt" > /dev/null && \
  echo "   WARNING: test_cuda printed SKIPPED on a GPU machine" | tee -a "$LOGDIR/summary.txt"
grep "max |cuda - cpu|" "$LOGDIR/test_cuda.txt" | sed 's/^.*MESSAGE: //' > "$LOGDIR/max_errors.txt"

step "test_engine (CPU reference still passes)"
"$BUILD/tests/test_engine" > "$LOGDIR/test_engine.txt" 2>&1
result test_engine $?

SAN=/usr/local/cuda/bin/compute-sanitizer
if [ -x "$SAN" ]; then
  # A small subset: one case per kernel family (the filter is a substring of case names).
  for tool in memcheck racecheck; do
    for subset in "attention/" "token_merge n9" "topk/" "layer_norm [3, 5, 13]" "cross_entropy" \
                  "index_select" "scatter_add" "sum/axis1 [2, 513, 3]" "matmul [7, 13]" \
                  "temporal_shift/mcm" "random/"; do
      tag=$(echo "$tool-$subset" | tr -c 'A-Za-z0-9_-' '_')
      step "compute-sanitizer --tool $tool: $subset"
      VERBCLIP_NO_CACHING=1 VERBCLIP_CUDA_CASES="$subset" \
        "$SAN" --tool "$tool" --error-exitcode 99 \
        "$BUILD/tests/test_cuda" -tc="cuda parity: every op*" > "$LOGDIR/san-$tag.txt" 2>&1
      result "$tool $subset" $?
    done
  done
  step "compute-sanitizer memcheck: determinism + allocator + errors"
  VERBCLIP_NO_CACHING=1 "$SAN" --tool memcheck --error-exitcode 99 "$BUILD/tests/test_cuda" \
    -tce="cuda parity: every op*" > "$LOGDIR/san-memcheck-rest.txt" 2>&1
  result "memcheck rest" $?
else
  echo "   compute-sanitizer not found at $SAN" | tee -a "$LOGDIR/summary.txt"; status=1
fi

step "bench_cuda"
"$BUILD/bin/bench_cuda" --reps 20 > "$LOGDIR/bench_cuda.json" 2> "$LOGDIR/bench_cuda.err"
result bench_cuda $?
cat "$LOGDIR/bench_cuda.json"

step "done: status $status (logs in $LOGDIR)"
exit $status
