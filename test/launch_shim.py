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


class Context:
    """What OpaqueFunction callbacks get: the launch arguments' values."""

    def __init__(self, args, share_dir):
        self.args, self.share_dir = args, share_dir


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


def resolve(value, context):
    return value.perform(context) if hasattr(value, "perform") else value


def node_commands(description, overrides=None, share_dir=ROOT, console_scripts=None):
    """The command line of every Node the description starts (OpaqueFunctions are run with the arguments)."""
    args = {e.name: e.default_value for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    args.update(overrides or {})
    context = Context(args, share_dir)
    nodes = [e for e in description.entities if isinstance(e, Node)]
    for e in description.entities:
        if isinstance(e, OpaqueFunction):
            nodes += [n for n in e.function(context) if isinstance(n, Node)]
    commands = []
    for node in nodes:
        k = node.kwargs
        target = console_scripts.get(k["executable"]) if console_scripts else None
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
