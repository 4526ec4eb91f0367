"""The node's ROS-free scheduler: newest-frame slot, init/reset in arrival order, stamp matching, durable reset."""
import json
import threading
import time

import numpy as np
import pytest

from dytrack_ros.ros.scheduler import InitRequest, ResetMemory, Scheduler


def frame(s, stamp, received=None):
    return s.put_frame(stamp, f"header{stamp}", np.full((4, 4, 3), stamp % 255, np.uint8),
                       time.perf_counter() if received is None else received)


def init(box=(1, 2, 3, 4), stamp=0):
    return InitRequest(tuple(float(v) for v in box), stamp, time.perf_counter())


def test_newest_frame_wins_and_replaced_ones_count_as_dropped():
    s = Scheduler(buffer=5)
    assert not frame(s, 1) and frame(s, 2) and frame(s, 3)
    w = s.next_work(0)
    assert w.frame[0] == 3 and w.dropped == 2 and not w.reset and w.init is None
    assert s.next_work(0) is None


def test_reset_then_init_keeps_the_init_and_init_then_reset_cancels_it_100_of_100():
    for trial in range(100):
        s = Scheduler(buffer=5)
        frame(s, 10)
        order = ["reset", "init"] if trial % 2 == 0 else ["init", "reset"]
        for kind in order:
            s.put_reset(trial) if kind == "reset" else s.put_init(init(stamp=0))
        w = s.next_work(0)
        assert w.reset
        assert (w.init is not None) == (order == ["reset", "init"]), (trial, order)


def test_concurrent_reset_then_init_from_two_threads_is_never_lost():
    """The QA run's race: a reset and the next init from different callbacks while the worker runs."""
    for trial in range(100):
        s = Scheduler(buffer=5)
        frame(s, 10)
        done = threading.Event()

        def callbacks():
            s.put_reset(0)
            s.put_init(init(stamp=0))
            done.set()
        t = threading.Thread(target=callbacks)
        t.start()
        inits = 0
        while not (done.is_set() and (w := s.next_work(0)) is None):
            w = s.next_work(0.001) if not done.is_set() else w
            inits += int(w is not None and w.init is not None)
        t.join()
        assert inits == 1, trial


def test_init_goes_to_the_frame_it_was_drawn_on():
    s = Scheduler(buffer=10)
    for stamp in (100, 200, 300, 400):
        frame(s, stamp)
    s.next_work(0)
    s.put_init(init(stamp=250))
    w = s.next_work(0)
    assert w.init_frame[0] == 200 and w.frame is None     # nothing newer than the init frame to track yet
    frame(s, 500)
    assert s.next_work(0).frame[0] == 500


def test_a_box_older_than_every_buffered_frame_gets_no_frame():
    s = Scheduler(buffer=2)
    sec = 10 ** 9
    for stamp in (10 * sec, 20 * sec, 30 * sec):
        frame(s, stamp)                                   # 10 s has left the 2-frame buffer
    s.next_work(0)
    s.put_init(init(stamp=19 * sec))                      # 1 s before the oldest kept: its frame was lost
    assert s.next_work(0).init_frame[0] == 20 * sec
    s.put_init(init(stamp=5 * sec))                       # far older than anything kept
    w = s.next_work(0)
    assert w.init is not None and w.init_frame is None    # the node refuses it with a reason


def test_init_before_any_frame_waits_for_the_first_one():
    s = Scheduler(buffer=5)
    s.put_init(init())
    w = s.next_work(0)
    assert w is None or w.init is None
    frame(s, 7)
    w = s.next_work(0)
    assert w.init is not None and w.init_frame[0] == 7


def test_unstamped_box_waits_for_a_fresh_frame_when_the_stream_has_stopped():
    s = Scheduler(buffer=5, stale_after=0.5)
    frame(s, 1, received=time.perf_counter() - 10)          # the last frame came 10 s ago
    s.next_work(0)
    s.put_init(init(stamp=0))
    w = s.next_work(0)
    assert w is None or w.init is None                     # not applied to the stale frame
    frame(s, 2)
    w = s.next_work(0)
    assert w.init is not None and w.init_frame[0] == 2


