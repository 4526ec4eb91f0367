"""Recorded data: a ROS 2 bag (written here with `rosbags`, as `ros2 bag record` would store it) played into the
node gives the same boxes as the video player playing the video it was recorded from."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHIPPED_MODEL, ros_env
from ros_harness import NodeProcess

FRAMES = 21
BOX = re.compile(r"frame (\d+) t=\S+ box=\[([-\d.]+), ([-\d.]+), ([-\d.]+), ([-\d.]+)\] stage=(\d)/\d score=([\d.]+) state=(\w+)")


def write_bag(path, frames, topic, compressed=False, storage="sqlite3"):
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    ts = get_typestore(Stores.ROS2_KILTED)
    Header, Time = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    kind = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection(topic, kind, typestore=ts)
        other = writer.add_connection("/imu", "std_msgs/msg/String", typestore=ts)  # a bag holds other topics too
        for i, frame in enumerate(frames):
            t = 1_700_000_000 * 10**9 + i * 66_666_667
            header = Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id="camera")
            if compressed:
                msg = ts.types[kind](header=header, format="png",
                                     data=np.frombuffer(cv2.imencode(".png", frame)[1].tobytes(), np.uint8))
            else:
                h, w = frame.shape[:2]
                msg = ts.types[kind](header=header, height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
                                     data=np.frombuffer(frame.tobytes(), np.uint8))
            writer.write(conn, t, ts.serialize_cdr(msg, kind))
            writer.write(other, t, ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="x"), "std_msgs/msg/String"))


def play(tmp_path, source_args, init):
    """Run the node (reliable images: nothing dropped) and the player; the boxes it printed, frame by frame."""
    with NodeProcess(tmp_path, params=[f"model_path:={SHIPPED_MODEL}", "backend:=onnxruntime",
                                       "image_qos:=reliable"]) as node:
        cmd = [sys.executable, "-m", "dytrack_ros.ros.play_video", *source_args, "--rate", "8", "--qos", "reliable",
               "--image-topic", f"{node.namespace}/image", "--init-topic", f"{node.namespace}/init_box",
               "--target-topic", f"{node.namespace}/dytrack_tracker/target", "--init-box", *map(str, init),
               "--print-results", "--max-frames", str(FRAMES)]
        run = subprocess.run(cmd, cwd=ROOT, env=ros_env(), capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr + node.output()
    return run.stdout, {int(m.group(1)): tuple(float(x) for x in m.groups()[1:5]) for m in BOX.finditer(run.stdout)
                        if m.group(8) != "idle"}                     # the node's start-up IDLE notice


@pytest.mark.parametrize("compressed", [False, True])
def test_a_bag_plays_into_the_node_like_the_video_it_was_recorded_from(tmp_path, demo_walker, compressed):
    from dytrack_ros.data.photos import data_dir
    frames, init, _ = demo_walker
    bag = str(tmp_path / "flight")
    write_bag(bag, frames[:FRAMES], "/drone/camera/image_raw", compressed)
    out_bag, from_bag = play(tmp_path, ["--bag", bag, "--bag-topic", "/drone/camera/image_raw"], init)
    assert f"playing /drone/camera/image_raw ({'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'}, " \
           f"{FRAMES} frames)" in out_bag
    _, from_video = play(tmp_path, ["--video", os.path.join(data_dir(), "vtest.avi")], init)
    # every frame after the init one, unless the node skipped one (it keeps the newest frame only) in either run
    both = sorted(set(from_bag) & set(from_video))
    assert len(both) >= 0.8 * (FRAMES - 1) and 0 not in both, (out_bag, from_video)
    assert np.allclose([from_bag[i] for i in both], [from_video[i] for i in both], atol=0.051), (from_bag, from_video)
    # frames are stamped when published: camera-to-result latency is that of the node and transport, not seconds
    camera = [float(x) for x in re.findall(r"state=(?:tracking|lost) .*camera_latency=([\d.]+)ms", out_bag)]
    assert len(camera) >= 0.8 * (FRAMES - 1) and all(0 < c < 2000 for c in camera), camera


def test_a_bag_without_the_topic_says_what_it_holds(tmp_path, demo_walker):
    bag = str(tmp_path / "other")
    write_bag(bag, demo_walker[0][:2], "/cam/image")
    run = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.play_video", "--bag", bag, "--bag-topic", "/nope"],
                         cwd=ROOT, env=ros_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "no topic /nope" in run.stderr and "/cam/image (sensor_msgs/msg/Image)" in run.stderr


def damaged(path):
    """The bag's data file: sqlite3 (.db3) or mcap, whichever the writer made."""
    return next(os.path.join(path, f) for f in os.listdir(path) if f.endswith((".db3", ".mcap")))


