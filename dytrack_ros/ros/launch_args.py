"""What tracker.launch.py does with its arguments, without importing `launch` (testable where it is missing).

An argument left empty keeps the parameter file's value: the launch file must not override the user's YAML.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

# launch argument -> node parameter it overrides when given (empty: keep the YAML's value)
PARAMETER_ARGUMENTS = {
    "image_topic": "image_topic",
    "init_topic": "init_topic",
    "model_path": "model_path",
    "backend": "backend",
}
TRUE = ("true", "1", "yes", "on")


def is_true(value: str) -> bool:
    value = str(value).strip().lower()
    if value not in TRUE + ("false", "0", "no", "off", ""):
        raise ValueError(f"expected true or false, got {value!r}")
    return value in TRUE


def parameter_overrides(values: Dict[str, str]) -> dict:
    """The node parameters the launch arguments set: only those given, plus use_sim_time."""
    out = {param: values[arg] for arg, param in PARAMETER_ARGUMENTS.items() if values.get(arg, "").strip()}
    out["use_sim_time"] = is_true(values.get("use_sim_time", "false"))
    if values.get("autostart", "").strip():
        out["autostart"] = is_true(values["autostart"])
    return out


def remappings(values: Dict[str, str]) -> List[Tuple[str, str]]:
    """`image:=/camera/image_raw` remaps the node's image topic (raw and compressed) the usual ROS way."""
    target = values.get("image", "").strip()
    if not target:
        return []
    return [("image", target), ("image/compressed", target.rstrip("/") + "/compressed")]