def test_reset_is_remembered_across_a_restart(tmp_path):
    path = str(tmp_path / "state" / "node.json")
    s = Scheduler(buffer=5, reset_memory=ResetMemory(path))
    frame(s, 800)
    frame(s, 1000)
    box = init((10, 10, 20, 20), stamp=900)
    s.put_init(box)
    assert s.next_work(0).init is not None
    frame(s, 2000)
    s.put_reset()                                           # the reset's time: the newest frame's stamp
    assert s.next_work(0).reset
    # a new node (same name) gets the latched box again: refused, and so is anything stamped before the reset
    restarted = Scheduler(buffer=5, reset_memory=ResetMemory(path))
    assert "cancelled" in restarted.put_init(init((10, 10, 20, 20), stamp=900))
    assert "older than the last reset" in restarted.put_init(init((30, 30, 20, 20), stamp=1500))
    assert restarted.put_init(init((30, 30, 20, 20), stamp=2500)) is None
    # a corrupt memory file is no memory: the node still starts
    open(path, "w").write("{not json")
    assert ResetMemory(path).stamp_ns == 0


def test_arrival_time_not_callback_order_decides_between_reset_and_init():
    """Callbacks of two topics run in the executor's order: an init box that arrived after a reset may be
    handled first. The reset must not cancel it, whether or not the worker already applied it."""
    s = Scheduler(buffer=5)
    frame(s, 10)
    s.next_work(0)
    late_init = init()
    late_init.order_ns = 2_000
    s.put_init(late_init)                  # callback order: init first ...
    s.put_reset(0, order_ns=1_000)         # ... then the reset that arrived before it
    w = s.next_work(0)
    assert w.reset and w.init is not None
    s2 = Scheduler(buffer=5)
    frame(s2, 10)
    s2.next_work(0)
    s2.put_init(late_init)
    assert s2.next_work(0).init is not None            # the worker applied the init already
    s2.put_reset(0, order_ns=1_000)                    # the older reset's callback comes last
    w = s2.next_work(0)
    assert w is None or not w.reset                    # ignored: the current target came after it


def test_a_reset_stops_tracking_even_when_its_record_cannot_be_written(tmp_path):
    """A directory where the state file should be: the reset still stops tracking, the failure is logged and
    reported, and the record is written once the path is usable again."""
    path = tmp_path / "node.json"
    path.mkdir()                                            # the state file's place is taken by a directory
    logs = []
    memory = ResetMemory(str(path), log=logs.append)
    s = Scheduler(buffer=5, reset_memory=memory)
    frame(s, 100)
    s.put_init(init((10, 10, 20, 20), stamp=100))
    assert s.next_work(0).init is not None
    frame(s, 200)
    s.put_reset()
    w = s.next_work(0)
    assert w is not None and w.reset                        # tracking stops
    assert memory.write_error and any("could not be recorded" in m for m in logs)
    path.rmdir()
    s._last_retry = 0.0
    frame(s, 300)
    s.next_work(0)                                          # the worker retries
    assert memory.write_error is None and ResetMemory(str(path)).stamp_ns == 200


