"""Helpers for tests over a real rclpy/DDS graph: the tracker node as a subprocess, a test node in-process."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid


from conftest import ROOT, ros_env


def node_command(namespace, params=(), params_file=os.path.join(ROOT, "config", "tracker.yaml")):
    cmd = [sys.executable, "-m", "dytrack_ros.ros.node", "--ros-args", "--params-file", params_file,
           "-r", f"__ns:={namespace}", "-p", "threads:=1"]
    for p in params:
        cmd += ["-p", p]
    return cmd


FRAME_PERIOD_NS = 66_666_667  # 15 Hz camera


def stop_process(proc, timeout=10):
    """SIGINT (the clean shutdown path), then kill if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class NodeProcess:
    """The tracker node in its own process; its output goes to a log file the test can read."""

    def __init__(self, tmp_path, params=(), namespace=None, params_file=None):
        self.namespace = namespace or f"/t{uuid.uuid4().hex[:8]}"
        self.log_path = os.path.join(str(tmp_path), f"node{self.namespace.replace('/', '_')}.log")
        self.cmd = node_command(self.namespace, params, params_file) if params_file else \
            node_command(self.namespace, params)
        self.proc = None

    def __enter__(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=ros_env(), stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def output(self) -> str:
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_for_output(self, text, timeout=30.0):
        """True once the output holds text (a string, or a compiled re pattern to search for)."""
        def found(out):
            return text.search(out) is not None if isinstance(text, re.Pattern) else text in out
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if found(self.output()):
                return True
            if self.proc.poll() is not None:
                return found(self.output())
            time.sleep(0.1)
        return False

    def __exit__(self, *exc):
        stop_process(self.proc)
        self.log.close()


class RosTestGraph:
    """An in-process rclpy node spinning in a thread, recording what the tracker node publishes."""

    def __init__(self, namespace, image_qos_reliable=True, compressed=False):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image
        from dytrack_ros.msg import TargetBox, TrackedTarget

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"test_{uuid.uuid4().hex[:6]}", context=self.context)
        img_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if image_qos_reliable
                             else ReliabilityPolicy.BEST_EFFORT)
        topic = f"{namespace}/image" + ("/compressed" if compressed else "")
        self.image_pub = self.node.create_publisher(CompressedImage if compressed else Image, topic, img_qos)
        self.init_pub = self.node.create_publisher(
            TargetBox, f"{namespace}/init_box",
            QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.targets, self.diagnostics = [], []
        self.lock = threading.Lock()
        self.node.create_subscription(TrackedTarget, f"{namespace}/dytrack_tracker/target", self._on_target, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.namespace = namespace
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.running = True
        self.thread.start()

    def _spin(self):
        while self.running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_target(self, msg):
        with self.lock:
            self.targets.append(msg)

    def _on_diag(self, msg):
        with self.lock:
            for s in msg.status:
                if s.name.startswith(f"{self.namespace}/dytrack_tracker"):
                    self.diagnostics.append({kv.key: kv.value for kv in s.values} | {"_message": s.message,
                                                                                     "_level": ord(s.level) if isinstance(s.level, bytes) else s.level})

    def wait_for_subscriber(self, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.image_pub.get_subscription_count() > 0 and self.init_pub.get_subscription_count() > 0:
                return True
            time.sleep(0.05)
        return False

    def image_msg(self, frame, stamp_ns, encoding="bgr8"):
        from dytrack_ros.tools.qa import image_message
        return image_message(frame, stamp_ns, encoding)

    def publish_frames(self, frames, t0_ns, period_s=1 / 15):
        """Publish frames stamped t0, t0 + 1/15 s, ... at a camera's pace; returns their stamps."""
        stamps = []
        for i, frame in enumerate(frames):
            stamps.append(t0_ns + i * FRAME_PERIOD_NS)
            self.image_pub.publish(self.image_msg(frame, stamps[-1]))
            time.sleep(period_s)
        return stamps

    def send_init(self, box, stamp_ns=0):
        from dytrack_ros.tools.qa import box_message
        self.init_pub.publish(box_message(box, stamp_ns))

    def wait_for(self, predicate, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        return False

    def call_service(self, srv_type, name, request, timeout=10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.02)
        assert future.done(), f"service {name} did not answer"
        return future.result()

    def close(self):
        self.running = False
        self.thread.join(2)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
