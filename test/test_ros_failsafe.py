"""Issue 37: the node fails safe when time, frames or the lifecycle misbehave. Real node process, real DDS."""
import time

import numpy as np
from std_srvs.srv import Trigger

from ros_harness import FRAME_PERIOD_NS, NodeProcess, RosTestGraph


def active(g):
    return [m for m in g.targets if m.state != m.STATE_IDLE]


def test_a_box_waiting_for_a_frame_expires_once_the_camera_was_seen(tmp_path, tiny_bundle, heldout_sequence):
    """A zero-stamped box sent while the camera is out, or sends only frames the node refuses, was applied 10 s later
    to whatever was then at that place. At start-up (before the camera's first frame) a box still waits."""
    frames, boxes = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime",
                                       "init_box_timeout:=1.0"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            g.send_init(boxes[0])                           # latched before the camera's first frame: it waits
            assert node.wait_for_output("init box received before any image"), node.output()
            time.sleep(1.5)
            t0 = 10**12
            g.publish_frames(frames[:6], t0)
            assert g.wait_for(lambda gr: len(active(gr)) >= 3), node.output()
            assert "expired" not in node.output()
            g.call_service(Trigger, f"{g.namespace}/dytrack_tracker/reset", Trigger.Request())
            assert g.wait_for(lambda gr: gr.targets[-1].state == gr.targets[-1].STATE_IDLE), node.output()
            time.sleep(2.5)                                 # the camera is out
            g.send_init([20, 20, 40, 40])
            assert node.wait_for_output("box [20.0, 20.0, 40.0, 40.0] expired after waiting", 10), node.output()
            assert "(init_box_timeout 1 s): the newest image is" in node.output()
            assert g.wait_for(lambda gr: gr.diagnostics and gr.diagnostics[-1]["init_boxes_expired"] == "1", 5)
            d = g.diagnostics[-1]
            assert "expired" in d["last_refused_init_box"] and d["init_box_waiting"] == "none", d
            n = len(g.targets)
            g.publish_frames(frames[6:12], t0 + 6 * FRAME_PERIOD_NS)     # the camera is back: nothing is applied
            assert g.wait_for(lambda gr: int(gr.diagnostics[-1]["frames_received"]) >= 12, 5), node.output()
            time.sleep(0.5)
            assert not [m for m in g.targets[n:] if m.state != m.STATE_IDLE], node.output()
            # the camera sends only frames the node refuses (8x8): the box expires, with the reason
            tiny = g.image_msg(np.zeros((8, 8, 3), np.uint8), t0 + 20 * FRAME_PERIOD_NS)
            start = time.monotonic()
            while "box [30.0, 30.0, 40.0, 40.0] expired" not in node.output() and time.monotonic() < start + 12:
                g.image_pub.publish(tiny)
                time.sleep(0.1)
                if start + 2.5 < time.monotonic() < start + 2.6:        # the last good frame is stale by now
                    g.send_init([30, 30, 40, 40])
            assert "were refused: 8x8 is smaller than 32 px on a side" in node.output().split(
                "box [30.0, 30.0, 40.0, 40.0] expired", 1)[1].split("\n", 1)[0], node.output()
            assert node.proc.poll() is None
        finally:
            g.close()


def test_lost_seconds_keeps_counting_when_the_camera_stamps_jump_back(tmp_path, tiny_bundle, heldout_sequence):
    """After stamps jumped back an hour lost_seconds read 0.0 on 44 of 44 LOST results: a 'stop after N s lost' rule
    never fired. The jump is logged and /diagnostics shows it."""
    frames, boxes = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime", "lost_threshold:=1.0",
                                       "redetect:=false"]) as node:     # every result after the first is LOST
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            t0 = 7200 * 10**9
            g.send_init(boxes[0], stamp_ns=t0)
            g.publish_frames(frames[:10], t0)
            assert g.wait_for(lambda gr: len(active(gr)) >= 5), node.output()
            n = len(g.targets)
            before = max(m.lost_seconds for m in g.targets)
            g.publish_frames(frames[10:25], t0 - 3600 * 10**9)                 # the camera clock steps back an hour
            assert g.wait_for(lambda gr: len(gr.targets) >= n + 8), node.output()
            after = [m for m in g.targets[n:] if m.state == m.STATE_LOST]
            assert len(after) >= 8 and all(m.lost_seconds > before for m in after), \
                (before, [m.lost_seconds for m in after])
            lost = [m.lost_seconds for m in after]
            assert lost == sorted(lost) and lost[-1] > before + 0.5, (before, lost)
            assert node.wait_for_output("image stamps jumped back 3600", 5), node.output()
            assert g.wait_for(lambda gr: gr.diagnostics and int(gr.diagnostics[-1]["stamp_jumps"]) >= 1, 5)
            d = g.diagnostics[-1]
            assert "jumped back 3600" in d["last_stamp_jump"] and d["image_stream_changes"] == "1", d
            assert "stamps jumped back 3600" in d["last_image_stream_change"] and float(d["lost_seconds"]) > before, d
        finally:
            g.close()