def test_a_state_dir_under_a_regular_file_does_not_stop_a_reset(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    memory = ResetMemory(str(blocker / "sub" / "node.json"))
    s = Scheduler(buffer=5, reset_memory=memory)
    frame(s, 1)
    s.put_init(init(stamp=1))
    s.next_work(0)
    s.put_reset()
    assert s.next_work(0).reset and memory.write_error


@pytest.mark.parametrize("content", ["[]", '{"reset_stamp_ns": 1e400}', '{"reset_stamp_ns": "soon"}', "{not json",
                                     '{"reset_stamp_ns": -5}', '{"cancelled_box": [1, 2]}', "null", ""])
def test_any_unreadable_state_is_discarded_with_a_log_line(tmp_path, content):
    path = tmp_path / "node.json"
    path.write_text(content)
    logs = []
    memory = ResetMemory(str(path), log=logs.append)        # never raises
    assert memory.stamp_ns == 0 and memory.cancelled is None
    assert len(logs) == 1 and "discarded" in logs[0], logs


def test_a_persisted_stamp_from_the_future_is_discarded(tmp_path):
    path = tmp_path / "node.json"
    now = 1_000 * 10**9
    path.write_text(json.dumps({"reset_stamp_ns": now + 86_400 * 10**9, "cancelled_box": None}))
    logs = []
    memory = ResetMemory(str(path), log=logs.append, now_ns=lambda: now, future_tolerance_ns=10**9)
    assert memory.stamp_ns == 0 and "future" in logs[0]


def test_a_future_stamped_frame_does_not_move_the_resets_time():
    """One frame stamped a day ahead, then a reset, then normal frames: boxes on the normal frames are taken."""
    now = 1_000 * 10**9
    s = Scheduler(buffer=10, now_ns=lambda: now, future_tolerance_ns=10**9)
    frame(s, now - 200)
    frame(s, now + 86_400 * 10**9)                           # a camera glitch
    s.next_work(0)
    s.put_reset()
    assert s.next_work(0).reset and s.memory.stamp_ns == now - 200
    frame(s, now + 100)
    assert s.put_init(init(stamp=now + 100)) is None


def test_negative_stamps_get_their_own_reason():
    s = Scheduler(buffer=5)
    assert "negative" in s.put_init(init(stamp=-1))


def test_a_box_taken_again_after_a_reset_is_not_refused_after_reactivation(tmp_path):
    """Box B, reset, B again (taken), then deactivate/activate (the memory is read from the file again), reset, B:
    taken (it was refused as 'cancelled before this node started')."""
    path = str(tmp_path / "node.json")
    b = (10, 10, 20, 20)
    s = Scheduler(buffer=5, reset_memory=ResetMemory(path))
    frame(s, 1)
    assert s.put_init(init(b)) is None
    s.next_work(0)
    s.put_reset()
    s.next_work(0)
    assert s.put_init(init(b)) is None                      # sent again on purpose: taken
    s.next_work(0)
    again = Scheduler(buffer=5, reset_memory=ResetMemory(path))    # activate builds a new memory from the file
    frame(again, 2)
    again.put_reset()
    again.next_work(0)
    assert again.put_init(init(b)) is None


def test_a_withdrawn_box_is_never_applied():
    """set_target answers failure after its wait: the box is withdrawn, and frames arriving later do not start it."""
    s = Scheduler(buffer=5, stale_after=0.5)
    frame(s, 1, received=time.perf_counter() - 10)          # the stream stopped 10 s ago
    req = init()                                            # zero stamp: waits for a fresh frame
    s.put_init(req)
    s.next_work(0)
    assert s.cancel(req)
    frame(s, 2)
    w = s.next_work(0)
    assert w is not None and w.init is None
    queued = init()
    s.put_init(queued)
    assert s.cancel(queued) and (s.next_work(0) is None or s.next_work(0).init is None)
    applied = init()
    s.put_init(applied)
    frame(s, 3)
    assert s.next_work(0).init is applied and not s.cancel(applied)     # too late: it was applied


def test_a_box_is_not_applied_to_a_frame_far_older_than_its_stamp():
    """Frames left from an earlier playback, none from the box's time: refused with the reason, not applied to a
    frame 13 s older."""
    s = Scheduler(buffer=30, max_frame_age_ns=2 * 10**9)
    frame(s, 100 * 10**9)
    s.next_work(0)
    s.put_init(init(stamp=113 * 10**9))
    w = s.next_work(0)
    assert w is None or w.init is None                       # its frame may still come: it waits
    frame(s, 120 * 10**9)                                    # later frames came, its own did not
    w = s.next_work(0)
    assert w.init is not None and w.init_frame is None and "13.0 s older" in w.init_refusal
    s.put_init(init(stamp=int(120.5 * 10**9)))              # its frame lost in transport: the one before will do
    frame(s, 121 * 10**9)
    w = s.next_work(0)
    assert w.init_frame[0] == 120 * 10**9 and w.init_refusal == ""


def test_a_box_stamped_just_before_the_oldest_frame_is_described_as_such():
    """Its frame did arrive and left the buffer, or was dropped: the log must not claim it never arrived."""
    logs = []
    s = Scheduler(buffer=3, log=logs.append)
    for t in (10, 11, 12, 13):
        frame(s, t * 10**9)
    s.next_work(0)
    s.put_init(init(stamp=int(10.5 * 10**9)))                # frame 10 s left the 3-frame buffer
    w = s.next_work(0)
    assert w.init_frame[0] == 11 * 10**9
    assert logs and "before the oldest buffered frame" in logs[0] and "never arrived" not in logs[0]


class Header:
    def __init__(self, frame_id="camera"):
        self.frame_id = frame_id


def camera_frame(s, stamp, frame_id="camera", size=(4, 4)):
    return s.put_frame(stamp, Header(frame_id), np.zeros((*size, 3), np.uint8), time.perf_counter())


def test_a_new_stream_leaves_no_old_frame_to_match_a_box_drawn_on_it():
    """The start-of-track race: a second video played 41 s later, its first frame lost in transport. The box stamped
    on that lost frame takes the new stream's next frame, never a frame of the old stream."""
    sec, logs = 10**9, []
    s = Scheduler(buffer=30, log=logs.append)
    for i in range(5):
        camera_frame(s, 100 * sec + i * sec // 10)
    s.next_work(0)
    first = 141 * sec                                        # lost: the node never gets it
    camera_frame(s, first + sec // 10)
    assert "jumped forward 40.7 s" in logs[-1] and "5 frames" in logs[-1]
    s.put_init(init(stamp=first))
    w = s.next_work(0)
    assert w.init_frame[0] == first + sec // 10 and not w.new_camera          # the target is not dropped for a jump
    s.put_init(init(stamp=120 * sec))                        # drawn in the gap: the true reason
    w = s.next_work(0)
    assert w.init_frame is None and "before the first frame of a new image stream" in w.init_refusal


def test_stamps_jumping_back_drop_the_old_frames_and_the_resets_time():
    """A bag looped with its recorded stamps: no box of the new pass is matched to the old pass, nor refused as
    older than a reset made during the old pass."""
    sec = 10**9
    s = Scheduler(buffer=30)
    for i in range(3):
        camera_frame(s, 50 * sec + i * sec)
    s.put_reset()
    s.next_work(0)
    assert s.memory.stamp_ns == 52 * sec
    camera_frame(s, 10 * sec)
    assert s.memory.stamp_ns == 0 and s.put_init(init(stamp=10 * sec)) is None
    assert s.next_work(0).init_frame[0] == 10 * sec


@pytest.mark.parametrize("change", ["frame_id", "size"])
def test_another_camera_drops_the_old_frames_and_stops_the_target(change):
    sec = 10**9
    s = Scheduler(buffer=30)
    camera_frame(s, 1 * sec)
    s.put_init(init(stamp=1 * sec))
    assert s.next_work(0).init_frame is not None
    camera_frame(s, 3 * sec, **({"frame_id": "other"} if change == "frame_id" else {"size": (6, 4)}))
    w = s.next_work(0)
    assert w.new_camera.startswith("frame_id 'camera' -> 'other'" if change == "frame_id" else "image size 4x4 -> 4x6")
    assert w.frame[0] == 3 * sec
    s.put_init(init(stamp=1 * sec))                          # drawn on the old camera's frame: it is gone
    w = s.next_work(0)
    assert w.init_frame is None and "2.0 s before the first frame of a new image stream (" in w.init_refusal


def test_a_frame_stamped_in_the_future_is_no_new_stream():
    now, logs = 1_000 * 10**9, []
    s = Scheduler(buffer=10, now_ns=lambda: now, future_tolerance_ns=10**9, log=logs.append)
    for t in (now - 300, now - 200, now + 86_400 * 10**9, now - 100):
        camera_frame(s, t)
    assert not logs and len(s._recent) == 4


def test_a_waiting_box_expires_once_the_camera_was_seen_but_waits_for_ever_at_start_up():
    """Issue 37, item 1: a box waiting for a fresh frame (the camera went out, or sends only refused frames) was
    applied 10 s later to whatever was then at that place."""
    s = Scheduler(buffer=5, stale_after=0.5, init_timeout=0.2)
    waiting, answers = init(), []
    waiting.reply = lambda ok, text: answers.append((ok, text))
    s.put_init(waiting)                                      # before the camera's first frame: no limit
    time.sleep(0.3)
    assert s.next_work(0) is None and "waiting" in s.waiting_init() and "expires" not in s.waiting_init()
    frame(s, 7)
    assert s.next_work(0).init is waiting                    # the first frame takes it
    frame(s, 8, received=time.perf_counter() - 10)           # the camera went out 10 s ago
    s.next_work(0)
    late = init(box=(5, 6, 7, 8))
    late.reply = lambda ok, text: answers.append((ok, text))
    s.put_init(late)
    assert s.next_work(0) is None and "expires after 0.2 s" in s.waiting_init()
    time.sleep(0.3)
    w = s.next_work(0)
    assert w.init is None and "box [5.0, 6.0, 7.0, 8.0] expired after waiting" in w.init_expired
    assert "init_box_timeout 0.2 s" in w.init_expired and "the newest image is 10." in w.init_expired
    assert answers == [(False, w.init_expired)] and s.expired_inits == 1 and s.waiting_init() == "none"
    frame(s, 9)                                              # a fresh frame: nothing left to apply
    assert s.next_work(0).init is None
    frame(s, 10, received=time.perf_counter() - 1)
    s.next_work(0)
    s.put_init(init(box=(1, 1, 3, 3)))                       # frames come, but the node refuses them
    s.next_work(0)
    for _ in range(3):
        s.frame_refused("8x8 is smaller than 32 px on a side", time.perf_counter())
    assert s.frames_refused() == "the last 3 frames were refused: 8x8 is smaller than 32 px on a side"
    time.sleep(0.3)
    w = s.next_work(0)
    assert w.init is None and w.init_expired.endswith("the last 3 frames were refused: 8x8 is smaller than 32 px "
                                                      "on a side; send it again")
