"""Over a real DDS graph: the target leaves, the node reports LOST (and for how long) while it searches the whole
frame, and reports TRACKING again when the target comes back elsewhere; /diagnostics counts the re-acquisition."""
import numpy as np

from conftest import SHIPPED_MODEL
from dytrack_ros.data.sequences import returning_sequence
from ros_harness import NodeProcess, RosTestGraph


def test_node_goes_tracking_lost_tracking_when_the_target_leaves_and_returns(tmp_path, heldout_photos):
    frames, boxes = returning_sequence(heldout_photos, away=30, back=40)
    with NodeProcess(tmp_path, params=[f"model_path:={SHIPPED_MODEL}", "backend:=onnxruntime",
                                       "redetect_patience:=5"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            t0 = 2_000 * 1_000_000_000
            g.send_init(boxes[0], stamp_ns=t0)
            g.publish_frames(frames[:3], t0)
            assert g.wait_for(lambda gr: any(m.state == m.STATE_TRACKING for m in gr.targets), 20), node.output()
            g.publish_frames(frames[3:], t0 + 3 * 66_666_666)
            found = lambda gr: any(m.redetected for m in gr.targets)
            assert g.wait_for(found, 30), [(m.state, m.lost_frames) for m in g.targets]
            results = [m for m in g.targets if m.state != m.STATE_IDLE]
            states = [m.state for m in results]
            first_lost = states.index(results[0].STATE_LOST)
            back = next(i for i, m in enumerate(results) if m.redetected)
            assert first_lost < back and results[back].state == results[back].STATE_TRACKING
            lost = results[first_lost:back]
            assert all(m.state == m.STATE_LOST for m in lost)           # no flip back onto the background
            assert [m.lost_frames for m in lost] == sorted(m.lost_frames for m in lost) and lost[-1].lost_frames >= 5
            assert lost[-1].lost_seconds > 1.0 and results[back].lost_frames == 0
            m = results[back]
            assert np.hypot(m.x - 380, m.y - 260) < 15, (m.x, m.y)
            assert g.wait_for(lambda gr: any(int(d.get("reacquisitions", 0)) >= 1 for d in gr.diagnostics), 10)
            d = [d for d in g.diagnostics if int(d.get("reacquisitions", 0)) >= 1][-1]
            assert int(d["redetect_windows_run"]) > 0 and d["redetect"] == "true"
            assert node.wait_for_output("target found again after")
        finally:
            g.close()
