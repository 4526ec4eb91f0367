"""Play a video file, a camera or a recorded ROS 2 bag as a sensor_msgs/Image topic, optionally send an init box,
and print and record what the tracker answers.

    play_video --video vtest.avi --init-box 400 200 40 90 --print-results --output tracked.mp4
    play_video --bag flight_2026_11_25/ --bag-topic /drone/camera/image_raw --init-box 400 200 40 90 --print-results

A bag (rosbag2, sqlite3 or mcap, read with the `rosbags` library: no ROS install needed) is played at its recorded
pace (or --rate); its Image or CompressedImage frames are decoded and published like video frames.

It waits until the tracker subscribes, publishes frames at the video's frame rate (or --rate), stamps each with
the current time, and draws every TrackedTarget on the frame it belongs to (matched by stamp).

With --init-box it starts the track before playing on: it publishes the first frame and sends the box, stamped
like that frame, to the tracker's ~/set_target, which answers once it has tried it. The first frame is sent again
until the answer comes (best-effort images get lost); a refusal, or a box taken on a frame that is not this
player's (one left from an earlier stream), is retried with a freshly stamped first frame. When the box cannot be
set the player stops tracking on the node (its target would be an earlier stream's) and exits 1 with the node's
reason: it never plays on as if its target were set.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from std_srvs.srv import Trigger

from dytrack_ros.msg import TrackedTarget
from dytrack_ros.srv import SetTarget

from .image_conversion import bgr_to_image
from .messages import STATE_LABEL, draw_target

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="video file, or a camera index such as 0")
    source.add_argument("--bag", help="rosbag2 folder (or .db3 / .mcap file) with camera images")
    p.add_argument("--bag-topic", default="", help="the bag's image topic (default: its first Image or "
                                                    "CompressedImage topic)")
    p.add_argument("--namespace", default="/", help="the tracker's namespace (as its launch's namespace:=): relative "
                                                     "topics below resolve in it")
    p.add_argument("--image-topic", default="image", help="where to publish the frames (the tracker's image topic, "
                                                          "after its remapping)")
    p.add_argument("--init-topic", default="init_box", help="unused (kept for older scripts): the box goes to the "
                                                              "tracker's ~/set_target, which answers")
    p.add_argument("--target-topic", default="dytrack_tracker/target", help="the tracker's ~/target; its ~/set_target "
                                                                            "and ~/reset are beside it")
    p.add_argument("--init-timeout", type=float, default=20.0, help="seconds to get the init box taken")
    p.add_argument("--init-tries", type=int, default=4, help="times the box is sent before the player gives up")
    p.add_argument("--frame-id", default="camera")
    p.add_argument("--rate", type=float, default=0.0, help="frames per second (0 = the video's own)")
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument("--init-box", type=float, nargs=4, metavar=("X", "Y", "W", "H"))
    p.add_argument("--compressed", action="store_true", help="publish CompressedImage (JPEG) on <topic>/compressed")
    p.add_argument("--qos", choices=["sensor_data", "reliable"], default="sensor_data")
    p.add_argument("--print-results", action="store_true")
    p.add_argument("--output", default="", help="write the annotated video here (.mp4 or .avi)")
    p.add_argument("--wait-timeout", type=float, default=60.0, help="seconds to wait for a subscriber")
    p.add_argument("--linger", type=float, default=1.5, help="seconds to keep receiving results after the last frame")
    p.add_argument("--write-bag", default="", metavar="DIR",
                   help="write the frames to a new rosbag2 folder (sqlite3) instead of playing them: a test bag "
                        "from a video; topic --bag-topic (default /camera/image_raw), Image bgr8 or with "
                        "--compressed JPEG CompressedImage, stamped at the video's frame rate (or --rate)")
    return p.parse_args(argv)


def write_bag(path: str, source, fps: float, topic: str, compressed: bool, frame_id: str, max_frames: int = 0) -> int:
    """Write frames to a new rosbag2 folder (rosbags' writer: no ROS install needed); returns how many."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    if os.path.exists(path):
        sys.exit(f"play_video: {path} exists; --write-bag makes a new bag folder")
    ts = get_typestore(Stores.ROS2_KILTED)
    Header, Time = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    kind = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    t0, period, n = time.time_ns(), int(1e9 / fps), 0
    with Writer(path, version=9) as writer:
        conn = writer.add_connection(topic, kind, typestore=ts)
        for frame in source:
            if 0 < max_frames <= n:
                break
            t = t0 + n * period
            header = Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id=frame_id)
            if compressed:
                data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
                msg = ts.types[kind](header=header, format="jpeg", data=np.frombuffer(data.tobytes(), np.uint8))
            else:
                h, w = frame.shape[:2]
                msg = ts.types[kind](header=header, height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
                                     data=np.frombuffer(np.ascontiguousarray(frame).tobytes(), np.uint8))
            writer.write(conn, t, ts.serialize_cdr(msg, kind))
            n += 1
    return n


