"""Evaluate a launch file where launch/launch_ros are not installable (PyPI's 'launch' is an unrelated package).

Only used when `import launch_ros` fails. The stand-ins live in the package (dytrack_ros/ros/launcher.py, the
`dytrack-launch` command): they record what the launch file gives them and turn each Node into the command line
`ros2 launch` would run, so a test can start the node the launch file describes, for real.
"""
from dytrack_ros.ros.launcher import (DeclareLaunchArgument, LaunchDescription, Node, OpaqueFunction,  # noqa: F401
                                      load_launch_description, node_commands)
