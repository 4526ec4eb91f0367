"""The node with the composed model (first exit + FEAR-XS, models/dytrack_fear) over a real DDS graph: depth now
means 'first exit' (1) or 'FEAR-XS' (2); messages and parameters are otherwise those of every model."""
import os

import numpy as np

from conftest import ROOT
from dytrack_ros.evaluation.metrics import box_iou
from ros_harness import NodeProcess, RosTestGraph

FEAR_MODEL = os.path.join(ROOT, "models", "dytrack_fear")


def stamp_of(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_the_node_tracks_the_demo_walker_with_fear_xs_as_its_second_exit(tmp_path, demo_walker):
    frames, init, reference = demo_walker
    # exit threshold 1.0: no first-exit score clears it, so every frame goes to FEAR-XS
    params = [f"model_path:={FEAR_MODEL}", "backend:=onnxruntime", "exit_thresholds:=[1.0, 0.0]"]
    with NodeProcess(tmp_path, params=params) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            assert node.wait_for_output("2 stages"), node.output()
            t0 = 3_000 * 1_000_000_000
            g.send_init(init, stamp_ns=t0)
            stamps = g.publish_frames(frames, t0)
            assert g.wait_for(lambda gr: any(stamp_of(m) == stamps[-1] for m in gr.targets), 30), node.output()
            results = {stamp_of(m): m for m in g.targets if m.state != m.STATE_IDLE}
            assert len(results) >= 0.8 * (len(frames) - 1), node.output()
            assert all(m.num_stages == 2 and m.stages_run == 2 for m in results.values())
            ious = [box_iou([m.x, m.y, m.width, m.height], reference[i])[0]
                    for i, ns in enumerate(stamps) if i in reference and ns in results for m in [results[ns]]]
            assert len(ious) >= 3 and np.mean(ious) > 0.5, ious
        finally:
            g.close()
