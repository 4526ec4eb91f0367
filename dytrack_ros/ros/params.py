"""The node's parameters: names, defaults, descriptions, validation. config/tracker.yaml mirrors this table."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..backends import BACKEND_NAMES
from ..tracking.tracker import TrackerParams
from .image_conversion import DEFAULT_MAX_PIXELS

REPO_MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "models")
DEFAULT_MODEL = "dytrack_small"
QOS_CHOICES = ("sensor_data", "reliable")
DEVICE_CHOICES = ("auto", "cpu", "cuda")


class ParameterError(ValueError):
    pass


@dataclass
class NodeParams:
    model_path: str = ""                       # model folder; "" = the shipped models/dytrack_small
    backend: str = "auto"                      # auto | tensorrt | onnxruntime | openvino | torch
    device: str = "auto"                       # auto | cpu | cuda
    threads: int = 0                           # CPU threads for inference (0 = runtime default)
    fp16: bool = True                          # TensorRT engines in FP16 (LayerNorm/softmax kept FP32)
    exit_thresholds: List[float] = field(default_factory=list)   # per stage; [] = the model's defaults
    search_factor: float = 0.0                 # search area / target size; 0 = the model's default
    lost_threshold: float = TrackerParams.lost_threshold   # one default, the tracker's
    image_topic: str = "image"
    use_compressed: bool = False               # subscribe to <image_topic>/compressed (CompressedImage)
    init_topic: str = "init_box"
    image_qos: str = "sensor_data"             # sensor_data (best effort) | reliable
    publish_debug_image: bool = True           # annotated image on ~/debug_image, only while subscribed
    diagnostics_period: float = 1.0            # seconds between /diagnostics messages
    stale_after: float = 2.0                   # seconds without an image before /diagnostics reads STALE
    frame_buffer: int = 30                     # recent frames kept to match an init box's stamp
    log_results: bool = False                  # one log line per frame (box, stage, score, latency)
    max_image_pixels: int = DEFAULT_MAX_PIXELS         # frames (declared size for compressed ones) above this are refused
    min_image_side: int = 32                   # smaller frames are refused (a 1x1 or 8x8 "frame" is no camera image)
    future_tolerance: float = 1.0              # init boxes stamped further ahead of the node's clock are refused
    max_init_frame_age: float = 2.0            # an init box is not applied to a frame older than its stamp by more
    init_box_timeout: float = 5.0              # a box waiting for a frame expires after this, once the camera was seen
    redetect: bool = TrackerParams.redetect                      # search the whole frame after a lost spell
    redetect_patience: int = TrackerParams.redetect_patience    # LOST frames before the global search starts
    redetect_windows: int = TrackerParams.redetect_windows      # first-exit windows per LOST frame (the budget)
    confirm_frames: int = TrackerParams.confirm_frames          # confirmations before the tracker jumps to a find
    lookalike_memory: int = TrackerParams.lookalike_memory      # templates of other objects like the target (0: off)
    remember_refused: int = TrackerParams.remember_refused      # templates of candidates the memory refused (0: off)
    state_dir: str = ""                        # where the last reset is remembered; "" = $ROS_HOME/dytrack_ros
    autostart: bool = True                     # configure + activate at start (false: wait for a lifecycle manager)

    RUNTIME_CHANGEABLE = ("exit_thresholds", "lost_threshold", "publish_debug_image", "log_results")


# what `ros2 param describe` and rqt_reconfigure show: description, and (low, high) where a range applies
DESCRIPTIONS = {
    "model_path": ("model folder (manifest.json, per-stage ONNX, model.pt); empty: the shipped dytrack_small", None),
    "backend": (f"inference runtime: {' | '.join(BACKEND_NAMES)}", None),
    "device": (f"{' | '.join(DEVICE_CHOICES)} (torch backend)", None),
    "threads": ("CPU inference threads; 0: the runtime's default", (0, 256)),
    "fp16": ("TensorRT backend: build FP16 engines (false: FP32)", None),
    "exit_thresholds": ("per-stage exit score thresholds (predicted IoU, 0..1); unset: the model's calibrated ones; "
                        "the last stage always answers", None),
    "search_factor": ("search area side / target size; 0: the model's default (else 1.5..10)", (0.0, 10.0)),
    "lost_threshold": ("under this exit score the state reads LOST and the search widens", (0.0, 1.0)),
    "image_topic": ("sensor_msgs/Image topic (CompressedImage: <topic>/compressed with use_compressed)", None),
    "use_compressed": ("subscribe to <image_topic>/compressed (JPEG/PNG) instead of raw images", None),
    "init_topic": ("dytrack_ros/TargetBox topic that starts or restarts tracking", None),
    "image_qos": (f"image subscription QoS: {' | '.join(QOS_CHOICES)}", None),
    "publish_debug_image": ("draw the box on ~/debug_image (only while someone subscribes)", None),
    "diagnostics_period": ("seconds between /diagnostics messages", (0.05, 60.0)),
    "stale_after": ("seconds without an image before /diagnostics reads STALE", (0.1, 3600.0)),
    "frame_buffer": ("recent frames kept to find the frame an init box was drawn on", (1, 1000)),
    "log_results": ("one log line per frame (box, stages, score, latency)", None),
    "max_image_pixels": ("frames larger than this (a compressed frame's declared size) are refused",
                         (4096, 1 << 30)),
    "min_image_side": ("frames with a shorter side are refused (not a camera image)", (1, 4096)),
    "future_tolerance": ("init boxes stamped further ahead of the node's clock (s) are refused", (0.0, 3600.0)),
    "max_init_frame_age": ("an init box is refused when the newest frame not after its stamp is older than its stamp "
                           "by more than this (s)", (0.0, 3600.0)),
    "init_box_timeout": ("seconds an init box may wait for a frame to be applied to once the camera has been seen (a "
                         "frame taken or refused); then it is dropped with a log line and /diagnostics says so. Before "
                         "the camera's first frame a box waits without a limit", (0.1, 3600.0)),
    "autostart": ("configure and activate at start; false: stay unconfigured until a lifecycle manager (or `ros2 "
                  "lifecycle set`) moves it", None),
    "redetect": ("after a lost spell, search the whole frame with the first exit and take the target back once "
                 "confirmed (tracking/redetect.py)", None),
    "redetect_patience": ("LOST frames before the whole-frame search starts", (0, 10000)),
    "redetect_windows": ("first-exit search windows per LOST frame (the whole-frame search's budget, confirming a "
                         "candidate included, 4 at the least)", (1, 64)),
    "confirm_frames": ("consecutive frames a candidate must be found again (and match the appearance memory) before "
                       "the tracker takes it", (1, 100)),
    "lookalike_memory": ("templates of look-alikes (the strongest other object near the target, cut while tracking): a "
                         "candidate or tracked box one matches better than the target's own memory is refused; 0: off",
                         (0, 32)),
    "remember_refused": ("templates of candidates the appearance memory refused (most often the object beside the "
                         "target): a later candidate one matches better than the target's memory by more than 0.15 "
                         "is refused; 0: off", (0, 32)),
    "state_dir": ("where the last reset is remembered across restarts; empty: $ROS_HOME/dytrack_ros", None),
}


def resolve_model_path(path: str) -> str:
    if path:
        return os.path.expanduser(path)
    candidates = []
    try:  # installed with colcon: share/dytrack_ros/models
        from ament_index_python.packages import get_package_share_directory
        candidates.append(os.path.join(get_package_share_directory("dytrack_ros"), "models", DEFAULT_MODEL))
    except Exception:
        pass
    candidates.append(os.path.join(REPO_MODELS, DEFAULT_MODEL))
    for c in candidates:
        if os.path.isdir(c):
            return c
    return candidates[-1]


def validate(p: NodeParams, num_stages: int = 0) -> None:
    """Raises ParameterError naming the parameter and what is allowed."""
    if p.backend not in BACKEND_NAMES:
        raise ParameterError(f"backend={p.backend!r}: choose one of {', '.join(BACKEND_NAMES)}")
    if p.device not in DEVICE_CHOICES:
        raise ParameterError(f"device={p.device!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    if p.image_qos not in QOS_CHOICES:
        raise ParameterError(f"image_qos={p.image_qos!r}: choose one of {', '.join(QOS_CHOICES)}")
    validate_thresholds(p.exit_thresholds, num_stages)
    validate_lost_threshold(p.lost_threshold)
    if p.search_factor != 0 and not (1.5 <= p.search_factor <= 10 and math.isfinite(p.search_factor)):
        raise ParameterError(f"search_factor={p.search_factor}: must be 0 (model default) or in 1.5..10")
    for name, (_, bounds) in DESCRIPTIONS.items():     # one range per parameter: the one ros2 param describe shows
        value = getattr(p, name)
        if bounds is not None and not isinstance(value, (list, bool)) and \
                not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
            raise ParameterError(f"{name}={value}: must be in {bounds[0]:g}..{bounds[1]:g}")
    for name in ("image_topic", "init_topic"):
        if not getattr(p, name):
            raise ParameterError(f"{name} must not be empty")


def as_float(name: str, value) -> float:
    """ROS parameter files and `ros2 param set` give 0 and 1 as integers: accept any real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name}={value!r}: must be a number")
    return float(value)


