"""Validation figures for a model card, exit-threshold calibration, and the ablation table.

    dytrack-eval --model models/dytrack_small --calibrate --card models/dytrack_small/MODEL_CARD.md \
                 --ablation "recycling+distill=runs/abl_full" --ablation "no recycling=runs/abl_norecycle" ...

--calibrate picks the exit thresholds on real frames of the `--calibration-split` (default: the training
split of data/real_sequences.json, the first `--calibration-frames` of each sequence) and writes them into
manifest.json. The shipped model's are picked on the validation split itself (the issue asks for thresholds
calibrated on real validation frames; the calibration split's 4 sequences proved too few): its "calibrated"
row is then in-sample, and the leave-one-sequence-out row (each sequence at the threshold the rule picks on
the other nine) is the figure to quote. Results are on the real validation split (never trained on), then
on sequences built from held-out photos (`--sequences 0` skips those). Without the real data (`--real ""`)
calibration and results use photo-built sequences only. The card's results section (between the `results`
markers) is rewritten; the rest of the card is left alone.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ..contract import DEFAULT_MODEL_DIR, Manifest
from ..runtime import build_tracker
from . import machine
from ..data.realdata import load_split, realdata_root
from ..data.sequences import Sequence, generated_suite
from .redetection import summary_section
from .runner import calibrate_thresholds, dytrack_policies, evaluate_dytrack

START, END = "<!-- results:start -->", "<!-- results:end -->"
DATA_START, DATA_END = "<!-- data:start -->", "<!-- data:end -->"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--sequences", type=int, default=16)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--thresholds", type=float, nargs="*", default=[0.4, 0.5, 0.6, 0.7, 0.8])
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--real", default=None, help="OTB-layout folder of the real sequences (default .data/realdata; "
                                                  "empty: photo-built sequences only)")
    p.add_argument("--calibration-split", default="train")
    p.add_argument("--calibration-frames", type=int, default=150,
                   help="first N frames of each calibration sequence (0: all)")
    p.add_argument("--ablation", action="append", default=[],
                   help="NAME=FOLDER[,FOLDER...] with model.pt (torch backend); several folders = runs with different seeds")
    p.add_argument("--ablation-sequences", type=int, default=10)
    p.add_argument("--card", default="")
    p.add_argument("--from-results", default="",
                   help="a dytrack-benchmark results.json: rewrite the card's results section from that run (every "
                        "figure from one run, peers included) instead of running the policies again")
    p.add_argument("--json", default="")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.from_results:
        write_card(args.card, benchmark_markdown(args.from_results))
        return
    out = {"machine": machine.describe(), "date": machine.today(), "model": args.model,
           "argv": list(argv if argv is not None else sys.argv[1:])}
    tracker = build_tracker(args.model, args.backend, threads=args.threads)
    real_root = realdata_root() if args.real is None else args.real
    if args.calibrate:
        if real_root:
            n = args.calibration_frames or None
            calib = [Sequence(q.name, q.frames[:n], q.boxes[:n]) for q in load_split(args.calibration_split, real_root)]
            source = (f"real {args.calibration_split} split ({len(calib)} sequences, "
                      + (f"first {n} frames each)" if n else "all frames)"))
        else:
            calib = generated_suite(args.sequences, args.length, seed=args.seed + 50_000, split="train")
            source = "sequences from training photos"
        th, full, table = calibrate_thresholds(tracker, calib)
        calibration = {
            "rule": f"the most accurate uniform threshold of the sweep (fewest mean stages among equals), "
                    f"on {source}",
            "full_depth_auc": full["auc"], "sweep": {str(t): {"auc": r["auc"], "mean_stages": r["mean_stages"]}
                                                     for t, r in table.items()}}
        Manifest.read(args.model).update(exit_thresholds=th, threshold_calibration=calibration)
        tracker.set_thresholds(th)
        out["calibration"] = calibration
        print(f"calibrated thresholds {th} on {source} (written to {args.model}/manifest.json)", flush=True)
    out["thresholds"] = list(tracker.params.thresholds)
    out["results"] = {}
    suite = None
    if real_root:
        suite = load_split("validation", real_root)
        out["results"][f"real validation split ({len(suite)} sequences, never trained on)"] = \
            dytrack_policies(tracker, suite, args.thresholds, out["thresholds"])
    if args.sequences:
        photo = generated_suite(args.sequences, args.length, args.seed)
        suite = suite or photo
        out["results"][f"photo-built, held-out photos ({args.sequences} x {args.length} frames)"] = \
            dytrack_policies(tracker, photo, args.thresholds, out["thresholds"])
    if args.ablation:
        small = suite[:args.ablation_sequences]
        out["ablation"], out["ablation_runs"] = {}, {}
        for spec in args.ablation:
            name, _, folders = spec.partition("=")
            runs = [ablation_run(folder, small, name, args.threads) for folder in folders.split(",")]
            out["ablation_runs"][name] = runs
            out["ablation"][name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    text = results_markdown(out, args)
    print(text)
    write_card(args.card, text)


def write_card(path: str, text: str) -> None:
    if not path:
        return
    card = open(path).read() if os.path.isfile(path) else f"# Model card\n\n{START}\n{END}\n"
    card = replace_between(card, START, END, text)
    if DATA_START in card:
        card = replace_between(card, DATA_START, DATA_END, sequences_table())
    with open(path, "w") as f:
        f.write(card)


def benchmark_markdown(path: str) -> str:
    """The card's results section from a dytrack-benchmark run: every tracker of each suite in one table."""
    with open(path) as f:
        res = json.load(f)
    lines = [f"From one `dytrack-benchmark` run ({res['date']}, {res['machine']}; DyTrack on {res['backend']}, "
             f"{res['threads']} thread(s) per tracker, peers in the same process on the same frames): "
             f"`dytrack-benchmark {' '.join(res.get('argv', []))}`; all of it in `benchmarks/RESULTS.md`.", ""]
    cal = res.get("calibration")
    if cal:
        lines += [f"Exit thresholds: {cal['chosen']:.2f} at every early exit, {cal['rule']} (in-sample AUC "
                  f"{100 * cal['in_sample_auc']:.1f}); the same rule leave-one-sequence-out: "
                  f"{100 * (cal['leave_one_sequence_out_auc'] or 0):.1f}, the figure to quote.", ""]
    for suite, rows in res["suites"].items():
        lines += [f"{suite}:", "", "| tracker | AUC | precision@20px | norm. precision | mean stages | frames exiting "
                  "at stage 1/2/... | ms/frame |", "|---|---|---|---|---|---|---|"]
        for name, r in rows.items():
            share = "/".join(f"{100 * v:.0f}%" for v in r["stage_share"]) if "stage_share" in r else ""
            stages = f"{r['mean_stages']:.2f}" if "mean_stages" in r else ""
            lines.append(f"| {name} | {100 * r['auc']:.1f} | {100 * r['precision']:.1f} | "
                         f"{100 * r['norm_precision']:.1f} | {stages} | {share} | {r['ms_per_frame']:.2f} |")
        lines.append("")
    lines += summary_section(os.path.join(os.path.dirname(os.path.abspath(path)), "REDETECTION.md"))
    return "\n".join(lines)


