"""Giving the node a target, as users do: a latched box from before the node started, a box from an ordinary
(default-QoS) publisher, and the ~/set_target service with its answers. Real node process, real DDS."""
import time

import pytest

from ros_harness import FRAME_PERIOD_NS, NodeProcess, RosTestGraph



def tracking_results(g):
    """(called inside g.wait_for, which holds g.lock)"""
    return [m for m in g.targets if m.state == m.STATE_TRACKING]


def test_latched_box_before_start_and_default_qos_box_after_both_start_tracking_once(tmp_path, tiny_bundle,
                                                                                     heldout_sequence):
    from dytrack_ros.msg import TargetBox
    from dytrack_ros.tools.qa import box_message

    frames, boxes = heldout_sequence
    namespace = "/targets_latched"
    g = RosTestGraph(namespace)          # its init publisher is reliable + transient-local
    try:
        g.send_init(list(boxes[0]))  # latched: published before the node exists
        with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime"],
                         namespace=namespace) as node:
            assert g.wait_for_subscriber(), node.output()
            g.publish_frames(frames[:3], 10**12)
            assert node.wait_for_output("initialised on frame", 15), node.output()
            # a frame after the one the box was applied to (the node keeps only the newest frame: on a slow start the
            # box lands on the last frame sent, and a result needs one more)
            g.publish_frames(frames[3:4], 10**12 + 3 * FRAME_PERIOD_NS)
            assert g.wait_for(lambda gr: len(tracking_results(gr)) > 0, 10), node.output()
            # an ordinary publisher, as `ros2 topic pub` or create_publisher(..., 10) makes
            plain = g.node.create_publisher(TargetBox, f"{namespace}/init_box", 10)
            end = time.monotonic() + 10
            while plain.get_subscription_count() == 0 and time.monotonic() < end:
                time.sleep(0.05)
            assert plain.get_subscription_count() > 0
            plain.publish(box_message(list(boxes[4]), 10**12 + 4 * FRAME_PERIOD_NS))
            g.publish_frames(frames[4:8], 10**12 + 4 * FRAME_PERIOD_NS)
            end = time.monotonic() + 15
            while node.output().count("initialised on frame") < 2 and time.monotonic() < end:
                time.sleep(0.1)
            out = node.output()
            assert out.count("initialised on frame") == 2, out       # the latched box was applied once, not twice
            assert "incompatible" not in out.lower(), out     # the node does not cry wolf about its own design
    finally:
        g.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_bundle):
    tmp = tmp_path_factory.mktemp("set_target")
    namespace = "/targets_service"
    with NodeProcess(tmp, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime"], namespace=namespace) as node:
        g = RosTestGraph(namespace)
        assert g.wait_for_subscriber(), node.output()
        g.tracker = node
        yield g
        g.close()


def set_target(g, box, stamp_ns=0):
    from dytrack_ros.tools.qa import box_message
    from dytrack_ros.srv import SetTarget
    req = SetTarget.Request()
    req.box = box_message(box, stamp_ns)
    return g.call_service(SetTarget, f"{g.namespace}/dytrack_tracker/set_target", req)


def test_set_target_answers_with_the_exact_reason(served, heldout_sequence):
    frames, boxes = heldout_sequence
    r = set_target(served, list(boxes[0]))
    assert not r.success and "no image received yet" in r.message
    h, w = frames[0].shape[:2]
    served.publish_frames(frames[:1], 2 * 10**12)
    time.sleep(0.5)
    cases = [([float("nan"), 10, 20, 20], "finite"),
             ([10, 10, 0, 20], "positive"),
             ([w + 50, h + 50, 20, 20], "outside"),
             ([5, 5, w * 2, 10], "larger than")]
    for box, reason in cases:
        r = set_target(served, box)
        assert not r.success and reason in r.message, (box, r.message)
    future = time.time_ns() + 60 * 10**9
    r = set_target(served, list(boxes[0]), stamp_ns=future)
    assert not r.success and "in the future" in r.message, r.message
    r = set_target(served, list(boxes[0]), stamp_ns=2 * 10**12 - 10 * 10**9)    # drawn on a frame long gone
    assert not r.success and "gone" in r.message, r.message
    r = set_target(served, list(boxes[0]))
    assert r.success and "initialised on frame 2000.000000000" in r.message, r.message
    served.publish_frames(frames[1:4], 2 * 10**12 + FRAME_PERIOD_NS)
    assert served.wait_for(lambda gr: len(tracking_results(gr)) > 0, 10), served.tracker.output()


def test_a_usb_camera_yuyv_stream_is_tracked(tmp_path, tiny_bundle, heldout_sequence):
    """Most USB cameras (usb_cam, v4l2_camera) publish YUV 4:2:2 as it comes off the sensor."""
    import cv2
    from sensor_msgs.msg import Image
    frames, boxes = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            g.send_init(list(boxes[0]), stamp_ns=3 * 10**12)
            answered = lambda gr: sum(m.state != m.STATE_IDLE for m in gr.targets) >= 4
            for i, frame in enumerate(frames[:24]):     # best effort: the first frames may be lost while DDS matches
                packed = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_YUY2)          # (h, w, 2)
                msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="yuyv", step=frame.shape[1] * 2)
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(3 * 10**12 + i * FRAME_PERIOD_NS, 10**9)
                msg.data = packed.tobytes()
                g.image_pub.publish(msg)
                time.sleep(1 / 15)
                if i >= 7 and g.wait_for(answered, 0.01):
                    break
            assert g.wait_for(answered, 15), node.output()
            assert "dropped" not in node.output(), node.output()
        finally:
            g.close()


