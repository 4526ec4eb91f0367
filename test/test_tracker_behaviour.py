"""Tracker behaviour with the shipped model on real photos: a target that leaves the image."""
import cv2
import numpy as np

from conftest import SHIPPED_MODEL
from dytrack_ros.tracking import LOST, TRACKING
from dytrack_ros.tracking.factory import build_tracker


def leaving_sequence(photos, n=60, speed=8):
    """A patch of one held-out photo slides left over another until it is gone (last ~15 frames empty)."""
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


def test_target_leaving_the_image_is_reported_lost_without_box_collapse(heldout_photos):
    frames, boxes = leaving_sequence(heldout_photos)
    tracker = build_tracker(SHIPPED_MODEL, "onnxruntime")
    tracker.initialize(frames[0], boxes[0])
    results = [tracker.track(f) for f in frames[1:]]
    gone = [r for r, b in zip(results, boxes[1:]) if b[0] + b[2] < 0]           # frames with no target at all
    visible = [r for r, b in zip(results, boxes[1:]) if b[0] >= 0][:10]
    assert all(r.state == TRACKING for r in visible)
    assert any(r.state == LOST for r in results), "leaving the image must be reported"
    # the state box never collapses at the border (size stays within the bounds relative to the init box)
    assert min(min(r.box[2], r.box[3]) for r in results) >= 2.0
    assert tracker.box[2] >= 0.2 * 40 - 1e-6 and tracker.box[3] >= 0.2 * 60 - 1e-6
    assert len(gone) >= 10
    # once nothing of the target is left, the tracker must say so rather than follow the background
    assert sum(r.state == LOST for r in gone) >= 0.8 * len(gone)
