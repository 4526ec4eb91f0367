"""FEAR-XS as a stage of our tracker, and FEAR-XS's own tracker loop (a peer of the benchmark).

FEAR-XS (models/third_party/fear_xs, MIT; the network in dytrack_ros/model/fear_xs.py) was trained with its own crop
geometry, which differs from NanoTrack's: crops are *stretched*, not square. The template is the box extended by 0.2
of its width and height on each side (1.4w x 1.4h) resized to 128 x 128; the search window is the box extended by
2 widths and 2 heights on each side (5w x 5h) resized to 256 x 256; both are padded with a mean colour outside the
image, and the window's corners are whole pixels (the reference truncates them). Its answer is read at the arg-max
of the classification map (no cosine window, no size smoothing: the repository's tracker config leaves `smooth` off):
the cell's point on a 16-pixel grid minus/plus its four predicted distances (left, top, right, bottom, crop pixels).
Input is RGB 0..255: the network normalises inside (feeding 0..1 silently ruins it).

`FearStage` is what DyTracker calls (the deeper stage: its search window is placed by the first exit's answer of the
same frame, which is how the first exit's work is recycled); `FearLoop` is FEAR-XS's own loop, written after reading
the repository's tracker (model_training/tracker/fear_tracker.py there), for the benchmark.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import List, Optional

import cv2
import numpy as np

from ..contract import DeepStageBackend

TEMPLATE_SIZE, SEARCH_SIZE, STRIDE = 128, 256, 16
TEMPLATE_OFFSET, SEARCH_CONTEXT = 0.2, 2.0
CELL_ROWS, CELL_COLS = np.mgrid[0:SEARCH_SIZE // STRIDE, 0:SEARCH_SIZE // STRIDE]   # the 16 x 16 score map's cells


def extended_window(box, offset: float) -> np.ndarray:
    """The box grown by `offset` of its width / height on every side, corners truncated to whole pixels."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x - w * offset, y - h * offset, w * (1 + 2 * offset), h * (1 + 2 * offset)]).astype(np.int32)


def stretched_crop(image: np.ndarray, window: np.ndarray, size: int, fill) -> np.ndarray:
    """The window's pixels (outside the image: `fill`), resized to size x size without keeping the aspect."""
    x, y, w, h = (int(v) for v in window)
    w, h = max(w, 1), max(h, 1)
    ih, iw = image.shape[:2]
    left, top = max(-x, 0), max(-y, 0)
    right, bottom = max(x + w - iw, 0), max(y + h - ih, 0)
    inside = image[max(y, 0):min(y + h, ih), max(x, 0):min(x + w, iw)]
    if inside.size == 0:    # the window lies wholly outside the image: nothing but fill
        padded = np.empty((h, w, 3), np.uint8)
        padded[:] = np.asarray(fill, np.float64).round().astype(np.uint8)
    else:
        padded = cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                    value=[float(v) for v in fill])
    return cv2.resize(padded, (size, size), interpolation=cv2.INTER_LINEAR)


def to_fear_input(crop_bgr: np.ndarray) -> np.ndarray:
    """A BGR uint8 crop -> float32 (1, 3, S, S) RGB 0..255, what FEAR-XS's graphs take."""
    return np.ascontiguousarray(crop_bgr[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)


@dataclass
class FearAnswer:
    box: np.ndarray      # (x, y, w, h) image pixels (float)
    score: float         # sigmoid of the classification logit at the chosen cell
    peak_margin: float   # the chosen cell's sigmoid minus the best sigmoid one box size or more away (0 if none)
    window: np.ndarray   # the search window (x, y, w, h) in image pixels


def decode(bbox_map: np.ndarray, cls_map: np.ndarray):
    """FEAR-XS's maps -> (its box (x, y, w, h) in search-crop pixels, the sigmoid score map, the chosen cell)."""
    score = 1.0 / (1.0 + np.exp(-cls_map.astype(np.float64)))
    r, c = np.unravel_index(int(np.argmax(score)), score.shape)
    gx, gy = c * STRIDE, r * STRIDE       # the repository's grid: cell j's point is j * 16 (0..240) in the crop
    left, top, right, bottom = (float(bbox_map[k, r, c]) for k in range(4))
    return np.array([gx - left, gy - top, left + right, top + bottom]), score, (r, c)


def crop_box_to_image(box, window, size: int = SEARCH_SIZE) -> np.ndarray:
    """A box in search-crop pixels -> image pixels (the crop is the window stretched to size x size)."""
    sx, sy = window[2] / size, window[3] / size
    return np.array([box[0] * sx + window[0], box[1] * sy + window[1], box[2] * sx, box[3] * sy], dtype=np.float64)


FEATURES = ("FEAR-XS sigmoid", "FEAR-XS peak margin", "first-exit predicted IoU", "IoU of the two answers",
            "|log area ratio| of the two answers")


def overlap(a, b) -> float:
    """IoU of two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def deep_features(sigmoid: float, margin: float, first_score: float, agreement: float, deep_box, first_box):
    """What the deep stage's IoU head reads: how sure FEAR-XS is and how alone its peak stands, how sure the first
    exit was, and how far the two networks agree (place and size)."""
    area = lambda b: max(float(b[2]) * float(b[3]), 1e-6)
    return np.array([sigmoid, margin, first_score, agreement, abs(np.log(area(deep_box) / area(first_box)))])


@dataclass
class DeepIoUHead:
    """A logistic model of FEAR-XS's IoU from `deep_features` (evaluation/deep_score.py fits it on training
    sequences): its output is on the same scale as the first exit's predicted IoU."""
    weights: List[float]
    bias: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(features) @ np.asarray(self.weights) + self.bias)))

    @classmethod
    def load(cls, path: str) -> "DeepIoUHead":
        with open(path) as f:
            data = json.load(f)
        weights, bias = data.get("weights"), data.get("bias")
        if (not isinstance(weights, list) or len(weights) != len(FEATURES) or
                not all(isinstance(v, (int, float)) and np.isfinite(v) for v in weights + [bias])):
            raise ValueError(f"{path}: weights must be {len(FEATURES)} finite numbers and bias one")
        return cls([float(v) for v in weights], float(bias))

    def save(self, path: str, about: Optional[dict] = None) -> None:
        with open(path, "w") as f:
            json.dump({"features": list(FEATURES), "weights": self.weights, "bias": self.bias,
                       "about": about or {}}, f, indent=1)


