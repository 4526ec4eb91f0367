#!/usr/bin/env bash
# Reproduce models/dytrack_small and its model card: train, export, calibrate, evaluate, ablate.
# On 2 CPU cores: about 35 min (main run) + 12 x 2 min (ablations: 3 variants x 4 seeds) + 15 min (evaluation).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
OUT="${OUT:-models/dytrack_small}"
STEPS="${STEPS:-2000}"
ABL_STEPS="${ABL_STEPS:-300}"
"$PY" -m dytrack_ros.training.train --out runs/main --steps "$STEPS" --batch 32 --seed 1
# second phase: teach the IoU heads that a search region without the target scores 0 (everything else frozen)
"$PY" -m dytrack_ros.training.train --out runs/iou_ft --init runs/main/final.pt --trainable iou_heads \
  --negatives 0.3 --steps 600 --batch 32 --warmup 20 --lr 1e-3 --distill-weight 0 --seed 5 --workers 2
"$PY" -m dytrack_ros.backends.export --checkpoint runs/iou_ft/final.pt --out "$OUT"
cp runs/iou_ft/final.pt "$OUT/model.pt"
cp runs/main/log.csv "$OUT/train_log.csv"
cp runs/main/config.json "$OUT/train_config.json"
cp runs/iou_ft/log.csv "$OUT/finetune_iou_log.csv"
cp runs/iou_ft/config.json "$OUT/finetune_iou_config.json"
# ablation: equal short runs, only the switch differs; several seeds per variant (one run is noise-dominated)
ABL_SEEDS="${ABL_SEEDS:-3 4 5 6}"
declare -A FOLDERS
for seed in $ABL_SEEDS; do
  "$PY" -m dytrack_ros.training.train --out "runs/abl_full_s$seed" --steps "$ABL_STEPS" --batch 24 --seed "$seed"
  "$PY" -m dytrack_ros.training.train --out "runs/abl_norecycle_s$seed" --steps "$ABL_STEPS" --batch 24 --seed "$seed" \
    --recycling none
  "$PY" -m dytrack_ros.training.train --out "runs/abl_nodistill_s$seed" --steps "$ABL_STEPS" --batch 24 --seed "$seed" \
    --distill-weight 0
  for r in abl_full abl_norecycle abl_nodistill; do
    cp "runs/${r}_s$seed/final.pt" "runs/${r}_s$seed/model.pt"
    FOLDERS[$r]="${FOLDERS[$r]:+${FOLDERS[$r]},}runs/${r}_s$seed"
  done
done
"$PY" -m dytrack_ros.evaluation.model_card --model "$OUT" --calibrate --card "$OUT/MODEL_CARD.md" \
  --json "$OUT/heldout_results.json" --ablation-sequences 16 \
  --ablation "recycling (tokens+prediction) + distillation=${FOLDERS[abl_full]}" \
  --ablation "no recycling=${FOLDERS[abl_norecycle]}" \
  --ablation "no distillation=${FOLDERS[abl_nodistill]}"
