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
