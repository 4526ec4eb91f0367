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


def test_found_again_reports_the_lost_time_and_diagnostics_say_how_long_and_what_was_refused(heldout_sequence):
    """'target found again after 0.0 s lost' was always 0.0: the last-tracked time was overwritten first. The tracker's
    answers are scripted here (TRACKING, LOST for 1.5 s of stamps, found again) to check the session's bookkeeping."""
    import numpy as np
    from dytrack_ros.tracking import LOST, TRACKING
    from dytrack_ros.tracking.tracker import TrackResult
    from dytrack_ros.ros.scheduler import Frame, Scheduler
    frames, _ = heldout_sequence
    script = [(TRACKING, False)] + [(LOST, False)] * 3 + [(TRACKING, True)]

    class Scripted:
        state, box, num_stages = TRACKING, np.array([1.0, 2.0, 3.0, 4.0]), 1
        params = SimpleNamespace(thresholds=[0.5], redetect=True)
        search = SimpleNamespace(stats=SimpleNamespace(windows=0, candidates=0, refused_by_memory=0, drifts=0,
                                                       refused_as_lookalike=0, refused_as_seen_before=0, reacquired=1,
                                                       area_searched=0.0))

        def track(self, _image):
            self.state, found = script.pop(0)
            return TrackResult(self.box, 0.7, 1, self.state, 1.0, [0.7], redetected=found)
    logs, published = [], []
    session = TrackingSession(Scripted(), Scheduler(5), RollingStats(1), published.append, lambda: None, logs.append,
                              logs.append, logs.append, BadMessageLog(logs.append))
    for i in range(4):
        session.stats.received(replaced=False)
        session._track(Frame(10**9 + i * 500_000_000, header(0), frames[0], time.perf_counter()), 0)
    assert published[-1].lost_seconds == 1.5
    _, _, values = session.diagnostics("onnxruntime", "/image", 2.0, 0, "active")
    assert values["lost_seconds"] == "1.50" and values["state"] == "lost" and values["lifecycle_state"] == "active"
    level, _, values = session.diagnostics("onnxruntime", "/image", -1.0, 0)     # the camera went quiet
    assert level == "STALE" and values["state"] == "stale" and values["tracker_state"] == "lost"
    session._track(Frame(10**9 + 4 * 500_000_000, header(0), frames[0], time.perf_counter()), 0)
    assert any("found again after 2.0 s lost" in ln for ln in logs), logs
    session.refused(InvalidBoxError("box [1, 2, 3, 4] refused: its frame is gone"))
    _, _, values = session.diagnostics("onnxruntime", "/image", 2.0, 0)
    assert values["last_refused_init_box"] == "box [1, 2, 3, 4] refused: its frame is gone"
    assert values["lost_seconds"] == "0.00" and values["box"] == "[1.0, 2.0, 3.0, 4.0]"


def test_lost_time_keeps_counting_when_the_camera_clock_steps_back(heldout_sequence):
    """Issue 37, item 2: after stamps jumped back an hour lost_seconds read 0.0 on every LOST result."""
    import numpy as np
    from dytrack_ros.tracking import LOST
    from dytrack_ros.tracking.tracker import TrackResult
    from dytrack_ros.ros.scheduler import Frame, Scheduler
    frames, _ = heldout_sequence

    class AlwaysLost:
        state, box, num_stages = LOST, np.array([1.0, 2.0, 3.0, 4.0]), 1
        params = SimpleNamespace(thresholds=[0.5], redetect=False)
        search = SimpleNamespace(stats=SimpleNamespace(windows=0, candidates=0, refused_by_memory=0, drifts=0,
                                                       refused_as_lookalike=0, refused_as_seen_before=0, reacquired=0,
                                                       area_searched=0.0))

        def track(self, _image):
            return TrackResult(self.box, 0.1, 1, LOST, 1.0, [0.1])
    logs, published = [], []
    session = TrackingSession(AlwaysLost(), Scheduler(5), RollingStats(1), published.append, lambda: None,
                              logs.append, logs.append, logs.append, BadMessageLog(logs.append))
    t0, received = 3600 * 10**9, time.perf_counter()
    stamps = [t0 + i * 10**8 for i in range(5)] + [10**8 + i * 10**8 for i in range(5)]     # back an hour
    for i, stamp in enumerate(stamps):
        session._track(Frame(stamp, header(stamp), frames[0], received + i * 0.1), 0)
    lost = [o.lost_seconds for o in published]
    assert lost == sorted(lost) and abs(lost[-1] - 0.9) < 1e-6, lost
    assert session.stamp_jumps == 1 and "jumped back 3600.3 s" in session.last_stamp_jump
    assert sum("monotonic clock" in ln for ln in logs) == 1, logs
    _, _, values = session.diagnostics("onnxruntime", "/image", 2.0, 0)
    assert values["stamp_jumps"] == "1" and values["lost_seconds"] == "0.90", values
