"""Evaluate a launch file where launch/launch_ros are not installable (PyPI's 'launch' is an unrelated package).

Only used when `import launch_ros` fails. Provides just the classes our launch file uses, records what they
are given, and turns each Node into the command line `ros2 launch` would run (the executable mapped to this
checkout's entry point), so a test can start the node the launch file describes, for real.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types

from conftest import ROOT


class LaunchConfiguration:
    def __init__(self, name):
        self.name = name


class PathJoinSubstitution:
    def __init__(self, parts):
        self.parts = parts


class FindPackageShare:
    def __init__(self, package):
        self.package = package


class DeclareLaunchArgument:
    def __init__(self, name, default_value=None, description=""):
        self.name, self.default_value, self.description = name, default_value, description


class LaunchDescription:
    def __init__(self, entities):
        self.entities = list(entities)


class Node:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def _install():
    mods = {"launch": {"LaunchDescription": LaunchDescription}, "launch.actions": {"DeclareLaunchArgument": DeclareLaunchArgument},
            "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration, "PathJoinSubstitution": PathJoinSubstitution},
            "launch_ros": {}, "launch_ros.actions": {"Node": Node}, "launch_ros.substitutions": {"FindPackageShare": FindPackageShare}}
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


def resolve(value, args, share_dir):
    if isinstance(value, LaunchConfiguration):
        return resolve(args[value.name], args, share_dir)
    if isinstance(value, PathJoinSubstitution):
        return os.path.join(*[resolve(p, args, share_dir) for p in value.parts])
    if isinstance(value, FindPackageShare):
        return share_dir
    return value


def node_commands(description, overrides=None, share_dir=ROOT, console_scripts=None):
    args = {e.name: e.default_value for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    args.update(overrides or {})
    commands = []
    for node in (e for e in description.entities if isinstance(e, Node)):
        k = node.kwargs
        target = console_scripts[k["executable"]]          # "module:function" from setup.py
        module = target.split(":")[0]
        cmd = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={k['name']}"]
        ns = resolve(k.get("namespace", ""), args, share_dir)
        if ns:
            cmd += ["-r", f"__ns:={ns}"]
        for p in k.get("parameters", []):
            if isinstance(p, dict):
                for name, v in p.items():
                    cmd += ["-p", f"{name}:={resolve(v, args, share_dir)}"]
            else:
                cmd += ["--params-file", resolve(p, args, share_dir)]
        commands.append(cmd)
    return commands, args
