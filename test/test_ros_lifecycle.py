"""The tracker as a managed (lifecycle) node, driven through its lifecycle services as a lifecycle manager or
`ros2 lifecycle set` does: real node process, real DDS."""
import time

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState

from ros_harness import FRAME_PERIOD_NS, NodeProcess, RosTestGraph



def state_of(g):
    return g.call_service(GetState, f"{g.namespace}/dytrack_tracker/get_state", GetState.Request()).current_state.id


def change(g, transition):
    req = ChangeState.Request()
    req.transition.id = transition
    return g.call_service(ChangeState, f"{g.namespace}/dytrack_tracker/change_state", req, timeout=30).success


def tracking(g):
    """Results for a target (tracking or lost: the tiny test model's scores are not calibrated); called inside
    g.wait_for, which holds g.lock."""
    return [m for m in g.targets if m.state != m.STATE_IDLE]


def test_configure_activate_pause_resume_cleanup(tmp_path, tiny_bundle, heldout_sequence):
    frames, boxes = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime",
                                       "autostart:=false"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert node.wait_for_output("waiting in the unconfigured state"), node.output()
            assert state_of(g) == State.PRIMARY_STATE_UNCONFIGURED
            assert g.image_pub.get_subscription_count() == 0
            assert g.wait_for(lambda gr: any(d["lifecycle_state"] == "unconfigured" for d in gr.diagnostics))
            assert change(g, Transition.TRANSITION_CONFIGURE)
            assert state_of(g) == State.PRIMARY_STATE_INACTIVE and "configured: onnxruntime" in node.output()
            assert g.image_pub.get_subscription_count() == 0          # inactive: takes no input
            assert change(g, Transition.TRANSITION_ACTIVATE)
            assert g.wait_for_subscriber(), node.output()
            g.send_init(list(boxes[0]), stamp_ns=10**12)
            g.publish_frames(frames[:8], 10**12)
            assert g.wait_for(lambda gr: len(tracking(gr)) >= 4), node.output()

            assert change(g, Transition.TRANSITION_DEACTIVATE)
            assert state_of(g) == State.PRIMARY_STATE_INACTIVE
            # a follower learns that tracking stopped (IDLE), and /diagnostics goes on with the lifecycle state
            assert g.wait_for(lambda gr: gr.targets[-1].state == gr.targets[-1].STATE_IDLE), node.output()
            n, d = len(g.targets), len(g.diagnostics)
            g.publish_frames(frames[8:14], 10**12 + 8 * FRAME_PERIOD_NS)   # paused: nothing is tracked or published
            time.sleep(1.0)
            assert len(g.targets) == n and "paused (" in node.output()
            assert g.wait_for(lambda gr: any(x["lifecycle_state"] == "inactive" for x in gr.diagnostics[d:]))
            paused = [x for x in g.diagnostics[d:] if x["lifecycle_state"] == "inactive"][-1]
            assert paused["state"] == "idle" and paused["tracker_state"] in ("tracking", "lost"), paused
            assert paused["box"] != "none" and "inactive" in paused["_message"], paused

            assert change(g, Transition.TRANSITION_ACTIVATE)          # resumes the same target, no new box
            assert g.wait_for_subscriber(), node.output()
            g.publish_frames(frames[14:22], 10**12 + 14 * FRAME_PERIOD_NS)
            assert g.wait_for(lambda gr: len([m for m in gr.targets[n:] if m.state != m.STATE_IDLE]) >= 3), node.output()
            assert node.output().count("initialised on frame") == 1

            assert change(g, Transition.TRANSITION_DEACTIVATE)
            assert change(g, Transition.TRANSITION_CLEANUP)
            assert state_of(g) == State.PRIMARY_STATE_UNCONFIGURED and "model unloaded" in node.output()
            assert node.proc.poll() is None
        finally:
            g.close()


def test_a_failed_configure_reports_the_reason_and_the_node_stays_up(tmp_path):
    with NodeProcess(tmp_path, params=[f"model_path:={tmp_path}/no_such_model", "autostart:=false"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert node.wait_for_output("waiting in the unconfigured state"), node.output()
            assert not change(g, Transition.TRANSITION_CONFIGURE)
            assert "cannot start: model folder not found" in node.output()
            assert state_of(g) == State.PRIMARY_STATE_UNCONFIGURED and node.proc.poll() is None
        finally:
            g.close()


def test_lifecycle_cycles_do_not_pile_up_threads_or_memory(tmp_path, tiny_bundle, heldout_sequence):
    """Issue 37, item 4: 50 deactivate/cleanup/configure/activate cycles took a node from 32 to 164 threads and
    519 MB to 1,240 MB: each cleanup must return the backend's sessions and their thread pools."""
    import psutil
    frames, _ = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime", "autostart:=false",
                                       "threads:=0"]) as node:          # the runtime's own thread pools
        g = RosTestGraph(node.namespace)
        try:
            assert node.wait_for_output("waiting in the unconfigured state"), node.output()
            proc, seen = psutil.Process(node.proc.pid), []
            for i in range(8):
                assert change(g, Transition.TRANSITION_CONFIGURE), node.output()
                assert change(g, Transition.TRANSITION_ACTIVATE), node.output()
                for f in frames[:3]:
                    g.image_pub.publish(g.image_msg(f, 10**12 + i * 10**9))
                    time.sleep(0.05)
                assert change(g, Transition.TRANSITION_DEACTIVATE) and change(g, Transition.TRANSITION_CLEANUP)
                seen.append((proc.num_threads(), proc.memory_info().rss))
            threads, rss = seen[0]
            assert all(t <= threads for t, _ in seen), seen
            assert all(m <= rss * 1.15 for _, m in seen), seen
            assert node.output().count("cleaned up: model unloaded") == 8
        finally:
            g.close()
