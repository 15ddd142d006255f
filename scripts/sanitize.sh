#!/usr/bin/env bash
# Builds and runs the CPU suites under the sanitizers (CI runs both; issue 20).
#   bash scripts/sanitize.sh asan   # AddressSanitizer + UndefinedBehaviorSanitizer, build-asan/
#   bash scripts/sanitize.sh tsan   # ThreadSanitizer on the loader's and the apps' threads, build-tsan/
# asan: test_engine, test_nn, test_models, test_data and test_apps (which runs the sanitized
# `verbclip` binary), with VERBCLIP_NO_CACHING=1 so the caching allocator does not hide a
# use-after-free or an overflow inside a cached block.
# tsan: test_data (loader workers) and a tiny make-data / pretrain-clip / train with 2 loader
# workers through the binary. Built without OpenMP: libgomp is not instrumented, and its
# barriers would read as races; the worker threads are std::thread.
# Every report from any process (tests or the binaries they start) goes to $BUILD/san-logs;
# the run fails if that folder holds anything, even when the test itself expected an error exit.
# Env: SANITIZE_SUITES (e.g. "engine data"), SANITIZE_CXX (compiler, default c++),
# SANITIZE_JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-}"
case "$MODE" in
  asan) FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined"; OPENMP=ON ;;
  tsan) FLAGS="-fsanitize=thread"; OPENMP=OFF ;;
  *) echo "usage: bash scripts/sanitize.sh asan|tsan" >&2; exit 2 ;;
esac
BUILD="build-$MODE"
JOBS="${SANITIZE_JOBS:-$(nproc)}"
LAUNCHER=()
command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

t0=$(date +%s)
# -O1: sanitized code at -O0 runs the suites several times slower; -g1: line tables are enough
# for file:line in reports and link far faster than full -g. No -march=native change: the
# sanitized build runs the same kernels (AVX paths) as Release.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_COMPILER="${SANITIZE_CXX:-c++}" \
  "${LAUNCHER[@]}" -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1 -fno-omit-frame-pointer $FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS_SANITIZE="$FLAGS" -DVERBCLIP_CUDA=OFF -DVERBCLIP_MPI=OFF \
  -DVERBCLIP_OPENMP=$OPENMP -DVERBCLIP_BUILD_BENCHMARKS=OFF >/dev/null
# SANITIZE_SUITES picks the suites (CI runs a subset to stay within its time; see .ci/run).
if [ "$MODE" = asan ]; then
  SUITES="${SANITIZE_SUITES:-engine nn models data apps}"
else
  SUITES="${SANITIZE_SUITES:-data apps}"  # apps: the binary's threaded commands below
fi
TARGETS=()
for s in $SUITES; do
  if [ "$MODE" = asan ] || [ "$s" != apps ]; then TARGETS+=("test_$s"); fi
  if [ "$s" = apps ]; then TARGETS+=(verbclip); fi
done
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"
t1=$(date +%s)
echo "sanitize $MODE: build $((t1 - t0)) s"

LOGS="$PWD/$BUILD/san-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
chmod 1777 "$LOGS"  # tests/apps runs the binary as nobody in its read-only-folder case
COMMON="log_path=$LOGS/report:print_stacktrace=1"
export ASAN_OPTIONS="$COMMON:detect_leaks=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="$COMMON:halt_on_error=1"
export TSAN_OPTIONS="$COMMON:halt_on_error=1:second_deadlock_stack=1"
export VERBCLIP_NO_CACHING=1 OMP_WAIT_POLICY=PASSIVE

status=0
if [ "$MODE" = asan ]; then
  ctest --test-dir "$BUILD" --output-on-failure -j 1 -R "^test_(${SUITES// /|})\$" || status=1
elif [[ " $SUITES " == *" data "* ]]; then
  "$BUILD/tests/test_data" || status=1
fi
if [ "$MODE" = tsan ] && [[ " $SUITES " == *" apps "* ]]; then
  # The apps' threads: make-data's writer pool, then pretrain-clip and train with 2 loader
  # workers decoding batches ahead of the training step.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  v="$BUILD/bin/verbclip"
  ( set -x
    "$v" make-data --out "$work/fm" --classes 0,1,2,3 --train-per-class 4 --val-per-class 1 \
      --test-per-class 1 --captions 20 --threads 2 --quiet
    "$v" pretrain-clip --data "$work/fm" --out "$work/clip" --steps 2 --batch-size 8 \
      --zero-shot-images 0 --quiet --opts MODEL.VISION_WIDTH 64 MODEL.VISION_LAYERS 1 \
      MODEL.TEXT_WIDTH 64 MODEL.TEXT_LAYERS 1 MODEL.EMBED_DIM 32 MODEL.PATCH_SIZE 8
    "$v" train --config models/configs/fm_tiny_baseline.yaml --output "$work/run" --quiet --opts \
      DATA.ROOT "$work/fm" MODEL.PRETRAINED "$work/clip/clip.safetensors" DATA.NUM_WORKERS 2 \
      TRAIN.BATCH_SIZE 4 TRAIN.EPOCHS 1 TRAIN.MAX_STEPS 3 TEST.BATCH_SIZE 4
  ) || status=1
fi
t2=$(date +%s)
if [ -n "$(ls -A "$LOGS")" ]; then
  for f in "$LOGS"/*; do echo "== $f"; cat "$f"; done
  echo "sanitize $MODE: sanitizer reports above (in $LOGS)" >&2
  status=1
fi
echo "sanitize $MODE: run $((t2 - t1)) s, $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
