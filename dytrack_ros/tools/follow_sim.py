"""Closed-loop simulation: a virtual camera on a real annotated sequence, steered by the follower node.

    dytrack-follow-sim --sequence .data/realdata/Bolt [--window 0.6] [--delay-ms 100] [--tracker node|nanotrack]

The camera sees a window of the frame (`--window` of its width and height) and sends it, resized to a fixed size,
to the tracker node over DDS as a camera would (sensor_msgs/Image, best effort depth 1 like play_video, the Fast
DDS large-data profile). The follower node (its own process, config/follower.yaml) answers each result with a
command; the command moves the window after `--delay-ms` (yaw -> pan, linear.z -> vertical, forward -> zoom), its
speed limited like a platform's. With `--tracker nanotrack` NanoTrack's loop (evaluation/peers.py) runs here on the
same window frames and its results go to the same follower as TrackedTarget messages (no tracker node).

Lock-step, on simulated time: frame i+1 is made only after the command for frame i arrived (or a timeout), so a
slow machine changes nothing but the wall time. Reported from the ground truth (frames where it is known):
in view (its centre inside the window), centred (inside the window's central third in x and y), stop after LOST
(results from each LOST onset to the first zero command; 0 = the command answering the LOST result was zero) and
steered at a wrong target (a non-zero command answering a box with IoU < 0.3 against the truth).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import List, Optional

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# camera-sized frames need the large-data profile on the publisher's side (DESIGN.md, README)
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(ROOT, "config", "fastdds_large_data.xml"))


@dataclass
class Platform:
    """What the commands move: yaw rate (rad/s) and forward speed (m/s) limits, the camera's horizontal FOV."""
    max_yaw_rate: float = 1.5
    max_speed: float = 2.0
    hfov_deg: float = 60.0
    distance: float = 5.0           # metres to the target at the start (forward motion -> zoom = distance0 / d)


