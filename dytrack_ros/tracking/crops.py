"""Crop geometry shared by training and tracking, so both see exactly the same pixels (the normalisation that
follows is the contract's `to_network_input`).

Boxes are (x, y, w, h) in image pixels, x/y the top-left corner. A crop is a square centred on the box, resized
to `out_size`. Its side is sqrt(w*h) * factor (context 0, what training uses), or with context c the Siamese
trackers' context-padded side sqrt((w + p)(h + p)) * factor / (1 + 2c), p = c (w + h): the same for a square box,
more context across an elongated one (NanoTrack's geometry at c = 0.5, what its head was trained on). Parts outside
the image are filled by replicating the border, or with a fixed colour (NanoTrack pads with the first frame's
mean colour).
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np


def crop_side(box, factor: float, context: float = 0.0) -> float:
    w, h = max(box[2], 1e-6), max(box[3], 1e-6)
    pad = context * (w + h)
    return float(np.sqrt((w + pad) * (h + pad)) * factor / (1.0 + 2.0 * context))


def box_center(box) -> Tuple[float, float]:
    return box[0] + box[2] / 2.0, box[1] + box[3] / 2.0


def crop_and_resize(image: np.ndarray, center, side: float, out_size: int, fill=None) -> np.ndarray:
    """Square crop of `side` pixels around `center`, resized to out_size x out_size (one affine warp). fill: None
    replicates the border, else the colour (B, G, R) of everything outside the image."""
    scale = out_size / side
    cx, cy = center
    m = np.array([[scale, 0.0, out_size / 2.0 - cx * scale],
                  [0.0, scale, out_size / 2.0 - cy * scale]], dtype=np.float64)
    if fill is None:
        return cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in fill))


def box_to_crop_units(box, center, side: float) -> np.ndarray:
    """Image box -> (cx, cy, w, h) as fractions of the crop."""
    cx, cy = box_center(box)
    return np.array([(cx - center[0]) / side + 0.5, (cy - center[1]) / side + 0.5, box[2] / side, box[3] / side],
                    dtype=np.float32)


def crop_units_to_box(cxcywh, center, side: float) -> np.ndarray:
    """(cx, cy, w, h) in crop fractions -> image box (x, y, w, h)."""
    cx = center[0] + (cxcywh[0] - 0.5) * side
    cy = center[1] + (cxcywh[1] - 0.5) * side
    w, h = cxcywh[2] * side, cxcywh[3] * side
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float64)


def clip_box(box, width: int, height: int, min_size: float = 2.0) -> np.ndarray:
    """Clip a box to the image, keeping at least min_size pixels on each side."""
    x0 = float(np.clip(box[0], 0, width - min_size))
    y0 = float(np.clip(box[1], 0, height - min_size))
    x1 = float(np.clip(box[0] + box[2], x0 + min_size, width))
    y1 = float(np.clip(box[1] + box[3], y0 + min_size, height))
    return np.array([x0, y0, x1 - x0, y1 - y0], dtype=np.float64)