def as_float_list(name: str, values) -> List[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ParameterError(f"{name}={values!r}: must be a list of numbers")
    return [as_float(name, v) for v in values]


def validate_thresholds(values, num_stages: int) -> None:
    values = list(values)
    if not values:
        return
    if num_stages and len(values) != num_stages:
        raise ParameterError(f"exit_thresholds has {len(values)} values; the model has {num_stages} stages")
    for v in values:
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ParameterError(f"exit_thresholds={values}: each must be in 0..1 (the exit's predicted IoU)")


def validate_lost_threshold(v: float) -> None:
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ParameterError(f"lost_threshold={v}: must be in 0..1")


# ---- declaring them on a node, and run-time changes ------------------------------------------------------------
def parameter_descriptor(name: str, default):
    """Description and range (rqt_reconfigure draws sliders from the range) from DESCRIPTIONS."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    text, bounds = DESCRIPTIONS[name]
    desc = ParameterDescriptor(description=text, read_only=name not in NodeParams.RUNTIME_CHANGEABLE,
                               dynamic_typing=isinstance(default, float))
    if bounds is not None and isinstance(default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))]
    elif bounds is not None and isinstance(default, int) and not isinstance(default, bool):
        desc.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]))]
    return desc


def declare_parameters(node) -> NodeParams:
    """Every parameter but exit_thresholds (its default is the model's: declare_thresholds) declared on the node."""
    p = NodeParams()
    for name, default in vars(NodeParams()).items():
        if name == "exit_thresholds":
            continue
        # real-valued parameters take integers too (`lost_threshold: 0` in YAML, `ros2 param set ... 0`)
        value = node.declare_parameter(name, default, parameter_descriptor(name, default)).value
        setattr(p, name, as_float(name, value) if isinstance(default, float) else value)
    return p


def declare_thresholds(node, p: NodeParams, manifest) -> List[float]:
    """Declared on the first configure, with the model's calibrated thresholds as the default."""
    from rcl_interfaces.msg import ParameterDescriptor
    if node.has_parameter("exit_thresholds"):
        values = as_float_list("exit_thresholds", node.get_parameter("exit_thresholds").value) or \
            manifest.exit_thresholds
    else:
        desc = ParameterDescriptor(description=DESCRIPTIONS["exit_thresholds"][0], dynamic_typing=True)
        values = as_float_list("exit_thresholds", node.declare_parameter(
            "exit_thresholds", manifest.exit_thresholds, desc).value)
    p.exit_thresholds = values
    return values


def apply_changes(changes, p: NodeParams, tracker) -> Optional[str]:
    """Run-time parameter changes (name, value pairs) checked as a whole, then applied to p and the tracker;
    returns the reason when refused. The worker may be mid-frame: each assignment replaces a whole value, so it sees
    old or new, never half."""
    try:
        values = {}
        for name, value in changes:
            if name == "exit_thresholds":
                values[name] = as_float_list(name, value)
                validate_thresholds(values[name], tracker.num_stages if tracker else 0)
            elif name == "lost_threshold":
                values[name] = as_float(name, value)
                validate_lost_threshold(values[name])
            else:
                values[name] = value
        for name, value in values.items():
            if name == "exit_thresholds" and tracker is not None:
                tracker.set_thresholds(value)
            elif name == "lost_threshold" and tracker is not None:
                tracker.params.lost_threshold = value
            if hasattr(p, name):
                setattr(p, name, value)
    except (ParameterError, ValueError, TypeError) as exc:
        return str(exc)
    return None


# node parameters that are the tracker's own settings (copied onto TrackerParams at configure)
TRACKER_SETTINGS = ("redetect", "redetect_patience", "redetect_windows", "confirm_frames", "lookalike_memory",
                    "remember_refused")
