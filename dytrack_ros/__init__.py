"""dytrack_ros: a dynamic (early-exit) vision-transformer tracker with a ROS 2 node.

Layers, bottom first; each imports only the layers LAYERS below names for it (test/test_layers.py checks every
import against LAYERS, the one list; the table in docs/api.md follows it):
  contract.py the staged interface, stage result, output layout, normalisation and the model folder's manifest
  model/      the DyTrack network (DyTrackNet) in plain PyTorch
  tracking/   the per-sequence tracker DyTracker (crops, exit policy, LOST state, box mapping)
  backends/   torch / ONNX Runtime / OpenVINO / TensorRT implementations of the staged interface; export
  runtime.py  model folder + backend name -> a ready DyTracker
  data/       dataset readers, real-sequence inventory and splits, photo generator, the pair sampler
  training/   losses, trainer                                  (training and evaluation do not import each other)
  evaluation/ metrics, peer trackers, benchmark harness, tuning, model card, montage, backend speed
  ros/        the ROS 2 node, its ROS-free session and scheduler, the video player, the target picker, dytrack-ctl
  tools/      measuring tools that drive the node from outside: the reliability check, node latency
"""
__version__ = "0.1.0"

# layer -> the layers it may import besides itself, bottom first (msg/srv: the interfaces rosidl generates)
LAYERS = {
    "contract": (),
    "model": ("contract",),
    "tracking": ("contract",),
    "backends": ("contract", "model"),
    "runtime": ("contract", "model", "tracking", "backends"),
    "data": ("contract", "model", "tracking"),
    "training": ("contract", "model", "tracking", "data"),
    "evaluation": ("contract", "model", "tracking", "backends", "runtime", "data"),
    "ros": ("contract", "model", "tracking", "backends", "runtime", "data", "evaluation", "msg", "srv"),
    "tools": ("contract", "model", "tracking", "backends", "runtime", "data", "evaluation", "ros", "msg", "srv"),
}

# The generated messages (dytrack_ros.msg) are installed by rosidl into site-packages/dytrack_ros, which may be
# a different folder from this source tree (editable installs, running from a checkout). Merge the two.
import pkgutil as _pkgutil

__path__ = _pkgutil.extend_path(__path__, __name__)
