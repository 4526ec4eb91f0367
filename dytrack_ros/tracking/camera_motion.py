"""How the camera moved between two frames: the background's image motion, so the tracker can look where the target
is now and not where it was (a drone or robot that yaws moves everything in the image by tens of pixels per frame,
more than a small target's search window).

Estimated by phase correlation of the whole frame, downscaled (OpenCV's phaseCorrelate): the dominant translation,
which is the background's wherever the background fills most of the image. Sparse optical flow with a RANSAC
similarity (BoT-SORT's camera-motion compensation) was measured too: the same shifts within ~2 px on the turning
clips, at 2-3 ms a frame instead of ~0.3 ms.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np


class CameraMotion:
    """Frame-to-frame image translation of the background by phase correlation of small grey frames (about 0.3 ms a
    frame of 1280x720 here). Translation only: a yawing or panning camera moves the image sideways; its roll and zoom
    per frame are small next to that."""

    def __init__(self, side: int = 128, min_response: float = 0.15):
        self.side, self.min_response = int(side), float(min_response)
        self.prev: Optional[np.ndarray] = None
        self.response = 0.0

    def reset(self, frame: np.ndarray) -> None:
        self.prev = self._grey(frame)

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        self.scale = min(1.0, self.side / float(max(h, w)))
        size = (max(int(round(w * self.scale)), 8), max(int(round(h * self.scale)), 8))
        # a cheap bilinear step to twice the size, then area averaging (a direct area resize costs ~1 ms)
        half = cv2.resize(frame, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(cv2.resize(half, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        if getattr(self, "window", None) is None or self.window.shape != grey.shape:
            self.window = cv2.createHanningWindow(size, cv2.CV_32F)
        return np.float32(grey)

    def update(self, frame: np.ndarray) -> np.ndarray:
        """(dx, dy): how far the background moved since the previous frame, in this frame's pixels; zeros when it
        cannot be told (first frame, another frame size, a weak correlation peak: a cut, blur, a blank view)."""
        grey = self._grey(frame)
        prev, self.prev = self.prev, grey
        if prev is None or prev.shape != grey.shape:
            self.response = 0.0
            return np.zeros(2)
        (dx, dy), self.response = cv2.phaseCorrelate(prev, grey, self.window)
        if not (self.response >= self.min_response and np.isfinite(dx) and np.isfinite(dy)):
            return np.zeros(2)
        return np.array([dx, dy]) / self.scale
