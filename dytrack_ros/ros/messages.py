"""A tracking result as our ROS messages, and drawn on a frame: one place for the node, the video player and the
target picker page.

    TrackedTarget   ~/target: state, box, score, stages_run / num_stages, timings
    ImageMarker     ~/image_marker: the box as a polygon in pixel coordinates
    Detection2DArray ~/detections (where vision_msgs imports): one detection while TRACKING, none otherwise
"""
from __future__ import annotations

import cv2
from geometry_msgs.msg import Point
from visualization_msgs.msg import ImageMarker

from dytrack_ros.msg import TrackedTarget

from ..tracking import LOST, STATE_NAMES, TRACKING

try:  # only on ROS installs that have vision_msgs
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError:
    Detection2DArray = None

STATE_OF = {TRACKING: TrackedTarget.STATE_TRACKING, LOST: TrackedTarget.STATE_LOST}
STATE_LABEL = {STATE_OF.get(state, TrackedTarget.STATE_IDLE): name for state, name in STATE_NAMES.items()}


def tracked_target(header, result, num_stages: int, latency_ms: float, camera_latency_ms: float,
                   dropped: int, lost_seconds: float = 0.0) -> TrackedTarget:
    out = TrackedTarget()
    out.header = header
    out.state = STATE_OF.get(result.state, TrackedTarget.STATE_IDLE)
    out.x, out.y, out.width, out.height = (float(v) for v in result.box)
    out.score, out.stages_run, out.num_stages = float(result.score), int(result.stages_run), int(num_stages)
    out.inference_ms, out.latency_ms = float(result.inference_ms), float(latency_ms)
    out.camera_latency_ms, out.dropped_frames = float(camera_latency_ms), int(dropped)
    out.lost_frames, out.lost_seconds = int(result.lost_frames), float(lost_seconds)
    out.redetected = bool(result.redetected)
    return out


def idle_target(header, num_stages: int) -> TrackedTarget:
    """An explicit IDLE result: a follow controller must not keep acting on the last TRACKING message."""
    out = TrackedTarget()
    out.header = header
    out.state, out.num_stages = TrackedTarget.STATE_IDLE, int(num_stages)
    return out


def image_marker(target: TrackedTarget) -> ImageMarker:
    x, y, w, h = target.x, target.y, target.width, target.height
    marker = ImageMarker()
    marker.header, marker.ns, marker.id = target.header, "dytrack", 0
    marker.type, marker.action, marker.scale = ImageMarker.POLYGON, ImageMarker.ADD, 2.0
    marker.outline_color.g, marker.outline_color.a = 1.0, 1.0
    marker.points = [Point(x=x, y=y), Point(x=x + w, y=y), Point(x=x + w, y=y + h), Point(x=x, y=y + h)]
    return marker


def detections(target: TrackedTarget, target_id: int):
    """Detection2DArray (None without vision_msgs): the box while TRACKING; empty while LOST, so that a consumer of
    detections alone never follows a held box. The id changes with every new target."""
    if Detection2DArray is None:
        return None
    arr = Detection2DArray()
    arr.header = target.header
    if target.state == TrackedTarget.STATE_TRACKING:
        det = Detection2D()
        det.header, det.id = target.header, str(target_id)
        det.bbox.center.position.x = target.x + target.width / 2
        det.bbox.center.position.y = target.y + target.height / 2
        det.bbox.size_x, det.bbox.size_y = target.width, target.height
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = "target", float(target.score)
        det.results.append(hyp)
        arr.detections.append(det)
    return arr


def draw_target(img, target: TrackedTarget):
    """Draw the box (green tracking, red lost) and 'stage k/n score' on a BGR frame, in place; returns it."""
    if target.state == TrackedTarget.STATE_IDLE:
        return img
    color = (0, 220, 0) if target.state == TrackedTarget.STATE_TRACKING else (0, 0, 255)
    p0 = (int(target.x), int(target.y))
    p1 = (int(target.x + target.width), int(target.y + target.height))
    cv2.rectangle(img, p0, p1, color, 2)
    label = f"stage {target.stages_run}/{target.num_stages} score {target.score:.2f} {target.inference_ms:.0f}ms"
    cv2.putText(img, label, (p0[0], max(p0[1] - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return img
