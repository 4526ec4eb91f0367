"""Everything the node publishes about tracking, in one object made at configure: ~/target, ~/image_marker,
~/detections (where vision_msgs imports) and ~/debug_image (only while someone subscribes). Lifecycle publishers
where rclpy has them, so no result goes out while the node is inactive. /diagnostics is not among them: it goes on
in every lifecycle state (`status_array`), so that a paused or unconfigured node is seen, not silent."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import ImageMarker

from dytrack_ros.msg import TrackedTarget

from .image_conversion import bgr_to_image
from .messages import Detection2DArray, detections, draw_target, idle_target, image_marker, tracked_target
from .session import Outcome

LEVELS = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN, "STALE": DiagnosticStatus.STALE}


class Outputs:
    def __init__(self, node, num_stages: int):
        make = getattr(node, "create_lifecycle_publisher", node.create_publisher)
        self.node, self.num_stages = node, num_stages
        self.target = make(TrackedTarget, "~/target", 10)
        self.debug = make(Image, "~/debug_image", QoSProfile(depth=1))
        self.marker = make(ImageMarker, "~/image_marker", 10)
        self.detections = make(Detection2DArray, "~/detections", 10) if Detection2DArray else None

    def destroy(self) -> None:
        for pub in (self.target, self.debug, self.marker, self.detections):
            if pub is not None:
                self.node.destroy_publisher(pub)

    def now(self) -> Header:
        return Header(stamp=self.node.get_clock().now().to_msg())

    def idle(self) -> None:
        """An explicit IDLE result (start-up, reset): a follower must not keep acting on an old TRACKING message."""
        self.target.publish(idle_target(self.now(), self.num_stages))

    def result(self, o: Outcome, target_id: int, debug_image: bool) -> None:
        out = tracked_target(o.frame.header, o.result, self.num_stages, o.latency_ms, o.camera_latency_ms,
                             o.dropped, lost_seconds=o.lost_seconds)
        self.target.publish(out)
        self.marker.publish(image_marker(out))
        if self.detections is not None:
            self.detections.publish(detections(out, target_id))
        if debug_image and self.debug.get_subscription_count() > 0:
            self.debug.publish(bgr_to_image(draw_target(o.frame.image.copy(), out), out.header, Image))


def status_array(node, level: str, message: str, values: dict, hardware_id: str) -> DiagnosticArray:
    """One /diagnostics message for this node (named after its fully qualified name, as rqt_robot_monitor groups)."""
    status = DiagnosticStatus(name=f"{node.get_fully_qualified_name()}: tracker", hardware_id=hardware_id,
                              level=LEVELS[level], message=message,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    return DiagnosticArray(header=Header(stamp=node.get_clock().now().to_msg()), status=[status])
