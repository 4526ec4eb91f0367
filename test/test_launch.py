"""The launch file starts the node it describes (test/launch_shim.py evaluates it where launch_ros is missing), and its
behaviour (launch_args.py, testable without `launch`, which is not on PyPI) and the shipped rviz
layout. On a ROS install, `ros2 launch dytrack_ros tracker.launch.py` runs the same functions."""
import ast
import importlib.util
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT, SHIPPED_MODEL, ros_env
from dytrack_ros.ros.launch_args import is_true, parameter_overrides, remappings
from dytrack_ros.ros.params import NodeParams


def test_empty_arguments_keep_the_parameter_file():
    assert parameter_overrides({"image_topic": "", "init_topic": "", "model_path": "", "backend": "",
                                "use_sim_time": "false"}) == {"use_sim_time": False}


def test_given_arguments_override_and_name_real_parameters():
    out = parameter_overrides({"image_topic": "/cam/image_raw", "backend": "openvino", "use_sim_time": "true"})
    assert out == {"image_topic": "/cam/image_raw", "backend": "openvino", "use_sim_time": True}
    assert set(out) - {"use_sim_time"} <= set(vars(NodeParams()))
    with pytest.raises(ValueError, match="true or false"):
        is_true("maybe")


def test_image_remapping_covers_raw_and_compressed():
    assert remappings({"image": ""}) == []
    assert remappings({"image": "/drone/cam/image_raw"}) == [("image", "/drone/cam/image_raw"),
                                                             ("image/compressed", "/drone/cam/image_raw/compressed")]


def test_launch_file_declares_every_argument_it_reads():
    source = open(os.path.join(ROOT, "launch", "tracker.launch.py")).read()
    tree = ast.parse(source)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    for name in ("namespace", "params_file", "image", "use_sim_time", "rviz"):
        assert f'"{name}"' in source


def test_rviz_layout_parses_and_shows_the_nodes_topics():
    layout = yaml.safe_load(open(os.path.join(ROOT, "config", "dytrack.rviz")))
    displays = layout["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert "/dytrack_tracker/debug_image" in topics          # the node's ~/debug_image, node name dytrack_tracker
    assert f"/{NodeParams().image_topic}" in topics
    assert all(d["Class"].startswith("rviz_default_plugins/") for d in displays)


LAUNCH = os.path.join(ROOT, "launch", "tracker.launch.py")


def console_scripts():
    text = open(os.path.join(ROOT, "setup.py")).read()
    return dict(re.findall(r'"(\w[\w-]*) = ([\w.]+:\w+)"', text))


def test_executable_is_installed_by_both_build_paths():
    assert console_scripts()["tracker_node"] == "dytrack_ros.ros.node:main"
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    assert "scripts/tracker_node" in cmake and os.access(os.path.join(ROOT, "scripts", "tracker_node"), os.X_OK)
    assert "install(DIRECTORY launch config models" in cmake


def test_launch_file_starts_the_node_it_describes(tmp_path):
    if importlib.util.find_spec("launch_ros") is not None:
        pytest.skip("launch_ros is installed: use `launch_test`/`ros2 launch` there")
    from launch_shim import DeclareLaunchArgument, load_launch_description, node_commands
    desc = load_launch_description(LAUNCH)
    declared = {e.name for e in desc.entities if isinstance(e, DeclareLaunchArgument)}
    assert {"namespace", "image_topic", "init_topic", "model_path", "backend", "params_file", "image",
            "use_sim_time", "rviz"} <= declared
    (cmd,), args = node_commands(desc, {"namespace": "/launched", "image": "/cam/image_raw",
                                        "model_path": SHIPPED_MODEL, "backend": "onnxruntime"},
                                 console_scripts=console_scripts())
    assert "image_topic:=" not in " ".join(cmd)          # not given: the YAML's image_topic stands
    params_file = cmd[cmd.index("--params-file") + 1]
    assert os.path.isfile(params_file), params_file
    log = open(tmp_path / "launched.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ros_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        text = ""
        for _ in range(200):
            text = open(tmp_path / "launched.log").read()
            if "tracking with" in text or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert "tracking with onnxruntime" in text, text
        assert "images on /cam/image_raw" in text and "init boxes on /launched/init_box" in text
        assert "[launched.dytrack_tracker]" in text
        # one node of that name: the launch's `-r __node:=dytrack_tracker` must not rename the ~/set_target helper
        # node too (issue 36: two /drone/dytrack_tracker nodes, 'Publisher already registered for node name')
        from ros_harness import RosTestGraph
        g = RosTestGraph("/launched")
        try:
            names = lambda: [(ns, n) for n, ns in g.node.get_node_names_and_namespaces() if ns == "/launched"]
            assert g.wait_for(lambda _g: ("/launched", "dytrack_tracker_services") in names(), 10), names()
            time.sleep(0.5)
            assert names().count(("/launched", "dytrack_tracker")) == 1, names()
        finally:
            g.close()
        assert "already registered" not in open(tmp_path / "launched.log").read()
    finally:
        proc.send_signal(2)
        proc.wait(10)


def test_rviz_argument_adds_rviz2_with_the_shipped_layout():
    if importlib.util.find_spec("launch_ros") is not None:
        pytest.skip("launch_ros is installed: use `ros2 launch` there")
    from launch_shim import load_launch_description, node_commands
    desc = load_launch_description(LAUNCH)
    assert len(node_commands(desc, console_scripts=console_scripts())[0]) == 1
    (_, rviz), _ = node_commands(desc, {"rviz": "true"}, console_scripts=console_scripts())
    assert rviz[:2] == ["rviz2", "rviz2"] and os.path.isfile(rviz[rviz.index("-d") + 1])


def readme_block_lines(start: str):
    """The command starting with `start`, continuation lines joined, comments dropped, as the README's quick start and
    docs/colcon.md both print it (they must agree: the line run here is the line in both)."""
    found = []
    for doc in ("README.md", os.path.join("docs", "colcon.md")):
        text = open(os.path.join(ROOT, doc)).read().replace("\\\n", " ")
        line = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith(start))
        found.append(line.split("#")[0].split())
    assert found[0] == found[1], ("README.md and docs/colcon.md print different commands", found)
    return found[0]


def test_readme_namespaced_launch_and_player_lines_work_as_written(tmp_path, demo_walker):
    """The README's (and docs/colcon.md's) `ros2 launch ... namespace:=/drone image:=...` and `play_video` lines, run
    as written (the launch through the shim, the player's video replaced by the demo clip): boxes come back."""
    if importlib.util.find_spec("launch_ros") is not None:
        pytest.skip("launch_ros is installed: use `ros2 launch` there")
    import cv2
    from launch_shim import load_launch_description, node_commands
    launch = readme_block_lines("ros2 launch dytrack_ros tracker.launch.py")
    overrides = dict(a.split(":=", 1) for a in launch[4:])
    assert overrides["namespace"] == "/drone" and overrides["image"] == "/drone/camera/image_raw"
    overrides.update(rviz="false", model_path=SHIPPED_MODEL, backend="onnxruntime")
    (cmd,), _ = node_commands(load_launch_description(LAUNCH), overrides, console_scripts=console_scripts())
    player = readme_block_lines("ros2 run dytrack_ros play_video")[4:]
    frames, init, _ = demo_walker
    clip = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 10, frames[0].shape[1::-1])
    for f in frames[:12]:
        writer.write(f)
    writer.release()
    player[player.index("--video") + 1] = clip
    at = player.index("--init-box")
    player[at + 1:at + 5] = [str(v) for v in init]
    log = open(tmp_path / "node.log", "w")
    node = subprocess.Popen(cmd, cwd=ROOT, env=ros_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        out = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.play_video", *player, "--wait-timeout", "60"],
                             cwd=ROOT, env=ros_env(), capture_output=True, text=True, timeout=150)
        assert out.returncode == 0, out.stdout + out.stderr + open(tmp_path / "node.log").read()
        assert "tracking" in out.stdout and "stage=" in out.stdout, out.stdout
    finally:
        node.send_signal(2)
        node.wait(10)


