"""The per-sequence tracker: template, search crops, the early-exit policy and box back-projection.

Exit policy: run stage 0; if its score (predicted IoU) >= thresholds[0], stop and use its box, else run stage 1, and so
on; the last stage always answers. `force_stages` runs exactly that many stages (for evaluation).
Lost state: when the answering exit's score is under lost_threshold, or less than min_visible of the estimated
box lies inside the image (the target left the view), the target is reported LOST, the state box is kept where
it was last seen with confidence, and the search area grows each lost frame (up to max_search_growth) so the
target can be found again when it reappears.
The state box is the unclipped estimate with its size bounded relative to the init box: clipping it to the
image would shrink it frame by frame at the border (and the search area with it) until it collapsed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ..contract import StagedBackend, default_thresholds, to_network_input
from .crops import box_center, clip_box, crop_and_resize, crop_side, crop_units_to_box

IDLE, TRACKING, LOST = 0, 1, 2
STATE_NAMES = {IDLE: "idle", TRACKING: "tracking", LOST: "lost"}


class InvalidBoxError(ValueError):
    """An init box is empty, negative, non-finite or outside the image."""


class InvalidFrameError(ValueError):
    """A frame is not an HxWx3 uint8 image."""


@dataclass
class TrackerParams:
    template_size: int
    search_size: int
    template_factor: float = 2.0
    search_factor: float = 4.0
    thresholds: List[float] = field(default_factory=lambda: default_thresholds(3))  # runtime: the manifest's
    lost_threshold: float = 0.15      # under it the state reads LOST (lost-and-found figures: benchmarks/RESULTS.md)
    window_influence: float = 0.5     # 0: no motion prior; 1: score fully multiplied by the Hann window
    lost_window_influence: float = 0.0  # the motion prior while LOST (0: search the widened area evenly)
    max_search_growth: float = 2.0
    min_box_side: float = 2.0
    min_visible: float = 0.3          # share of the estimated box inside the image below which the target is lost
    size_bounds: tuple = (0.2, 5.0)   # box width/height stay within these multiples of the init box
    size_lr: float = 1.0              # share of a frame's size estimate taken into the state box (1: no smoothing)
    lost_patience: int = 0            # low-score frames during which the box still follows the estimate
    scale_penalty: float = 0.0        # k in exp(-k (size change x aspect change - 1)): candidates of another shape lose


@dataclass
class TrackResult:
    box: np.ndarray          # (x, y, w, h) image pixels
    score: float             # predicted IoU of the answering exit
    stages_run: int          # 1 .. num_stages: the exit of stage stages_run - 1 answered
    state: int
    inference_ms: float
    stage_scores: List[float]


def validate_frame(frame) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{getattr(frame, 'shape', None)} {getattr(frame, 'dtype', type(frame).__name__)}"
        raise InvalidFrameError(f"frame must be an HxWx3 uint8 BGR image, got {desc}")
    if frame.shape[0] < 8 or frame.shape[1] < 8:
        raise InvalidFrameError(f"frame too small: {frame.shape[1]}x{frame.shape[0]}")
    return frame


def validate_box(box: Sequence[float], width: int, height: int, min_side: float = 2.0) -> np.ndarray:
    """Checks an init box and clips it to the image. Raises InvalidBoxError with the reason."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.size != 4:
        raise InvalidBoxError(f"box must have 4 numbers (x, y, w, h), got {b.size}")
    if not np.all(np.isfinite(b)):
        raise InvalidBoxError(f"box has NaN or infinite values: {b.tolist()}")
    if b[2] <= 0 or b[3] <= 0:
        raise InvalidBoxError(f"box width and height must be positive, got w={b[2]:g} h={b[3]:g}")
    if b[2] > width or b[3] > height:
        raise InvalidBoxError(f"box {b.tolist()} is larger than the {width}x{height} image")
    x0, y0, x1, y1 = max(b[0], 0), max(b[1], 0), min(b[0] + b[2], width), min(b[1] + b[3], height)
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise InvalidBoxError(f"box {b.tolist()} lies outside the {width}x{height} image "
                              f"(or keeps less than {min_side:g} px inside it)")
    return np.array([x0, y0, x1 - x0, y1 - y0])


def hann_window(n: int) -> np.ndarray:
    w = np.hanning(n + 2)[1:-1]
    return np.outer(w, w).astype(np.float32)


