"""A reference follower (lifecycle node `dytrack_follower`): tracker results in, velocity commands out.

    subscribes  <target_topic>  (dytrack_ros/TrackedTarget, default dytrack_tracker/target)
                <init_topic>    (dytrack_ros/TargetBox: a new init is a new target)
                <tracker_node>/transition_event (lifecycle_msgs/TransitionEvent: the tracker leaving 'active')
    publishes   cmd_vel (geometry_msgs/Twist), cmd_vel_stamped (TwistStamped: header = the result's image header),
                gimbal_cmd (geometry_msgs/Vector3Stamped: y tilt rate, z pan rate; with `gimbal: true`),
                /diagnostics (why the command is zero)
    service     ~/resume (std_srvs/Trigger): follow the present target after a stop for a target change

The control law and every safety rule live in follow_control.py (ROS-free); this file only wires them.
"""
from __future__ import annotations

import threading
from typing import Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist, TwistStamped, Vector3Stamped
from lifecycle_msgs.msg import State, TransitionEvent
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from dytrack_ros.msg import TargetBox, TrackedTarget

from .follow_control import PARAMETERS, Command, Follower, FollowerParams, Result, validate_parameter

TOPICS = {"target_topic": "dytrack_tracker/target", "init_topic": "init_box", "tracker_node": "dytrack_tracker",
          "cmd_topic": "cmd_vel", "gimbal": False, "autostart": True}


def _descriptor(name: str, default, text: str, bounds) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text, dynamic_typing=isinstance(default, float))
    if bounds is not None and isinstance(default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))]
    elif bounds is not None and isinstance(default, int) and not isinstance(default, bool):
        d.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]))]
    return d


class FollowerNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("dytrack_follower", **kwargs)
        values = {}
        for name, (default, text, bounds) in PARAMETERS.items():
            values[name] = validate_parameter(name, self.declare_parameter(
                name, default, _descriptor(name, default, text, bounds)).value)
        self.params = FollowerParams(**values)
        self.topics = {name: self.declare_parameter(name, default).value for name, default in TOPICS.items()}
        self.follower = Follower(self.params, active=False)
        self.lock = threading.Lock()          # callbacks and timers may run on several executor threads
        self.entities, self.reason_published = [], None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _on_set_parameters(self, params) -> SetParametersResult:
        try:
            checked = [(p.name, validate_parameter(p.name, p.value)) for p in params if p.name in PARAMETERS]
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self.lock:
            for name, value in checked:
                setattr(self.params, name, value)
        return SetParametersResult(successful=True)

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.cmd_pub = self.create_lifecycle_publisher(Twist, self.topics["cmd_topic"], reliable)
        self.stamped_pub = self.create_lifecycle_publisher(TwistStamped, self.topics["cmd_topic"] + "_stamped",
                                                           reliable)
        self.gimbal_pub = self.create_lifecycle_publisher(Vector3Stamped, "gimbal_cmd", reliable) \
            if self.topics["gimbal"] else None
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        tracker = self.topics["tracker_node"].rstrip("/")
        self.entities = [
            self.create_subscription(TrackedTarget, self.topics["target_topic"], self._on_target, 10),
            # volatile reliable: receives plain and latched (transient-local) init publishers alike
            self.create_subscription(TargetBox, self.topics["init_topic"], self._on_init, QoSProfile(
                depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)),
            self.create_subscription(TransitionEvent, f"{tracker}/transition_event", self._on_transition, 10),
            self.create_service(Trigger, "~/resume", self._on_resume),
            self.create_timer(1.0 / self.params.watchdog_rate, self._on_tick),
            self.create_timer(self.params.diagnostics_period, self._publish_diagnostics),
        ]
        with self.lock:
            self.follower.set_active(True)
        self.get_logger().info(f"following {self.resolve_topic_name(self.topics['target_topic'])} -> "
                               f"{self.resolve_topic_name(self.topics['cmd_topic'])} "
                               f"({self.params.image_width}x{self.params.image_height} image)")
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        with self.lock:
            cmd = self.follower.set_active(False)
        self._publish(cmd, None)                 # the zero goes out before the publishers are deactivated
        self._drop_entities()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        for pub in (self.cmd_pub, self.stamped_pub, self.gimbal_pub, self.diag_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._drop_entities()
        return TransitionCallbackReturn.SUCCESS

    def _drop_entities(self) -> None:
        for e in self.entities:
            destroy = {rclpy.timer.Timer: self.destroy_timer, rclpy.service.Service: self.destroy_service}
            next((f for t, f in destroy.items() if isinstance(e, t)), self.destroy_subscription)(e)
        self.entities = []

    # ---- inputs ---------------------------------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_target(self, msg: TrackedTarget) -> None:
        now = self._now_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        r = Result(int(msg.state), (msg.x, msg.y, msg.width, msg.height), stamp, now, bool(msg.redetected),
                   int(msg.dropped_frames))
        with self.lock:
            cmd = self.follower.on_result(r, now)
        self._publish(cmd, msg.header)

    def _on_init(self, _msg: TargetBox) -> None:
        with self.lock:
            self.follower.on_init(self._now_ns())
        self.get_logger().info("init box seen: a new target")

    def _on_transition(self, msg: TransitionEvent) -> None:
        active = msg.goal_state.id == State.PRIMARY_STATE_ACTIVE
        with self.lock:
            cmd = self.follower.on_tracker_state(active, msg.goal_state.label or str(msg.goal_state.id),
                                                 self._now_ns())
        if cmd is not None:
            self._publish(cmd, None)

    def _on_resume(self, _req, resp):
        with self.lock:
            resp.message = self.follower.resume()
        resp.success = True
        self.get_logger().info(resp.message)
        return resp

    def _on_tick(self) -> None:
        with self.lock:
            cmd = self.follower.on_tick(self._now_ns())
        if cmd is not None:
            self._publish(cmd, None)

    # ---- outputs --------------------------------------------------------------------------------------------------
    def _publish(self, cmd: Command, header: Optional[Header]) -> None:
        header = header or Header(stamp=self.get_clock().now().to_msg())
        twist = Twist()
        twist.linear.x, twist.linear.z, twist.angular.z = cmd.forward, cmd.vertical, cmd.yaw_rate
        self.cmd_pub.publish(twist)
        self.stamped_pub.publish(TwistStamped(header=header, twist=twist))
        if self.gimbal_pub is not None:
            g = Vector3Stamped(header=header)
            g.vector.y, g.vector.z = cmd.tilt_rate, cmd.pan_rate
            self.gimbal_pub.publish(g)
        if cmd.reason != self.reason_published:      # a new reason to stop is reported at once, not a second later
            self.reason_published = cmd.reason
            if cmd.is_zero and cmd.reason not in ("activated",):
                self.get_logger().info(f"zero command: {cmd.reason}")
            self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        with self.lock:
            last, counts, latched = self.follower.last, dict(self.follower.stop_counts), self.follower.latched
        following = last.reason == "following"
        status = DiagnosticStatus(
            name=f"{self.get_fully_qualified_name()}: follower", hardware_id="dytrack_follower",
            level=DiagnosticStatus.OK if following else DiagnosticStatus.WARN,
            message="following" if following else f"stopped: {last.reason}",
            values=[KeyValue(key="reason", value=last.reason),
                    KeyValue(key="yaw_rate", value=f"{last.yaw_rate:.3f}"),
                    KeyValue(key="forward", value=f"{last.forward:.3f}"),
                    KeyValue(key="vertical", value=f"{last.vertical:.3f}"),
                    KeyValue(key="waiting_for_new_init", value=latched or "no")]
            + [KeyValue(key=f"stops: {k}", value=str(v)) for k, v in sorted(counts.items())])
        self.diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


def main(args=None):
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = FollowerNode()
        except ValueError as exc:
            raise SystemExit(f"dytrack follower cannot start: {exc}") from exc
        if node.topics["autostart"]:
            node.trigger_configure()
            node.trigger_activate()
        rclpy.spin(node)
    except SystemExit as exc:
        print(exc, flush=True)
        raise SystemExit(2)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node._drop_entities()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()


if __name__ == "__main__":
    main()
