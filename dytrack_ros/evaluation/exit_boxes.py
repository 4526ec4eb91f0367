"""Do the later exits size the located target better than the first exit, on the same crops?

    python -m dytrack_ros.evaluation.exit_boxes --model DIR [--model DIR ...] --split validation+calibration \
        --split train:8 --out benchmarks/experiments/EXIT_BOXES.md

The first exit's own loop runs (forced to the first exit, re-detection off, so every model sees the same crops);
on every frame with a visible target, before the loop moves on, each exit of the model runs on that frame's search
crop and its box is read at the cell its own maps pick, with its own predicted size (no blending with the previous
size; a manifest's later_exits setting, such as fusing a later exit's maps with the first exit's, is not applied). Reported: the mean IoU with the ground truth of each exit's box. Run on sequences a model was trained
on and on sequences it never saw, the gap between the two says whether a later exit learned to size targets or
learned the training sequences' targets.
"""
from __future__ import annotations

import argparse
import os
from typing import Dict, List

import numpy as np
from tqdm import tqdm

from ..contract import DEFAULT_MODEL_DIR
from ..data import realdata
from ..runtime import build_tracker
from . import machine
from .metrics import box_iou


def exit_box_ious(tracker, seq) -> np.ndarray:
    """(frames with a visible target, num_stages) IoU of every exit's box on the first exit's crops."""
    tracker.initialize(seq.frame(0), seq.boxes[0])
    visible = seq.visible_mask()
    rows = []
    for i in range(1, len(seq)):
        frame = seq.frame(i)
        if visible[i]:
            search, centre, side = tracker.search_region(frame)
            boxes = [tracker._decode(tracker.backend.run_stage(k, search if k == 0 else None), centre, side,
                                     blend_size=False).box for k in range(tracker.num_stages)]
            rows.append(box_iou(np.array(boxes), np.repeat(seq.boxes[i][None], len(boxes), 0)))
        tracker.track(frame, force_stages=1)
    return np.array(rows).reshape(-1, tracker.num_stages)


def measure(model: str, sequences) -> Dict[str, np.ndarray]:
    tracker = build_tracker(model, "onnxruntime", threads=1)
    tracker.params.redetect = False
    return {seq.name: exit_box_ious(tracker, seq) for seq in tqdm(sequences, desc=os.path.basename(model), leave=False)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=None, help="model folder (repeat for several)")
    p.add_argument("--split", action="append", default=None,
                   help="split of data/real_sequences.json, SPLIT or SPLIT:N for its first N sequences (repeat for "
                        "several; default: the held-out sequences)")
    p.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    models = args.model or [DEFAULT_MODEL_DIR]
    splits = args.split or [realdata.HELD_OUT]
    lines = ["# Exit boxes on the first exit's crops", "",
             f"- machine: {machine.describe()}", f"- date: {machine.today()}",
             "- command: `python -m dytrack_ros.evaluation.exit_boxes "
             + " ".join([f"--model {m}" for m in models] + [f"--split {s}" for s in splits]) + "`",
             "- mean IoU with the ground truth over frames with a visible target; exit 1 is the first exit", ""]
    header_done = False
    for spec in splits:
        split, _, count = spec.partition(":")
        seqs = realdata.load_split(split, require_all=False)
        seqs = seqs[:int(count)] if count else seqs    # frames are read from disk per model (a split may not fit in RAM)
        for model in models:
            per_seq = measure(model, seqs)
            ious = np.concatenate(list(per_seq.values()))
            k = ious.shape[1]
            if not header_done:
                lines += ["| model | split | sequences | frames | " + " | ".join(f"exit {j + 1}" for j in range(k)) + " |",
                          "|---|---|---|---|" + "---|" * k]
                header_done = True
            lines.append(f"| `{model}` | {spec} | {len(seqs)} | {len(ious)} | "
                         + " | ".join(f"{100 * v:.1f}" for v in ious.mean(0)) + " |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
