"""Sequence readers for the standard folder layouts, and the generated benchmark suite.

OTB:         ROOT/SEQ/img/0001.jpg ...            ROOT/SEQ/groundtruth_rect.txt
LaSOT:       ROOT/CLASS/CLASS-N/img/00000001.jpg   .../groundtruth.txt, full_occlusion.txt, out_of_view.txt
GOT-10k:     ROOT/SEQ/00000001.jpg ...             ROOT/SEQ/groundtruth.txt, absence.label (train/val split)
TrackingNet: ROOT/TRAIN_k|TEST/frames/SEQ/0.jpg    ROOT/TRAIN_k|TEST/anno/SEQ.txt
UAV123:      ROOT/data_seq/UAV123/SEQ/000001.jpg   ROOT/anno/UAV123/SEQ.txt (NaN rows: target out of view)
Boxes are x, y, w, h (separators: comma, tab or spaces). Frames load lazily.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import List, Optional, Union

import cv2
import numpy as np


@dataclass
class Sequence:
    name: str
    frames: List[Union[str, np.ndarray]]     # file paths, or images already in memory
    boxes: np.ndarray                         # (N, 4) ground truth; NaN rows where unknown
    visible: Optional[np.ndarray] = None      # (N,) bool; None = wherever the box is valid
    fps: float = 30.0

    def __len__(self):
        return len(self.frames)

    def frame(self, i: int) -> np.ndarray:
        f = self.frames[i]
        if isinstance(f, np.ndarray):
            return f
        img = cv2.imread(f, cv2.IMREAD_COLOR)
        if img is None:
            raise IOError(f"cannot read frame {f}")
        return img

    def visible_mask(self) -> np.ndarray:
        valid = np.all(np.isfinite(self.boxes), 1) & (self.boxes[:, 2] > 0) & (self.boxes[:, 3] > 0)
        return valid if self.visible is None else (valid & self.visible)


def read_boxes(path: str) -> np.ndarray:
    rows = []
    with open(path) as f:
        for line in f:
            parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
            if not parts:
                continue
            vals = [float(p) if p.lower() != "nan" else np.nan for p in parts[:4]]
            rows.append(vals if len(vals) == 4 else [np.nan] * 4)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def read_flags(path: str, n: int) -> Optional[np.ndarray]:
    if not os.path.isfile(path):
        return None
    text = open(path).read()
    vals = [int(v) for v in re.split(r"[,\s]+", text.strip()) if v]
    return np.array(vals[:n], bool) if len(vals) >= n else None


def _numeric_sorted(files):
    return sorted(files, key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))


def _check(name, frames, boxes):
    if not frames:
        raise FileNotFoundError(f"{name}: no frames")
    n = min(len(frames), len(boxes))
    return frames[:n], boxes[:n]


def read_otb_sequence(seq_dir: str, gt_name: str = "groundtruth_rect.txt") -> Sequence:
    """One OTB-layout folder: img/*.jpg and a ground-truth file (1-based x,y,w,h as OTB writes it; we use the
    values as pixel coordinates unchanged, as the OTB toolkit does). NaN rows: target out of view."""
    gt = os.path.join(seq_dir, gt_name)
    frames = _numeric_sorted(glob.glob(os.path.join(seq_dir, "img", "*.jpg")))
    frames, boxes = _check(gt, frames, read_boxes(gt))
    return Sequence(os.path.basename(os.path.normpath(seq_dir)), frames, boxes)


def read_otb(root: str) -> List[Sequence]:
    gts = sorted(glob.glob(os.path.join(root, "*", "groundtruth_rect*.txt")))
    return [read_otb_sequence(os.path.dirname(gt), os.path.basename(gt)) for gt in gts]


def read_lasot(root: str) -> List[Sequence]:
    out = []
    for gt in sorted(glob.glob(os.path.join(root, "*", "*", "groundtruth.txt"))):
        seq_dir = os.path.dirname(gt)
        frames = _numeric_sorted(glob.glob(os.path.join(seq_dir, "img", "*.jpg")))
        frames, boxes = _check(gt, frames, read_boxes(gt))
        occluded = read_flags(os.path.join(seq_dir, "full_occlusion.txt"), len(frames))
        out_of_view = read_flags(os.path.join(seq_dir, "out_of_view.txt"), len(frames))
        visible = None
        if occluded is not None or out_of_view is not None:
            visible = np.ones(len(frames), bool)
            for flags in (occluded, out_of_view):
                if flags is not None:
                    visible &= ~flags
        out.append(Sequence(os.path.basename(seq_dir), frames, boxes, visible))
    return out


def read_got10k(root: str) -> List[Sequence]:
    out = []
    for gt in sorted(glob.glob(os.path.join(root, "*", "groundtruth.txt"))):
        seq_dir = os.path.dirname(gt)
        frames = _numeric_sorted(glob.glob(os.path.join(seq_dir, "*.jpg")))
        frames, boxes = _check(gt, frames, read_boxes(gt))
        absent = read_flags(os.path.join(seq_dir, "absence.label"), len(frames))
        out.append(Sequence(os.path.basename(seq_dir), frames, boxes, None if absent is None else ~absent, fps=10.0))
    return out


def read_trackingnet(root: str) -> List[Sequence]:
    out = []
    for anno in sorted(glob.glob(os.path.join(root, "*", "anno", "*.txt"))):
        split_dir = os.path.dirname(os.path.dirname(anno))
        name = os.path.splitext(os.path.basename(anno))[0]
        frames = _numeric_sorted(glob.glob(os.path.join(split_dir, "frames", name, "*.jpg")))
        frames, boxes = _check(anno, frames, read_boxes(anno))
        out.append(Sequence(name, frames, boxes))
    return out


def read_uav123(root: str) -> List[Sequence]:
    """UAV123 as distributed: one annotation file per sequence; NaN rows mark frames without the target.
    Sub-sequences cut from one video (UAV123's configuration file) are not split here: each file is one sequence."""
    out = []
    for anno in sorted(glob.glob(os.path.join(root, "anno", "UAV123*", "*.txt"))):
        name = os.path.splitext(os.path.basename(anno))[0]
        seq_dir = os.path.join(root, "data_seq", os.path.basename(os.path.dirname(anno)), name)
        frames = _numeric_sorted(glob.glob(os.path.join(seq_dir, "*.jpg")))
        frames, boxes = _check(anno, frames, read_boxes(anno))
        out.append(Sequence(name, frames, boxes))
    return out


READERS = {"otb": read_otb, "lasot": read_lasot, "got10k": read_got10k, "trackingnet": read_trackingnet,
           "uav123": read_uav123}


def generated_suite(num_sequences: int = 16, length: int = 100, seed: int = 2024, split: str = "heldout",
                    photos=None) -> List[Sequence]:
    """Sequences built from real photos (held out from training by default) with exact ground truth."""
    from .photos import load_photos
    from .synthetic import SequenceSpec, make_sequence
    photos = photos if photos is not None else load_photos(split)
    out = []
    for i in range(num_sequences):
        spec = SequenceSpec(length=length, distractors=i % 3, occlusion=i % 2 == 0)
        frames, boxes = make_sequence(photos, seed=seed + i, spec=spec)
        out.append(Sequence(f"{split}-{seed + i:05d}", frames, boxes, fps=30.0))
    return out


def leaving_sequence(photos, n: int = 60, speed: int = 8):
    """A 40x60 patch of photos[1] slides left over photos[0] (480x360) until it has left the image; the last
    ~35 frames hold no target at all (their boxes lie entirely left of x = 0). Returns (frames, boxes)."""
    bg = cv2.resize(photos[0], (480, 360))
    patch = cv2.resize(photos[1][40:160, 40:120], (40, 60))
    frames, boxes = [], []
    for i in range(n):
        x = 150 - speed * i
        f = bg.copy()
        x0, x1 = max(x, 0), min(x + 40, 480)
        if x1 > x0:
            f[150:210, x0:x1] = patch[:, x0 - x:x1 - x]
        frames.append(f)
        boxes.append([x, 150, 40, 60])
    return frames, np.array(boxes, float)


def returning_sequence(photos, away: int = 30, back: int = 40):
    """A 40x60 patch of photos[1] on photos[0] (480x360): 10 frames near the left edge, then gone for `away` frames,
    then `back` frames far right (it came back elsewhere). Returns (frames, boxes) with NaN boxes while it is gone."""
    bg = cv2.resize(photos[0], (480, 360))
    patch = cv2.resize(photos[1][40:160, 40:120], (40, 60))
    frames, boxes = [], []
    for i in range(10 + away + back):
        f = bg.copy()
        if i < 10:
            x, y = 60 + 2 * i, 80
        elif i >= 10 + away:
            x, y = 380, 260
        else:
            frames.append(f)
            boxes.append([np.nan] * 4)
            continue
        f[y:y + 60, x:x + 40] = patch
        frames.append(f)
        boxes.append([x, y, 40, 60])
    return frames, np.array(boxes, float)
