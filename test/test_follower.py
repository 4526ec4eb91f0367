"""The follower node over a real DDS graph (its own process; results, init boxes and a lifecycle 'tracker' from
this process; its Twist read back), its launch file, and the closed-loop simulation (dytrack-follow-sim)."""
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from conftest import ROOT, ros_env
from ros_harness import stop_process

FOLLOWER_YAML = os.path.join(ROOT, "config", "follower.yaml")


class FollowerGraph:
    """The follower in its own process and, here, a result publisher, an init publisher, a lifecycle node named
    like the tracker (its transitions are real rclpy transition events) and subscribers to what the follower sends."""

    def __init__(self, tmp_path, params=()):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist, TwistStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.lifecycle import LifecycleNode
        from dytrack_ros.msg import TargetBox, TrackedTarget

        self.ns = f"/f{uuid.uuid4().hex[:8]}"
        cmd = [sys.executable, "-m", "dytrack_ros.ros.follower", "--ros-args", "--params-file", FOLLOWER_YAML,
               "-r", f"__ns:={self.ns}"]
        for p in params:
            cmd += ["-p", p]
        self.log_path = os.path.join(str(tmp_path), "follower.log")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=ros_env(), stdout=open(self.log_path, "w"),
                                     stderr=subprocess.STDOUT)
        self.rclpy, self.context = rclpy, rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"t_{uuid.uuid4().hex[:6]}", context=self.context)
        self.tracker = LifecycleNode("dytrack_tracker", namespace=self.ns, context=self.context)
        self.target_pub = self.node.create_publisher(TrackedTarget, f"{self.ns}/dytrack_tracker/target", 10)
        self.init_pub = self.node.create_publisher(TargetBox, f"{self.ns}/init_box", 10)
        # re-entrant: wait() holds it while its predicate runs, and a predicate may call reasons()
        self.lock, self.stamped, self.twists, self.diags = threading.RLock(), {}, [], []
        self.node.create_subscription(TwistStamped, f"{self.ns}/cmd_vel_stamped", self._on_stamped, 50)
        self.node.create_subscription(Twist, f"{self.ns}/cmd_vel", lambda m: self._add(self.twists, m), 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.TrackedTarget, self.TargetBox = TrackedTarget, TargetBox
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.tracker)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        self.stamp_ns = time.time_ns()

    def _spin(self):
        while self.running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def _add(self, table, msg):
        with self.lock:
            table.append(msg)

    def _on_stamped(self, msg):
        with self.lock:
            self.stamped[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = msg.twist

    def _on_diag(self, msg):
        with self.lock:
            self.diags += [s for s in msg.status if s.name.startswith(f"{self.ns}/dytrack_follower")]

    def wait(self, predicate, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if predicate():
                    return True
            time.sleep(0.01)
        return False

    def ready(self):
        assert self.wait(lambda: self.target_pub.get_subscription_count() > 0
                         and self.node.count_publishers(f"{self.ns}/cmd_vel") > 0, 60), self.log()
        # discovery matches each endpoint pair on its own: the follower may hear us before our command subscription
        # hears it (a first answer lost, 1 in ~10 full-suite runs on 2 busy cores). A first result is re-sent until
        # its command comes back; every test then starts by following this same box.
        for _ in range(60):
            self.stamp_ns = max(self.stamp_ns + 1000, time.time_ns())
            m = self.TrackedTarget(state=1, x=500.0, y=200.0, width=30.0, height=60.0, score=0.8)
            m.header.stamp.sec, m.header.stamp.nanosec = divmod(self.stamp_ns, 1_000_000_000)
            self.target_pub.publish(m)
            if self.wait(lambda: self.stamp_ns in self.stamped, 0.5):
                time.sleep(0.04)
                return
        raise AssertionError(f"the follower never answered a result\n{self.log()}")

    def send(self, state, box=(500, 200, 30, 60), age_s=0.0, redetected=False):
        """One result stamped now - age_s (stamps strictly increasing); the Twist answering exactly it."""
        self.stamp_ns = max(self.stamp_ns + 1000, time.time_ns())
        stamp = self.stamp_ns - int(age_s * 1e9)
        m = self.TrackedTarget(state=state, x=float(box[0]), y=float(box[1]), width=float(box[2]),
                               height=float(box[3]), score=0.8, redetected=redetected)
        m.header.stamp.sec, m.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        self.target_pub.publish(m)
        assert self.wait(lambda: stamp in self.stamped, 5.0), f"no command answered the result\n{self.log()}"
        with self.lock:
            twist = self.stamped[stamp]
        time.sleep(0.04)           # a camera's pace: the next result comes a frame later
        return twist

    def follow(self, n=3, box=(500, 200, 30, 60)):
        twists = [self.send(1, box) for _ in range(n)]
        assert twists[-1].angular.z != 0.0, self.log()
        return twists[-1]

    def log(self):
        return open(self.log_path).read()

    def reasons(self):
        with self.lock:
            return [s.message for s in self.diags]

    def close(self):
        self.running = False
        self.thread.join(2.0)
        self.executor.shutdown()
        self.tracker.destroy_node()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        stop_process(self.proc)


def is_zero(t):
    return not any((t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))


@pytest.fixture
def graph(tmp_path):
    g = FollowerGraph(tmp_path, params=["image_width:=640", "image_height:=480", "silence_timeout:=0.6",
                                        "max_result_age:=0.4"])
    g.ready()
    yield g
    g.close()


def test_each_safety_rule_gives_zero_on_that_very_result_over_dds(graph):
    g = graph
    # following: a target right of centre turns right (negative yaw, REP 103)
    assert g.follow().angular.z < 0
    # LOST: the Twist answering the LOST result is zero; following resumes on TRACKING
    assert is_zero(g.send(2))
    g.follow()
    # IDLE (a reset)
    assert is_zero(g.send(0))
    g.follow()
    # stale by stamp: a result whose image is older than max_result_age
    assert is_zero(g.send(1, age_s=1.0))
    g.follow()
    # target changed without a new init: a box that jumps; it stays stopped on the following results
    assert is_zero(g.send(1, box=(60, 300, 30, 60)))
    assert all(is_zero(g.send(1, box=(62, 300, 30, 60))) for _ in range(3))
    # a new init box re-arms it on the new target
    g.init_pub.publish(g.TargetBox(x=60.0, y=300.0, width=30.0, height=60.0))
    time.sleep(0.3)
    assert g.follow(box=(62, 300, 30, 60)).angular.z > 0
    reasons = g.reasons()
    for expected in ("stopped: target LOST", "stopped: tracker IDLE", "stopped: result stale: image stamp",
                     "stopped: target changed without a new init (box jumped"):
        assert any(r.startswith(expected) for r in reasons), (expected, reasons)


def test_silence_and_arrival_age_stop_it(graph):
    g = graph
    g.follow()
    with g.lock:
        g.twists.clear()
    t0 = time.monotonic()
    assert g.wait(lambda: g.twists and is_zero(g.twists[-1]), 3.0), g.log()   # no more results: the watchdog
    assert time.monotonic() - t0 < 1.5
    assert g.wait(lambda: any(r.startswith("stopped: result stale: arrived") or r.startswith("stopped: silence")
                              for r in g.reasons()), 3.0), g.reasons()


def test_an_inactive_tracker_stops_it_at_once(graph):
    """The 'tracker' here is a real rclpy lifecycle node named dytrack_tracker: its deactivate transition event."""
    from rclpy.lifecycle import TransitionCallbackReturn
    g = graph
    assert g.tracker.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert g.tracker.trigger_activate() == TransitionCallbackReturn.SUCCESS
    g.follow()
    with g.lock:
        g.twists.clear()
    g.tracker.trigger_deactivate()
    assert g.wait(lambda: g.twists and is_zero(g.twists[-1]), 2.0), g.log()
    assert is_zero(g.send(1))                  # a late result of the inactive tracker is not acted on
    assert g.wait(lambda: any(r.startswith("stopped: tracker inactive") for r in g.reasons()), 3.0), g.reasons()
    g.tracker.trigger_activate()
    time.sleep(0.2)
    g.follow()


def test_refused_redetection_waits_for_resume(tmp_path):
    from std_srvs.srv import Trigger
    g = FollowerGraph(tmp_path, params=["follow_redetections:=false"])
    try:
        g.ready()
        g.follow()
        assert is_zero(g.send(2))
        assert is_zero(g.send(1, box=(100, 100, 30, 60), redetected=True))
        assert is_zero(g.send(1, box=(102, 100, 30, 60)))
        client = g.node.create_client(Trigger, f"{g.ns}/dytrack_follower/resume")
        assert client.wait_for_service(10.0)
        future = client.call_async(Trigger.Request())
        assert g.wait(lambda: future.done(), 5.0)
        assert future.result().message.startswith("resumed (was: re-detected")
        assert g.follow(box=(102, 100, 30, 60)).angular.z > 0
    finally:
        g.close()


def test_bad_parameter_refused_with_its_range(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.follower", "--ros-args", "--params-file",
                          FOLLOWER_YAML, "-p", "max_result_age:=-1.0"], cwd=ROOT, env=ros_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    assert "max_result_age" in out.stdout + out.stderr


def test_follow_launch_starts_tracker_follower_and_picker_in_one_namespace(tmp_path):
    if importlib.util.find_spec("launch_ros") is not None:
        pytest.skip("launch_ros is installed: use `ros2 launch` there")
    from launch_shim import load_launch_description, node_commands
    from test_launch import console_scripts
    desc = load_launch_description(os.path.join(ROOT, "launch", "follow.launch.py"))
    cmds, _ = node_commands(desc, {"namespace": "/robot", "image": "/robot/camera", "picker": "true",
                                   "cmd_vel": "/robot/base/cmd_vel"}, console_scripts=console_scripts())
    modules = [c[2] for c in cmds]
    assert modules == ["dytrack_ros.ros.node", "dytrack_ros.ros.follower", "dytrack_ros.ros.target_picker"]
    assert all("__ns:=/robot" in c for c in cmds)
    follower = cmds[1]
    assert os.path.isfile(follower[follower.index("--params-file") + 1])
    assert "cmd_vel:=/robot/base/cmd_vel" in follower
    assert "image_topic:=/robot/camera" in cmds[2]
    log = tmp_path / "follower.log"
    proc = subprocess.Popen(follower, cwd=ROOT, env=ros_env(), stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if "following" in log.read_text() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert "following /robot/dytrack_tracker/target -> /robot/base/cmd_vel" in log.read_text(), log.read_text()
    finally:
        stop_process(proc)


# ---- the closed-loop simulation --------------------------------------------------------------------------------
SUMMARY = re.compile(r"^in view ([\d.]+)%, centred ([\d.]+)%, stop after LOST (<= (\d+) frames|n/a \(never LOST\)), "
                     r"steered at a wrong target ([\d.]+)%$")


def write_otb(folder, frames, boxes):
    import cv2
    os.makedirs(os.path.join(folder, "img"))
    for i, f in enumerate(frames):
        cv2.imwrite(os.path.join(folder, "img", f"{i + 1:04d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, 95])
    np.savetxt(os.path.join(folder, "groundtruth_rect.txt"), boxes, fmt="%.1f", delimiter=",")
    return folder


def run_sim(args, timeout=400):
    out = subprocess.run([sys.executable, "-m", "dytrack_ros.tools.follow_sim", *args], cwd=ROOT, env=ros_env(),
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    m = SUMMARY.match(last)
    assert m, out.stdout
    return out.stdout, float(m.group(1)), float(m.group(2)), m.group(4), float(m.group(5))


@pytest.fixture(scope="module")
def generated_sequence(tmp_path_factory):
    """CI has no annotated real video: a sequence rendered from the held-out real photos (opencv-doc), a photo
    target moving over a photo background, with its exact ground truth; 70 frames, 640x480."""
    from dytrack_ros.data.photos import load_photos
    from dytrack_ros.data.synthetic import SequenceSpec, make_sequence
    frames, boxes = make_sequence(load_photos("heldout"), seed=4242, spec=SequenceSpec(
        width=640, height=480, length=70, min_target=50, max_target=80, distractors=0, occlusion=False, blur=False))
    return write_otb(str(tmp_path_factory.mktemp("gen") / "generated"), frames, boxes)


@pytest.mark.parametrize("tracker", ["node", "nanotrack"])
def test_follow_sim_keeps_a_moving_target_in_view(generated_sequence, tracker):
    out, in_view, centred, stop, wrong = run_sim(["--sequence", generated_sequence, "--tracker", tracker])
    assert in_view >= 90.0, out
    assert stop is None or int(stop) == 0, out         # every LOST result answered by a zero command
    assert "[no result" not in out, out


REALDATA = os.path.join(ROOT, ".data", "realdata")


@pytest.mark.skipif(not os.path.isdir(os.path.join(REALDATA, "person12_1")),
                    reason="real annotated sequences absent (.data/realdata/person12_1; not shipped, absent in CI)")
def test_follow_sim_on_a_real_held_out_sequence():
    """person12_1: a held-out ('validation') drone view of a walking person, the follower's use case, against the
    issue's bar (in view >= 90%, centred >= 70%). Not every held-out sequence meets it: benchmarks/FOLLOW.md has the
    table (centred 26-100% per sequence)."""
    out, in_view, centred, stop, wrong = run_sim(["--sequence", os.path.join(REALDATA, "person12_1")])
    assert in_view >= 90.0 and centred >= 70.0, out
    assert stop is None or int(stop) == 0, out
    assert wrong <= 5.0, out
