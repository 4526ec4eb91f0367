"""Tracking sequences with exact ground truth, built from real photographs.

A target (a patch cut from one photo, with a soft elliptical or rectangular matte) moves over a background
(another photo) with smooth random motion, scale and aspect change, small rotation, motion blur, lighting
change, partial occlusion by a patch of a third photo, and look-alike distractors (recoloured copies of the
target), while the camera pans. Every frame's box is known exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np


@dataclass
class SequenceSpec:
    width: int = 480
    height: int = 360
    length: int = 120
    min_target: int = 28
    max_target: int = 90
    distractors: int = 1
    occlusion: bool = True
    blur: bool = True


def _cut_patch(rng, photo, size_wh) -> np.ndarray:
    h, w = photo.shape[:2]
    pw, ph = min(size_wh[0], w), min(size_wh[1], h)
    x = rng.integers(0, w - pw + 1)
    y = rng.integers(0, h - ph + 1)
    return photo[y:y + ph, x:x + pw].copy()


def _matte(rng, w, h) -> np.ndarray:
    """Soft alpha matte: ellipse or rounded rectangle, blurred edge."""
    m = np.zeros((h, w), np.float32)
    if rng.random() < 0.5:
        cv2.ellipse(m, (w // 2, h // 2), (max(w // 2 - 1, 1), max(h // 2 - 1, 1)), 0, 0, 360, 1.0, -1)
    else:
        r = int(min(w, h) * 0.15)
        cv2.rectangle(m, (r // 2, r // 2), (w - 1 - r // 2, h - 1 - r // 2), 1.0, -1)
    return cv2.GaussianBlur(m, (0, 0), 1.2)


def _smooth_path(rng, n, start, sigma, damping=0.9) -> np.ndarray:
    """Random walk on velocity (an AR(1) process): smooth, occasionally fast motion."""
    pos = np.zeros((n, len(start)))
    v = rng.normal(0, sigma, len(start))
    p = np.array(start, float)
    for i in range(n):
        pos[i] = p
        v = damping * v + rng.normal(0, sigma, len(start))
        p = p + v
    return pos


class Scene:
    """One generated sequence. frame(i) renders frame i; boxes[i] is its ground truth (x, y, w, h)."""

    def __init__(self, photos: List[np.ndarray], rng: np.random.Generator, spec: SequenceSpec = SequenceSpec()):
        self.spec, self.rng = spec, rng
        W, H, n = spec.width, spec.height, spec.length
        idx = rng.choice(len(photos), size=3, replace=len(photos) < 3)
        bg = photos[idx[0]]
        # background larger than the frame so the camera can pan
        scale = max((W * 1.5) / bg.shape[1], (H * 1.5) / bg.shape[0])
        self.background = cv2.resize(bg, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        side = rng.uniform(spec.min_target, spec.max_target)
        aspect = np.exp(rng.uniform(-0.8, 0.8))
        tw, th = int(side * np.sqrt(aspect)), int(side / np.sqrt(aspect))
        src = photos[idx[1]]
        cut = int(max(tw, th) * rng.uniform(1.0, 2.5))  # cut at higher resolution than shown
        self.target = _cut_patch(rng, src, (int(cut * tw / max(tw, th)) + 4, int(cut * th / max(tw, th)) + 4))
        self.matte = _matte(rng, self.target.shape[1], self.target.shape[0])
        self.base_wh = np.array([tw, th], float)
        self.occluder = _cut_patch(rng, photos[idx[2]], (int(side * 0.8) + 4, int(side * 1.6) + 4))
        # trajectories
        margin = side
        start = (rng.uniform(margin, W - margin), rng.uniform(margin, H - margin))
        self.centers = _smooth_path(rng, n, start, sigma=rng.uniform(0.3, 2.5))
        self.log_scale = _smooth_path(rng, n, (0.0,), sigma=0.006)[:, 0]
        self.log_aspect = _smooth_path(rng, n, (0.0,), sigma=0.004)[:, 0]
        self.angle = _smooth_path(rng, n, (0.0,), sigma=0.15)[:, 0]
        self.camera = _smooth_path(rng, n, (0.0, 0.0), sigma=0.4)
        self.gain = 1.0 + 0.35 * np.sin(np.linspace(0, rng.uniform(1, 6), n) + rng.uniform(0, 6))
        self.boxes = np.zeros((n, 4))
        for i in range(n):
            # keep the target inside the frame: reflect at the borders
            c = self.centers[i]
            for d, lim in ((0, W), (1, H)):
                if c[d] < margin * 0.6 or c[d] > lim - margin * 0.6:
                    self.centers[i:, d] = np.clip(self.centers[i:, d], margin * 0.6, lim - margin * 0.6)
            s = np.exp(np.clip(self.log_scale[i], -0.7, 0.7))
            a = np.exp(np.clip(self.log_aspect[i], -0.4, 0.4))
            w, h = self.base_wh[0] * s * np.sqrt(a), self.base_wh[1] * s / np.sqrt(a)
            self.boxes[i] = [self.centers[i][0] - w / 2, self.centers[i][1] - h / 2, w, h]
        # distractors: recoloured copies on their own paths
        self.distractors = []
        for _ in range(spec.distractors):
            shift = rng.integers(0, 60, 3).astype(np.int16) * rng.choice([-1, 1], 3)
            img = np.clip(self.target.astype(np.int16) + shift, 0, 255).astype(np.uint8)
            path = _smooth_path(rng, n, (rng.uniform(margin, W - margin), rng.uniform(margin, H - margin)), 1.5)
            path = np.clip(path, [margin * 0.6, margin * 0.6], [W - margin * 0.6, H - margin * 0.6])
            self.distractors.append((img, path, rng.uniform(0.7, 1.1)))
        # occlusion: one pass across the target's path
        self.occ_frames = None
        if spec.occlusion and rng.random() < 0.6:
            t0 = rng.integers(n // 4, max(n // 4 + 1, n - 20))
            self.occ_frames = (t0, t0 + rng.integers(8, 25), rng.uniform(-1, 1, 2))
        self.blur_frames = set(rng.choice(n, size=n // 10, replace=False).tolist()) if spec.blur else set()

    def __len__(self):
        return len(self.boxes)

    def _paste(self, frame, img, matte, box, angle):
        x, y, w, h = box
        w, h = max(int(round(w)), 2), max(int(round(h)), 2)
        patch = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(matte, (w, h), interpolation=cv2.INTER_LINEAR)
        if abs(angle) > 0.5:
            r = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            patch = cv2.warpAffine(patch, r, (w, h), borderMode=cv2.BORDER_REFLECT)
            alpha = cv2.warpAffine(alpha, r, (w, h))
        x0, y0 = int(round(x)), int(round(y))
        fx0, fy0 = max(x0, 0), max(y0, 0)
        fx1, fy1 = min(x0 + w, frame.shape[1]), min(y0 + h, frame.shape[0])
        if fx1 <= fx0 or fy1 <= fy0:
            return
        p = patch[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0].astype(np.float32)
        a = alpha[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0, None]
        roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        frame[fy0:fy1, fx0:fx1] = (a * p + (1 - a) * roi).astype(np.uint8)

    def frame(self, i: int) -> np.ndarray:
        W, H = self.spec.width, self.spec.height
        bx = int(np.clip(self.background.shape[1] / 2 - W / 2 + self.camera[i][0], 0, self.background.shape[1] - W))
        by = int(np.clip(self.background.shape[0] / 2 - H / 2 + self.camera[i][1], 0, self.background.shape[0] - H))
        frame = self.background[by:by + H, bx:bx + W].copy()
        for img, path, s in self.distractors:
            w, h = self.boxes[i][2] * s, self.boxes[i][3] * s
            self._paste(frame, img, self.matte, (path[i][0] - w / 2, path[i][1] - h / 2, w, h), 0.0)
        self._paste(frame, self.target, self.matte, self.boxes[i], self.angle[i])
        if self.occ_frames and self.occ_frames[0] <= i < self.occ_frames[1]:
            t0, t1, d = self.occ_frames
            prog = (i - t0) / max(t1 - t0, 1)
            b = self.boxes[t0]
            ox = b[0] + b[2] * (prog * 2 - 0.5) * (1 if d[0] > 0 else -1) + (b[2] if d[0] < 0 else 0)
            ow, oh = self.occluder.shape[1], self.occluder.shape[0]
            occ_box = (ox, b[1] + b[3] / 2 - oh / 2, min(ow, b[2] * 0.7), oh)
            self._paste(frame, self.occluder, np.ones(self.occluder.shape[:2], np.float32), occ_box, 0.0)
        frame = np.clip(frame.astype(np.float32) * self.gain[i], 0, 255).astype(np.uint8)
        if i in self.blur_frames:
            k = int(self.rng.integers(3, 9))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            frame = cv2.filter2D(frame, -1, kernel)
        return frame


def make_sequence(photos, seed: int, spec: SequenceSpec = SequenceSpec()) -> Tuple[List[np.ndarray], np.ndarray]:
    """Render a whole sequence: (frames, boxes)."""
    scene = Scene(photos, np.random.default_rng(seed), spec)
    return [scene.frame(i) for i in range(len(scene))], scene.boxes.copy()
