"""ros2 launch dytrack_ros follow.launch.py namespace:=/drone image:=/drone/camera/image_raw [picker:=true]
                                            [follower_params:=my_robot.yaml] [cmd_vel:=/drone/cmd_vel]

The tracker (as tracker.launch.py starts it, config/tracker.yaml) and the reference follower (config/follower.yaml)
in one namespace: the follower reads <namespace>/dytrack_tracker/target and the tracker's init topic, and publishes
<namespace>/cmd_vel (Twist); `cmd_vel:=` remaps it to the robot's topic. picker:=true adds the browser target picker
on the same camera topic (it logs the address to open).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from dytrack_ros.ros.launch_args import is_true, parameter_overrides, remappings

SHARE = FindPackageShare("dytrack_ros")
ARGUMENTS = {
    "namespace": ("", "namespace for the tracker, the follower, the picker and their topics"),
    "params_file": (PathJoinSubstitution([SHARE, "config", "tracker.yaml"]), "the tracker's parameter file"),
    "follower_params": (PathJoinSubstitution([SHARE, "config", "follower.yaml"]), "the follower's parameter file"),
    "image": ("", "the camera topic (remaps the tracker's image topic; the picker shows it)"),
    "cmd_vel": ("", "remap the follower's cmd_vel to the robot's velocity topic"),
    "picker": ("false", "true: also start the browser target picker"),
    "use_sim_time": ("false", "true: use /clock (playing a bag)"),
}


def nodes(context):
    v = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    sim_time = {"use_sim_time": is_true(v["use_sim_time"])}
    out = [Node(package="dytrack_ros", executable="tracker_node", name="dytrack_tracker", namespace=v["namespace"],
                output="screen", parameters=[v["params_file"], parameter_overrides(v)], remappings=remappings(v)),
           Node(package="dytrack_ros", executable="follower_node", name="dytrack_follower", namespace=v["namespace"],
                output="screen", parameters=[v["follower_params"], sim_time],
                remappings=[("cmd_vel", v["cmd_vel"]), ("cmd_vel_stamped", v["cmd_vel"] + "_stamped")]
                if v["cmd_vel"].strip() else [])]
    if is_true(v["picker"]):
        out.append(Node(package="dytrack_ros", executable="target_picker", name="dytrack_target_picker",
                        namespace=v["namespace"], output="screen",
                        parameters=[{"image_topic": v["image"].strip() or "image", **sim_time}]))
    return out


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=desc)
                for name, (default, desc) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
