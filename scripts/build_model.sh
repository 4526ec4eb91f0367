#!/usr/bin/env bash
# Reproduce models/dytrack_small and its model card from real annotated video:
#   1. the configuration comparison (three configurations, 1500 steps each on the 17 original training
#      sequences: NanoTrack-v2 stem at search 256 and 192 px, EfficientNet-Lite0 stem at 192 px),
#   2. the shipped model: the 192 px NanoTrack-stem configuration continued on the whole training split,
#   3. an IoU-head fine-tune with target-absent pairs, export, tracker settings and exit thresholds tuned on
#      the calibration split, the model card.
# Needs the real sequences in .data/realdata (../shared/realdata/README.md; dytrack_ros/data/real_sequences.json
# names them, dytrack_ros/data/extra_sequences.json is the extract.py inventory of the 26 added ones).
# On 2 CPU cores: about 25 + 45 + 25 min for the comparison runs, 60 min for the main run, 20 min after it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
OUT="${OUT:-models/dytrack_small}"
TRAIN=(-m dytrack_ros.training.train --batch 32 --workers 0 --negatives 0.1 --save-every 100)
# 1. comparison: the 17 training sequences of the first inventory (symlinked into one folder)
mkdir -p .data/realdata_v1
for n in bag ball1 bike1 boat1 building4 building5 car10 David Deer Diving DragonBaby group1_1 group1_4 Skiing \
         wakeboard3 wakeboard5 wakeboard7; do ln -sfn ../realdata/$n .data/realdata_v1/$n; done
for cfg in nano_s192 nano_s256 lite0_s192; do
  "$PY" "${TRAIN[@]}" --out "runs/cmp_$cfg" --data real:.data/realdata_v1 \
    --model-config "config/model_configs/$cfg.json" --steps 1500 --seed 1
  "$PY" -m dytrack_ros.backends.export --checkpoint "runs/cmp_$cfg/final.pt" --out "runs/cmp_$cfg/export"
  cp "runs/cmp_$cfg/final.pt" "runs/cmp_$cfg/export/model.pt"
done
# 2. the shipped model: continue the 192 px run on every training sequence
"$PY" "${TRAIN[@]}" --out runs/main --data real --model-config config/model_configs/nano_s192.json \
  --init runs/cmp_nano_s192/final.pt --steps 4000 --lr 5e-4 --warmup 50 --seed 2
# 3. the IoU heads alone, with 30% target-absent pairs: the score must say when the target is not in view
"$PY" -m dytrack_ros.training.train --out runs/iou_ft --data real --init runs/main/final.pt --trainable iou_heads \
  --negatives 0.3 --steps 600 --batch 32 --warmup 20 --lr 1e-3 --distill-weight 0 --seed 5 --workers 0
"$PY" -m dytrack_ros.backends.export --checkpoint runs/iou_ft/final.pt --out "$OUT"
cp runs/iou_ft/final.pt "$OUT/model.pt"
cp runs/main/log.csv "$OUT/train_log.csv"
cp runs/main/config.json "$OUT/train_config.json"
cp runs/cmp_nano_s192/log.csv "$OUT/train_log_phase1.csv"
cp runs/cmp_nano_s192/config.json "$OUT/train_config_phase1.json"
cp runs/iou_ft/log.csv "$OUT/finetune_iou_log.csv"
cp runs/iou_ft/config.json "$OUT/finetune_iou_config.json"
# 4. tracker settings and exit thresholds on the calibration split (never trained on, never the validation split)
"$PY" -m dytrack_ros.evaluation.tune --model "$OUT" --param size_lr 0.3 0.5 1 --write
"$PY" -m dytrack_ros.evaluation.tune --model "$OUT" --param lost_window_influence 0 0.5 --write
"$PY" -m dytrack_ros.evaluation.tune --model "$OUT" --param lost_patience 0 5 20 --write
"$PY" -m dytrack_ros.evaluation.model_card --model "$OUT" --calibrate --calibration-split calibration \
  --calibration-frames 400 --threads 1 --sequences 8 --card "$OUT/MODEL_CARD.md" --json "$OUT/validation_results.json"
