#!/usr/bin/env bash
# Bounded memory (issue 20): RSS of a tiny `verbclip train` over STEPS steps (default 1000),
# from the rss_mib of its log.jsonl train records, and the peak it reports at the end.
# Usage: bash scripts/measure_rss.sh [build-dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}" STEPS="${2:-1000}"
VC="$BUILD/bin/verbclip"
W=$(mktemp -d /tmp/verbclip-rss.XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
"$VC" make-data --out "$W/fm" --classes 0,1,2,3,11,12 --train-per-class 4 --val-per-class 1 \
  --test-per-class 1 --captions 60 --threads 2 --quiet > /dev/null
"$VC" pretrain-clip --data "$W/fm" --out "$W/clip" --steps 2 --batch-size 16 --zero-shot-images 0 --quiet \
  --opts MODEL.VISION_WIDTH 64 MODEL.VISION_LAYERS 2 MODEL.TEXT_WIDTH 64 MODEL.TEXT_LAYERS 1 \
  MODEL.EMBED_DIM 32 MODEL.PATCH_SIZE 8 > /dev/null
"$VC" train --config models/configs/fm_tiny_baseline.yaml --output "$W/run" --quiet --opts \
  DATA.ROOT "$W/fm" MODEL.PRETRAINED "$W/clip/clip.safetensors" TRAIN.BATCH_SIZE 4 \
  TRAIN.MAX_STEPS "$STEPS" TRAIN.ACCUMULATION_STEPS 1 PRINT_FREQ 50 DATA.VAL_FILE "" > /dev/null
python3 - "$W/run/log.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
rss = [(r["step"], r["rss_mib"]) for r in recs if r.get("event") == "train"]
mem = [r for r in recs if r.get("event") == "memory"][-1]
print("step  rss_mib")
for s, m in rss: print(f"{s:5d}  {m:.1f}")
first = [m for s, m in rss if s >= 100][0]
print(f"peak RSS {mem['peak_rss_mib']:.1f} MiB; RSS at step 100 {first:.1f} MiB, at step {rss[-1][0]} {rss[-1][1]:.1f} MiB: "
      f"growth {rss[-1][1] - first:+.1f} MiB over {rss[-1][0] - 100} steps")
PY