def test_a_reset_stops_tracking_even_when_its_record_cannot_be_written(tmp_path, tiny_bundle, heldout_sequence):
    """state_dir under a regular file: ~/reset still stops tracking (no target result for a frame sent after the
    reset's answer), and /diagnostics says the reset could not be recorded."""
    from std_srvs.srv import Trigger
    frames, boxes = heldout_sequence
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    namespace = "/targets_reset_unwritable"
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime",
                                       f"state_dir:={blocker}/state"], namespace=namespace) as node:
        g = RosTestGraph(namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            g.publish_frames(frames[:2], 10**12)
            g.send_init(list(boxes[1]), 10**12 + FRAME_PERIOD_NS)
            # a target result (tracking or lost: the tiny test model's scores are not calibrated). Frames go on until
            # one comes: best-effort frames sent before the node buffered them, or before the init took one of them
            # (it may take the newest buffered frame), are never tracked
            stamp, sent = 10**12 + 2 * FRAME_PERIOD_NS, 0
            tracked = lambda gr: any(m.state != m.STATE_IDLE for m in gr.targets)
            while not g.wait_for(tracked, 0.2) and sent < 100:
                g.publish_frames([frames[2 + sent % 4]], stamp)
                stamp, sent = stamp + FRAME_PERIOD_NS, sent + 1
            assert g.wait_for(tracked, 5), node.output()
            answer = g.call_service(Trigger, f"{namespace}/dytrack_tracker/reset", Trigger.Request())
            assert answer.success
            t_after = stamp + 10 * FRAME_PERIOD_NS
            g.publish_frames(frames[6:12], t_after)
            assert g.wait_for(lambda gr: any(m.state == m.STATE_IDLE and m.header.stamp.sec >= 0
                                             for m in gr.targets[-8:]), 10), node.output()
            assert node.wait_for_output("could not be recorded", 10), node.output()
            assert g.wait_for(lambda gr: any(d.get("reset_record", "ok") != "ok" for d in gr.diagnostics), 10)
            with g.lock:
                late = [m for m in g.targets if m.state != m.STATE_IDLE
                        and m.header.stamp.sec * 10**9 + m.header.stamp.nanosec >= t_after]
            assert not late, node.output()
        finally:
            g.close()


def test_a_set_target_call_waiting_for_its_frame_does_not_stop_the_images(tmp_path, tiny_bundle, heldout_sequence):
    """A box stamped 2 s after every frame the node has waits for a frame of its time (max_init_frame_age); while the
    call waits, images are taken and tracked (a single-threaded executor would hold them back, the box's frame would
    never come in, and the call would give up after 5 s)."""
    from dytrack_ros.tools.qa import box_message
    from dytrack_ros.srv import SetTarget
    frames, boxes = heldout_sequence
    t0, step = 4 * 10**12, 250_000_000                    # frames 0.25 s apart
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            end = time.monotonic() + 10                      # the answer says when the frame has arrived
            while time.monotonic() < end:
                g.publish_frames(frames[:1], t0)             # best effort: sent again until it is there
                if set_target(g, list(boxes[0])).success:
                    break
            else:
                pytest.fail("the first box was never applied: " + node.output())
            client = g.node.create_client(SetTarget, f"{g.namespace}/dytrack_tracker/set_target")
            assert client.wait_for_service(timeout_sec=10)
            box_stamp = t0 + 9 * step + 2 * 10**9              # fresh enough once frame 9 is in
            future = client.call_async(SetTarget.Request(box=box_message(list(boxes[9]), box_stamp)))
            stamp = lambda i: divmod(t0 + i * step, 10**9)
            for i in range(1, 9):
                g.publish_frames([frames[i]], t0 + i * step, period_s=0.05)
            during = {stamp(i) for i in range(1, 9)}        # best effort: some may not arrive; the newest is kept
            assert g.wait_for(lambda gr: any((m.header.stamp.sec, m.header.stamp.nanosec) in during
                                             for m in gr.targets), 10), "frames were not tracked while the call waited"
            assert not future.done(), future.result().message
            g.publish_frames([frames[9]], t0 + 9 * step)
            end = time.monotonic() + 10
            while not future.done() and time.monotonic() < end:
                time.sleep(0.02)
            r = future.result()
            sec, nsec = stamp(9)
            assert r.success and f"initialised on frame {sec}.{nsec:09d}" in r.message, r.message
        finally:
            g.close()
