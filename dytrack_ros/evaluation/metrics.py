"""Standard single-object tracking metrics (boxes are x, y, w, h in pixels).

Definitions as in OTB / pytracking / GOT-10k:
- success curve: share of frames with IoU > t for t in 0, 0.05, ..., 1 (21 values); AUC = its mean
- precision: share of frames with center error <= 20 px
- normalised precision: center offsets divided by the ground-truth w, h; share <= 0.2 (curve over 0..0.5)
- GOT-10k AO: mean IoU over frames after the first with the target visible; SR0.5 / SR0.75 share above
No maintained library fits (got10k is unmaintained since 2019 and pulls in unrelated code); the tests check
these against hand-computed values and against got10k's own functions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Optional

import numpy as np

IOU_THRESHOLDS = np.linspace(0, 1, 21)
NORM_PREC_THRESHOLDS = np.linspace(0, 0.5, 51)


def box_iou(pred, gt) -> np.ndarray:
    """IoU per row of two (N, 4) xywh arrays; rows where either box is empty or NaN get 0."""
    p, g = np.atleast_2d(np.asarray(pred, float)), np.atleast_2d(np.asarray(gt, float))
    x0, y0 = np.maximum(p[:, 0], g[:, 0]), np.maximum(p[:, 1], g[:, 1])
    x1 = np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2])
    y1 = np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)


def center_error(pred, gt, normalized: bool = False) -> np.ndarray:
    p, g = np.atleast_2d(np.asarray(pred, float)), np.atleast_2d(np.asarray(gt, float))
    d = (p[:, :2] + p[:, 2:] / 2) - (g[:, :2] + g[:, 2:] / 2)
    if normalized:
        d = d / np.maximum(g[:, 2:], 1e-9)
    err = np.sqrt((d ** 2).sum(1))
    return np.where(np.isfinite(err), err, np.inf)


def success_curve(ious) -> np.ndarray:
    return (np.asarray(ious, float)[:, None] > IOU_THRESHOLDS[None, :]).mean(0)


@dataclass
class SequenceScores:
    auc: float
    precision: float
    norm_precision: float
    ao: float
    sr50: float
    sr75: float
    frames: int


def score_sequence(pred, gt, visible: Optional[Iterable[bool]] = None) -> SequenceScores:
    """pred, gt: (N, 4). Frame 0 counts as ground truth (the tracker was given it)."""
    pred, gt = np.asarray(pred, float).copy(), np.asarray(gt, float)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    pred[0] = gt[0]
    vis = np.ones(len(gt), bool) if visible is None else np.asarray(list(visible), bool)
    vis &= np.all(np.isfinite(gt), 1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    ious = box_iou(pred[vis], gt[vis])
    ce = center_error(pred[vis], gt[vis])
    nce = center_error(pred[vis], gt[vis], normalized=True)
    later = vis.copy()
    later[0] = False
    ious_after = box_iou(pred[later], gt[later])
    return SequenceScores(auc=float(success_curve(ious).mean()), precision=float((ce <= 20).mean()),
                          norm_precision=float((nce <= 0.2).mean()),
                          ao=float(ious_after.mean()) if len(ious_after) else 0.0,
                          sr50=float((ious_after > 0.5).mean()) if len(ious_after) else 0.0,
                          sr75=float((ious_after > 0.75).mean()) if len(ious_after) else 0.0, frames=int(vis.sum()))


def aggregate(scores: Iterable[SequenceScores]) -> dict:
    """Mean over sequences (as OTB/LaSOT report per-sequence averages)."""
    scores = list(scores)
    if not scores:
        return {}
    return {k: float(np.mean([asdict(s)[k] for s in scores])) for k in asdict(scores[0]) if k != "frames"}


def forward_backward_error(forward_boxes, backward_boxes) -> dict:
    """For unlabelled video: track forward, then backward from the last forward box to frame 0.
    Returns the IoU and center error (in units of the first box's size) between the start box and the return."""
    start, back = np.asarray(forward_boxes[0], float), np.asarray(backward_boxes[-1], float)
    iou = float(box_iou(back, start)[0])
    err = float(center_error(back, start)[0] / max(np.sqrt(start[2] * start[3]), 1e-9))
    return {"return_iou": iou, "return_center_error": err}
