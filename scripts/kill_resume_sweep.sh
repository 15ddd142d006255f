#!/usr/bin/env bash
# Kill-and-resume sweep (issue 20), the long form of tests/apps/test_reliability.cpp: a tiny
# `verbclip train` (2 epochs of 3 steps, checkpoint every 2 steps, validation each epoch) is
# SIGKILLed at every step, every checkpoint write and rename, every evaluation batch
# (VERBCLIP_TEST_KILL_AT, nn/faults.h) and at RANDOM_KILLS random moments (kill -9 from
# outside), then resumed; the weights must equal an uninterrupted run's bit for bit and the
# log's records must equal its records (no loss, no duplicate).
# Usage: bash scripts/kill_resume_sweep.sh [build-dir] [random-kills]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}" RANDOM_KILLS="${2:-10}"
VC="$(pwd)/$BUILD/bin/verbclip"
W=$(mktemp -d /tmp/verbclip-sweep.XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
"$VC" make-data --out "$W/fm" --classes 0,1,2,3,11,12 --train-per-class 4 --val-per-class 1 \
  --test-per-class 1 --captions 60 --threads 2 --quiet > /dev/null
"$VC" pretrain-clip --data "$W/fm" --out "$W/clip" --steps 2 --batch-size 16 --zero-shot-images 0 --quiet \
  --opts MODEL.VISION_WIDTH 64 MODEL.VISION_LAYERS 2 MODEL.TEXT_WIDTH 64 MODEL.TEXT_LAYERS 1 \
  MODEL.EMBED_DIM 32 MODEL.PATCH_SIZE 8 > /dev/null
train() {
  "$VC" train --config models/configs/fm_tiny_baseline.yaml --output "$1" --quiet --opts DATA.ROOT "$W/fm" \
    MODEL.PRETRAINED "$W/clip/clip.safetensors" TRAIN.BATCH_SIZE 4 TRAIN.EPOCHS 2 TRAIN.MAX_STEPS 0 \
    TRAIN.ACCUMULATION_STEPS 2 SAVE_FREQ 2 TEST.EVAL_EVERY 1 TEST.BATCH_SIZE 8 PRINT_FREQ 1
}
# Same tensors (names, dtypes, shapes, bytes) and same log records (times and rates left out).
same() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]]) for k, v in h.items()}
def records(d):
    out = []
    for l in open(d + "/log.jsonl"):
        r = json.loads(l)
        if r.get("event") in ("start", "resume", "memory"): continue
        for k in ("time", "clips_per_s", "rss_mib"): r.pop(k, None)
        out.append(json.dumps(r, sort_keys=True))
    return out
a, b = sys.argv[1], sys.argv[2]
ok = all(tensors(f"{a}/{c}.safetensors") == tensors(f"{b}/{c}.safetensors") for c in ("checkpoint_last", "checkpoint_best"))
ok = ok and records(a) == records(b)
sys.exit(0 if ok else 1)
PY
}
train "$W/ref" > /dev/null
points=()
for n in 1 2 3 4 5 6; do points+=("train_step:$n"); done
for n in 1 2 3 4; do points+=("write:checkpoint_last.safetensors:$n" "renamed:checkpoint_last.safetensors:$n"); done
for n in 1 2; do points+=("eval_batch:$n" "write:checkpoint_best.safetensors:$n" "renamed:checkpoint_best.safetensors:$n"); done
pass=0 fail=0 i=0
check() {  # $1: label, $2: run folder
  if ls "$2"/checkpoint_last.safetensors > /dev/null 2>&1 && "$VC" train --output "$2" --resume --quiet > "$2.resume.log" 2>&1 && same "$W/ref" "$2"; then
    pass=$((pass + 1)); echo "ok    $1"
  elif ! ls "$2"/checkpoint_last.safetensors > /dev/null 2>&1; then
    echo "skip  $1 (killed before the first checkpoint: nothing to resume)"
  else
    fail=$((fail + 1)); echo "FAIL  $1 ($2)"; trap - EXIT
  fi
}
for p in "${points[@]}"; do
  i=$((i + 1)); out="$W/k$i"
  # A point this run never passes (e.g. a second best checkpoint when validation did not improve).
  VERBCLIP_TEST_KILL_AT="$p" train "$out" > /dev/null 2>&1 && { echo "skip  $p (not reached: the run finished)"; continue; }
  check "$p" "$out"
done
# Random moments: a fresh run killed from outside after a random delay within the run's length.
t0=$(date +%s.%N); train "$W/timing" > /dev/null; t1=$(date +%s.%N)
len=$(python3 -c "print($t1 - $t0)")
for r in $(seq 1 "$RANDOM_KILLS"); do
  i=$((i + 1)); out="$W/k$i"
  delay=$(python3 -c "import random; print(round(random.uniform(0.3, $len), 2))")
  train "$out" > /dev/null 2>&1 & pid=$!
  sleep "$delay"; kill -9 "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true
  if [ -f "$out/log.txt" ] && grep -q "trained " "$out/log.txt"; then echo "ok    random ${delay}s: finished before the kill"; pass=$((pass + 1)); continue; fi
  check "random kill at ${delay}s" "$out"
done
echo "kill points: $pass resumed bitwise, $fail failed"
[ "$fail" -eq 0 ]