def test_every_command_is_installed_by_both_build_paths():
    """setup.py's console_scripts = CMake's three scripts + its DYTRACK_TOOLS list (colcon users get every command,
    under the same name)."""
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    tools = dict(re.findall(r'"([\w-]+)=([\w.]+)"', cmake.split("set(DYTRACK_TOOLS", 1)[1].split(")", 1)[0]))
    programs = cmake.split("install(PROGRAMS", 1)[1].split("DESTINATION")[0]
    scripts = {name: None for name in re.findall(r"scripts/(\w+)", programs)}
    entry = {name: target.split(":")[0] for name, target in console_scripts().items()}
    assert set(tools) | set(scripts) == set(entry)
    assert all(entry[name] == module for name, module in tools.items())


def test_launcher_knows_every_node_executable_the_launch_files_name():
    from dytrack_ros.ros.launcher import EXECUTABLES
    scripts = console_scripts()
    assert all(scripts[name].split(":")[0] == module for name, module in EXECUTABLES.items())
    for name in ("tracker.launch.py", "follow.launch.py"):
        text = open(os.path.join(ROOT, "launch", name)).read()
        ours = set(re.findall(r'package="dytrack_ros", executable="(\w+)"', text))
        assert ours and ours <= set(EXECUTABLES), (name, ours)


def test_dytrack_launch_runs_the_launch_file_without_ros2_and_stops_on_ctrl_c(tmp_path):
    """`dytrack-launch tracker.launch.py namespace:=... image:=...` (README, for users without the ros2 CLI): the node
    starts as the launch file describes it; SIGINT stops it cleanly; an unknown argument is refused."""
    cmd = [sys.executable, "-m", "dytrack_ros.ros.launcher", "tracker.launch.py", "namespace:=/dl_test",
           "image:=/dl_test/camera/image_raw", f"model_path:={SHIPPED_MODEL}", "backend:=onnxruntime"]
    bad = subprocess.run(cmd[:4] + ["nope:=1"], cwd=ROOT, env=ros_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown launch argument(s) ['nope']" in bad.stderr, bad.stderr
    log_path = tmp_path / "launch.log"
    proc = subprocess.Popen(cmd, cwd="/", env=ros_env(), stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            text = log_path.read_text()
            if "tracking with onnxruntime" in text or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert "[dl_test.dytrack_tracker]" in text and "images on /dl_test/camera/image_raw" in text, text
    finally:
        proc.send_signal(2)
        assert proc.wait(20) == 0, log_path.read_text()