def play_bag_alone(bag):
    """play_video on a bag with no tracker: (exit code, output); a short wait for a subscriber."""
    run = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.play_video", "--bag", bag, "--rate", "50",
                          "--wait-timeout", "0.5"], cwd=ROOT, env=ros_env(), capture_output=True, text=True,
                         timeout=120)
    return run.returncode, run.stdout + run.stderr


# an mcap bag whose writer stored no chunk checksums (rosbags writes none; `ros2 bag record` does, and the reader
# checks them) cannot show random bytes inside an image payload: the player warns that it cannot check (below)
DAMAGE = [(d, st) for d in ("truncated", "random bytes in the middle", "no data file", "no metadata.yaml")
          for st in ("sqlite3", "mcap") if (d, st) != ("random bytes in the middle", "mcap")]


def test_an_mcap_bag_without_checksums_is_played_with_a_warning(tmp_path, demo_walker):
    bag = str(tmp_path / "flight")
    write_bag(bag, demo_walker[0][:4], "/cam/image", storage="mcap")
    code, out = play_bag_alone(bag)
    assert "without chunk checksums" in out, out
    sqlite = str(tmp_path / "other")
    write_bag(sqlite, demo_walker[0][:2], "/cam/image")
    assert "checksums" not in play_bag_alone(sqlite)[1]


@pytest.mark.parametrize("damage,storage", DAMAGE)
def test_a_damaged_bag_ends_with_one_clear_line_and_a_non_zero_exit(tmp_path, demo_walker, damage, storage):
    bag = str(tmp_path / "flight")
    write_bag(bag, demo_walker[0][:12], "/cam/image", storage=storage)
    data = damaged(bag)
    size = os.path.getsize(data)
    if damage == "truncated":
        with open(data, "r+b") as f:
            f.truncate(size // 2)
    elif damage == "random bytes in the middle":
        with open(data, "r+b") as f:
            f.seek(size // 3)
            f.write(np.random.default_rng(0).integers(0, 256, min(65536, size // 3), dtype=np.uint8).tobytes())
    elif damage == "no metadata.yaml":         # printed a traceback (issue 37)
        os.remove(os.path.join(bag, "metadata.yaml"))
    else:
        os.remove(data)
    code, out = play_bag_alone(bag)
    assert code != 0, out
    assert "Traceback" not in out, out
    assert re.search(r"cannot read bag|is damaged|skipped as corrupt", out), out
    assert damage != "no metadata.yaml" or out.strip().endswith(
        "it has no metadata.yaml (not a rosbag2 folder, or its metadata was lost: `ros2 bag reindex` rebuilds it)")


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_an_intact_bag_plays_cleanly(tmp_path, demo_walker, storage):
    bag = str(tmp_path / "flight")
    write_bag(bag, demo_walker[0][:6], "/cam/image", storage=storage)
    code, out = play_bag_alone(bag)
    assert code == 0 and "damaged" not in out and "corrupt" not in out, out


@pytest.mark.parametrize("compressed", [False, True])
def test_a_test_bag_is_written_from_a_video_and_plays(tmp_path, demo_walker, compressed):
    """`play_video --video clip.mp4 --write-bag DIR` (README): the video's frames in a rosbag2 folder the player reads
    back (and `ros2 bag play` would); no ROS graph involved."""
    import cv2
    frames = demo_walker[0][:6]
    clip = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 15, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    bag = str(tmp_path / "test_bag")
    run = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.play_video", "--video", clip, "--write-bag", bag,
                          *(["--compressed"] if compressed else [])], cwd=ROOT, env=ros_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "wrote 6 frames to" in run.stdout, run.stdout + run.stderr
    kind = "CompressedImage" if compressed else "Image"
    code, out = play_bag_alone(bag)
    assert code == 0 and f"playing /camera/image_raw (sensor_msgs/msg/{kind}, 6 frames)" in out, out
    again = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.play_video", "--video", clip, "--write-bag", bag],
                           cwd=ROOT, env=ros_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "exists" in again.stderr, again.stderr      # never overwrites a bag