class Player(Node):
    def __init__(self, args):
        super().__init__("dytrack_video_player", namespace=args.namespace)
        self.args = args
        qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.BEST_EFFORT if args.qos == "sensor_data"
                         else ReliabilityPolicy.RELIABLE)
        if args.compressed:
            self.image_pub = self.create_publisher(CompressedImage, args.image_topic.rstrip("/") + "/compressed", qos)
        else:
            self.image_pub = self.create_publisher(Image, args.image_topic, qos)
        tracker = args.target_topic.rsplit("/", 1)[0] if "/" in args.target_topic else ""
        self.set_target = self.create_client(SetTarget, f"{tracker}/set_target" if tracker else "set_target")
        self.reset = self.create_client(Trigger, f"{tracker}/reset" if tracker else "reset")
        self.create_subscription(TrackedTarget, args.target_topic, self.on_target, 50)
        self.results = {}
        self.frame_index = {}                # stamp -> index of the published frame

    def publish_frame(self, frame, index: int):
        """Publish one frame stamped now; returns (stamp, message)."""
        stamp = self.get_clock().now().to_msg()
        if self.args.compressed:
            msg = CompressedImage()
            msg.header.stamp, msg.header.frame_id, msg.format = stamp, self.args.frame_id, "jpeg"
            msg.data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        else:
            msg = bgr_to_image(frame, None, Image)
            msg.header.stamp, msg.header.frame_id = stamp, self.args.frame_id
        self.frame_index[(stamp.sec, stamp.nanosec)] = index
        self.image_pub.publish(msg)
        return stamp, msg

    def start_track(self, frame, box):
        """Publish the first frame and have ~/set_target take the box on it. (stamp used, None) or (None, why not)."""
        deadline = time.monotonic() + self.args.init_timeout
        while not self.set_target.service_is_ready() and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.1)
        service = self.resolve_service_name(self.set_target.srv_name)
        if not self.set_target.service_is_ready():
            return None, (f"no service {service}: is the tracker running and active, in this namespace "
                          "(--namespace)?")
        why = ""
        for attempt in range(1, self.args.init_tries + 1):
            stamp, msg = self.publish_frame(frame, 0)     # a fresh stamp each try: the box names this very frame
            req = SetTarget.Request()
            req.box.header.stamp, req.box.header.frame_id = stamp, self.args.frame_id
            req.box.x, req.box.y, req.box.width, req.box.height = box
            future, again = self.set_target.call_async(req), time.monotonic() + 0.25
            while not future.done() and time.monotonic() < deadline:
                rclpy.spin_once(self, timeout_sec=0.02)
                if time.monotonic() > again:              # lost on the way (best effort)? the same frame again
                    self.image_pub.publish(msg)
                    again = time.monotonic() + 0.25
            if not future.done():
                self.set_target.remove_pending_request(future)
                late = f"{service} did not answer within {self.args.init_timeout:g} s"
                return None, late + (f" ({why})" if why else "")
            answer = future.result()
            used = re.search(r"initialised on frame (\d+)\.(\d+)", answer.message)
            if answer.success and used and (int(used.group(1)), int(used.group(2))) == (stamp.sec, stamp.nanosec):
                print(f"init box taken: {answer.message}", flush=True)
                return stamp, None
            why = (f"the node took the box on frame {used.group(1)}.{used.group(2)}, not on this player's first frame"
                   if answer.success else answer.message)
            print(f"init box try {attempt} of {self.args.init_tries}: {why}", flush=True)
            if time.monotonic() >= deadline:
                break
        return None, why

    def stop_tracking(self) -> None:
        """The box was not set: the node must not go on following an earlier stream's target in this video."""
        if self.reset.service_is_ready():
            future = self.reset.call_async(Trigger.Request())
            end = time.monotonic() + 3.0
            while not future.done() and time.monotonic() < end:
                rclpy.spin_once(self, timeout_sec=0.05)
            if future.done() and future.result().success:
                print("tracking stopped on the node (it had no target of this video)", flush=True)

    def on_target(self, msg: TrackedTarget):
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.results[key] = msg
        if self.args.print_results and key in self.frame_index:      # not results for another stream's frames
            print(f"frame {self.frame_index[key]} t={msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d} "
                  f"box=[{msg.x:.1f}, {msg.y:.1f}, {msg.width:.1f}, {msg.height:.1f}] "
                  f"stage={msg.stages_run}/{msg.num_stages} "
                  f"score={msg.score:.2f} state={STATE_LABEL.get(msg.state, msg.state)} "
                  f"inference={msg.inference_ms:.1f}ms latency={msg.latency_ms:.1f}ms "
                  f"camera_latency={msg.camera_latency_ms:.1f}ms", flush=True)


IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def video_frames(video: str):
    """(frames, fps) of a video file or camera index."""
    source = int(video) if video.isdigit() else video
    if isinstance(source, str) and not os.path.isfile(source):
        sys.exit(f"video not found: {source}")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        sys.exit(f"cannot open video {video}")

    def frames():
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    return frames(), cap.get(cv2.CAP_PROP_FPS) or 30.0


def mcap_without_checksums(path: str) -> bool:
    """True when an mcap file's chunks carry no CRC (rosbags' writer stores none): damage inside a message's bytes
    then cannot be detected. Walks the record headers only (opcode, length), reading each chunk's CRC field."""
    import struct
    files = [path] if path.endswith(".mcap") else [os.path.join(path, f) for f in sorted(os.listdir(path))
                                                   if f.endswith(".mcap")] if os.path.isdir(path) else []
    for name in files:
        try:
            with open(name, "rb") as f:
                if f.read(8) != b"\x89MCAP0\r\n":
                    continue
                crcs = []
                while True:
                    head = f.read(9)
                    if len(head) < 9:
                        break
                    opcode, length = head[0], struct.unpack("<Q", head[1:])[0]
                    if opcode == 0x06 and length >= 28:          # Chunk: start, end, uncompressed size, CRC
                        crcs.append(struct.unpack("<I", f.read(28)[24:28])[0])
                        f.seek(length - 28, 1)
                    else:
                        f.seek(length, 1)
                    if opcode == 0x0F:                             # Footer
                        break
            if crcs and not any(crcs):
                return True
        except OSError:
            continue
    return False


# what playing a bag found wrong with it (a non-zero exit at the end)
BAG_DAMAGE = {"skipped": 0, "error": "", "stopped_early": False}


def bag_frames(path: str, topic: str = ""):
    """(frames, fps) of a bag's camera topic: frames decoded to BGR, fps from the recorded times."""
    from pathlib import Path

    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore
    from .image_conversion import decode_compressed, image_to_bgr
    if not os.path.exists(path):
        sys.exit(f"bag not found: {path}")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "metadata.yaml")):
        sys.exit(f"cannot read bag {path}: it has no metadata.yaml (not a rosbag2 folder, or its metadata was lost: "
                 "`ros2 bag reindex` rebuilds it)")
    try:
        reader = AnyReader([Path(path)], default_typestore=get_typestore(Stores.ROS2_KILTED))
        reader.open()
    except Exception as exc:   # rosbags raises its own and sqlite's/mcap's errors for truncated or corrupt bags
        sys.exit(f"cannot read bag {path}: {type(exc).__name__}: {exc}")
    cameras = [c for c in reader.connections if c.msgtype in IMAGE_TYPES and (not topic or c.topic == topic)]
    if not cameras:
        found = ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections) or "nothing"
        sys.exit(f"no {'topic ' + topic if topic else 'Image or CompressedImage topic'} in {path}; it holds {found}")
    camera = cameras[0]
    # n frames span n - 1 intervals (n / duration reads 10.2 fps for a 10 fps recording)
    fps = (camera.msgcount - 1) / max((reader.duration or 1) / 1e9, 1e-3) if camera.msgcount > 1 else 30.0

    def frames():
        read = 0
        try:
            for conn, _, raw in reader.messages(connections=[camera]):
                read += 1
                try:
                    msg = reader.deserialize(raw, conn.msgtype)
                    frame = (decode_compressed(bytes(msg.data), msg.format) if conn.msgtype.endswith("CompressedImage")
                             else image_to_bgr(msg))
                except Exception as exc:   # one damaged message: skip it, count it, go on
                    BAG_DAMAGE["skipped"] += 1
                    print(f"bag message {read} skipped as corrupt: {type(exc).__name__}: {exc}", flush=True)
                    continue
                yield frame
        except Exception as exc:          # the bag itself breaks mid-play (a truncated or corrupt file)
            BAG_DAMAGE["error"] = f"{type(exc).__name__}: {exc}"
            print(f"bag {path} is damaged after {read} messages: {BAG_DAMAGE['error']}", flush=True)
        finally:                         # also when the player stops early (--max-frames, Ctrl-C)
            reader.close()
        if not BAG_DAMAGE["error"] and read < camera.msgcount and not BAG_DAMAGE["stopped_early"]:
            BAG_DAMAGE["error"] = f"only {read} of the {camera.msgcount} messages its index lists could be read"
            print(f"bag {path} is damaged: {BAG_DAMAGE['error']}", flush=True)
    print(f"playing {camera.topic} ({camera.msgtype}, {camera.msgcount} frames) from {path}", flush=True)
    if mcap_without_checksums(path):
        print(f"warning: {path} is an mcap bag without chunk checksums: damage inside its messages cannot be "
              "detected (ros2 bag record's mcap writer stores them)", flush=True)
    return frames(), fps