def set_target(g, box, stamp_ns=0):
    from dytrack_ros.srv import SetTarget
    from dytrack_ros.tools.qa import box_message
    req = SetTarget.Request()
    req.box = box_message(box, stamp_ns)
    start = time.monotonic()
    r = g.call_service(SetTarget, f"{g.namespace}/dytrack_tracker/set_target", req, timeout=15)
    return r.success, r.message, time.monotonic() - start


def publish_until(g, node, msg, text, timeout=10):
    end = time.monotonic() + timeout
    while not node.wait_for_output(text, 0.1):
        g.image_pub.publish(msg)
        assert time.monotonic() < end, node.output()


def publish_until_taken(g, msg, count=1, timeout=10):
    """Best-effort images: the first may be lost while the graph settles; sent until the node counts it."""
    end = time.monotonic() + timeout
    while not g.wait_for(lambda gr: gr.diagnostics and int(gr.diagnostics[-1]["frames_received"]) >= count, 0.5):
        g.image_pub.publish(msg)
        assert time.monotonic() < end


def test_set_target_says_at_once_which_frames_were_refused_and_why(tmp_path, tiny_bundle, heldout_sequence):
    """With the defaults ~/set_target answered 'no image received yet' although frames arrived and were refused; with
    min_image_side under the tracker's own limit a box on a 1x1 frame was 'taken but not answered' after 7 s."""
    frames, boxes = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            publish_until(g, node, g.image_msg(np.zeros((8, 8, 3), np.uint8), 10**12), "8x8 is smaller than 32 px")
            ok, text, took = set_target(g, [1, 1, 4, 4])
            assert not ok and took < 3.0 and text.startswith("no image taken yet on ") and \
                "refused: 8x8 is smaller than 32 px on a side (parameter min_image_side)" in text, (text, took)
            # a good frame long ago, refused frames since: a box without a stamp is refused at once, with the reason
            publish_until_taken(g, g.image_msg(frames[0], 10**12 + FRAME_PERIOD_NS))
            time.sleep(2.2)                                 # stale_after: 2 s
            publish_until(g, node, g.image_msg(np.zeros((8, 1000, 3), np.uint8), 10**12), "1000x8 is smaller")
            ok, text, took = set_target(g, list(boxes[0]))
            assert not ok and took < 3.0 and "no frame it can be applied to" in text and "1000x8 is smaller" in text, \
                (text, took)
        finally:
            g.close()
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime", "min_image_side:=1"],
                     namespace="/one_pixel") as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            one = g.image_msg(np.zeros((1, 1, 3), np.uint8), 10**12)
            publish_until_taken(g, one)
            ok, text, took = set_target(g, [0, 0, 1, 1])
            assert not ok and took < 3.0 and "the frame it was to be applied to was refused: frame too small: 1x1" \
                in text, (text, took)
            assert node.proc.poll() is None
        finally:
            g.close()


def test_edited_tracker_settings_are_logged_and_a_deep_manifest_says_why(tmp_path, tiny_bundle):
    """A manifest's absent_threshold edited to 0.95 applied without a log line; a manifest nested 100,000 levels deep
    exited with only 'configure failed'."""
    import shutil
    import subprocess
    from conftest import ROOT, ros_env
    from dytrack_ros.contract import Manifest
    from ros_harness import node_command
    edited = tmp_path / "edited"
    shutil.copytree(tiny_bundle, edited)
    Manifest.read(str(edited)).update(tracker={"absent_threshold": 0.95})
    with NodeProcess(tmp_path, params=[f"model_path:={edited}", "backend:=onnxruntime", "redetect_patience:=3"]) \
            as node:
        assert node.wait_for_output("tracking with onnxruntime"), node.output()
        line = next(ln for ln in node.output().splitlines() if "tracker settings that differ from the defaults" in ln)
        assert "absent_threshold=0.95 (default 0.0, from the manifest)" in line, line
        assert "redetect_patience=3 (default 10, from the parameter)" in line, line
    deep = tmp_path / "deep"
    shutil.copytree(tiny_bundle, deep)
    (deep / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    r = subprocess.run(node_command("/deep", [f"model_path:={deep}", "backend:=onnxruntime"]), cwd=ROOT,
                       env=ros_env(), capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "nested too deeply" in out and "manifest.json" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_a_huge_frame_id_is_refused_with_a_log_line_not_echoed(tmp_path, tiny_bundle, heldout_sequence):
    """A 100 KB frame_id was copied into every result (latency 13 -> 21 ms)."""
    frames, boxes = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            t0 = 10**12
            huge = g.image_msg(frames[0], t0)
            huge.header.frame_id = "x" * 100_000
            publish_until(g, node, huge, "frame_id of 100000 characters")
            ok, text, _ = set_target(g, list(boxes[0]))
            assert not ok and "frame_id of 100000 characters" in text and "256 character limit" in text, text
            g.send_init(boxes[0], stamp_ns=t0)
            g.publish_frames(frames[:8], t0)                 # ordinary frames are taken and tracked
            assert g.wait_for(lambda gr: len(active(gr)) >= 3), node.output()
            assert all(len(m.header.frame_id) <= 256 for m in g.targets)
            assert g.wait_for(lambda gr: gr.diagnostics and int(gr.diagnostics[-1]["bad_messages"]) >= 1, 5)
        finally:
            g.close()
