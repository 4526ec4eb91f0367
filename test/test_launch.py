"""The launch file's behaviour (launch_args.py, testable without `launch`, which is not on PyPI) and the shipped rviz
layout. On a ROS install, `ros2 launch dytrack_ros tracker.launch.py` runs the same functions."""
import ast
import os

import pytest
import yaml

from conftest import ROOT
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