class FearStage:
    """FEAR-XS behind the first exit: one template at initialisation (FEAR-XS never updates it), then on request a
    search window placed on a given box (the first exit's answer of the same frame)."""

    def __init__(self, backend: DeepStageBackend, iou_head: Optional[DeepIoUHead] = None):
        self.backend, self.iou_head = backend, iou_head
        self.fill = None
        self.last: Optional[FearAnswer] = None

    @property
    def name(self) -> str:
        return f"FEAR-XS ({self.backend.name})"

    def initialize(self, frame: np.ndarray, box) -> None:
        """frame: BGR uint8; box: (x, y, w, h), already checked by the tracker."""
        self.fill = frame.mean(axis=(0, 1))     # the first frame's mean colour pads every later window
        template = stretched_crop(frame, extended_window(box, TEMPLATE_OFFSET), TEMPLATE_SIZE, self.fill)
        self.backend.set_template(to_fear_input(template))

    def run(self, frame: np.ndarray, box) -> FearAnswer:
        window = extended_window(box, SEARCH_CONTEXT)
        crop = stretched_crop(frame, window, SEARCH_SIZE, self.fill)
        bbox_map, cls_map = self.backend.run(to_fear_input(crop))
        crop_box, score, (r, c) = decode(bbox_map, cls_map)
        # how much the chosen peak stands out from the strongest peak elsewhere (a look-alike beside the target)
        far = (np.abs(CELL_COLS - c) * STRIDE >= crop_box[2]) | (np.abs(CELL_ROWS - r) * STRIDE >= crop_box[3])
        margin = float(score[r, c] - score[far].max()) if far.any() else float(score[r, c])
        self.last = FearAnswer(crop_box_to_image(crop_box, window), float(score[r, c]), margin, window)
        return self.last


class FearLoop:
    """FEAR-XS's own tracker loop (the repository's FEARTracker with its siam_tracker config): the search window is
    placed on the previous answer, the answer is rounded to whole pixels (sides >= 3) and clamped to the image.
    Same initialize/update contract as the other peers (BGR frames, (x, y, w, h) boxes)."""

    def __init__(self, backend: DeepStageBackend):
        self.stage = FearStage(backend)
        self.name = "FEAR-XS, its own loop"

    def initialize(self, frame, box):
        self.box = clamp_box(box, frame.shape)
        self.stage.initialize(frame, self.box)

    def update(self, frame):
        answer = self.stage.run(frame, self.box)
        b = answer.box    # the reference rounds each term of the rescaled box, sides at least 3 px
        rounded = np.array([round(b[0]), round(b[1]), max(3, round(b[2])), max(3, round(b[3]))], dtype=np.float64)
        self.box = clamp_box(rounded, frame.shape)
        self.score = answer.score
        return self.box.astype(np.float64)


def clamp_box(box, shape, min_side: int = 3) -> np.ndarray:
    """The box cut to the image in whole pixels, each side at least min_side (moved back inside where needed)."""
    ih, iw = shape[:2]
    x, y, w, h = (int(v) for v in np.asarray(box, np.float64).astype(np.int32))
    x0, y0 = min(max(0, x), iw), min(max(0, y), ih)
    x1, y1 = min(max(0, x0 + w), iw), min(max(0, y0 + h), ih)
    w, h = x1 - x0, y1 - y0
    if w < min_side:
        w = min_side
        x0 -= max(0, x0 + w - iw)
    if h < min_side:
        h = min_side
        y0 -= max(0, y0 + h - ih)
    return np.array([x0, y0, w, h])