class DyTracker:
    def __init__(self, backend: StagedBackend, params: TrackerParams):
        if len(params.thresholds) != backend.num_stages:
            raise ValueError(f"need {backend.num_stages} exit thresholds, got {len(params.thresholds)}")
        self.backend, self.params = backend, params
        self.num_stages = backend.num_stages
        self.window = None
        self.state = IDLE
        self.box: Optional[np.ndarray] = None
        self.growth = 1.0

    def set_thresholds(self, thresholds: Sequence[float]) -> None:
        t = [float(x) for x in thresholds]
        if len(t) != self.num_stages or not all(np.isfinite(t)):
            raise ValueError(f"need {self.num_stages} finite exit thresholds, got {list(thresholds)}")
        self.params.thresholds = t

    def reset(self) -> None:
        self.state, self.box, self.growth = IDLE, None, 1.0

    def initialize(self, frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
        frame = validate_frame(frame)
        h, w = frame.shape[:2]
        b = validate_box(box, w, h, self.params.min_box_side)
        p = self.params
        template = crop_and_resize(frame, box_center(b), crop_side(b, p.template_factor), p.template_size)
        self.backend.set_template(to_network_input(template))
        self.box, self.state, self.growth, self.low_frames = b, TRACKING, 1.0, 0
        self.init_size = b[2:].copy()
        return b

    def track(self, frame: np.ndarray, force_stages: Optional[int] = None) -> TrackResult:
        if self.state == IDLE:
            raise RuntimeError("tracker is not initialised: call initialize(frame, box) first")
        frame = validate_frame(frame)
        t0 = time.perf_counter()
        p = self.params
        center = box_center(self.box)
        side = crop_side(self.box, p.search_factor) * self.growth
        search = to_network_input(crop_and_resize(frame, center, side, p.search_size))
        scores = []
        last = self.num_stages if force_stages is None else int(np.clip(force_stages, 1, self.num_stages))
        for k in range(last):
            result = self.backend.run_stage(k, search if k == 0 else None)
            scores.append(result.score)
            if force_stages is None and result.score >= p.thresholds[k]:
                break
        h, w = frame.shape[:2]
        estimate = self._bound_size(self._smooth_size(crop_units_to_box(self._decode(result), center, side)))
        box = clip_box(estimate, w, h, p.min_box_side)
        visible = (box[2] * box[3]) / max(estimate[2] * estimate[3], 1e-9)
        score = result.score
        if score >= p.lost_threshold and visible >= p.min_visible:
            self.box, self.state, self.growth, self.low_frames = estimate, TRACKING, 1.0, 0
        else:
            # reported LOST at once; but a few low-score frames are usually a hard frame (blur, occlusion), not
            # a vanished target: keep following the estimate for lost_patience frames, then hold the box and
            # widen the search
            self.state = LOST
            self.low_frames += 1
            if self.low_frames <= p.lost_patience and visible >= p.min_visible:
                self.box = estimate
            else:
                self.growth = min(self.growth * 1.25, p.max_search_growth)
                box = clip_box(self.box, w, h, p.min_box_side)
        return TrackResult(box=box, score=score, stages_run=len(scores), state=self.state,
                           inference_ms=(time.perf_counter() - t0) * 1000.0, stage_scores=scores)

    def _smooth_size(self, box: np.ndarray) -> np.ndarray:
        """Size changes slowly on real video; one frame's size estimate is noisy (blur, occlusion, a neighbour)."""
        lr = self.params.size_lr
        if lr >= 1.0:
            return box
        cx, cy = box_center(box)
        bw, bh = (1 - lr) * self.box[2:] + lr * box[2:]
        return np.array([cx - bw / 2, cy - bh / 2, bw, bh])

    def _bound_size(self, box: np.ndarray) -> np.ndarray:
        lo, hi = self.params.size_bounds
        cx, cy = box_center(box)
        bw, bh = np.clip(box[2:], self.init_size * lo, self.init_size * hi)
        return np.array([cx - bw / 2, cy - bh / 2, bw, bh])

    def _decode(self, r) -> np.ndarray:
        """Box at the peak of the Hann-windowed score map (a motion prior favouring the previous position)."""
        g = r.score_map.shape[-1]
        if self.window is None or self.window.shape[0] != g:
            self.window = hann_window(g)
        wi = self.params.window_influence if self.state == TRACKING else self.params.lost_window_influence
        response = r.score_map * ((1 - wi) + wi * self.window)
        if self.params.scale_penalty > 0:   # SiamRPN-style: a look-alike of another size or shape scores less
            side = crop_side(self.box, self.params.search_factor) * self.growth
            w, h = np.maximum(r.size_map[0], 1e-6), np.maximum(r.size_map[1], 1e-6)
            bw, bh = self.box[2] / side, self.box[3] / side
            change = lambda x: np.maximum(x, 1.0 / x)
            size_change = change(np.sqrt(w * h) / np.sqrt(bw * bh))
            aspect_change = change((w / h) / (bw / bh))
            response = response * np.exp(-self.params.scale_penalty * (size_change * aspect_change - 1.0))
        idx = int(np.argmax(response))
        gy, gx = divmod(idx, g)
        return np.array([(gx + r.offset_map[0, gy, gx]) / g, (gy + r.offset_map[1, gy, gx]) / g,
                         r.size_map[0, gy, gx], r.size_map[1, gy, gx]])
