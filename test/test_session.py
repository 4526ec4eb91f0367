"""The node's work without ROS (ros/session.py): input checks, bounded refusal logging, the worker over a real
scheduler and a tracker on the shipped model, the set-target wait and the diagnostics values."""
import time
from types import SimpleNamespace

import pytest

from conftest import SHIPPED_MODEL
from dytrack_ros.ros.image_conversion import ImageConversionError
from dytrack_ros.ros.params import NodeParams
from dytrack_ros.ros.session import (BadMessageLog, TrackingSession, box_request, check_frame_size, load_tracker,
                                     make_scheduler)
from dytrack_ros.ros.stats import RollingStats
from dytrack_ros.tracking import InvalidBoxError


def test_refusals_are_logged_at_a_bounded_rate_and_counted():
    lines, stats = [], RollingStats(1)
    bad = BadMessageLog(lines.append, stats)
    for _ in range(25):
        bad("image", ValueError("broken"))
    bad("init box", ValueError("nan"))
    assert len([ln for ln in lines if "image" in ln]) == 10 and any("init box" in ln for ln in lines)
    assert stats.snapshot()["bad"] == 26


def test_input_checks_give_the_reason():
    p = NodeParams()
    with pytest.raises(ImageConversionError, match="min_image_side"):
        check_frame_size(16, 16, p)
    with pytest.raises(ImageConversionError, match="max_image_pixels"):
        check_frame_size(100_000, 100_000, p)
    with pytest.raises(InvalidBoxError, match="positive"):
        box_request([1, 2, 0, 5], 0, 0, 1.0)
    with pytest.raises(InvalidBoxError, match="in the future"):
        box_request([1, 2, 3, 5], 10 * 10**9, 0, 1.0)
    assert box_request([1, 2, 3, 5], 0, 0, 1.0).box == (1.0, 2.0, 3.0, 5.0)


def header(ns):
    return SimpleNamespace(stamp=SimpleNamespace(sec=ns // 10**9, nanosec=ns % 10**9))


def test_worker_initialises_tracks_and_answers_set_target(tmp_path, heldout_sequence):
    frames, boxes = heldout_sequence
    p = NodeParams(state_dir=str(tmp_path))
    tracker = load_tracker(p, SHIPPED_MODEL, None)
    scheduler = make_scheduler(p, "/test/session", lambda m: None, time.time_ns)
    published, idles, logs = [], [], []
    stats = RollingStats(tracker.num_stages)
    session = TrackingSession(tracker, scheduler, stats, published.append, lambda: idles.append(1), logs.append,
                              logs.append, logs.append, BadMessageLog(logs.append, stats))
    session.start()
    try:
        t0 = 5 * 10**9
        answers = []
        answer, req = session.submit_target(lambda reply: box_request(boxes[0], 0, 0, 1.0, reply=reply), "/image",
                                            lambda ok, text: answers.append((ok, text)))
        assert req is None and not answer[0] and "no image received yet on /image" in answer[1]
        scheduler.put_frame(t0, header(t0), frames[0], time.perf_counter())
        answer, req = session.submit_target(lambda reply: box_request(boxes[0], t0, time.time_ns(), 1.0, reply=reply),
                                            "/image", lambda ok, text: answers.append((ok, text)))
        end = time.monotonic() + 5
        while not answers and time.monotonic() < end:
            time.sleep(0.01)
        assert answer is None and not session.withdraw(req)        # taken by the worker: too late to withdraw
        assert len(answers) == 1 and answers[0][0] and "initialised on frame 5.000000000" in answers[0][1]
        assert session.target_id == 1
        for i in range(1, 6):
            stats.received(replaced=scheduler.put_frame(t0 + i, header(t0 + i), frames[i], time.perf_counter()))
            end = time.monotonic() + 5
            while len(published) < i and time.monotonic() < end:
                time.sleep(0.01)
        assert len(published) == 5 and all(o.result.state == 1 for o in published)
        assert published[-1].frame.stamp_ns == t0 + 5 and published[-1].lost_seconds == 0.0
        level, message, values = session.diagnostics("onnxruntime", "/image", 2.0, 0)
        assert level == "OK" and message == "tracking" and values["frames_processed"] == "5"
        assert values["redetect"] == "true" and values["reacquisitions"] == "0"
        scheduler.put_reset()
        end = time.monotonic() + 5
        while not idles and time.monotonic() < end:
            time.sleep(0.01)
        assert idles and tracker.state == 0
    finally:
        session.stop()