def main(argv=None):
    args = parse_args(argv)
    source, fps = bag_frames(args.bag, args.bag_topic) if args.bag else video_frames(args.video)
    fps = args.rate or fps
    if args.write_bag:
        topic = args.bag_topic or "/camera/image_raw"
        n = write_bag(args.write_bag, source, fps, topic, args.compressed, args.frame_id, args.max_frames)
        print(f"wrote {n} frames to {args.write_bag} ({topic}, {fps:.1f} fps)", flush=True)
        if not n:
            sys.exit(f"play_video: no frame read, nothing written to {args.write_bag}")
        return 0
    rclpy.init()
    node = Player(args)
    deadline = time.monotonic() + args.wait_timeout
    while node.image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if node.image_pub.get_subscription_count() == 0:
        print(f"no subscriber on {node.image_pub.topic_name} after {args.wait_timeout:.0f} s; playing anyway",
              flush=True)
    else:   # matched here does not yet mean matched there: let discovery finish so the first frame is not lost
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.05)
    frames, stamps, published = [], [], 0
    period = 1.0 / fps
    next_t = time.monotonic()
    try:
        for frame in source:
            if 0 < args.max_frames <= published:
                BAG_DAMAGE["stopped_early"] = True
                break
            if published == 0 and args.init_box:
                stamp, why = node.start_track(frame, args.init_box)
                if stamp is None:
                    node.stop_tracking()
                    node.destroy_node()
                    rclpy.try_shutdown()
                    sys.exit(f"play_video: the init box was not set: {why}")
                node.results.clear()          # anything before the answer was the node's earlier target
                next_t = time.monotonic()
            else:
                stamp, _ = node.publish_frame(frame, published)
            if args.output:
                frames.append(frame)
                stamps.append((stamp.sec, stamp.nanosec))
            published += 1
            next_t += period
            while True:  # keep receiving results until the next frame is due
                remaining = next_t - time.monotonic()
                if remaining <= 0:
                    break
                rclpy.spin_once(node, timeout_sec=min(remaining, 0.02))
        end = time.monotonic() + args.linger
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    except KeyboardInterrupt:
        pass
    # tracking results for this player's frames only: not the node's IDLE notices (at start, after a reset), nor
    # results for another stream's frames
    results = [r for key, r in node.results.items() if r.state != TrackedTarget.STATE_IDLE and key in node.frame_index]
    if results:
        stages = np.array([r.stages_run for r in results])
        lat = np.array([r.latency_ms for r in results])
        inf = np.array([r.inference_ms for r in results])
        hist = np.bincount(stages, minlength=results[0].num_stages + 1)[1:]
        print(f"summary: {published} frames published at {fps:.1f} fps, {len(results)} results; exit stages "
              f"{hist.tolist()} (mean {stages.mean():.2f} of {results[0].num_stages}); inference p50 "
              f"{np.median(inf):.1f} ms; node latency p50 {np.median(lat):.1f} ms p95 {np.percentile(lat, 95):.1f} ms",
              flush=True)
    else:
        print(f"summary: {published} frames published, no tracker results received on "
              f"{node.resolve_topic_name(args.target_topic)} (is the tracker running, in this namespace?)", flush=True)
    if args.output and frames:
        write_video(args.output, frames, stamps, node.results, fps, args.init_box)
        print(f"annotated video: {args.output}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    problems = []
    if args.bag and (BAG_DAMAGE["error"] or BAG_DAMAGE["skipped"]):
        problems.append(f"the bag is damaged ({BAG_DAMAGE['skipped']} messages skipped as corrupt"
                        + (f"; {BAG_DAMAGE['error']}" if BAG_DAMAGE["error"] else "") + ")")
    if args.print_results and not results and published:
        problems.append("no tracker results received")
    if problems:
        sys.exit("play_video: " + "; ".join(problems))


def write_video(path, frames, stamps, results, fps, init_box=None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.endswith(".mp4") else "MJPG"))
    writer = cv2.VideoWriter(path, fourcc, fps, (w, h))
    for i, (frame, key) in enumerate(zip(frames, stamps)):
        if key in results:
            draw_target(frame, results[key])
        elif i == 0 and init_box:             # the frame the target was given on: its box, in white
            x, y, bw, bh = (int(round(v)) for v in init_box)
            cv2.rectangle(frame, (x, y), (x + bw, y + bh), (255, 255, 255), 2)
            cv2.putText(frame, "init box", (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        writer.write(frame)
    writer.release()


if __name__ == "__main__":
    main()
