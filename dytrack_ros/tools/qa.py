"""Reliability check: drive a real tracker node from another process with hostile and faulty input, a flood
and a short soak, and write a table (machine, date) of what it survived.

    python -m dytrack_ros.tools.qa --out benchmarks/RELIABILITY.md [--soak 60] [--model DIR]

For every case: the node must still run, must log the reason for what it refused, and the good frames sent
after the bad input must all be answered (none lost). Start-up refusals (bad parameter sets, broken model
folders) run the node as its own process and check that it exits with a clear message.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib

import cv2
import numpy as np

from ..contract import Manifest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILE = os.path.join(ROOT, "config", "fastdds_large_data.xml")
PERIOD_NS = 66_666_667


def node_env(state_dir):
    env = dict(os.environ, PYTHONUNBUFFERED="1", FASTDDS_DEFAULT_PROFILES_FILE=PROFILE, ROS_HOME=state_dir)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


def node_cmd(namespace, params, params_file=os.path.join(ROOT, "config", "tracker.yaml")):
    cmd = [sys.executable, "-m", "dytrack_ros.ros.node", "--ros-args", "--params-file", params_file,
           "-r", f"__ns:={namespace}"]
    for p in params:
        cmd += ["-p", p]
    return cmd


def image_message(frame, stamp_ns, encoding="bgr8", frame_id="cam"):
    """A sensor_msgs/Image of a BGR frame with the given stamp (`encoding` may lie, to test refusals)."""
    from sensor_msgs.msg import Image
    from ..ros.image_conversion import bgr_to_image
    msg = bgr_to_image(frame, None, Image)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id
    if encoding != "bgr8":
        msg.encoding = encoding
    return msg


def box_message(box, stamp_ns=0):
    from dytrack_ros.msg import TargetBox
    m = TargetBox()
    m.header.stamp.sec, m.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    m.x, m.y, m.width, m.height = (float(v) for v in box)
    return m


class Graph:
    """Publishers and a result recorder in this process (its own rclpy context)."""

    def __init__(self, namespace, compressed=False):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image
        from dytrack_ros.msg import TargetBox, TrackedTarget
        self.rclpy, self.ns = rclpy, namespace
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"qa_{uuid.uuid4().hex[:6]}", context=self.context)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, f"{namespace}/image", qos)
        self.compressed_pub = self.node.create_publisher(CompressedImage, f"{namespace}/image/compressed", qos)
        self.init_pub = self.node.create_publisher(TargetBox, f"{namespace}/init_box", QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.results = []
        self.node.create_subscription(TrackedTarget, f"{namespace}/dytrack_tracker/target",
                                      lambda m: self.results.append(m), 1000)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while self.running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def wait_connected(self, compressed=False, timeout=30):
        pub = self.compressed_pub if compressed else self.image_pub
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pub.get_subscription_count() and self.init_pub.get_subscription_count():
                return True
            time.sleep(0.05)
        return False

    def image(self, frame, stamp_ns, encoding="bgr8"):
        return image_message(frame, stamp_ns, encoding)

    def box(self, box, stamp_ns=0):
        self.init_pub.publish(box_message(box, stamp_ns))

    def close(self):
        self.running = False
        self.thread.join(2)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def stamp(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def scene(n=40):
    """A textured target sliding over a textured background (frames 480x360) with its boxes."""
    rng = np.random.default_rng(7)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8), (0, 0), 3)
    patch = rng.integers(0, 255, (60, 40, 3), dtype=np.uint8)
    frames, boxes = [], []
    for i in range(n):
        f = bg.copy()
        x, y = 100 + 4 * i, 150 + int(20 * np.sin(i / 6))
        f[y:y + 60, x:x + 40] = patch
        frames.append(f)
        boxes.append([x, y, 40, 60])
    return frames, boxes


def jpeg_bomb(side=65500):
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def png_bomb(side=100000):
    data = bytearray(cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


class Run:
    """One node process and one graph; checks after each batch of bad input that good frames are answered."""

    def __init__(self, model, tmp, compressed=False, extra=()):
        self.ns = f"/qa{uuid.uuid4().hex[:6]}"
        self.log_path = os.path.join(tmp, self.ns.strip("/") + ".log")
        self.log = open(self.log_path, "w")
        params = [f"model_path:={model}", "threads:=1", f"use_compressed:={'true' if compressed else 'false'}",
                  *extra]
        self.proc = subprocess.Popen(node_cmd(self.ns, params), cwd=ROOT, env=node_env(tmp), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.g = Graph(self.ns)
        if not self.g.wait_connected(compressed):
            raise RuntimeError(f"node did not come up: {self.output()}")
        self.frames, self.boxes = scene()
        self.t = 10_000 * 1_000_000_000
        self.started = False

    def output(self):
        self.log.flush()
        return open(self.log_path).read()

    def alive(self):
        return self.proc.poll() is None

    def good_frames(self, n=6, compressed=False):
        """Publish n good frames at 15 Hz; returns (sent, answered)."""
        from sensor_msgs.msg import CompressedImage

        def publish(f):
            self.t += PERIOD_NS
            if compressed:
                m = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", f)[1].tobytes())
                m.header.stamp.sec, m.header.stamp.nanosec = divmod(self.t, 1_000_000_000)
                self.g.compressed_pub.publish(m)
            else:
                self.g.image_pub.publish(self.g.image(f, self.t))
            time.sleep(1 / 15)
        if not self.started:                  # the target's box, drawn on the first frame
            publish(self.frames[0])
            self.g.box(self.boxes[0], stamp_ns=self.t)
            self.started = True
        sent = []
        for i in range(n):
            publish(self.frames[1 + i % (len(self.frames) - 1)])
            sent.append(self.t)
        end = time.monotonic() + 5
        while time.monotonic() < end and not set(sent[1:]) <= {stamp(m) for m in self.g.results}:
            time.sleep(0.05)
        got = {stamp(m) for m in self.g.results}
        return len(sent) - 1, sum(s in got for s in sent[1:])   # the first may carry a new init box

    def close(self):
        self.g.close()
        self.proc.send_signal(2)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def raw_cases(g, frame, t):
    from sensor_msgs.msg import Image
    cases = []

    def msg(**kw):
        m = g.image(frame, t)
        for k, v in kw.items():
            setattr(m, k, v)
        return m
    cases.append(("depth encoding 32FC1 on the camera topic", msg(encoding="32FC1"), "unsupported"))
    cases.append(("encoding 'nonsense'", msg(encoding="nonsense"), "unsupported"))
    cases.append(("step smaller than a row", msg(step=100), "smaller than"))
    cases.append(("data truncated", msg(data=bytes(g.image(frame, t).data)[:1000]), "truncated"))
    cases.append(("empty data", msg(data=b""), "truncated"))
    cases.append(("width 0", msg(width=0), ""))
    cases.append(("1x1 frame", g.image(np.zeros((1, 1, 3), np.uint8), t), "smaller than"))
    cases.append(("8x8 frame", g.image(np.zeros((8, 8, 3), np.uint8), t), "smaller than"))
    cases.append(("1000x8 strip", g.image(np.zeros((8, 1000, 3), np.uint8), t), "smaller than"))
    cases.append(("declares 100000x100000", msg(width=100000, height=100000), "over the limit"))
    cases.append(("mono16 big-endian", g.image(np.zeros((360, 480, 3), np.uint8), t), ""))
    m = Image()
    m.header.stamp.sec = t // 1_000_000_000
    cases.append(("all fields default", m, ""))
    return cases


def compressed_cases():
    from sensor_msgs.msg import CompressedImage
    junk = np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes()
    good = cv2.imencode(".jpg", np.zeros((360, 480, 3), np.uint8))[1].tobytes()
    return [("JPEG bomb 65500x65500 (631 bytes)", CompressedImage(format="jpeg", data=jpeg_bomb()), "declares"),
            ("PNG bomb 100000x100000", CompressedImage(format="png", data=png_bomb()), "declares"),
            ("JPEG declaring 20000x20000", CompressedImage(format="jpeg", data=jpeg_bomb(20000)), "declares"),
            ("random bytes", CompressedImage(format="jpeg", data=junk), "could not decode"),
            ("empty", CompressedImage(format="jpeg", data=b""), "no data"),
            ("truncated JPEG", CompressedImage(format="jpeg", data=good[:200]), ""),
            ("8x8 JPEG", CompressedImage(format="jpeg", data=cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1]
                                         .tobytes()), "smaller than")]


def box_cases(now_ns):
    nan, inf = float("nan"), float("inf")
    return [("NaN", [nan, 10, 20, 20], 0, "finite"), ("infinite", [10, 10, inf, 20], 0, "finite"),
            ("zero width", [10, 10, 0, 20], 0, "positive"), ("negative height", [10, 10, 20, -5], 0, "positive"),
            ("outside the frame", [5000, 5000, 30, 30], 0, "outside"),
            ("1e30 x 1e30", [0, 0, 1e30, 1e30], 0, "larger than"),
            ("stamped an hour ahead", [10, 10, 20, 20], now_ns + 3600 * 10 ** 9, "future"),
            # the raw cases' valid mono16 frame, stamped 2 s back, starts a new image stream: the node says that
            ("older than the frame buffer", [10, 10, 20, 20], 10 ** 9,
             "older than every buffered frame|before every|before the first frame of a new image stream"),
            ("1 px box", [100, 100, 1, 1], 0, "outside")]


def param_cases(num_stages):
    """Bad run-time parameters; the threshold lists are sized for the model under test (one short, one bad value)."""
    return [("lost_threshold", 2.0, "0..1|out of range"), ("lost_threshold", float("nan"), "0..1|out of range"),
            ("exit_thresholds", [0.5] * (num_stages - 1), "stages"),
            ("exit_thresholds", [-1.0] + [0.0] * (num_stages - 1), "0..1"),
            ("exit_thresholds", "high", "list"), ("backend", "torch", "read-only|read only")]


def set_param(g, name, value):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    if isinstance(value, list):
        v = ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=value)
    elif isinstance(value, float):
        v = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    else:
        v = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    client = g.node.create_client(SetParameters, f"{g.ns}/dytrack_tracker/set_parameters")
    client.wait_for_service(timeout_sec=10)
    fut = client.call_async(SetParameters.Request(parameters=[Parameter(name=name, value=v)]))
    end = time.monotonic() + 10
    while not fut.done() and time.monotonic() < end:
        time.sleep(0.02)
    return fut.result().results[0] if fut.done() else None


def params_file(tmp, name, **overrides):
    """config/tracker.yaml with some values replaced (a user's broken parameter file)."""
    import yaml
    data = yaml.safe_load(open(os.path.join(ROOT, "config", "tracker.yaml")))
    data["/**"]["ros__parameters"].update(overrides)
    path = os.path.join(tmp, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def startup_cases(model, tmp):
    broken = os.path.join(tmp, "broken")
    shutil.copytree(model, broken)
    with open(os.path.join(broken, "stage0.onnx"), "r+b") as f:
        f.write(b"\0" * 64)
    unhashed = os.path.join(tmp, "unhashed")
    shutil.copytree(model, unhashed)
    m = Manifest.read(unhashed)
    n = m.num_stages
    m.data.pop("sha256", None)
    m.save()
    tampered = []
    for label, edit in (("search_factor 4 -> 9", lambda d: d.update(search_factor=9.0)),
                        ("search_size 256 -> 356", lambda d: d.update(search_size=356)),
                        ("normalisation colour BGR -> RGB", lambda d: d["normalization"].update(color="RGB"))):
        folder = os.path.join(tmp, f"tampered{len(tampered)}")
        shutil.copytree(model, folder)
        t = Manifest.read(folder)
        edit(t.data)
        t.save()
        tampered.append((f"manifest edited: {label}", dict(model_path=folder, backend="onnxruntime"),
                         "edited after export"))
    truncated = os.path.join(tmp, "truncated_checkpoint")
    shutil.copytree(model, truncated)
    with open(os.path.join(truncated, "model.pt"), "r+b") as f:
        f.truncate(1000)
    cases = tampered + [
             ("model.pt truncated, torch backend", dict(model_path=truncated, backend="torch"), "does not match"),
             ("missing model folder", dict(model_path=f"{tmp}/nowhere"), "model folder not found"),
             ("corrupt stage graph", dict(model_path=broken, backend="onnxruntime"), "hash"),
             ("manifest without hashes", dict(model_path=unhashed, backend="onnxruntime"), "hashes"),
             ("unknown backend", dict(backend="warp_drive"), "backend"),
             (f"{n - 1} thresholds for {n} stages", dict(exit_thresholds=[0.5] * (n - 1)), "stages"),
             ("lost_threshold 7", dict(lost_threshold=7.0), "lost_threshold"),
             ("lost_threshold a string", dict(lost_threshold="high"), "lost_threshold"),
             ("frame_buffer 0", dict(frame_buffer=0), "frame_buffer"),
             ("image_qos unknown", dict(image_qos="fast"), "image_qos"),
             ("stale_after negative", dict(stale_after=-1.0), "stale_after")]
    return [(name, params_file(tmp, f"case{i}", **{"model_path": model, **kw}), reason)
            for i, (name, kw, reason) in enumerate(cases)]


def call(g, srv_type, name, request, timeout=15.0):
    """A service call from the QA graph; None when unanswered."""
    client = g.node.create_client(srv_type, name)
    if not client.wait_for_service(timeout_sec=5.0):
        return None
    future = client.call_async(request)
    end = time.monotonic() + timeout
    while not future.done() and time.monotonic() < end:
        time.sleep(0.02)
    return future.result() if future.done() else None


def safety_cases(run):
    """Resets and targets under faults, against the running node: yields (name, survived, as expected)."""
    from std_srvs.srv import Trigger
    from dytrack_ros.srv import SetTarget
    tracker = f"{run.ns}/dytrack_tracker"
    # a camera glitch: one frame stamped a day ahead, then a reset; boxes on the normal frames must still be taken
    run.g.image_pub.publish(run.g.image(run.frames[1], time.time_ns() + 86_400 * 10**9))
    time.sleep(0.3)
    answer = call(run.g, Trigger, f"{tracker}/reset", Trigger.Request())
    before = run.output()
    run.started = False                       # good_frames sends a new box on its first frame
    sent, answered = run.good_frames(4)
    taken = answer is not None and answer.success and "older than the last reset" not in run.output()[len(before):]
    yield "a frame stamped a day ahead, then a reset: the next box is taken", run.alive(), taken and answered == sent
    # set_target while the camera is stopped: answered as failed after its wait, and never applied afterwards
    time.sleep(2.5)                           # > stale_after: a box without a stamp waits for a fresh frame
    req = SetTarget.Request()
    req.box.x, req.box.y, req.box.width, req.box.height = (float(v) for v in run.boxes[0])
    inits = run.output().count("initialised on frame")
    answer = call(run.g, SetTarget, f"{tracker}/set_target", req, timeout=15.0)
    refused = answer is not None and not answer.success and "withdrawn" in answer.message
    run.good_frames(4)                        # the camera resumes
    not_applied = run.output().count("initialised on frame") == inits
    yield "set_target while the camera is stopped: refused, withdrawn", run.alive(), refused and not_applied
    # issue 37: a box on the init topic while the camera is out expires (init_box_timeout, 5 s), never applied later
    time.sleep(2.5)
    inits = run.output().count("initialised on frame")
    run.g.box(run.boxes[0], 0)
    end = time.monotonic() + 10
    while time.monotonic() < end and "expired after waiting" not in run.output():
        time.sleep(0.2)
    expired = "expired after waiting" in run.output()
    run.good_frames(4)
    yield "an init box while the camera is out: expires, never applied", run.alive(), \
        expired and run.output().count("initialised on frame") == inits
    # issue 37: lost time goes on counting when the camera's stamps step back an hour
    set_param(run.g, "lost_threshold", 1.0)              # every result LOST from now on
    run.good_frames(3)
    n = len(run.g.results)
    run.t -= 3600 * 10**9
    run.good_frames(8)
    lost = []
    for m in run.g.results[n:]:
        if m.state != m.STATE_LOST:
            break
        lost.append(m.lost_seconds)
    set_param(run.g, "lost_threshold", 0.15)
    counting = len(lost) >= 5 and lost == sorted(lost) and lost[-1] > 0.5
    yield "stamps step back an hour while LOST: lost_seconds keeps counting, the jump is logged", run.alive(), \
        counting and "image stamps jumped back" in run.output()


def lifecycle_cycles(model, tmp, cycles):
    """deactivate/cleanup/configure/activate `cycles` times: (threads, RSS MB) when active at the start and the end."""
    import psutil
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    ns = f"/qa{uuid.uuid4().hex[:6]}"
    with open(os.path.join(tmp, "cycles.log"), "w") as log:
        proc = subprocess.Popen(node_cmd(ns, [f"model_path:={model}", "threads:=0"]), cwd=ROOT, env=node_env(tmp),
                                stdout=log, stderr=subprocess.STDOUT)
    g = Graph(ns)
    try:
        if not g.wait_connected():
            return None, None, 0

        def change(transition):
            req = ChangeState.Request()
            req.transition.id = transition
            r = call(g, ChangeState, f"{ns}/dytrack_tracker/change_state", req, timeout=60)
            return r is not None and r.success
        p = psutil.Process(proc.pid)
        start = (p.num_threads(), p.memory_info().rss / 2**20)
        done = 0
        for _ in range(cycles):
            if not all(change(t) for t in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP,
                                           Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE)):
                break
            done += 1
        return start, (p.num_threads(), p.memory_info().rss / 2**20), done
    finally:
        g.close()
        proc.send_signal(2)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bag_cases(tmp):
    """Damaged bags given to the player: (name, exit code, output)."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    ts = get_typestore(Stores.ROS2_KILTED)
    kind = "sensor_msgs/msg/Image"
    frames, _ = scene(8)
    for damage in ("truncated", "data file missing"):
        bag = os.path.join(tmp, f"bag_{damage.replace(' ', '_')}")
        with Writer(bag, version=9) as writer:
            conn = writer.add_connection("/cam/image", kind, typestore=ts)
            for i, f in enumerate(frames):
                t = 1_700_000_000 * 10**9 + i * PERIOD_NS
                h, w = f.shape[:2]
                msg = ts.types[kind](header=ts.types["std_msgs/msg/Header"](
                    stamp=ts.types["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9), frame_id="c"),
                    height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
                    data=np.frombuffer(f.tobytes(), np.uint8))
                writer.write(conn, t, ts.serialize_cdr(msg, kind))
        data = next(os.path.join(bag, n) for n in os.listdir(bag) if n.endswith(".db3"))
        if damage == "truncated":
            with open(data, "r+b") as f:
                f.truncate(os.path.getsize(data) // 2)
        else:
            os.remove(data)
        r = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.play_video", "--bag", bag, "--wait-timeout", "0.5",
                            "--rate", "50"], cwd=ROOT, env=node_env(tmp), capture_output=True, text=True, timeout=120)
        yield f"bag {damage}", r.returncode, r.stdout + r.stderr


def picker_cases(ns, tmp):
    """Abusive requests to a target picker in the node's namespace: (name, picker alive, answered 4xx with reason)."""
    import http.client
    log = os.path.join(tmp, "picker.log")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dytrack_ros.ros.target_picker", "--ros-args", "-r",
                                 f"__ns:={ns}", "-p", "port:=0"], cwd=ROOT, env=node_env(tmp), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        end, url = time.monotonic() + 30, None
        while time.monotonic() < end and url is None:
            found = [w for w in open(log).read().split() if w.startswith("http://127.0.0.1:")]
            url = found[0] if found else None
            time.sleep(0.1)
        if url is None:
            yield "picker start", False, False
            return
        host = url.split("/")[2]
        token = url.split("token=")[1]
        abuse = [("no token", "GET", "/state", None, {}),
                 ("a foreign Host (DNS rebinding)", "GET", f"/state?token={token}", None, {"Host": "evil.example"}),
                 ("a cross-origin reset", "POST", "/reset", "{}", {"Origin": "http://evil.example",
                                                                   "Content-Type": "application/json",
                                                                   "X-Picker-Token": token}),
                 ("a text/plain set target", "POST", "/target", '{"x": 1}', {"Content-Type": "text/plain",
                                                                            "X-Picker-Token": token}),
                 ("Content-Length -1", "POST", "/target", "{}", {"Content-Length": "-1", "X-Picker-Token": token,
                                                                "Content-Type": "application/json"}),
                 ("Content-Length in Unicode digits", "POST", "/target", "{}", {
                     "Content-Length": "\u00b2", "X-Picker-Token": token, "Content-Type": "application/json"}),
                 ("Content-Length of 5,000 digits", "POST", "/target", "{}", {
                     "Content-Length": "9" * 5000, "X-Picker-Token": token, "Content-Type": "application/json"})]
        for name, method, path, body, headers in abuse:
            conn = http.client.HTTPConnection(host, timeout=10)
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            text = r.read().decode(errors="replace")
            conn.close()
            yield f"picker: {name}", proc.poll() is None, 400 <= r.status < 500 and "refused" in text
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def state_file_cases(model, tmp):
    """Reset records a node must start despite: (name, params file, words it must log)."""
    cases = []
    for i, (label, content) in enumerate((("an empty list", "[]"), ("a stamp of 1e400", '{"reset_stamp_ns": 1e400}'),
                                          ("not JSON", "{half"), ("a stamp a day ahead",
                                           json.dumps({"reset_stamp_ns": time.time_ns() + 86_400 * 10**9})))):
        folder = os.path.join(tmp, f"state{i}")
        os.makedirs(folder)
        with open(os.path.join(folder, "qa_start__dytrack_tracker.json"), "w") as f:
            f.write(content)
        cases.append((f"reset record holds {label}", params_file(tmp, f"state{i}", model_path=model,
                                                                  state_dir=folder), "discarded"))
    return cases


