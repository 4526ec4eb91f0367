"""The launch file: names a real executable and existing files, declares its arguments, and starts the node."""
import importlib.util
import os
import re
import subprocess
import time

import pytest

from conftest import ROOT, SHIPPED_MODEL, ros_env

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
    assert {"namespace", "image_topic", "init_topic", "model_path", "backend", "params_file"} <= declared
    (cmd,), args = node_commands(desc, {"namespace": "/launched", "image_topic": "/cam/image_raw",
                                        "model_path": SHIPPED_MODEL, "backend": "onnxruntime"},
                                 console_scripts=console_scripts())
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
    finally:
        proc.send_signal(2)
        proc.wait(10)
