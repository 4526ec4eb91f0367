"""Tracker behaviour with the shipped model on real photos: a target that leaves the image."""
from conftest import SHIPPED_MODEL
from dytrack_ros.data.sequences import leaving_sequence
from dytrack_ros.tracking import LOST, TRACKING
from dytrack_ros.runtime import build_tracker


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
