"""Does depth pay? The first exit alone, the shipped transformer policy, FEAR-XS's own loop, NanoTrack's own loop and
two designs of a FEAR-XS stage behind the first exit, on the held-out sequences, one run, one thread.

    python -m dytrack_ros.evaluation.depth_study --out benchmarks

Designs of the deeper stage (tracking/tracker.py, DyTracker with deep=FearStage):
  A "deep answers": when the first exit's predicted IoU is under the threshold, FEAR-XS's search window is placed on
    the first exit's answer and FEAR-XS's box is published and steers the loop (next crop, memory, LOST state);
  B "fused refinement": the same window, the published box is the average of the two networks' boxes, and the loop
    (crops, memory, LOST state) stays the first exit's.
Each design runs at full depth (FEAR-XS on every frame) and over a threshold sweep; the policy figure to quote is the
threshold chosen leave-one-sequence-out (runner.leave_one_out_policy: each sequence scored at the threshold the
calibration rule picks on the other sequences). Writes DEPTH.md and depth_results.json (machine and date inside).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys

import numpy as np

from ..backends import create_backend
from ..backends.fear_backend import DEFAULT_FEAR_DIR, create_fear_backend
from ..contract import DEFAULT_MODEL_DIR
from ..data.realdata import HELD_OUT, load_split
from ..runtime import build_tracker, model_manifest, tracker_params
from ..tracking.fear_stage import DeepIoUHead, FearLoop, FearStage
from ..tracking.tracker import DyTracker
from . import machine
from .peers import NanoTrackReference
from .runner import LOO_NAME, evaluate_variants, run_dytrack, run_peer

# FEAR-XS measures the target's size (trained on large data); the first exit alone is held to 0.2-5x its init size
# because its size estimate drifts, a bound that cuts FEAR-XS on a car coming 26x closer (car16_1), so both
# designs widen it
WIDE_SIZE_BOUNDS = (0.05, 40.0)
DESIGNS = {"A: FEAR-XS answers and steers": dict(deep_answer="deep", later_exits_steer=True,
                                                 size_bounds=WIDE_SIZE_BOUNDS),
           "B: fused refinement, first exit steers": dict(deep_answer="fuse", later_exits_steer=False,
                                                          size_bounds=WIDE_SIZE_BOUNDS),
           # needs --iou-head (evaluation/deep_score.py fit on the training sequences)
           "C: the likelier answer by predicted IoU answers and steers": dict(
               deep_answer="choose", later_exits_steer=True, size_bounds=WIDE_SIZE_BOUNDS),
           "D: as C, the first exit's size bounds (0.2-5x the init box) kept": dict(
               deep_answer="choose", later_exits_steer=True),
           "E: as C, and where the two answers disagree FEAR-XS's must match the target's memory as well": dict(
               deep_answer="choose", later_exits_steer=True, size_bounds=WIDE_SIZE_BOUNDS, deep_identity_check=True)}


def fear_tracker(model_dir: str, fear_dir: str, threads: int, iou_head: str = "", **settings) -> DyTracker:
    """The shipped model's first exit with FEAR-XS as the second (and last) exit."""
    params = tracker_params(model_manifest(model_dir))
    for key, value in settings.items():
        setattr(params, key, value)
    params.best_scored = False            # the two exits' scores are not on one scale (FEAR-XS's is a sigmoid)
    params.later_exits = "own"
    params.thresholds = []                # two exits now: set per run
    backend = create_backend("onnxruntime", model_dir, threads=threads)
    head = DeepIoUHead.load(iou_head) if iou_head else None
    return DyTracker(backend, params, deep=FearStage(create_fear_backend("onnxruntime", fear_dir, threads), head))


