"""ros2 launch dytrack_ros tracker.launch.py [namespace:=/drone] [image_topic:=/camera/image_raw]
                                             [init_topic:=init_box] [model_path:=...] [backend:=auto]
                                             [params_file:=.../tracker.yaml]"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    "namespace": ("", "namespace for the node and its topics"),
    "image_topic": ("image", "sensor_msgs/Image topic (CompressedImage: <topic>/compressed with use_compressed)"),
    "init_topic": ("init_box", "dytrack_ros/msg/TargetBox topic that (re)initialises tracking"),
    "model_path": ("", "model folder; empty = the shipped models/dytrack_small"),
    "backend": ("auto", "auto | tensorrt | onnxruntime | openvino | torch"),
    "params_file": (PathJoinSubstitution([FindPackageShare("dytrack_ros"), "config", "tracker.yaml"]),
                    "parameter file"),
}


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=desc)
                for name, (default, desc) in ARGUMENTS.items()]
    node = Node(
        package="dytrack_ros",
        executable="tracker_node",
        name="dytrack_tracker",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"),
                    {name: LaunchConfiguration(name) for name in ("image_topic", "init_topic", "model_path", "backend")}],
    )
    return LaunchDescription(declared + [node])