class VirtualCamera:
    """A window of `fraction` of the source frame, moved by yaw (pan), linear.z (vertical) and forward (zoom)."""

    def __init__(self, frame_size, fraction: float, centre, platform: Platform):
        self.W, self.H = frame_size
        self.ww, self.wh = int(round(self.W * fraction)) // 2 * 2, int(round(self.H * fraction)) // 2 * 2
        self.p, self.d = platform, platform.distance
        self.zoom_min = max(self.ww / self.W, self.wh / self.H)   # the window never shows more than the frame
        self.cx, self.cy = centre
        self._clamp()

    @property
    def zoom(self) -> float:
        return self.p.distance / self.d

    def _clamp(self) -> None:
        z = min(max(self.zoom, self.zoom_min), 4.0)
        self.d = self.p.distance / z
        hw, hh = self.ww / (2 * z), self.wh / (2 * z)
        self.cx = min(max(self.cx, hw), self.W - hw)
        self.cy = min(max(self.cy, hh), self.H - hh)

    def origin(self):
        z = self.zoom
        return self.cx - self.ww / (2 * z), self.cy - self.wh / (2 * z), z

    def view(self, frame: np.ndarray) -> np.ndarray:
        x0, y0, z = self.origin()
        m = np.array([[z, 0, -z * x0], [0, z, -z * y0]], np.float32)
        return cv2.warpAffine(frame, m, (self.ww, self.wh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def to_window(self, box) -> np.ndarray:
        x0, y0, z = self.origin()
        return np.array([(box[0] - x0) * z, (box[1] - y0) * z, box[2] * z, box[3] * z], float)

    def move(self, yaw: float, forward: float, vertical: float, dt: float) -> None:
        p, z = self.p, self.zoom
        hfov = math.radians(p.hfov_deg)
        vfov = 2 * math.atan(math.tan(hfov / 2) * self.wh / self.ww)
        yaw = max(-p.max_yaw_rate, min(p.max_yaw_rate, yaw))
        forward = max(-p.max_speed, min(p.max_speed, forward))
        vertical = max(-p.max_speed, min(p.max_speed, vertical))
        self.cx -= yaw * dt * (self.ww / z) / hfov            # yaw left (positive) looks left
        self.cy -= vertical * dt * (self.wh / z) / (2 * self.d * math.tan(vfov / 2))   # climbing looks up
        self.d -= forward * dt
        self._clamp()


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Step:
    """One frame of the loop: the truth in the window, the tracker's answer, the command that answered it."""
    truth: Optional[np.ndarray]
    state: Optional[int] = None
    box: Optional[np.ndarray] = None
    command: Optional[tuple] = None          # (yaw, forward, vertical) or None when none came


@dataclass
class Summary:
    frames: int
    in_view: float
    centred: float
    stop_after_lost: Optional[int]
    lost_onsets: int
    wrong_steer: float
    missing_results: int
    missing_commands: int
    notes: List[str] = field(default_factory=list)

    def line(self) -> str:
        stop = "n/a (never LOST)" if self.stop_after_lost is None else f"<= {self.stop_after_lost} frames"
        return (f"in view {100 * self.in_view:.1f}%, centred {100 * self.centred:.1f}%, stop after LOST {stop}, "
                f"steered at a wrong target {100 * self.wrong_steer:.1f}%")


def summarise(steps: List[Step], ww: int, wh: int) -> Summary:
    known = [s for s in steps if s.truth is not None]
    centres = [(s.truth[0] + s.truth[2] / 2, s.truth[1] + s.truth[3] / 2) for s in known]
    in_view = [0 <= x < ww and 0 <= y < wh for x, y in centres]
    centred = [ww / 3 <= x <= 2 * ww / 3 and wh / 3 <= y <= 2 * wh / 3 for x, y in centres]
    moving = lambda s: s.command is not None and any(abs(v) > 1e-9 for v in s.command)
    wrong = [s.box is not None and moving(s) and iou(s.box, s.truth) < 0.3 for s in known]
    stops, onset = [], None
    for i, s in enumerate(steps):
        if s.state == 2 and onset is None and (i == 0 or steps[i - 1].state != 2):
            onset = i
        if onset is not None and s.command is not None and not moving(s):
            stops.append(i - onset)
            onset = None
    if onset is not None:
        stops.append(len(steps) - onset)          # never stopped before the end: counts as the whole rest
    n = max(len(known), 1)
    return Summary(len(steps), sum(in_view) / n, sum(centred) / n, max(stops) if stops else None, len(stops),
                   sum(wrong) / n, sum(s.state is None for s in steps[1:]), sum(s.command is None for s in steps[1:]))


class SimGraph:
    """This process's ROS side: the camera publisher, init box, results and commands received."""

    def __init__(self, namespace: str, qos: str, publish_targets: bool):
        import rclpy
        from geometry_msgs.msg import Twist, TwistStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from dytrack_ros.msg import TargetBox, TrackedTarget

        self.rclpy, self.context = rclpy, rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"follow_sim_{uuid.uuid4().hex[:6]}", context=self.context)
        image_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,      # play_video's camera QoS
                               reliability=ReliabilityPolicy.BEST_EFFORT if qos == "sensor_data"
                               else ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, f"{namespace}/image", image_qos)
        self.init_pub = self.node.create_publisher(TargetBox, f"{namespace}/init_box", QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        topic = f"{namespace}/dytrack_tracker/target"
        self.target_pub = self.node.create_publisher(TrackedTarget, topic, 10) if publish_targets else None
        self.node.create_subscription(TrackedTarget, topic, self._on_target, 50)
        self.node.create_subscription(TwistStamped, f"{namespace}/cmd_vel_stamped", self._on_cmd, 50)
        self.node.create_subscription(Twist, f"{namespace}/cmd_vel", self._on_twist, 50)
        self.TrackedTarget = TrackedTarget
        self.cond = threading.Condition()
        self.results, self.commands, self.last_twist = {}, {}, None
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while self.running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    @staticmethod
    def _key(header) -> int:
        return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec

    def _on_target(self, msg):
        with self.cond:
            self.results[self._key(msg.header)] = msg
            self.cond.notify_all()

    def _on_cmd(self, msg):
        t = msg.twist
        with self.cond:
            self.commands[self._key(msg.header)] = (t.angular.z, t.linear.x, t.linear.z)
            self.cond.notify_all()

    def _on_twist(self, msg):
        with self.cond:
            self.last_twist = (msg.angular.z, msg.linear.x, msg.linear.z)

    def wait(self, table: str, key: int, timeout: float):
        with self.cond:
            self.cond.wait_for(lambda: key in getattr(self, table), timeout)
            return getattr(self, table).pop(key, None)

    def wait_for_peers(self, follower_topic_ok, timeout=60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if follower_topic_ok(self):
                return True
            time.sleep(0.1)
        return False

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def close(self):
        self.running = False
        self.thread.join(2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def _stamp(msg, ns: int):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(ns), 1_000_000_000)
    return msg


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
    env.setdefault("ROS_HOME", os.path.join(tempfile.gettempdir(), "dytrack-follow-sim-ros-home"))
    return env


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def simulate(seq, args, log=print) -> Summary:
    """Run the closed loop on one sequence (a dytrack_ros.data.sequences.Sequence) and return its summary."""
    from ..ros.image_conversion import bgr_to_image
    from sensor_msgs.msg import Image
    n = len(seq) if not args.max_frames else min(len(seq), args.max_frames)
    ok = seq.visible_mask()
    if not ok[0]:
        raise SystemExit(f"{seq.name}: no ground truth on the first frame")
    first = seq.frame(0)
    b0 = seq.boxes[0]
    cam = VirtualCamera((first.shape[1], first.shape[0]), args.window, (b0[0] + b0[2] / 2, b0[1] + b0[3] / 2),
                        Platform(args.max_yaw_rate, args.max_speed, args.hfov, args.distance))
    ns = f"/follow_sim_{uuid.uuid4().hex[:8]}"
    logs = tempfile.mkdtemp(prefix="follow_sim_")
    procs = []
    follower_cmd = [sys.executable, "-m", "dytrack_ros.ros.follower", "--ros-args", "--params-file",
                    args.follower_params, "-r", f"__ns:={ns}", "-p", f"image_width:={cam.ww}",
                    "-p", f"image_height:={cam.wh}"]
    graph = None
    try:
        procs.append(subprocess.Popen(follower_cmd, cwd=ROOT, env=_env(), stdout=open(
            os.path.join(logs, "follower.log"), "w"), stderr=subprocess.STDOUT))
        nano = None
        if args.tracker == "node":
            tracker_cmd = [sys.executable, "-m", "dytrack_ros.ros.node", "--ros-args", "--params-file",
                           os.path.join(ROOT, "config", "tracker.yaml"), "-r", f"__ns:={ns}",
                           "-p", f"threads:={args.threads}", "-p", f"image_qos:={args.qos}",
                           "-p", "publish_debug_image:=false"]
            for p in args.tracker_param:
                tracker_cmd += ["-p", p]
            procs.append(subprocess.Popen(tracker_cmd, cwd=ROOT, env=_env(), stdout=open(
                os.path.join(logs, "tracker.log"), "w"), stderr=subprocess.STDOUT))
        else:
            from ..evaluation.peers import NanoTrackReference
            nano = NanoTrackReference("v2", threads=args.threads)
        graph = SimGraph(ns, args.qos, publish_targets=nano is not None)
        ready = (lambda g: g.image_pub.get_subscription_count() > 0) if nano is None else \
            (lambda g: g.target_pub.get_subscription_count() > 0)
        follower_ready = lambda g: g.node.count_publishers(f"{ns}/cmd_vel_stamped") > 0
        if not graph.wait_for_peers(lambda g: ready(g) and follower_ready(g), args.start_timeout):
            raise SystemExit(f"the tracker / follower did not come up in {args.start_timeout} s (logs in {logs})")
        dt, delay = 1.0 / args.fps, args.delay_ms / 1000.0
        queue: deque = deque()                 # (sim time it takes effect, command)
        active = (0.0, 0.0, 0.0)
        steps: List[Step] = []
        for i in range(n):
            t = i * dt
            if i > 0:                          # the platform moved during the last frame period
                while queue and queue[0][0] <= t - dt + 1e-9:
                    active = queue.popleft()[1]
                cam.move(*active, dt)
            img = cam.view(seq.frame(i))
            truth = cam.to_window(seq.boxes[i]) if ok[i] else None
            stamp = graph.now_ns()
            step = Step(truth)
            if nano is None:
                if i == 0:   # the box first, stamped like frame 0: the node takes it on that frame
                    from ..tools.qa import box_message
                    graph.init_pub.publish(box_message(truth, stamp))
                    time.sleep(0.3)
                graph.image_pub.publish(_stamp(bgr_to_image(img, None, Image), stamp))
                # frame 0 is the template frame: the node may answer it or not, depending on which came first
                r = graph.wait("results", stamp, 1.0 if i == 0 else args.result_timeout)
            else:
                if i == 0:
                    nano.initialize(img, truth)
                box = nano.update(img)
                r = graph.TrackedTarget(state=1 if nano.score >= args.lost_score else 2, x=float(box[0]),
                                        y=float(box[1]), width=float(box[2]), height=float(box[3]),
                                        score=nano.score, stages_run=1, num_stages=1)
                graph.target_pub.publish(_stamp(r, stamp))
                graph.wait("results", stamp, args.result_timeout)    # our own message, seen like any subscriber's
            if r is not None:
                step.state, step.box = int(r.state), np.array([r.x, r.y, r.width, r.height], float)
                step.command = graph.wait("commands", stamp, args.result_timeout)
            if step.command is None:           # no answer for this frame: the robot keeps the last Twist it got
                with graph.cond:
                    fallback = graph.last_twist
                step.command = None if r is None else fallback
            command = step.command if step.command is not None else (graph.last_twist or active)
            queue.append((t + delay, command))
            steps.append(step)
            if args.verbose:
                log(f"frame {i} state={step.state} box={None if step.box is None else np.round(step.box, 1).tolist()} "
                    f"truth={None if truth is None else np.round(truth, 1).tolist()} cmd={command}")
        return summarise(steps, cam.ww, cam.wh)
    finally:
        if graph is not None:
            graph.close()
        for p in reversed(procs):
            _stop(p)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sequence", required=True, nargs="+", help="OTB-layout folder(s): img/ + groundtruth_rect.txt")
    p.add_argument("--window", type=float, default=0.6, help="window side / frame side (0.2..1)")
    p.add_argument("--delay-ms", type=float, default=100.0, help="command -> platform motion delay")
    p.add_argument("--tracker", choices=["node", "nanotrack"], default="node",
                   help="node: the tracker node over DDS; nanotrack: NanoTrack v2's loop here, same follower")
    p.add_argument("--tracker-param", action="append", default=[], metavar="NAME:=VALUE",
                   help="extra tracker node parameter (e.g. 'exit_thresholds:=[0.0,0.0,0.0,0.0]')")
    p.add_argument("--follower-params", default=os.path.join(ROOT, "config", "follower.yaml"))
    p.add_argument("--fps", type=float, default=30.0, help="the sequence's frame rate (simulated time)")
    p.add_argument("--max-frames", type=int, default=0, help="cut each sequence to this many frames (0: all)")
    p.add_argument("--max-yaw-rate", type=float, default=1.5, help="platform yaw rate limit, rad/s")
    p.add_argument("--max-speed", type=float, default=2.0, help="platform speed limit, m/s")
    p.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view of the window, degrees")
    p.add_argument("--distance", type=float, default=5.0, help="metres to the target at the start")
    p.add_argument("--lost-score", type=float, default=0.15, help="nanotrack: LOST under this score")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--qos", choices=["sensor_data", "reliable"], default="sensor_data")
    p.add_argument("--start-timeout", type=float, default=90.0)
    p.add_argument("--result-timeout", type=float, default=3.0)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if not 0.2 <= args.window <= 1.0:
        p.error("--window must be in 0.2..1")
    return args


def run(argv=None) -> List[Summary]:
    args = parse_args(argv)
    from ..data.sequences import read_otb_sequence
    summaries = []
    for folder in args.sequence:
        seq = read_otb_sequence(folder.rstrip("/"))
        t0 = time.monotonic()
        s = simulate(seq, args)
        summaries.append(s)
        print(f"{seq.name} ({s.frames} frames, {args.tracker}, {time.monotonic() - t0:.0f} s): {s.line()}"
              + (f" [no result on {s.missing_results} frames]" if s.missing_results else ""), flush=True)
    mean = lambda f: float(np.mean([getattr(s, f) for s in summaries]))
    stops = [s.stop_after_lost for s in summaries if s.stop_after_lost is not None]
    total = Summary(sum(s.frames for s in summaries), mean("in_view"), mean("centred"),
                    max(stops) if stops else None, sum(s.lost_onsets for s in summaries), mean("wrong_steer"), 0, 0)
    if len(summaries) > 1:
        print(f"mean of {len(summaries)} sequences, {total.lost_onsets} LOST onsets:", flush=True)
    print(total.line(), flush=True)      # the summary line, last (the mean over sequences when several)
    return summaries


def main(argv=None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    main()