def replace_between(text: str, start: str, end: str, body: str) -> str:
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return head + start + "\n" + body + "\n" + end + tail


def sequences_table() -> str:
    """Every real sequence with its split and source (data/real_sequences.json), for the card."""
    from ..data.realdata import inventory
    rows = ["| split | sequence | frames | source dataset | repository @ commit | frames folder |", "|---|---|---|---|---|---|"]
    for e in inventory():
        where = f"`{e['frames_dir']}`"
        if e["gt_repo"] != e["repo"]:
            where += f"; ground truth `{e['gt_repo']}` `{e['gt_path']}`"
        rows.append(f"| {e['split']} | {e['name']} | {e['frames']} | {e['source_dataset']} | "
                    f"`{e['repo']}` @ `{e['commit']}` | {where} |")
    return "\n".join(rows)


def ablation_run(folder: str, suite, name: str, threads: int) -> dict:
    """Success AUC with each exit forced, for one trained variant (its model.pt, torch backend)."""
    t = build_tracker(folder, "torch", device="cpu", threads=threads)
    return {f"exit {k}": evaluate_dytrack(t, suite, force_stages=k, desc=f"{name} exit {k}")["auc"]
            for k in range(1, t.num_stages + 1)}


def results_markdown(out, args) -> str:
    lines = [f"Measured {out['date']} on {out['machine']}, backend {args.backend}, {args.threads or 'default'} threads.",
             f"Command: `dytrack-eval {' '.join(out.get('argv', []))}`.",
             f"Exit thresholds in use: {out['thresholds']}"
             + (f" (calibrated: {out['calibration']['rule']})." if out.get("calibration") else "."), ""]
    for suite_name, res in out["results"].items():
        k = len(next(iter(res.values()))["stage_share"])
        lines += [f"{suite_name}:", "",
                  "| policy | AUC | precision@20px | norm. precision | mean stages | frames exiting at stage "
                  f"{'/'.join(str(i + 1) for i in range(k))} | ms/frame |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in res.items():
            share = "/".join(f"{100 * s:.0f}%" for s in r["stage_share"])
            lines.append(f"| {name.replace('DyTrack ', '')} | {100 * r['auc']:.1f} | {100 * r['precision']:.1f} | "
                         f"{100 * r['norm_precision']:.1f} | {r['mean_stages']:.2f} | {share} | {r['ms_per_frame']:.2f} |")
        lines.append("")
    if out.get("ablation"):
        names = list(next(iter(out["ablation"].values())))
        runs = out.get("ablation_runs", {})
        lines += ["", f"Ablation (short runs of equal length, first {args.ablation_sequences} sequences of the first suite, "
                      "success AUC with each exit forced; with several runs per variant (seeds): mean and "
                      "[min-max]):", "",
                  "| variant | runs | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for variant, r in out["ablation"].items():
            rs = runs.get(variant, [r])
            cells = [f"{100 * r[n]:.1f}" + (f" [{100 * min(x[n] for x in rs):.1f}-{100 * max(x[n] for x in rs):.1f}]"
                                            if len(rs) > 1 else "") for n in names]
            lines.append(f"| {variant} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
