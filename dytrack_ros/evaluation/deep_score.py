"""A predicted-IoU score for FEAR-XS's answer, trained here, so that the two exits' scores are on one scale.

    python -m dytrack_ros.evaluation.deep_score record --split train --out .data/deep_records/train.npz
    python -m dytrack_ros.evaluation.deep_score fit --records .data/deep_records/train.npz \
        --out models/dytrack_fear/deep_iou_head.json

`record` runs the first exit with FEAR-XS forced on every frame while the first exit steers the loop (so that the
loop, and every frame's two answers, are what any threshold would see) and keeps per frame both exits' boxes and
scores, FEAR-XS's peak margin and the ground truth. `fit` trains a logistic model of a handful of weights (tracking
/fear_stage.py: DeepIoUHead) on the IoU of FEAR-XS's box with the ground truth: few parameters, so the 39 training
sequences suffice (DyTrack's IoU heads were trained the same way on the same sequences, with far more weights).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Optional

import numpy as np
from tqdm import tqdm

from ..backends.fear_backend import DEFAULT_FEAR_DIR
from ..contract import DEFAULT_MODEL_DIR
from ..data.realdata import load_split
from ..tracking.crops import clip_box
from ..tracking.fear_stage import DeepIoUHead, deep_features, overlap
from .metrics import box_iou


def record(model_dir: str, fear_dir: str, split: str, real=None, threads: int = 1, size_bounds=None) -> dict:
    from .depth_study import WIDE_SIZE_BOUNDS, fear_tracker
    tracker = fear_tracker(model_dir, fear_dir, threads, deep_answer="deep", later_exits_steer=False,
                           size_bounds=tuple(size_bounds or WIDE_SIZE_BOUNDS))
    tracker.set_thresholds([1.0, 0.0])
    rows = {k: [] for k in ("seq", "frame", "first_box", "deep_box", "first_score", "deep_score", "deep_margin",
                            "gt", "redetected", "published", "global_search")}
    suite = load_split(split, real)
    for seq_id, seq in enumerate(tqdm(suite, desc="record")):
        tracker.initialize(seq.frame(0), seq.boxes[0])
        searching = False
        for i in range(1, len(seq)):
            frame = seq.frame(i)
            r = tracker.track(frame, force_stages=2)
            h, w = frame.shape[:2]
            publish = lambda b: clip_box(tracker._bound_size(np.asarray(b)), w, h, tracker.params.min_box_side)
            rows["seq"].append(seq_id)
            rows["frame"].append(i)
            rows["first_box"].append(publish(r.stage_boxes[0]))
            rows["deep_box"].append(publish(r.stage_boxes[1]))
            rows["first_score"].append(r.stage_scores[0])
            rows["deep_score"].append(r.stage_scores[1])
            rows["deep_margin"].append(tracker.deep.last.peak_margin)
            rows["gt"].append(seq.boxes[i])
            rows["redetected"].append(r.redetected)
            rows["published"].append(r.box)
            rows["global_search"].append(searching)      # this frame began with the whole image being searched
            searching = tracker.searching_globally()
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["names"] = np.asarray([seq.name for seq in suite])
    return out


def iou_with_truth(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Each box's IoU with the ground truth; 0 where the target is absent (NaN ground truth)."""
    visible = np.isfinite(gt).all(1)
    iou = np.zeros(len(visible))
    iou[visible] = box_iou(boxes[visible], gt[visible])
    return iou


def deep_feature_matrix(rec: dict) -> np.ndarray:
    agree = [overlap(d, f) for d, f in zip(rec["deep_box"], rec["first_box"])]
    return np.stack([deep_features(float(d), float(m), float(f), float(a), db, fb) for d, m, f, a, db, fb in
                     zip(rec["deep_score"], rec["deep_margin"], rec["first_score"], agree, rec["deep_box"],
                         rec["first_box"])])