def starts_and_logs(path, tmp, words, timeout=30.0):
    """(the node reached 'tracking with', its output) for a params file; the node is stopped afterwards."""
    log = os.path.join(tmp, f"start-{uuid.uuid4().hex[:8]}.log")
    with open(log, "w") as out_file:
        proc = subprocess.Popen(node_cmd("/qa_start", [], path), cwd=ROOT, env=node_env(tmp), stdout=out_file,
                                stderr=subprocess.STDOUT)
    end = time.monotonic() + timeout
    read = lambda: open(log).read()
    while time.monotonic() < end and "tracking with" not in read() and proc.poll() is None:
        time.sleep(0.1)
    started = "tracking with" in read() and proc.poll() is None
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    return started, read()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "dytrack_small"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "RELIABILITY.md"))
    ap.add_argument("--flood-seconds", type=float, default=5.0)
    ap.add_argument("--soak", type=float, default=60.0, help="seconds of 15 Hz frames")
    ap.add_argument("--cycles", type=int, default=50, help="lifecycle deactivate/cleanup/configure/activate cycles")
    args = ap.parse_args(argv)
    import psutil
    from ..evaluation import machine
    rows, failures = [], []
    tmp = tempfile.mkdtemp(prefix="dytrack-qa-")

    def record(group, name, survived, logged, sent, answered):
        ok = survived and logged and answered == sent
        rows.append((group, name, survived, logged, f"{answered}/{sent}"))
        if not ok:
            failures.append(f"{group}: {name}")

    run = Run(args.model, tmp)
    try:
        run.good_frames()
        for name, msg, reason in raw_cases(run.g, run.frames[0], run.t):
            before = run.output()
            run.g.image_pub.publish(msg)
            time.sleep(0.3)
            logged = bool(reason) and any(r in run.output()[len(before):] for r in reason.split("|")) or \
                "dropped" in run.output()[len(before):] or not reason
            record("raw image", name, run.alive(), logged, *run.good_frames(3))
        for name, box, stamp_ns, reason in box_cases(time.time_ns()):
            before = run.output()
            run.g.box(box, stamp_ns)
            time.sleep(0.3)
            run.started = True
            new = run.output()[len(before):]
            logged = any(r in new for r in reason.split("|"))
            record("init box", name, run.alive(), logged, *run.good_frames(3))
            run.g.box(run.boxes[0], 0)      # back to a valid target for the next case
            time.sleep(0.2)
        for name, survived, expected in safety_cases(run):
            rows.append(("safety", name, survived, expected, "-"))
            if not (survived and expected):
                failures.append(f"safety: {name}")
        for name, alive, refused in picker_cases(run.ns, tmp):
            rows.append(("target picker", name, alive, refused, "-"))
            if not (alive and refused):
                failures.append(f"target picker: {name}")
        for name, value, reason in param_cases(Manifest.read(args.model).num_stages):
            r = set_param(run.g, name, value)
            refused = r is not None and not r.successful and any(x in r.reason for x in reason.split("|"))
            record("parameter at run time", f"{name} = {value!r}", run.alive(), refused, *run.good_frames(3))
        # flood: as fast as this process can publish, for a few seconds
        proc = psutil.Process(run.proc.pid)
        rss0 = proc.memory_info().rss
        n0, sent, start = len(run.g.results), 0, time.monotonic()
        msgs = [run.g.image(f, 0) for f in run.frames]
        while time.monotonic() - start < args.flood_seconds:
            run.t += 1_000_000
            m = msgs[sent % len(msgs)]
            m.header.stamp.sec, m.header.stamp.nanosec = divmod(run.t, 1_000_000_000)
            run.g.image_pub.publish(m)
            sent += 1
        rate = sent / (time.monotonic() - start)
        time.sleep(1.0)
        rss1 = proc.memory_info().rss
        flood = dict(rate_hz=rate, sent=sent, answered=len(run.g.results) - n0, rss_mb=(rss0 / 2 ** 20, rss1 / 2 ** 20))
        record("flood", f"{rate:.0f} Hz for {args.flood_seconds:g} s", run.alive(), True, *run.good_frames(6))
        # soak at camera rate
        soak_sent, soak_answered, rss_soak0 = 0, 0, proc.memory_info().rss
        end = time.monotonic() + args.soak
        while time.monotonic() < end:
            s, a = run.good_frames(15)
            soak_sent, soak_answered = soak_sent + s, soak_answered + a
        soak = dict(seconds=args.soak, sent=soak_sent, answered=soak_answered,
                    rss_mb=(rss_soak0 / 2 ** 20, proc.memory_info().rss / 2 ** 20))
        record("soak", f"{args.soak:g} s at 15 Hz", run.alive(), True, soak_sent, soak_answered)
    finally:
        run.close()
    run = Run(args.model, tmp, compressed=True)
    try:
        run.good_frames(compressed=True)
        for name, msg, reason in compressed_cases():
            before = run.output()
            t0 = time.monotonic()
            run.g.compressed_pub.publish(msg)
            time.sleep(0.3)
            new = run.output()[len(before):]
            logged = ("dropped" in new) and (not reason or reason in new)
            record("compressed image", f"{name} ({time.monotonic() - t0:.1f} s)", run.alive(), logged,
                   *run.good_frames(3, compressed=True))
    finally:
        run.close()
    for name, path, reason in startup_cases(args.model, tmp):
        try:
            r = subprocess.run(node_cmd("/qa_start", [], path), cwd=ROOT, env=node_env(tmp), capture_output=True,
                               text=True, timeout=30)
            code, out = r.returncode, r.stdout + r.stderr
        except subprocess.TimeoutExpired as exc:      # it started: the bad value was not refused
            code, out = 0, str(exc.stdout or "")
        clear = code != 0 and "cannot start" in out and any(x in out for x in reason.split("|")) \
            and "Traceback" not in out
        rows.append(("start-up", name, code != 0, clear, "-"))
        if not clear:
            failures.append(f"start-up: {name}")
    start, end, done = lifecycle_cycles(args.model, tmp, args.cycles)
    bounded = start is not None and done == args.cycles and end[0] <= start[0] and end[1] <= start[1] * 1.15
    name = f"{args.cycles} deactivate/cleanup/configure/activate cycles: " + (
        f"{done} done, {start[0]} -> {end[0]} threads, {start[1]:.0f} -> {end[1]:.0f} MB" if start else "no node")
    rows.append(("lifecycle", name, start is not None, bounded, "-"))
    if not bounded:
        failures.append(f"lifecycle: {name}")
    r = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.ctl", "--node", "bad name!", "reset"], cwd=ROOT,
                       env=node_env(tmp), capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    clear = r.returncode != 0 and len(out.splitlines()) == 1 and "Traceback" not in out
    rows.append(("command line", "dytrack-ctl --node 'bad name!'", r.returncode != 0, clear, "-"))
    if not clear:
        failures.append("command line: dytrack-ctl --node 'bad name!'")
    for name, code, out in bag_cases(tmp):
        clear = code != 0 and "Traceback" not in out and ("damaged" in out or "cannot read bag" in out)
        rows.append(("recorded data", name, code != 0, clear, "-"))
        if not clear:
            failures.append(f"recorded data: {name}")
    for name, path, reason in state_file_cases(args.model, tmp):
        started, out = starts_and_logs(path, tmp, reason)
        rows.append(("state file", name, started, reason in out, "-"))
        if not (started and reason in out):
            failures.append(f"state file: {name}")
    shutil.rmtree(tmp, ignore_errors=True)
    lines = ["# Reliability check", "", f"- machine: {machine.describe()}", f"- date: {machine.today()}",
             "- 'node alive' for start-up cases: the node refused to start (exit code not 0); for state-file cases: "
             "the node started and tracks (a bad reset record never keeps it down), logging what it discarded; for "
             "target-picker cases: the picker; for recorded-data cases: the player refused (non-zero exit) and "
             "'reason logged' means one clear line, no traceback. Safety cases: 'reason logged' means the node did "
             "what is expected (named in the case).",
             f"- command: `python -m dytrack_ros.tools.qa --soak {args.soak:g} --cycles {args.cycles}` (model `{os.path.relpath(args.model, ROOT)}`)",
             "- each case: does the node survive, does it log (or answer) the reason, are the good frames sent right "
             "after it all answered? Start-up cases: does the node refuse to start with a clear message and no "
             "traceback?", "",
             f"**{len(rows) - len(failures)} of {len(rows)} cases passed**" + (
                 f"; failed: {', '.join(failures)}" if failures else ""), "",
             "| group | case | node alive | reason logged | good frames answered |", "|---|---|---|---|---|"]
    lines += [f"| {g} | {n} | {'yes' if a else 'NO'} | {'yes' if l else 'NO'} | {f} |" for g, n, a, l, f in rows]
    lines += ["", f"Flood: {flood['sent']} frames at {flood['rate_hz']:.0f} Hz, {flood['answered']} answered (the rest "
              f"dropped as stale by design); node memory {flood['rss_mb'][0]:.0f} -> {flood['rss_mb'][1]:.0f} MB.",
              f"Soak: {soak['answered']} of {soak['sent']} frames answered in {soak['seconds']:g} s; node memory "
              f"{soak['rss_mb'][0]:.0f} -> {soak['rss_mb'][1]:.0f} MB.", ""]
    machine.write_report(args.out, lines)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
