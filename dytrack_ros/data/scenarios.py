"""Real sequences replayed through a virtual camera that turns away from the target and back: returns to measure
re-detection on, made from the project's own annotated video (no further benchmark clips, see real_sequences.json).

The virtual camera sees a window `view` of the frame's width (full height) and follows the target smoothly, as a
follow-me robot's camera would. At `start` it pans away from the target (`pan` frames) until the target is out of view,
holds there for `hold` frames (time goes on: the target keeps moving in the source video), then pans back to where the
target now is and follows again. Ground truth is the target's box in the window; NaN while less than half of it is in
view (the target is absent, as UAV123 marks it).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .sequences import Sequence


class CroppedSequence(Sequence):
    """A sequence seen through per-frame horizontal windows: frame i is the source's frame i, columns x0[i]..+width."""

    def __init__(self, name, source: Sequence, x0: np.ndarray, width: int, boxes: np.ndarray):
        super().__init__(name, list(range(len(source))), boxes, None, source.fps)
        self.source, self.x0, self.width = source, x0.astype(int), int(width)

    def frame(self, i: int) -> np.ndarray:
        img = self.source.frame(i)
        return np.ascontiguousarray(img[:, self.x0[i]:self.x0[i] + self.width])


def turned_away(seq: Sequence, start: Optional[int] = None, pan: int = 8, hold: int = 40, view: float = 0.5,
                follow: float = 0.3, label: str = "turn") -> Optional[CroppedSequence]:
    """The sequence with one turn away and back (named `<name>~<label>`), or None when it cannot have one (too
    short, target too wide to leave a window of that size, or not visible where the turn starts)."""
    n = len(seq)
    h, w = seq.frame(0).shape[:2]
    width = int(w * view)
    boxes = seq.boxes
    ok = seq.visible_mask()
    start = int(0.3 * n) if start is None else start
    back = start + pan + hold
    if back + pan + 30 > n or not ok[start] or not ok[0] or np.nanmax(boxes[:, 2]) > 0.5 * width:
        return None
    cx = np.where(ok, boxes[:, 0] + boxes[:, 2] / 2.0, np.nan)
    cx = np.array([v if np.isfinite(v) else cx[:i + 1][np.isfinite(cx[:i + 1])][-1] for i, v in enumerate(cx)])
    x0 = np.zeros(n)
    x0[0] = np.clip(cx[0] - width / 2.0, 0, w - width)
    for i in range(1, n):                                  # a camera that follows the target smoothly
        x0[i] = x0[i - 1] + follow * (np.clip(cx[i] - width / 2.0, 0, w - width) - x0[i - 1])
    # away: to the side of the image farther from the target, and held there
    far = 0.0 if cx[start] > w / 2.0 else float(w - width)
    for i in range(start, back + pan):
        if i < start + pan:
            x0[i] = x0[start - 1] + (far - x0[start - 1]) * (i - start + 1) / pan
        elif i < back:
            x0[i] = far
        else:   # back to the target's current position
            goal = np.clip(cx[i] - width / 2.0, 0, w - width)
            x0[i] = far + (goal - far) * (i - back + 1) / pan
    for i in range(back + pan, n):
        x0[i] = x0[i - 1] + follow * (np.clip(cx[i] - width / 2.0, 0, w - width) - x0[i - 1])
    x0 = np.round(x0)
    out = boxes.copy()
    out[:, 0] -= x0
    inside = np.clip(np.minimum(out[:, 0] + out[:, 2], width) - np.maximum(out[:, 0], 0), 0, None) * out[:, 3]
    visible = ok & (inside >= 0.5 * boxes[:, 2] * boxes[:, 3])
    if visible[start + pan:back].any() or not visible[0]:
        return None                                        # the target never left the view: no return to measure
    out[~visible] = np.nan
    x_lo = np.maximum(out[:, 0], 0)
    out[:, 2] = np.minimum(out[:, 0] + out[:, 2], width) - x_lo       # the visible part, as annotators draw it
    out[:, 0] = x_lo
    return CroppedSequence(f"{seq.name}~{label}", seq, x0, width, out)