def fit(rec: dict, steps: int = 3000, weight_decay: float = 1e-3) -> DeepIoUHead:
    """Logistic regression (soft targets: the IoU of FEAR-XS's box with the ground truth; absent frames 0)."""
    import torch
    x = torch.tensor(deep_feature_matrix(rec), dtype=torch.float64)
    y = torch.tensor(iou_with_truth(rec["deep_box"], rec["gt"]))
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")
    xn = (x - mean) / std

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xn @ w + b, y) + weight_decay * (w ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    # folded back to raw features: the runtime computes sigmoid(raw @ weights + bias)
    weights = (w / std).detach().numpy()
    bias = float((b - (w * mean / std).sum()).detach())
    return DeepIoUHead(weights.tolist(), bias)


def policy_boxes(rec: dict, t: float, mode: str, head: Optional[DeepIoUHead] = None) -> np.ndarray:
    """The box each recorded frame publishes under threshold t: the first exit's where its score clears t (or the
    whole image is being searched, or the search found the target), else FEAR-XS's ("deep"), the two averaged
    ("fuse") or the likelier one by predicted IoU ("choose"). Exact for a loop the first exit steers."""
    deep_runs = (rec["first_score"] < t) & ~rec["global_search"] & ~rec["redetected"]
    out = rec["first_box"].astype(np.float64).copy()
    if mode == "deep":
        out[deep_runs] = rec["deep_box"][deep_runs]
    elif mode == "fuse":
        out[deep_runs] = 0.5 * (rec["first_box"][deep_runs] + rec["deep_box"][deep_runs])
    else:
        predicted = head.predict(deep_feature_matrix(rec))
        take = deep_runs & (predicted >= rec["first_score"])
        out[take] = rec["deep_box"][take]
    out[rec["redetected"]] = rec["published"][rec["redetected"]]
    return out, deep_runs


def evaluate(rec: dict, suite, head: DeepIoUHead, thresholds, modes=("deep", "fuse", "choose")) -> dict:
    """AUC per sequence for each mode and threshold, and the threshold chosen leave-one-sequence-out."""
    from .metrics import score_sequence
    from .runner import choose_threshold
    table = {}
    for mode in modes:
        for t in thresholds:
            boxes, deep_runs = policy_boxes(rec, t, mode, head)
            aucs, shares = [], []
            for k, seq in enumerate(suite):
                rows = rec["seq"] == k
                pred = np.vstack([seq.boxes[:1], boxes[rows]])
                aucs.append(score_sequence(pred, seq.boxes, seq.visible).auc)
                shares.append(float(deep_runs[rows].mean()))
            table[(mode, t)] = (aucs, shares)
    out = {}
    for mode in modes:
        per_t = {t: table[(mode, t)] for t in thresholds}
        n = len(suite)
        chosen, loo_auc, loo_share = [], [], []
        for i in range(n):
            others = lambda v: float(np.mean(v[:i] + v[i + 1:]))
            full = others(per_t[max(thresholds)][0])
            t = choose_threshold({t: others(a) for t, (a, _) in per_t.items()},
                                 {t: others(sh) for t, (_, sh) in per_t.items()}, full)
            chosen.append(t)
            loo_auc.append(per_t[t][0][i])
            loo_share.append(per_t[t][1][i])
        out[mode] = {"sweep": {str(t): {"auc": float(np.mean(a)), "deep_share": float(np.mean(sh)),
                                        "per_sequence_auc": dict(zip([s.name for s in suite], a))}
                               for t, (a, sh) in per_t.items()},
                     "leave_one_out": {"auc": float(np.mean(loo_auc)), "deep_share": float(np.mean(loo_share)),
                                       "chosen": chosen,
                                       "per_sequence_auc": dict(zip([s.name for s in suite], loo_auc))}}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--model", default=DEFAULT_MODEL_DIR)
    r.add_argument("--fear", default=DEFAULT_FEAR_DIR)
    r.add_argument("--split", default="train")
    r.add_argument("--real", default=None)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--out", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--records", required=True)
    f.add_argument("--out", required=True)
    e = sub.add_parser("evaluate", help="every threshold and answer mode from one held-out recording")
    e.add_argument("--records", required=True)
    e.add_argument("--head", required=True)
    e.add_argument("--split", default="validation+calibration")
    e.add_argument("--real", default=None)
    e.add_argument("--thresholds", type=float, nargs="*", default=[0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01])
    e.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.cmd == "evaluate":
        rec = dict(np.load(args.records))
        suite = load_split(args.split, args.real)
        if [s.name for s in suite] != list(rec["names"]):
            raise SystemExit("the recording's sequences differ from the split's")
        res = evaluate(rec, suite, DeepIoUHead.load(args.head), args.thresholds)
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)
        for mode, r in res.items():
            print(mode, {t: round(100 * v["auc"], 1) for t, v in r["sweep"].items()},
                  "LOO", round(100 * r["leave_one_out"]["auc"], 1), "deep share",
                  round(100 * r["leave_one_out"]["deep_share"], 1))
        return 0
    if args.cmd == "record":
        rec = record(args.model, args.fear, args.split, args.real, args.threads)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        np.savez_compressed(args.out, **rec)
        print(f"recorded {len(rec['frame'])} frames of {len(rec['names'])} sequences -> {args.out}")
        return 0
    rec = dict(np.load(args.records))
    head = fit(rec)
    pred = head.predict(deep_feature_matrix(rec))
    iou, first_iou = iou_with_truth(rec["deep_box"], rec["gt"]), iou_with_truth(rec["first_box"], rec["gt"])
    corr = float(np.corrcoef(pred, iou)[0, 1])
    raw = float(np.corrcoef(rec["deep_score"], iou)[0, 1])
    first_corr = float(np.corrcoef(rec["first_score"], first_iou)[0, 1])
    about = {"trained_on": args.records, "frames": int(len(iou)),
             "correlation_with_iou": corr, "raw_sigmoid_correlation_with_iou": raw,
             "first_exit_score_correlation_with_its_iou": first_corr}
    head.save(args.out, about)
    print(json.dumps(about, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
