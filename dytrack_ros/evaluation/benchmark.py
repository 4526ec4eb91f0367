"""Speed-accuracy benchmark: DyTrack's exits and threshold sweep next to peer trackers, same frames, one run.

    dytrack-benchmark --model models/dytrack_small --nanotrack DIR --out benchmarks

Headline suite: every real sequence of data/real_sequences.json that no weight was trained on (the validation and
calibration splits; OTB layout, default .data/realdata; `--real DIR` elsewhere, `--real ""` to skip). Secondary: sequences built from held-out photos
(`--photo-sequences 0` skips them) and forward-backward consistency on Debian's unlabelled vtest.avi.
Writes RESULTS.md (machine, date, tables, per-sequence AUC, lost-and-found), results.json, speed_accuracy.png
(DyTrack's threshold sweep as a curve, forced exits and peers as points) and exit_histogram.png.
Peers: NanoTrack's own tracker loop on its published v2 and v3 graphs (evaluation/peers.py, the reference our first
exit is held to), `cv2.TrackerNano` on the same v2 graphs (models/third_party, Apache-2.0; `--nanotrack DIR` for other
files), OpenCV's CSRT/KCF/MIL (and others), and with `--fear-loop` FEAR-XS's own loop (tracking/fear_stage.py).
Every tracker runs with the same number of threads (`--threads`, default 1).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ..contract import DEFAULT_MODEL_DIR
from ..data.realdata import HELD_OUT, load_split, realdata_root
from ..data.sequences import READERS, Sequence, generated_suite
from ..runtime import build_tracker
from . import machine
from .metrics import forward_backward_error
from .peers import CLASSICAL, NanoTrackReference, OpenCVTracker
from .redetection import summary_section
from .runner import LOO_NAME, dytrack_variants, evaluate_variants, run_dytrack, run_peer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1, help="threads for every tracker (DyTrack's runtime, OpenCV)")
    p.add_argument("--out", default="benchmarks")
    p.add_argument("--real", default=None, help="OTB-layout folder with the real sequences (default: .data/realdata)")
    p.add_argument("--split", default=HELD_OUT, help="which split(s) of data/real_sequences.json to run ('a+b' joins)")
    p.add_argument("--photo-sequences", type=int, default=16, help="photo-built held-out sequences (0: skip)")
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--thresholds", type=float, nargs="*", default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
                   help="the threshold sweep (also what the leave-one-sequence-out threshold is chosen from)")
    p.add_argument("--peers", nargs="*", default=["NanoTrack", "CSRT", "KCF"],
                   help=f"OpenCV trackers: NanoTrack (cv2.TrackerNano), {', '.join(CLASSICAL)}")
    p.add_argument("--reference", nargs="*", default=["v2", "v3"],
                   help="NanoTrack versions whose own tracker loop runs beside (NanoTrackReference)")
    p.add_argument("--fear-loop", action="store_true",
                   help="also FEAR-XS's own tracker loop (tracking/fear_stage.py:FearLoop, models/third_party/fear_xs)")
    p.add_argument("--nanotrack", default="", help="another folder with NanoTrack v2's two ONNX graphs for "
                                                   "cv2.TrackerNano (default: the shipped ones)")
    p.add_argument("--peer-model", action="append", default=[], help="NAME=PATH for learned OpenCV trackers (Vit)")
    p.add_argument("--candidate", action="append", default=[],
                   help="NAME=MODEL_DIR: another DyTrack model, each exit forced, in the same run (config comparison)")
    p.add_argument("--dataset", default="", help="also evaluate another dataset: otb:DIR, lasot:DIR, got10k:DIR")
    p.add_argument("--video", default=".data/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    p.add_argument("--video-box", type=float, nargs=4, default=[638, 238, 48, 86])
    p.add_argument("--video-frames", type=int, default=60)
    p.add_argument("--calibrate", action="store_true",
                   help="choose the model's exit thresholds from this run's sweep on the real suite (the calibration "
                        "rule on every sequence; its leave-one-sequence-out figure is the honest estimate) and write "
                        "them into its manifest")
    return p.parse_args(argv)


def forward_backward(make_tracker, video, box, frames, is_dytrack):
    import cv2
    cap = cv2.VideoCapture(video)
    imgs = []
    while len(imgs) < frames:
        ok, f = cap.read()
        if not ok:
            break
        imgs.append(f)
    if len(imgs) < 2:
        return None
    gt = np.full((len(imgs), 4), np.nan)
    gt[0] = box
    fwd_seq = Sequence("fwd", imgs, gt)
    run = (run_dytrack if is_dytrack else run_peer)(make_tracker(), fwd_seq)
    back_gt = np.full((len(imgs), 4), np.nan)
    back_gt[0] = run.boxes[-1]
    back = (run_dytrack if is_dytrack else run_peer)(make_tracker(), Sequence("bwd", imgs[::-1], back_gt))
    return forward_backward_error(run.boxes, back.boxes)


PEER_LABELS = {"NanoTrack": "cv2.TrackerNano (NanoTrack v2)"}


def fear_loop(threads: int):
    from ..backends.fear_backend import create_fear_backend
    from ..tracking.fear_stage import FearLoop
    return FearLoop(create_fear_backend("onnxruntime", threads=threads))


def peer_variants(names, models, threads, reference=(), fear: bool = False) -> dict:
    import cv2
    cv2.setNumThreads(max(threads, 1))
    out = {}
    if fear:
        loop = fear_loop(threads)                           # fails early on missing or replaced files
        out[loop.name] = lambda seq: run_peer(loop, seq)
    for version in reference:
        NanoTrackReference(version, threads)                # fails early on missing graphs, like the peers below
        out[NanoTrackReference.label(version)] = (lambda v: (lambda seq: run_peer(NanoTrackReference(v, threads), seq)))(version)
    for name in names:
        try:
            OpenCVTracker(name, models.get(name))  # fails early on missing model files
        except (ValueError, cv2.error) as exc:
            print(f"peer {name} skipped: {exc}", file=sys.stderr)
            continue
        out[PEER_LABELS.get(name, name)] = (lambda n: (lambda seq: run_peer(OpenCVTracker(n, models.get(n)), seq)))(name)
    return out


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tracker = build_tracker(args.model, args.backend, threads=args.threads)
    calibrated = list(tracker.params.thresholds)
    models = dict(pm.split("=", 1) for pm in args.peer_model)
    peers = list(args.peers) + [n for n in models if n not in args.peers]
    if args.nanotrack:
        models["NanoTrack"] = args.nanotrack
    suites = {}
    real_root = realdata_root() if args.real is None else args.real
    if real_root:
        seqs = load_split(args.split, real_root)
        suites[f"real {args.split} split ({len(seqs)} sequences, {sum(len(s) for s in seqs)} frames)"] = seqs
    if args.dataset:
        kind, _, root = args.dataset.partition(":")
        suites[f"{kind} {root}"] = READERS[kind](root)
    if args.photo_sequences:
        print(f"building {args.photo_sequences} held-out photo sequences of {args.length} frames ...", flush=True)
        suites["photo-built (held-out photos; secondary)"] = generated_suite(args.photo_sequences, args.length, args.seed)
    results = {"machine": machine.describe(), "date": machine.today(), "backend": tracker.backend.name,
               "threads": args.threads, "model": args.model, "argv": list(argv if argv is not None else sys.argv[1:]),
               "suites": {}}
    for suite_name, seqs in suites.items():
        variants = dytrack_variants(tracker, args.thresholds, None if args.calibrate else calibrated)
        for spec in args.candidate:
            cname, _, folder = spec.partition("=")
            other = build_tracker(folder, args.backend, threads=args.threads)
            for name, run in dytrack_variants(other, [], None).items():
                variants[name.replace("DyTrack", cname, 1)] = run
        variants.update(peer_variants(peers, models, args.threads, args.reference, args.fear_loop))
        print(f"{suite_name}: {len(variants)} trackers", flush=True)
        results["suites"][suite_name] = evaluate_variants(variants, seqs, tracker.num_stages, suite_name[:30])
    if args.video and os.path.isfile(args.video):
        fb = {"DyTrack (calibrated)": forward_backward(
            lambda: build_tracker(args.model, args.backend, threads=args.threads), args.video, args.video_box,
            args.video_frames, True)}
        for name in peers:
            if name in models or name in CLASSICAL or name == "NanoTrack":
                fb[PEER_LABELS.get(name, name)] = forward_backward(lambda n=name: OpenCVTracker(n, models.get(n)),
                                                                   args.video, args.video_box, args.video_frames, False)
        for version in args.reference:
            fb[NanoTrackReference.label(version)] = forward_backward(lambda v=version: NanoTrackReference(v, args.threads),
                                                                    args.video, args.video_box, args.video_frames,
                                                                    False)
        results["forward_backward"] = {"video": os.path.basename(args.video), "frames": args.video_frames,
                                       "results": fb}
    if args.calibrate and real_root:
        results["calibration"] = write_calibration(args.model, results["suites"][next(iter(suites))],
                                                   tracker.num_stages, next(iter(suites)))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    write_markdown(results, os.path.join(args.out, "RESULTS.md"), args)
    plot(results, args.out)
    print(open(os.path.join(args.out, "RESULTS.md")).read())


def write_calibration(model: str, res: dict, num_stages: int, suite_name: str) -> dict:
    """The calibration rule on the whole real suite's sweep -> the model's exit thresholds (manifest)."""
    from ..contract import Manifest
    from .runner import choose_threshold
    sweep = {float(n.split("t=")[1]): r for n, r in res.items() if n.startswith("DyTrack dynamic t=")}
    full = res[f"DyTrack exit {num_stages} forced (full depth)"]["auc"]
    t = choose_threshold({k: r["auc"] for k, r in sweep.items()}, {k: r["mean_stages"] for k, r in sweep.items()},
                         full)
    thresholds = [t] * (num_stages - 1) + [0.0]
    loo = res.get(LOO_NAME, {})
    calibration = {"rule": f"the most accurate uniform threshold of the sweep (fewest mean stages among equals), "
                           f"on the {suite_name}",
                   "chosen": t, "in_sample_auc": sweep[t]["auc"], "leave_one_sequence_out_auc": loo.get("auc"),
                   "full_depth_auc": full,
                   "sweep": {str(k): {"auc": r["auc"], "mean_stages": r["mean_stages"]} for k, r in sweep.items()}}
    Manifest.read(model).update(exit_thresholds=thresholds, threshold_calibration=calibration)
    print(f"exit thresholds {thresholds} written to {model}/manifest.json", flush=True)
    return calibration


def write_markdown(results, path, args):
    lines = ["# Benchmark results", "",
             f"- machine: {results['machine']}", f"- date: {results['date']}",
             f"- DyTrack backend: {results['backend']}, model `{results['model']}`",
             f"- command: `{' '.join(['dytrack-benchmark'] + results.get('argv', []))}`",
             f"- threads per tracker: {results['threads']}",
             "- fps = 1000 / mean tracker time per frame (crop + network + decode; JPEG decoding excluded), every "
             "tracker on the same frames in the same process, one after another.",
             "- AUC, precision@20px, normalised precision: OTB/pytracking definitions, mean over sequences; frames "
             "whose ground truth is NaN (target out of view) are not scored.", ""]
    cal = results.get("calibration")
    if cal:
        lines += [f"- exit thresholds written to the model by this run (`--calibrate`): {cal['chosen']:.2f} at every "
                  f"early exit ({cal['rule']}); in-sample AUC {100 * cal['in_sample_auc']:.1f}; the same rule applied "
                  f"leave-one-sequence-out: {100 * (cal['leave_one_sequence_out_auc'] or 0):.1f} (the figure to "
                  "quote)", ""]
    for suite_name, res in results["suites"].items():
        lines += [f"## {suite_name}", "",
                  "| tracker | AUC | precision@20px | norm. precision | AO | SR0.5 | fps | ms/frame | mean stages | frames per stage |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in res.items():
            share = "/".join(f"{100 * s:.0f}%" for s in r["stage_share"]) if "stage_share" in r else ""
            stages = f"{r['mean_stages']:.2f}" if "mean_stages" in r else ""
            lines.append(f"| {name} | {100 * r['auc']:.1f} | {100 * r['precision']:.1f} | {100 * r['norm_precision']:.1f} "
                         f"| {100 * r['ao']:.1f} | {100 * r['sr50']:.1f} | {r['fps']:.0f} | {r['ms_per_frame']:.2f} | "
                         f"{stages} | {share} |")
        if LOO_NAME in res:
            chosen = res[LOO_NAME]["chosen_thresholds"]
            seq_names = list(res[LOO_NAME]["per_sequence_auc"])
            lines += ["", f"*{LOO_NAME}*: each sequence runs at the uniform threshold that the calibration rule "
                      "(the most accurate threshold, fewest mean stages among equals) picks on the other sequences of "
                      "this suite from the threshold sweep above, so no sequence is scored with a threshold it helped "
                      "choose: " + ", ".join(f"{q} {t:.2f}" for q, t in zip(seq_names, chosen)) + "."]
        names = [n for n in res if "per_sequence_auc" in res[n]]
        if names:
            seqs = list(res[names[0]]["per_sequence_auc"])
            short = {n: n.replace("DyTrack ", "DT ").replace(" forced", "").replace("dynamic ", "dyn ") for n in names}
            lines += ["", "Per-sequence success AUC:", "", "| sequence | " + " | ".join(short[n] for n in names) + " |",
                      "|---|" + "---|" * len(names)]
            for q in seqs:
                lines.append(f"| {q} | " + " | ".join(f"{100 * res[n]['per_sequence_auc'][q]:.1f}" for n in names) + " |")
        lf_rows = [(n, r["lost_and_found"]) for n, r in res.items() if "lost_and_found" in r]
        if lf_rows:
            lines += ["", "Lost and found (sequences with target-absent frames):", "",
                      "| tracker | absent frames reported LOST | visible frames reported LOST | frames to re-acquire per return |",
                      "|---|---|---|---|"]
            for n, lf in lf_rows:
                lines.append(f"| {n} | {100 * lf['absent_reported_lost']:.1f}% of {lf['absent_frames']} | "
                             f"{100 * lf['visible_reported_lost']:.1f}% of {lf['visible_frames']} | "
                             f"{lf['frames_to_reacquire']} |")
        same = [r["ms_per_frame"] for n, r in res.items() if n.startswith("DyTrack") and r.get("mean_stages") == 1.0]
        if len(same) > 1:
            lines += ["", f"Timing spread: the {len(same)} DyTrack rows that ran exactly one stage on every frame (the same "
                          f"work) measured {min(same):.2f} to {max(same):.2f} ms/frame; differences smaller than that "
                          "are noise on this machine."]
        lines.append("")
    fb = results.get("forward_backward")
    if fb:
        lines += [f"## Real video without labels: forward-backward consistency ({fb['video']}, {fb['frames']} frames)",
                  "", "Track forward from the init box, then backward from the last box; a tracker that stayed on "
                  "the target returns to where it started.", "",
                  "| tracker | return IoU | return center error (target sizes) |", "|---|---|---|"]
        for name, r in fb["results"].items():
            if r:
                lines.append(f"| {name} | {r['return_iou']:.2f} | {r['return_center_error']:.2f} |")
        lines.append("")
    lines += summary_section(os.path.join(os.path.dirname(os.path.abspath(path)), "REDETECTION.md"))
    lines += ["![speed-accuracy](speed_accuracy.png)", "", "![exit histogram](exit_histogram.png)", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def plot(results, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    suite_name, res = next(iter(results["suites"].items()))
    fig, ax = plt.subplots(figsize=(7, 5))
    dyn = sorted([(r["fps"], 100 * r["auc"], n) for n, r in res.items() if n.startswith("DyTrack dynamic t=")])
    forced = [(r["fps"], 100 * r["auc"], n) for n, r in res.items() if n.startswith("DyTrack exit")]
    ax.plot([p[0] for p in dyn], [p[1] for p in dyn], "-o", color="tab:red", label="DyTrack dynamic (threshold sweep)")
    ax.plot([p[0] for p in forced], [p[1] for p in forced], "D", color="tab:red", fillstyle="none", markersize=8,
            label="DyTrack, exit forced")
    for fps, auc, n in forced:
        ax.annotate(n.replace("DyTrack ", "").replace(" forced", ""), (fps, auc), fontsize=7, xytext=(4, -10),
                    textcoords="offset points")
    if LOO_NAME in res:
        ax.plot(res[LOO_NAME]["fps"], 100 * res[LOO_NAME]["auc"], "*", color="tab:red", markersize=12,
                label="DyTrack dynamic, threshold chosen on the other sequences")
    peer_colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
                         "tab:olive", "tab:cyan"] * 3)   # red is DyTrack's
    for n, r in res.items():
        if not n.startswith("DyTrack"):
            ax.plot(r["fps"], 100 * r["auc"], "s", markersize=7, color=next(peer_colours), label=n)
    ax.set_xscale("log")
    ax.set_xlabel("speed (fps, log scale)")
    ax.set_ylabel("success AUC (%)")
    ax.set_title(f"Speed vs accuracy: {suite_name}\n{results['machine'][:70]}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "speed_accuracy.png"), dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [n for n in res if n.startswith("DyTrack dynamic")]
    k = len(res[names[0]]["stage_share"]) if names else 0
    for i, n in enumerate(names):
        ax.bar(np.arange(k) + i * 0.8 / len(names), res[n]["stage_share"], width=0.8 / len(names),
               label=n.replace("DyTrack dynamic ", ""))
    ax.set_xticks(np.arange(k) + 0.4 - 0.4 / max(len(names), 1))
    ax.set_xticklabels([f"stage {i + 1}" for i in range(k)])
    ax.set_ylabel("share of frames exiting")
    ax.legend(fontsize=7, title="threshold")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "exit_histogram.png"), dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
