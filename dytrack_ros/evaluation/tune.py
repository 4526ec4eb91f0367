"""Tune one tracker setting (motion prior, size smoothing, LOST patience) on real video that the model was not
trained on and that is not the validation split (the `calibration` split by default), full depth, and
optionally write the best value into the model's manifest ("tracker" section).

    python -m dytrack_ros.evaluation.tune --model models/dytrack_small --param size_lr 0.3 0.5 1 --write
"""
from __future__ import annotations

import argparse
import os

from ..contract import DEFAULT_MODEL_DIR, TRACKER_SETTING_CHOICES, Manifest
from ..data.realdata import load_split
from ..data.sequences import Sequence
from ..runtime import TUNABLE, build_tracker
from . import machine
from .runner import run_dytrack, run_variants, summarize


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--param", nargs="+", required=True, metavar=("NAME", "VALUE"),
                   help=f"one of {', '.join(TUNABLE)} and the values to try")
    p.add_argument("--split", default="calibration", choices=["calibration", "train"])
    p.add_argument("--frames", type=int, default=300, help="first N frames of each sequence")
    p.add_argument("--policy", default="full",
                   help="full: every stage; dynamic: the manifest's exit thresholds (what the node runs); "
                        "N: exactly N stages")
    p.add_argument("--write", action="store_true", help="store the best value in manifest.json")
    p.add_argument("--log", default="benchmarks/TRACKER_TUNING.md", help="append the table here")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    name = args.param[0]
    choices = {str(c).lower(): c for c in TRACKER_SETTING_CHOICES.get(name, ())}   # "fuse", "true" -> True
    if choices and any(v.lower() not in choices for v in args.param[1:]):
        raise SystemExit(f"--param {name} takes {', '.join(choices)}, got {' '.join(args.param[1:])}")
    values = [choices[v.lower()] if choices else float(v) for v in args.param[1:]]
    if name == "lost_patience":
        values = [int(v) for v in values]
    if name not in TUNABLE or not values:
        raise SystemExit(f"--param needs one of {TUNABLE} and at least one value")
    suite = [Sequence(q.name, q.frames[:args.frames], q.boxes[:args.frames]) for q in load_split(args.split)]
    tracker = build_tracker(args.model, args.backend, threads=1)
    k = tracker.num_stages
    if args.policy not in ("full", "dynamic") and not args.policy.isdigit():
        raise SystemExit(f"--policy must be full, dynamic or a number of stages, got {args.policy!r}")
    forced = k if args.policy == "full" else None if args.policy == "dynamic" else int(args.policy)
    policy = {"full": "full depth", "dynamic": "dynamic policy (manifest thresholds)"}.get(args.policy,
                                                                                         f"{forced} stages")

    def variant(v):
        def run(seq):
            setattr(tracker.params, name, v)
            return run_dytrack(tracker, seq, force_stages=forced)
        return run
    runs = run_variants({v: variant(v) for v in values}, suite, f"tune {name}")
    table = {v: summarize(rr, suite, k)["auc"] for v, rr in runs.items()}
    best = max(table, key=table.get)
    lines = [f"## {name} ({machine.today()}, model `{args.model}`)", "",
             f"Real {args.split} split, first {args.frames} frames of {len(suite)} sequences, {policy}, other "
             f"settings as in the manifest; `python -m dytrack_ros.evaluation.tune --model {args.model} --split "
             f"{args.split} --policy {args.policy} --param {name} {' '.join(args.param[1:])}{' --write' if args.write else ''}`", "",
             "| value | AUC |", "|---|---|"] + [f"| {v} | {100 * a:.1f} |" for v, a in table.items()] + \
            ["", f"best: {best}" + (" (written to manifest.json)" if args.write else ""), ""]
    print("\n".join(lines))
    if args.log:
        os.makedirs(os.path.dirname(args.log) or ".", exist_ok=True)
        new = not os.path.exists(args.log)
        with open(args.log, "a") as f:
            if new:
                f.write("# Tracker settings tuned on real training video\n\n")
            f.write("\n".join(lines) + "\n")
    if args.write:
        manifest = Manifest.read(args.model)
        manifest.update(tracker={**manifest.tracker_settings, name: best})


if __name__ == "__main__":
    main()
