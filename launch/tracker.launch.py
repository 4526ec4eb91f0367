"""ros2 launch dytrack_ros tracker.launch.py [namespace:=/drone] [image:=/camera/image_raw] [use_sim_time:=true]
                                             [params_file:=my.yaml] [image_topic:=...] [init_topic:=...]
                                             [model_path:=...] [backend:=...] [rviz:=true] [autostart:=false]

Parameters come from params_file (default: the installed config/tracker.yaml); image_topic, init_topic,
model_path and backend override it only when given. What the arguments do: dytrack_ros/ros/launch_args.py.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from dytrack_ros.ros.launch_args import PARAMETER_ARGUMENTS, is_true, parameter_overrides, remappings

SHARE = FindPackageShare("dytrack_ros")
ARGUMENTS = {
    "namespace": ("", "namespace for the node and its topics"),
    "params_file": (PathJoinSubstitution([SHARE, "config", "tracker.yaml"]), "parameter file"),
    "image": ("", "remap the node's image topic (and <image>/compressed) to this topic"),
    "use_sim_time": ("false", "true: use /clock (playing a bag)"),
    "rviz": ("false", "true: also start rviz2 with config/dytrack.rviz"),
    "autostart": ("", "false: leave the (lifecycle) node unconfigured for a lifecycle manager; empty: the YAML's"),
    **{arg: ("", f"override the parameter file's {param} (empty: keep it)") for arg, param in PARAMETER_ARGUMENTS.items()},
}


def nodes(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    tracker = Node(package="dytrack_ros", executable="tracker_node", name="dytrack_tracker",
                   namespace=values["namespace"], output="screen",
                   parameters=[values["params_file"], parameter_overrides(values)], remappings=remappings(values))
    out = [tracker]
    if is_true(values["rviz"]):
        out.append(Node(package="rviz2", executable="rviz2", name="rviz2", namespace=values["namespace"],
                        arguments=["-d", PathJoinSubstitution([SHARE, "config", "dytrack.rviz"]).perform(context)],
                        parameters=[{"use_sim_time": is_true(values["use_sim_time"])}]))
    return out


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=desc)
                for name, (default, desc) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
