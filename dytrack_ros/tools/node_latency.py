"""The node's added latency over the bare tracker, over a real DDS graph between processes.

    dytrack-bench-node --model models/dytrack_small [--out benchmarks/NODE_LATENCY.md]

Publishes 640x480 frames of held-out sequences at a camera rate to the node (a separate process) and reads the
TrackedTarget it publishes. Per frame: inference_ms (tracker, inside the node), latency_ms (node: image received ->
result published), end-to-end (publish in this process -> result received here), and the bare tracker's time on the
same frames in this process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import cv2
import numpy as np

from ..contract import DEFAULT_MODEL_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(ROOT, "config", "fastdds_large_data.xml"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--rate", type=float, default=15.0)
    p.add_argument("--sequences", type=int, default=3)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--out", default="benchmarks/NODE_LATENCY.md")
    args = p.parse_args(argv)
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from dytrack_ros.msg import TargetBox, TrackedTarget
    from dytrack_ros.evaluation import machine
    from dytrack_ros.data.sequences import generated_suite
    from dytrack_ros.evaluation.runner import run_dytrack
    from dytrack_ros.data.sequences import Sequence
    from dytrack_ros.ros.image_conversion import bgr_to_image
    from dytrack_ros.runtime import build_tracker

    suite = generated_suite(args.sequences, args.length, seed=9100)
    scaled = []
    for s in suite:
        fx, fy = 640 / s.frame(0).shape[1], 480 / s.frame(0).shape[0]
        scaled.append(Sequence(s.name, [cv2.resize(s.frame(i), (640, 480)) for i in range(len(s))],
                               s.boxes * [fx, fy, fx, fy]))
    bare = build_tracker(args.model, args.backend)
    bare_ms = np.concatenate([run_dytrack(bare, s).times_ms for s in scaled])

    ns = f"/bench{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, PYTHONPATH=ROOT)
    node_log = tempfile.NamedTemporaryFile("w+", prefix="dytrack_node_", suffix=".log", delete=False)
    node = subprocess.Popen([sys.executable, "-m", "dytrack_ros.ros.node", "--ros-args", "--params-file",
                             os.path.join(ROOT, "config", "tracker.yaml"), "-r", f"__ns:={ns}", "-p",
                             f"model_path:={args.model}", "-p", f"backend:={args.backend}", "-p",
                             "image_qos:=reliable"], cwd=ROOT, env=env, stdout=node_log,
                            stderr=subprocess.STDOUT)
    rclpy.init()
    n = rclpy.create_node("latency_bench")
    pub = n.create_publisher(Image, f"{ns}/image", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    init = n.create_publisher(TargetBox, f"{ns}/init_box", QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    sent, got = {}, {}
    n.create_subscription(TrackedTarget, f"{ns}/dytrack_tracker/target",
                          lambda m: got.setdefault((m.header.stamp.sec, m.header.stamp.nanosec),
                                                   (time.perf_counter(), m)), 100)
    spin = threading.Thread(target=rclpy.spin, args=(n,), daemon=True)
    spin.start()
    deadline = time.monotonic() + 120   # the node loads the model (a GPU backend may build engines first)
    while pub.get_subscription_count() == 0 or init.get_subscription_count() == 0:
        if node.poll() is not None or time.monotonic() > deadline:
            node.kill()
            node_log.seek(0)
            stop_spinning(spin)
            sys.exit("the node did not come up (exit status %s); its log %s ends:\n%s"
                     % (node.poll(), node_log.name, node_log.read()[-1500:]))
        time.sleep(0.05)
    time.sleep(1.0)
    t = 1
    for s in scaled:
        for i in range(len(s)):
            msg = bgr_to_image(s.frame(i), None, Image)
            msg.header.stamp.sec, msg.header.stamp.nanosec = t, 0
            sent[(t, 0)] = time.perf_counter()
            pub.publish(msg)
            if i == 0:
                box = TargetBox()
                box.header.stamp.sec = t
                box.x, box.y, box.width, box.height = (float(v) for v in s.boxes[0])
                init.publish(box)
            t += 1
            time.sleep(1.0 / args.rate)
    time.sleep(1.0)
    node.send_signal(2)
    node.wait(10)
    node_log.close()
    os.unlink(node_log.name)       # kept only when the node failed to come up (its path is in the error)
    rows = [(got[k][1], (got[k][0] - sent[k]) * 1000) for k in got if k in sent]
    inf = np.array([m.inference_ms for m, _ in rows])
    lat = np.array([m.latency_ms for m, _ in rows])
    e2e = np.array([e for _, e in rows])
    pct = lambda x: f"{np.percentile(x, 50):.2f} / {np.percentile(x, 95):.2f}"
    lines = ["# Node latency over the bare tracker", "", f"- machine: {machine.describe()}", f"- date: {machine.today()}",
             f"- {len(rows)} results for {len(sent)} frames (640x480 bgr8, {args.rate:.0f} Hz, reliable QoS, Fast DDS "
             f"shared memory profile), backend {args.backend}", "- command: `dytrack-bench-node`", "",
             "| measure | p50 / p95 ms |", "|---|---|",
             f"| bare tracker in-process, same frames | {pct(bare_ms)} |",
             f"| tracker inside the node (inference_ms) | {pct(inf)} |",
             f"| node: image received -> result published (latency_ms) | {pct(lat)} |",
             f"| node overhead (latency_ms - inference_ms) | {pct(lat - inf)} |",
             f"| end to end: publish here -> result received here | {pct(e2e)} |",
             f"| added by node + DDS transport (end to end - bare tracker p50) | "
             f"{np.percentile(e2e, 50) - np.percentile(bare_ms, 50):.2f} (p50) |"]
    machine.write_report(args.out, lines)
    stop_spinning(spin)
    n.destroy_node()


def stop_spinning(spin: threading.Thread) -> None:
    """Shuts rclpy down, which ends the spin thread, and joins it: a spin thread still running when the process
    exits makes it abort as it tears down (seen with the torch backend)."""
    import rclpy
    rclpy.try_shutdown()
    spin.join(timeout=5)


if __name__ == "__main__":
    main()
