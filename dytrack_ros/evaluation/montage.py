"""A frame montage as evidence of what a tracker did on a video: DyTrack and peers started from the same box,
their boxes drawn on chosen frames, tiles labelled with the frame number.

    dytrack-montage --video vtest.avi --box 638 238 48 86 --frames 20 40 --step 4 \
                    --out benchmarks/demo_montage.png

Colours: DyTrack red (dashed when it reports LOST), NanoTrack green, CSRT blue, others yellow.
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from ..contract import DEFAULT_MODEL_DIR
from ..runtime import build_tracker
from ..tracking.tracker import LOST
from .peers import OpenCVTracker

COLOURS = {"DyTrack": (0, 0, 255), "NanoTrack": (0, 200, 0), "CSRT": (255, 128, 0)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", required=True)
    p.add_argument("--box", type=float, nargs=4, required=True, help="init box x y w h on frame 0")
    p.add_argument("--frames", type=int, nargs=2, default=[20, 40], help="first and last frame shown")
    p.add_argument("--step", type=int, default=4)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--peers", nargs="*", default=["NanoTrack", "CSRT"],
                   help="OpenCV trackers beside DyTrack (NanoTrack: cv2.TrackerNano on the shipped v2 graphs)")
    p.add_argument("--nanotrack", default="", help="another folder with NanoTrack v2's graphs")
    p.add_argument("--crop", type=int, default=320,
                   help="side of the region shown, fixed over all tiles, centred on the trackers' mean position (0: whole frame)")
    p.add_argument("--out", required=True, help="PNG file; a .json with every tracker's boxes is written beside it")
    return p.parse_args(argv)


def read_video(path, last):
    cap = cv2.VideoCapture(path)
    frames = []
    while len(frames) <= last:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    if not frames:
        raise SystemExit(f"cannot read {path}")
    return frames


def run_all(frames, box, args):
    """Boxes (and DyTrack's states) of every tracker on every frame up to the last one shown."""
    out = {}
    tracker = build_tracker(args.model, args.backend, threads=1)
    tracker.initialize(frames[0], box)
    boxes, states = [np.asarray(box, float)], [1]
    answers = [None]                      # DyTrack's stage and score per frame (the JSON keeps them)
    for f in frames[1:]:
        r = tracker.track(f)
        boxes.append(r.box)
        states.append(r.state)
        answers.append({"stage": r.stages_run, "score": round(r.score, 3),
                                        "stage_scores": [round(v, 3) for v in r.stage_scores]})
    out["DyTrack"] = (boxes, states)
    for name in args.peers:
        peer = OpenCVTracker(name, (args.nanotrack or None) if name == "NanoTrack" else None)
        peer.initialize(frames[0], box)
        pb = [np.asarray(box, float)]
        for f in frames[1:]:
            b = peer.update(f)
            pb.append(b if b is not None else pb[-1])
        out[name] = (pb, None)
    return out, answers


def draw(frame, results, i, crop, centre):
    img = frame.copy()
    for name, (boxes, states) in results.items():
        x, y, w, h = (int(round(v)) for v in boxes[i])
        colour = COLOURS.get(name, (0, 220, 220))
        thick = 1 if states is not None and states[i] == LOST else 2
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, thick)
    if crop:
        cx, cy = centre
        H, W = img.shape[:2]
        x0 = int(np.clip(cx - crop // 2, 0, max(W - crop, 0)))
        y0 = int(np.clip(cy - crop // 2, 0, max(H - crop, 0)))
        img = img[y0:y0 + crop, x0:x0 + crop]
    state = results["DyTrack"][1][i]
    label = f"frame {i}" + (" LOST" if state == LOST else "")
    cv2.putText(img, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3)
    cv2.putText(img, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return img


def legend(width, names):
    bar = np.full((26, width, 3), 255, np.uint8)
    x = 8
    for name in names:
        cv2.rectangle(bar, (x, 8), (x + 18, 20), COLOURS.get(name, (0, 220, 220)), -1)
        cv2.putText(bar, name, (x + 24, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
        x += 40 + 10 * len(name)
    return bar


def main(argv=None):
    args = parse_args(argv)
    first, last = args.frames
    frames = read_video(args.video, last)
    last = min(last, len(frames) - 1)
    results, answers = run_all(frames, args.box, args)
    shown = list(range(first, last + 1, args.step))
    centres = [(b[i][0] + b[i][2] / 2, b[i][1] + b[i][3] / 2) for b, _ in results.values() for i in shown]
    centre = tuple(int(v) for v in np.mean(centres, 0))
    tiles = [draw(frames[i], results, i, args.crop, centre) for i in shown]
    cols = min(6, len(tiles))
    h, w = tiles[0].shape[:2]
    rows = []
    for r in range(0, len(tiles), cols):
        row = tiles[r:r + cols] + [np.full_like(tiles[0], 255)] * (cols - len(tiles[r:r + cols]))
        rows.append(np.hstack(row))
    image = np.vstack([legend(w * cols, list(results))] + rows)
    cv2.imwrite(args.out, image)
    with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
        json.dump({"video": args.video, "init_box": list(args.box),
                   "boxes": {n: [list(map(float, b)) for b in bs] for n, (bs, _) in results.items()},
                   "dytrack_states": [int(s) for s in results["DyTrack"][1]],
                   "dytrack_answers": answers}, f)
    print(f"montage of frames {shown} -> {args.out}")


if __name__ == "__main__":
    main()
