"""The ROS user's path: `colcon build` of this package in a fresh workspace, `source install/setup.bash`, then the
installed `lib/dytrack_ros/tracker_node` (what `ros2 run dytrack_ros tracker_node` starts) tracks over real DDS.

Here colcon (PyPI colcon-common-extensions) builds against the ament/rosidl wheels in the venv; on a robot the
same package builds against /opt/ros. The sources are copied into <ws>/src as a user's clone would be (CMake
refuses a source folder that contains the venv its include paths point into).
"""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, ros_env
from ros_harness import FRAME_PERIOD_NS, RosTestGraph, stop_process

PACKAGE_FILES = ("package.xml", "CMakeLists.txt", "msg", "srv", "dytrack_ros", "launch", "config", "models", "scripts")
VENV = os.path.dirname(os.path.dirname(sys.executable))


def colcon_env():
    import ros_wheels_bootstrapper
    env = ros_env()
    env.pop("PYTHONPATH", None)                       # only what setup.bash puts there
    env["AMENT_PREFIX_PATH"] = VENV
    env["CMAKE_PREFIX_PATH"] = VENV
    env["PATH"] = os.path.join(VENV, "bin") + os.pathsep + env["PATH"]
    env["LD_LIBRARY_PATH"] = ros_wheels_bootstrapper.get_ros_paths() + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    return env


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    if shutil.which("colcon", path=os.path.join(VENV, "bin")) is None:
        pytest.fail("colcon is not installed: scripts/setup.sh installs colcon-common-extensions (requirements-ros.txt)")
    ws = tmp_path_factory.mktemp("colcon_ws")
    src = ws / "src" / "dytrack_ros"
    for name in PACKAGE_FILES:
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, src / name)
    # exactly the venv command of docs/colcon.md: the script sets the variables colcon needs here
    env = ros_env()
    env.pop("PYTHONPATH", None)
    for name in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        env.pop(name, None)
    build = subprocess.run(["bash", os.path.join(ROOT, "scripts", "colcon_build.sh"), str(ws)], cwd=ws, env=env,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return ws


def sourced(ws, command):
    return ["bash", "-c", f"source {ws}/install/setup.bash && {command}"]


def test_colcon_build_installs_the_python_package_messages_and_share_files(workspace):
    install = workspace / "install" / "dytrack_ros"
    site = install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for path in (site / "dytrack_ros" / "ros" / "node.py", site / "dytrack_ros" / "msg",
                 site / "dytrack_ros" / "srv", install / "lib" / "dytrack_ros" / "tracker_node",
                 install / "share" / "dytrack_ros" / "launch" / "tracker.launch.py",
                 install / "share" / "dytrack_ros" / "config" / "tracker.yaml",
                 install / "share" / "dytrack_ros" / "models" / "dytrack_small" / "manifest.json"):
        assert path.exists(), path
    probe = subprocess.run(sourced(workspace, "cd / && python -c 'import dytrack_ros.ros.node as n; "
                                              "from dytrack_ros.srv import SetTarget; print(n.__file__)'"),
                           env=colcon_env(), capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(site)), probe.stdout     # the installed code, not the checkout
    tool = install / "lib" / "dytrack_ros" / "dytrack-redetect-bench"      # the tools are commands there too
    helped = subprocess.run(sourced(workspace, f"cd / && {tool} --help"), env=colcon_env(), capture_output=True,
                            text=True, timeout=120)
    assert helped.returncode == 0 and "Re-detection measured" in helped.stdout, helped.stderr


def test_installed_tracker_node_tracks(workspace, tmp_path, heldout_sequence):
    frames, boxes = heldout_sequence
    namespace = "/colcon_installed"
    log_path = tmp_path / "node.log"
    node_cmd = (f"cd / && exec {workspace}/install/dytrack_ros/lib/dytrack_ros/tracker_node --ros-args "
                f"-r __ns:={namespace} -p backend:=onnxruntime -p threads:=1")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(sourced(workspace, node_cmd), env=colcon_env(), stdout=log, stderr=subprocess.STDOUT)
    g = RosTestGraph(namespace)
    try:
        assert g.wait_for_subscriber(), log_path.read_text()
        g.send_init(list(boxes[0]), stamp_ns=10**12)
        tracked = lambda gr: sum(m.state == m.STATE_TRACKING for m in gr.targets) >= 5
        for start in range(0, len(frames), 10):   # best-effort images may be lost under load: more until 5 come back
            g.publish_frames(frames[start:start + 10], 10**12 + start * FRAME_PERIOD_NS)
            if g.wait_for(tracked, 5):
                break
        assert g.wait_for(tracked, 5), (log_path.read_text(), [(m.state, m.score) for m in g.targets])
        out = log_path.read_text()
        # the model came from the installed share folder, found through the ament index
        assert f"{workspace}/install/dytrack_ros/share/dytrack_ros/models/dytrack_small" in out, out
    finally:
        g.close()
        stop_process(proc)


def test_readme_source_line_runs_the_installed_commands_in_a_fresh_shell(workspace):
    """docs/colcon.md's `source .venv/bin/activate && source ~/ws/install/setup.bash`, in a shell with nothing else set:
    the installed commands (`#!/usr/bin/env python3`) get the venv's Python, rclpy and our messages (issue 36: without
    the venv line they ran the system python3, 'No module named rclpy')."""
    page = open(os.path.join(ROOT, "docs", "colcon.md")).read()
    line = next(ln.split("#")[0].strip() for ln in page.splitlines() if ln.strip().startswith("source .venv/bin/"))
    line = line.replace("~/ws", str(workspace))
    ctl = workspace / "install" / "dytrack_ros" / "lib" / "dytrack_ros" / "dytrack-ctl"
    fresh = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/local/bin:/usr/bin:/bin",
             "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    run = subprocess.run(["bash", "-c", f"cd {ROOT} && {line} && cd / && {ctl} --namespace /nobody_here --timeout 1 "
                                        "reset"], env=fresh, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "dytrack_tracker/reset is not available" in run.stderr, run.stdout + run.stderr
    # dytrack-launch finds the installed launch file and parameter file through the ament index
    launch = workspace / "install" / "dytrack_ros" / "lib" / "dytrack_ros" / "dytrack-launch"
    run = subprocess.run(["bash", "-c", f"cd {ROOT} && {line} && cd / && {launch} tracker.launch.py --print "
                                        "namespace:=/drone"], env=fresh, capture_output=True, text=True, timeout=120)
    share = workspace / "install" / "dytrack_ros" / "share" / "dytrack_ros"
    assert run.returncode == 0 and f"--params-file {share}/config/tracker.yaml" in run.stdout, run.stdout + run.stderr

