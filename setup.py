"""pip / setuptools install of the Python package (models, tracker, backends, node, tools).

The messages in msg/ are built by CMake (colcon on a ROS install; scripts/build_interfaces.sh here)."""
import glob
import os

from setuptools import find_packages, setup


def model_files():
    """Every folder under models/ (third_party/fear_xs too) is installed as share/dytrack_ros/models/<path>/: a
    composed model names its first exit's and FEAR-XS's files by paths relative to its own folder."""
    out = []
    for folder, _dirs, names in sorted(os.walk("models")):
        files = [os.path.join(folder, n) for n in sorted(names)]
        if files and folder != "models":
            out.append((os.path.join("share/dytrack_ros", folder), files))
    return out

def package_version() -> str:
    """The one version number: package.xml's (dytrack_ros.__version__ is checked against it in the tests)."""
    import re
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "package.xml")) as f:
        return re.search(r"<version>([^<]+)</version>", f.read()).group(1)


setup(
    name="dytrack_ros",
    version=package_version(),
    description="DyTrack dynamic early-exit transformer tracker with a ROS 2 node",
    license="Apache-2.0",
    packages=find_packages(include=["dytrack_ros", "dytrack_ros.*"]),
    package_data={"dytrack_ros.data": ["real_sequences.json"]},
    python_requires=">=3.10",
    # what the node, tracker, tools and training import (ROS itself comes from ROS or requirements-ros.txt)
    install_requires=["numpy", "opencv-contrib-python-headless", "pyyaml", "tqdm", "onnxruntime", "torch", "pillow",
                      "psutil", "matplotlib"],
    extras_require={"cpu-fast": ["openvino"], "bags": ["rosbags"], "export": ["onnx", "onnxscript"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/dytrack_ros"]),
        ("share/dytrack_ros", ["package.xml"]),
        ("share/dytrack_ros/launch", glob.glob("launch/*.py")),
        ("share/dytrack_ros/config", glob.glob("config/*.yaml") + glob.glob("config/*.xml")),
        *model_files(),
        ("share/dytrack_ros/msg", glob.glob("msg/*.msg")),
    ],
    entry_points={"console_scripts": [
        "tracker_node = dytrack_ros.ros.node:main",
        "play_video = dytrack_ros.ros.play_video:main",
        "target_picker = dytrack_ros.ros.target_picker:main",
        "dytrack-ctl = dytrack_ros.ros.ctl:main",
        "dytrack-launch = dytrack_ros.ros.launcher:main",
        "dytrack-train = dytrack_ros.training.train:main",
        "dytrack-export = dytrack_ros.backends.export:main",
        "dytrack-eval = dytrack_ros.evaluation.model_card:main",
        "dytrack-benchmark = dytrack_ros.evaluation.benchmark:main",
        "dytrack-montage = dytrack_ros.evaluation.montage:main",
        "dytrack-bench-backends = dytrack_ros.evaluation.backend_speed:main",
        "dytrack-bench-node = dytrack_ros.tools.node_latency:main",
        "dytrack-redetect-bench = dytrack_ros.evaluation.redetection:main",
        "dytrack-gpu-check = dytrack_ros.evaluation.gpu_check:main",
        "dytrack-tune = dytrack_ros.evaluation.tune:main",
        "dytrack-int8 = dytrack_ros.evaluation.int8:main",
        "follower_node = dytrack_ros.ros.follower:main",
        "dytrack-follow-sim = dytrack_ros.tools.follow_sim:main",
    ]},
)
