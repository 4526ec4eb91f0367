"""dytrack-launch: run this package's launch files where `ros2 launch` is missing (launch/launch_ros are not on PyPI).

    dytrack-launch tracker.launch.py namespace:=/drone image:=/drone/camera/image_raw
    dytrack-launch follow.launch.py namespace:=/drone image:=/drone/camera/image_raw picker:=true
    dytrack-launch tracker.launch.py --print namespace:=/drone      # the command lines only

It evaluates the launch file with small stand-ins for the few launch/launch_ros classes our files use, turns each
Node into the command line `ros2 launch` would run (the executable as this Python's module, the node's name,
namespace, parameter files, parameters and remappings as --ros-args), starts them, prints their output, and stops
them all with Ctrl-C (SIGINT to each, as ros2 launch does). A file name without a folder is looked up in this
package's launch/ folder. Nodes of other packages (rviz2) are started when their executable is on PATH, else skipped
with a line saying so. On a ROS install use `ros2 launch dytrack_ros ...`: it runs the same launch files.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from typing import Dict, List, Optional, Tuple

# the checkout (or editable install) holding launch/ and config/ beside the package; colcon installs them under the
# package's share folder, found through the ament index
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# this package's executables (setup.py's console_scripts of the same names; test/test_launch.py checks)
EXECUTABLES = {"tracker_node": "dytrack_ros.ros.node", "follower_node": "dytrack_ros.ros.follower",
               "target_picker": "dytrack_ros.ros.target_picker", "play_video": "dytrack_ros.ros.play_video"}


class Context:
    """What OpaqueFunction callbacks get: the launch arguments' values."""

    def __init__(self, args, share_dir):
        self.args, self.share_dir = args, share_dir


def resolve(value, context):
    return value.perform(context) if hasattr(value, "perform") else value


class LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return resolve(context.args[self.name], context)


class PathJoinSubstitution:
    def __init__(self, parts):
        self.parts = parts

    def perform(self, context):
        return os.path.join(*[resolve(p, context) for p in self.parts])


class FindPackageShare:
    def __init__(self, package):
        self.package = package

    def perform(self, context):
        return context.share_dir


class DeclareLaunchArgument:
    def __init__(self, name, default_value=None, description=""):
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction:
    def __init__(self, function):
        self.function = function


class LaunchDescription:
    def __init__(self, entities):
        self.entities = list(entities)


class Node:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def _install():
    mods = {"launch": {"LaunchDescription": LaunchDescription},
            "launch.actions": {"DeclareLaunchArgument": DeclareLaunchArgument, "OpaqueFunction": OpaqueFunction},
            "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration,
                                     "PathJoinSubstitution": PathJoinSubstitution},
            "launch_ros": {}, "launch_ros.actions": {"Node": Node},
            "launch_ros.substitutions": {"FindPackageShare": FindPackageShare}}
    saved = {name: sys.modules.get(name) for name in mods}
    for name, attrs in mods.items():
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
    return saved


def load_launch_description(path):
    saved = _install()
    try:
        spec = importlib.util.spec_from_file_location("launch_file", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.generate_launch_description()
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


def node_commands(description, overrides=None, share_dir=ROOT, console_scripts=None):
    """The command line of every Node the description starts (OpaqueFunctions are run with the arguments), and the
    arguments' values. Executables not in console_scripts (name -> 'module:function'; default: EXECUTABLES) are
    returned as [package, executable, *arguments]."""
    scripts = console_scripts if console_scripts is not None else {k: f"{v}:main" for k, v in EXECUTABLES.items()}
    args = {e.name: e.default_value for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    unknown = set(overrides or {}) - set(args)
    if unknown:
        raise ValueError(f"unknown launch argument(s) {sorted(unknown)}; this file takes {sorted(args)}")
    args.update(overrides or {})
    context = Context(args, share_dir)
    nodes = [e for e in description.entities if isinstance(e, Node)]
    for e in description.entities:
        if isinstance(e, OpaqueFunction):
            nodes += [n for n in e.function(context) if isinstance(n, Node)]
    commands = []
    for node in nodes:
        k = node.kwargs
        target = scripts.get(k["executable"])
        if target is None:                                  # e.g. rviz2: not ours, reported as is
            commands.append([k["package"], k["executable"], *k.get("arguments", [])])
            continue
        cmd = [sys.executable, "-m", target.split(":")[0], "--ros-args", "-r", f"__node:={k['name']}"]
        ns = resolve(k.get("namespace", ""), context)
        if ns:
            cmd += ["-r", f"__ns:={ns}"]
        for p in k.get("parameters", []):
            if isinstance(p, dict):
                for name, v in p.items():
                    v = resolve(v, context)
                    cmd += ["-p", f"{name}:={str(v).lower() if isinstance(v, bool) else v}"]
            else:
                cmd += ["--params-file", resolve(p, context)]
        for src, dst in k.get("remappings", []):
            cmd += ["-r", f"{src}:={dst}"]
        commands.append(cmd)
    return commands, args


def find_launch_file(name: str) -> Tuple[str, str]:
    """(launch file path, the share folder its FindPackageShare stands for: the folder above launch/)."""
    candidates = [name] if os.path.dirname(name) else [os.path.join(ROOT, "launch", name)]
    if not os.path.dirname(name):
        try:
            from ament_index_python.packages import get_package_share_directory
            candidates.append(os.path.join(get_package_share_directory("dytrack_ros"), "launch", name))
        except Exception:                      # not installed through colcon (or no ament index here)
            pass
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        raise FileNotFoundError(f"no launch file {name} (looked for {', '.join(candidates)})")
    return path, os.path.dirname(os.path.dirname(os.path.abspath(path)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("launch_file", help="tracker.launch.py, follow.launch.py or a path")
    p.add_argument("arguments", nargs="*", metavar="NAME:=VALUE", help="launch arguments, as for ros2 launch")
    p.add_argument("--print", action="store_true", help="print the command lines and exit")
    args = p.parse_intermixed_args(argv)
    bad = [a for a in args.arguments if ":=" not in a]
    if bad:
        p.error(f"launch arguments are NAME:=VALUE, got {bad}")
    return args


def start(commands: List[List[str]]) -> List[subprocess.Popen]:
    procs = []
    for cmd in commands:
        if cmd[0] != sys.executable:
            exe = shutil.which(cmd[1])
            if exe is None:
                print(f"dytrack-launch: {cmd[1]} ({cmd[0]}) is not installed here: skipped", flush=True)
                continue
            cmd = [exe, *cmd[2:]]
        print("dytrack-launch: " + " ".join(cmd), flush=True)
        procs.append(subprocess.Popen(cmd))
    return procs


def stop(procs: List[subprocess.Popen], timeout: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    end = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv=None) -> Optional[int]:
    args = parse_args(argv)
    try:
        path, share = find_launch_file(args.launch_file)
        overrides: Dict[str, str] = dict(a.split(":=", 1) for a in args.arguments)
        commands, _ = node_commands(load_launch_description(path), overrides, share_dir=share)
    except (FileNotFoundError, ValueError) as exc:
        print(f"dytrack-launch: {exc}", file=sys.stderr)
        return 2
    if args.print:
        for cmd in commands:
            print(" ".join(cmd))
        return 0
    procs = start(commands)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(0.2)
    except KeyboardInterrupt:                  # Ctrl-C or SIGTERM: every node stops, as with ros2 launch
        stop(procs)
        return 0
    failed = [p.returncode for p in procs if p.returncode]
    return failed[0] if failed else (0 if procs else 1)


def _interrupt(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