def design_variants(tracker: DyTracker, label: str, thresholds) -> dict:
    def forced(stages):
        return lambda seq: run_dytrack(tracker, seq, force_stages=stages)

    def dynamic(t):
        def run(seq):
            tracker.set_thresholds([t, 0.0])
            return run_dytrack(tracker, seq)
        return run
    variants = {"DyTrack exit 2 forced (full depth)": forced(2)}
    variants.update({f"DyTrack dynamic t={t:.2f}": dynamic(t) for t in thresholds})
    return variants


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--fear", default=DEFAULT_FEAR_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--split", default=HELD_OUT)
    p.add_argument("--real", default=None, help="OTB-layout folder with the real sequences (default: .data/realdata)")
    p.add_argument("--sequences", nargs="*", default=[], help="only these sequences (a quick look, not the study)")
    p.add_argument("--thresholds", type=float, nargs="*", default=[0.4, 0.5, 0.6, 0.7, 0.8])
    p.add_argument("--designs", nargs="*", default=["A", "B"], help="which designs (letters of DESIGNS)")
    p.add_argument("--iou-head", default="", help="the deep stage's IoU head (design C needs it)")
    p.add_argument("--out", default="benchmarks")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    suite = load_split(args.split, args.real)
    if args.sequences:
        suite = [s for s in suite if s.name in args.sequences]
    shipped = build_tracker(args.model, backend="onnxruntime", threads=args.threads)
    nanotrack = NanoTrackReference("v2", threads=args.threads)
    fear_loop = FearLoop(create_fear_backend("onnxruntime", args.fear, args.threads))
    baselines = {
        "DyTrack exit 1 forced (first exit alone)": lambda seq: run_dytrack(shipped, seq, force_stages=1),
        "DyTrack shipped policy (transformer stages)": lambda seq: run_dytrack(shipped, seq),
        NanoTrackReference.label("v2"): lambda seq: run_peer(nanotrack, seq),
        fear_loop.name: lambda seq: run_peer(fear_loop, seq),
    }
    results = {"machine": machine.describe(), "date": machine.today(), "threads": args.threads,
               "command": "python -m dytrack_ros.evaluation.depth_study " + " ".join(argv if argv is not None
                                                                                     else sys.argv[1:]),
               "sequences": [s.name for s in suite], "frames": int(sum(len(s) - 1 for s in suite)),
               "baselines": evaluate_variants(baselines, suite, shipped.num_stages, "baselines"), "designs": {}}
    for label, settings in DESIGNS.items():
        if label[0] not in args.designs:
            continue
        tracker = fear_tracker(args.model, args.fear, args.threads, args.iou_head, **copy.deepcopy(settings))
        results["designs"][label] = evaluate_variants(design_variants(tracker, label, args.thresholds), suite, 2,
                                                      label[:1])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "depth_results.json"), "w") as f:
        json.dump(results, f, indent=1)
    machine.write_report(os.path.join(args.out, "DEPTH.md"), report(results))
    return 0


def report(r: dict) -> list:
    base = r["baselines"]
    ref_ms = base[NanoTrackReference.label("v2")]["ms_per_frame"]
    lines = [f"# Does depth pay? FEAR-XS behind the first exit ({r['date']})", "",
             f"Machine: {r['machine']}; {r['threads']} thread(s), ONNX Runtime, CPU. Held-out sequences "
             f"({len(r['sequences'])}, {r['frames']} tracked frames): {', '.join(r['sequences'])}.",
             f"Command: `{r.get('command', 'python -m dytrack_ros.evaluation.depth_study')}`. AUC: success-plot area (%), "
             "mean over sequences. Time: tracker call per frame, x NanoTrack v2's own loop in this run.", "",
             "| tracker | AUC | precision | ms/frame | x NanoTrack loop | share of frames at depth 2 |",
             "|---|---|---|---|---|---|"]

    def row(name, res):
        share = res.get("stage_share")
        deep = f"{100 * share[1]:.1f}%" if share and len(share) == 2 else ""
        return (f"| {name} | {100 * res['auc']:.1f} | {100 * res['precision']:.1f} | {res['ms_per_frame']:.1f} | "
                f"{res['ms_per_frame'] / ref_ms:.2f} | {deep} |")
    for name, res in base.items():
        if name != LOO_NAME:
            lines.append(row(name, res))
    for label, res in r["designs"].items():
        for name, v in res.items():
            extra = f" (thresholds {sorted(set(v['chosen_thresholds']))})" if name == LOO_NAME else ""
            lines.append(row(f"{label}: {name}{extra}", v))
    lines += ["", "Per-sequence AUC:", "",
              "| sequence | first exit | shipped policy | NanoTrack loop | FEAR-XS loop | " +
              " | ".join(f"{label[:1]} full depth | {label[:1]} policy (LOO)" for label in r["designs"]) + " |",
              "|---" * (5 + 2 * len(r["designs"])) + "|"]
    names = list(base)
    for seq in r["sequences"]:
        cells = [base[n]["per_sequence_auc"][seq] for n in names if n != LOO_NAME][:4]
        for res in r["designs"].values():
            cells += [res["DyTrack exit 2 forced (full depth)"]["per_sequence_auc"][seq],
                      res[LOO_NAME]["per_sequence_auc"][seq] if LOO_NAME in res else float("nan")]
        lines.append(f"| {seq} | " + " | ".join(f"{100 * c:.1f}" for c in cells) + " |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
