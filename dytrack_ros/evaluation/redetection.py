"""Re-detection measured: does the tracker find the target again when it comes back, and does it take anything else?

    dytrack-redetect-bench --model models/dytrack_small --out benchmarks/REDETECTION.md

Sequences with returns: the real sequences whose ground truth marks the target absent for a while (NaN rows), and
every sequence of a split replayed through a virtual camera that turns away from the target and back
(data/scenarios.py), once at 30% of its length (`~turn`) and once at 60% (`~turn60`). Two suites, one table each: the
held-out sequences (never trained on: the reported numbers) and the train split's (the network saw their frames; the
re-detection settings were chosen there, no weight learns from returns). The tracker (the model's policy and settings)
runs with re-detection off and on, side by side on the same frames. Per variant: returns re-acquired within 30 frames
(TRACKING with IoU >= 0.3), frames to re-acquire (median), re-acquisitions (LOST -> TRACKING, by the global search or
by the local window's confirmation) and how many of them took something that is not the target (IoU < 0.1 or target
absent on that frame: a false re-acquisition), frames reported TRACKING on something that is not the target overall,
after a false re-acquisition (until the next LOST frame: the issue's false re-acquisitions, either path) and after a
global re-detection, success AUC, and time per TRACKING and per LOST frame.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Dict, List

import numpy as np
from tqdm import tqdm

from ..contract import DEFAULT_MODEL_DIR
from ..data import realdata
from ..data.scenarios import turned_away
from ..tracking.tracker import LOST, TRACKING
from . import machine
from .metrics import box_iou, score_sequence
from .runner import in_memory, run_dytrack

WITHIN = 30
# where the virtual camera turns away, as a share of the sequence: two separate replays of each sequence (one turn
# each), so a sequence long enough gives two returns at different moments of its video. One turn at 0.3 alone gave
# 13 held-out returns, too few to tell 69% from 77% (one return is 7.7 points).
TURNS = {"turn": 0.3, "turn60": 0.6}


def suite_with_returns(split: str) -> list:
    """Every sequence of the split with its own absent spells, plus each one turned away and back at each of TURNS
    where it can be."""
    out = []
    for seq in realdata.load_split(split, require_all=False):
        vis = seq.visible_mask()
        if (~vis[:-1] & vis[1:]).any():
            out.append(seq)
        for label, share in TURNS.items():
            turned = turned_away(seq, start=int(share * len(seq)), label=label)
            if turned is not None:
                out.append(turned)
    return out


def run(tracker, seq) -> dict:
    """The tracker over the sequence (runner.run_dytrack), frame 0 (the init frame) counted as TRACKING."""
    r = run_dytrack(tracker, seq)
    return {"boxes": r.boxes, "states": np.concatenate([[TRACKING], r.states]),
            "ms": np.concatenate([[0.0], r.times_ms]), "redetected": np.concatenate([[False], r.redetected])}


def _until_lost(starts: np.ndarray, tracking: np.ndarray) -> np.ndarray:
    """True from each frame where `starts` is set until the next frame that is not TRACKING."""
    out, on = np.zeros(len(tracking), bool), False
    for i in range(len(tracking)):
        on = bool((on or starts[i]) and tracking[i])
        out[i] = on
    return out


def score_returns(result: dict, seq) -> dict:
    vis = seq.visible_mask()
    ious = np.zeros(len(seq))
    ious[vis] = box_iou(result["boxes"][vis], seq.boxes[vis])
    tracking = result["states"] == TRACKING
    wrong = tracking & (~vis | (ious < 0.1))
    wrong[0] = False
    reacquired = np.zeros(len(seq), bool)
    reacquired[1:] = tracking[1:] & ~tracking[:-1]
    after_jump = _until_lost(result["redetected"], tracking)       # from a global re-detection
    after_false = _until_lost(reacquired & wrong, tracking)         # from a re-acquisition of something else
    returns = np.flatnonzero(vis[1:] & ~vis[:-1]) + 1
    delays = []
    for r in returns:
        hit = np.flatnonzero(tracking[r:r + WITHIN] & (ious[r:r + WITHIN] >= 0.3))
        delays.append(int(hit[0]) if len(hit) else None)
    lost = result["states"] == LOST
    return {"returns": len(returns), "delays": delays, "frames": len(seq) - 1, "wrong": int(wrong.sum()),
            "wrong_after_jump": int((wrong & after_jump).sum()), "jumps": int(result["redetected"].sum()),
            "reacquisitions": int(reacquired.sum()), "false_reacquisitions": int((reacquired & wrong).sum()),
            "wrong_after_false": int((wrong & after_false).sum()),
            "auc": score_sequence(result["boxes"], seq.boxes, seq.visible).auc,
            "ms_tracking": result["ms"][1:][tracking[1:]].tolist(), "ms_lost": result["ms"][1:][lost[1:]].tolist()}


def summarize(rows: List[dict]) -> dict:
    delays = [d for r in rows for d in r["delays"]]
    found = [d for d in delays if d is not None]
    frames = sum(r["frames"] for r in rows)
    ms_t = [m for r in rows for m in r["ms_tracking"]]
    ms_l = [m for r in rows for m in r["ms_lost"]]
    return {"sequences": len(rows), "returns": len(delays), "reacquired": len(found) / max(len(delays), 1),
            "median_frames": float(np.median(found)) if found else None, "frames": frames,
            "wrong_share": sum(r["wrong"] for r in rows) / max(frames, 1),
            "wrong_after_jump_share": sum(r["wrong_after_jump"] for r in rows) / max(frames, 1),
            "wrong_after_false_share": sum(r["wrong_after_false"] for r in rows) / max(frames, 1),
            "reacquisitions": sum(r["reacquisitions"] for r in rows),
            "false_reacquisitions": sum(r["false_reacquisitions"] for r in rows),
            "jumps": sum(r["jumps"] for r in rows), "auc": float(np.mean([r["auc"] for r in rows])),
            "ms_tracking": float(np.mean(ms_t)) if ms_t else None, "ms_lost": float(np.mean(ms_l)) if ms_l else None}


def compare(tracker, suite, variants: Dict[str, dict]) -> Dict[str, dict]:
    """variant name -> tracker parameter overrides; every variant runs on each sequence while it is in memory."""
    params = tracker.params           # changed in place: the tracker's parts (its global search) share this object
    base = copy.deepcopy(vars(params))
    rows = {name: [] for name in variants}
    for seq in tqdm(suite, desc="returns", leave=False):
        loaded = in_memory(seq)
        for name, overrides in variants.items():
            for k, v in {**base, **overrides}.items():
                setattr(params, k, v)
            rows[name].append(score_returns(run(tracker, loaded), loaded))
    for k, v in base.items():
        setattr(params, k, v)
    return {name: summarize(r) for name, r in rows.items()}


def table(results: Dict[str, dict]) -> List[str]:
    lines = ["| variant | returns | re-acquired <= 30 frames | median frames | re-acquisitions (false) | TRACKING on a "
             "wrong target: all / after a false re-acquisition / after a global re-detection | global re-detections | "
             "AUC | ms per TRACKING / LOST frame |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        med = "-" if r["median_frames"] is None else f"{r['median_frames']:.0f}"
        ms = lambda v: "-" if v is None else f"{v:.2f}"
        lines.append(f"| {name} | {r['returns']} | {100 * r['reacquired']:.0f}% | {med} | "
                     f"{r['reacquisitions']} ({r['false_reacquisitions']}) | {100 * r['wrong_share']:.1f}% / "
                     f"{100 * r['wrong_after_false_share']:.1f}% / {100 * r['wrong_after_jump_share']:.1f}% | "
                     f"{r['jumps']} | {100 * r['auc']:.1f} | {ms(r['ms_tracking'])} / {ms(r['ms_lost'])} |")
    return lines


def summary_section(path: str) -> List[str]:
    """The table of a REDETECTION.md this command wrote, with its date and command, for RESULTS.md and the card."""
    if not os.path.isfile(path):
        return []
    text = open(path).read().splitlines()
    meta = [ln for ln in text if ln.startswith(("- date", "- command", "- sequences", "- defaults"))]
    body = []
    for ln in text:
        if ln.startswith("### "):
            body += ["", f"**{ln[4:]}**", ""]
        elif ln.startswith("|"):
            body.append(ln)
    return ["## Re-detection: returns after the target left (`benchmarks/REDETECTION.md`, a separate run)", "", *meta,
            *body, ""]


def main(argv=None):
    from ..runtime import build_tracker
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--split", default="validation+calibration", help="realdata split(s) joined by '+' (held out)")
    p.add_argument("--tuning-split", default="train",
                   help="a second table on these splits, where the settings were chosen ('' for none)")
    p.add_argument("--out", default="benchmarks/REDETECTION.md")
    p.add_argument("--threshold", type=float, nargs="*", default=[], help="confirm thresholds to compare")
    p.add_argument("--windows", type=int, nargs="*", default=[], help="windows per LOST frame to compare")
    p.add_argument("--scales", type=float, nargs="*", default=[], help="one variant searching these target sizes")
    p.add_argument("--verify", type=float, nargs="*", default=[], help="verify thresholds to compare (0: no check)")
    args = p.parse_args(argv)
    tracker = build_tracker(args.model, "onnxruntime", threads=1)
    suites = {f"Held-out sequences ({args.split}, never trained on)": args.split}
    if args.tuning_split:
        suites[f"Training sequences ({args.tuning_split}: the network saw these frames; settings chosen here)"] = \
            args.tuning_split
    suites = {title: [s for part in split.split("+") for s in suite_with_returns(part)]
              for title, split in suites.items()}
    variants = {"re-detection off": {"redetect": False}, "re-detection on (defaults)": {"redetect": True},
                "on, without the appearance memory": {"redetect": True, "memory_size": 0},
                "on, without the look-alike memory": {"redetect": True, "lookalike_memory": 0},
                "on, without the refused memory": {"redetect": True, "remember_refused": 0}}
    for t in args.threshold:
        variants[f"on, confirm_threshold {t:g}"] = {"redetect": True, "confirm_threshold": t}
    for n in args.windows:
        variants[f"on, {n} windows per LOST frame"] = {"redetect": True, "redetect_windows": n}
    for v in args.verify:
        variants[f"on, verify_threshold {v:g}"] = {"redetect": True, "verify_threshold": v}
    if args.scales:
        variants[f"on, target sizes x {' and '.join(f'{s:g}' for s in args.scales)}"] = {
            "redetect": True, "redetect_scales": tuple(args.scales)}
    d = tracker.params
    lines = ["# Re-detection: finding the target again", "", f"- machine: {machine.describe()}",
             f"- date: {machine.today()}", f"- command: `dytrack-redetect-bench {' '.join(sys.argv[1:] if argv is None else argv)}`",
             *[f"- sequences, {title.split(' (')[0].lower()} ({len(suite)}): {', '.join(s.name for s in suite)}"
               for title, suite in suites.items()],
             f"- defaults: patience {d.redetect_patience} LOST frames, {d.redetect_windows} windows per LOST frame, "
             f"{d.confirm_frames} confirmations at >= {d.confirm_threshold}, memory {d.memory_size} templates "
             f"(median verdict), look-alike memory {d.lookalike_memory} templates, refused memory {d.remember_refused} "
             f"templates (margin {d.refused_margin:g}), target sizes x "
             f"{', '.join(f'{s:g}' for s in d.redetect_scales)}, verify_threshold {d.verify_threshold:g}"]
    for title, suite in suites.items():
        lines += ["", f"### {title}", "", *table(compare(tracker, suite, variants))]
    machine.write_report(args.out, lines)


if __name__ == "__main__":
    main()
