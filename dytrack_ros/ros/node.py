"""The ROS 2 tracker node (a lifecycle node): declares its parameters (params.py), wires topics and services to the
ROS-free session (session.py: checks, worker, diagnostics; scheduler.py: ordering), hands results to outputs.py.

Threads: the executor's converts and stores messages (the newest frame replaces an unprocessed one, counted as dropped;
compressed frames are decoded by the worker); ~/set_target, whose calls wait for their box, has its own
(service_thread.py); one worker thread runs the tracker. Every output carries the input image's header.
"""
from __future__ import annotations

import gc
import threading
import time
from typing import Optional

import rclpy
import rclpy.service
import rclpy.timer
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Empty
from std_srvs.srv import Trigger

from dytrack_ros.msg import TargetBox
from dytrack_ros.srv import SetTarget

from ..backends import BackendError, resolve_auto
from ..runtime import model_manifest
from ..tracking import IDLE, STATE_NAMES
from .image_conversion import CompressedFrame, ImageConversionError, image_to_bgr
from .outputs import Outputs, status_array
from .params import ParameterError, apply_changes, declare_parameters, declare_thresholds, resolve_model_path, validate
from .session import (SET_TARGET_WAIT_S, BadMessageLog, TrackingSession, box_request, changed_settings,
                      check_frame_id, check_frame_size, load_tracker, make_scheduler, received_ns, stamp_ns,
                      target_values)
from .stats import RollingStats
from .service_thread import ServiceThread
from .transport import DuplicateFilter, TransportWatch

RELIABLE = dict(history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


class TrackerNode(LifecycleNode):
    """A managed (lifecycle) node. configure: load and warm up the model (a failure is a failed transition with the
    reason); activate: subscribe and publish; deactivate: pause, the target is kept; cleanup: free the model.
    With `autostart` (default) main() configures and activates it at once, for users without a lifecycle manager."""

    def __init__(self, **kwargs):
        super().__init__("dytrack_tracker", **kwargs)
        self.p = declare_parameters(self)
        self.tracker, self.session, self.configure_error = None, None, ""
        self._inputs, self.outputs = [], None    # what exists while active; publishers made on configure
        self.bad = BadMessageLog(lambda m: self.get_logger().error(m))
        # init boxes already taken (DDS publisher + sequence number): the second init subscription, and a latched box
        # delivered again after deactivate/activate, must not restart the target
        self._init_seen = DuplicateFilter()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # /diagnostics in every lifecycle state: a paused or unconfigured node says so instead of going silent
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.p.diagnostics_period, self._publish_diagnostics)

    def _on_set_parameters(self, params) -> SetParametersResult:
        refused = apply_changes([(prm.name, prm.value) for prm in params], self.p, self.tracker)
        return SetParametersResult(successful=refused is None, reason=refused or "")

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        self.model_path = resolve_model_path(self.p.model_path)
        try:
            manifest = model_manifest(self.model_path)
            thresholds = declare_thresholds(self, self.p, manifest)
            validate(self.p, manifest.num_stages)
            self.tracker = load_tracker(self.p, self.model_path, thresholds)
            if self.p.backend == "auto":
                self.get_logger().info("backend auto -> %s on %s (%s)" % resolve_auto(self.p.device))
            changed = changed_settings(self.tracker, manifest, self.p)
        except (BackendError, ParameterError, ValueError) as exc:
            return self._configure_failed(str(exc))
        except RecursionError as exc:     # e.g. a manifest.json nested 100,000 levels deep
            return self._configure_failed(f"{self.model_path}: a model file is nested too deeply to read "
                                          f"(RecursionError: {exc}); restore its manifest.json or re-export the model")
        except Exception as exc:          # whatever it is, the reason is said, not only 'configure failed'
            return self._configure_failed(f"{type(exc).__name__}: {exc}")
        if changed:
            self.get_logger().info("tracker settings that differ from the defaults: " + "; ".join(changed))
        self.stats = self.bad.stats = RollingStats(self.tracker.num_stages)
        self.outputs = Outputs(self, self.tracker.num_stages)
        self.get_logger().info(f"configured: {self.tracker.backend.name}, {self.tracker.num_stages} stages, "
                               f"thresholds {self.tracker.params.thresholds}, model {self.model_path}")
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, reason: str) -> TransitionCallbackReturn:
        self.configure_error = f"dytrack tracker cannot start: {reason}"
        self.get_logger().error(self.configure_error)
        self.tracker = None
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)         # lifecycle publishers publish from here on
        log = self.get_logger()
        now_ns = lambda: self.get_clock().now().nanoseconds
        self.scheduler = make_scheduler(self.p, self.get_fully_qualified_name(), log.warning, now_ns)
        self.session = TrackingSession(self.tracker, self.scheduler, self.stats, self._publish, self.outputs.idle,
                                       log.info, log.warning, lambda m: log.error(m, throttle_duration_sec=2.0),
                                       self.bad, running=lambda: self.context.ok(), now_ns=now_ns)
        self.transport = TransportWatch(log.warning)
        image_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT
                               if self.p.image_qos == "sensor_data" else ReliabilityPolicy.RELIABLE)
        # init boxes: reliable, two subscriptions, one callback. Transient-local gets a box latched before this node
        # started; volatile gets ordinary publishers (`ros2 topic pub`), which transient-local refuses as incompatible
        # (by design: the handler stops rclpy logging it). A latched box comes through both: the filter keeps one.
        expected = SubscriptionEventCallbacks(incompatible_qos=lambda _info: None)
        self._inputs = [
            self._image_subscription(image_qos),
            self.create_subscription(TargetBox, self.p.init_topic, self._on_init, QoSProfile(
                depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, **RELIABLE), event_callbacks=expected),
            self.create_subscription(TargetBox, self.p.init_topic, self._on_init, QoSProfile(
                depth=5, durability=DurabilityPolicy.VOLATILE, **RELIABLE)),
            ServiceThread(self, SetTarget, self.get_fully_qualified_name() + "/set_target", self._on_set_target),
            self.create_subscription(Empty, "~/reset", lambda _msg, info: self._request_reset("topic", info), 10),
            self.create_service(Trigger, "~/reset", self._on_reset_service),
        ]
        self.session.start()
        if self.tracker.state == IDLE:
            self.outputs.idle()     # subscribers learn at once that nothing is tracked yet
        log.info(f"tracking with {self.tracker.backend.name} ({self.tracker.num_stages} stages, thresholds "
                 f"{self.tracker.params.thresholds}) from {self.model_path}; images on "
                 f"{self.resolve_topic_name(self.p.image_topic)} ({self.p.image_qos}), init boxes on "
                 f"{self.resolve_topic_name(self.p.init_topic)}")
        return result

    def _image_subscription(self, qos):
        msg_type, topic = (CompressedImage, self.p.image_topic.rstrip("/") + "/compressed") if self.p.use_compressed \
            else (Image, self.p.image_topic)
        try:
            lost = SubscriptionEventCallbacks(message_lost=self.transport.on_message_lost)
            return self.create_subscription(msg_type, topic, self._on_image, qos, event_callbacks=lost)
        except UnsupportedEventTypeError:
            self.get_logger().info("this rmw does not report lost messages: frames lost in transport go unnoticed")
            return self.create_subscription(msg_type, topic, self._on_image, qos)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Pause: no input is taken and no result is published (IDLE says so first: a follower must not act on the
        last TRACKING message); the target and its template stay for activate; /diagnostics goes on."""
        self.shutdown()
        self.outputs.idle()
        self.get_logger().info(f"paused ({STATE_NAMES[self.tracker.state]}); activate to continue")
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Free the model: its runtime sessions, their thread pools and memory go with the last reference to the
        tracker. Reference cycles inside a backend would keep them until Python's cycle collector happens to run (50
        cycles took a node from 32 to 164 threads): collected here, so each cleanup returns them."""
        self.outputs.destroy()
        self.outputs = self.tracker = self.scheduler = self.stats = self.bad.stats = None
        self.transport = None
        gc.collect()
        self.get_logger().info("cleaned up: model unloaded")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.shutdown()
        return TransitionCallbackReturn.SUCCESS

    on_error = on_shutdown

    def shutdown(self) -> None:
        """Stop the worker and remove every input (deactivate, shutdown, error, exit)."""
        if self.session is not None:
            self.session.stop()
            self.session = None
        for entity in self._inputs:
            kind = {rclpy.timer.Timer: self.destroy_timer, rclpy.service.Service: self.destroy_service,
                    ServiceThread: ServiceThread.stop}
            next((f for t, f in kind.items() if isinstance(entity, t)), self.destroy_subscription)(entity)
        self._inputs = []

    # ---- inputs (executor thread: cheap work only) -------------------------------------------------------
    def _on_image(self, msg) -> None:
        """Raw frames are converted here (cheap); compressed ones by the worker, if it gets to them (CompressedFrame)."""
        self.transport.received_frame()
        try:
            check_frame_id(msg.header.frame_id)
            if isinstance(msg, CompressedImage):
                if not msg.data:
                    raise ImageConversionError("compressed image has no data")
                frame = CompressedFrame(msg, self.p.max_image_pixels, lambda w, h: check_frame_size(w, h, self.p))
            else:
                check_frame_size(int(msg.width), int(msg.height), self.p)
                frame = image_to_bgr(msg)
        except ImageConversionError as exc:
            self.scheduler.frame_refused(str(exc), time.perf_counter())
            return self.bad("compressed image" if isinstance(msg, CompressedImage) else "image", exc)
        self.stats.received(replaced=self.scheduler.put_frame(stamp_ns(msg.header), msg.header, frame,
                                                              time.perf_counter()))

    def _box_request(self, msg: TargetBox, info=None, reply=None):
        now_ns, box = self.get_clock().now().nanoseconds, [msg.x, msg.y, msg.width, msg.height]
        return box_request(box, stamp_ns(msg.header), now_ns, self.p.future_tolerance, received_ns(info), reply)

    def _on_init(self, msg: TargetBox, info) -> None:
        if self._init_seen.first_time(info):        # not the same box through the other init subscription
            self.session.init_box(lambda: self._box_request(msg, info))

    def _on_set_target(self, request, response):
        """Like a box on the init topic, but answered: the box used, or exactly why not (in its own thread)."""
        done, outcome = threading.Event(), []
        answer, req = self.session.submit_target(lambda r: self._box_request(request.box, reply=r),
                                                 self.resolve_topic_name(self.p.image_topic),
                                                 lambda ok, text: (outcome.append((ok, text)), done.set()))
        outcome += [answer] if answer else []
        if answer is None and not done.wait(SET_TARGET_WAIT_S) and not self.session.withdraw(req):
            done.wait(2.0)                           # the worker took it meanwhile: its answer comes within a frame
        response.success, response.message = outcome[0] if outcome else (False, "the box was taken but not answered")
        return response

    def _request_reset(self, source: str, info=None) -> None:
        self.scheduler.put_reset(order_ns=received_ns(info))
        self.get_logger().info(f"tracking reset ({source})")

    def _on_reset_service(self, _req, _resp):
        self._request_reset("service")
        return Trigger.Response(success=True, message="tracking stopped; send a new init box to start again")

    # ---- outputs ----------------------------------------------------------------------------------------------
    def _publish(self, o) -> None:
        self.outputs.result(o, self.session.target_id, self.p.publish_debug_image)
        if self.p.log_results:
            self.get_logger().info(o.log_line(self.tracker.num_stages))

    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]     # what ~/get_state answers (rclpy has no public accessor)

    def _publish_diagnostics(self) -> None:
        lifecycle, session, tracker = self.lifecycle_state(), self.session, self.tracker
        backend = tracker.backend.name if tracker is not None else self.p.backend
        if session is not None:
            level, message, values = session.diagnostics(
                backend, self.resolve_topic_name(self.p.image_topic), self.p.stale_after, self.transport.lost,
                lifecycle)
        else:                 # not active: nothing is tracked; a kept target shows as tracker_state and box
            level, message = "WARN", {
                "unconfigured": "unconfigured: no model loaded (configure, then activate)",
                "inactive": "inactive: not tracking (activate to continue)"}.get(lifecycle, lifecycle)
            values = {"lifecycle_state": lifecycle, "state": "idle",
                      **(target_values(tracker) if tracker is not None else {}), "backend": backend}
            if self.configure_error and tracker is None:
                values["configure_error"] = self.configure_error
        self.diagnostics.publish(status_array(self, level, message, values, backend))


def main(args=None):
    rclpy.init(args=args)
    node: Optional[TrackerNode] = None
    try:
        try:
            node = TrackerNode()
        except Exception as exc:  # e.g. a parameter of the wrong type in the YAML file (SystemExit is no Exception)
            raise SystemExit(f"dytrack tracker cannot start: {type(exc).__name__}: {exc}") from exc
        if not node.p.autostart:  # else no lifecycle manager is needed: configure and activate now
            node.get_logger().info("waiting in the unconfigured state (autostart:=false): configure and activate "
                                   "it with a lifecycle manager or `ros2 lifecycle set`")
        elif node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise SystemExit(node.configure_error or "dytrack tracker cannot start: configure failed")
        elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise SystemExit("dytrack tracker cannot start: activate failed (see the log above)")
        rclpy.spin(node)
    except SystemExit as exc:
        print(exc, flush=True)
        raise SystemExit(2)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except Exception:                 # a signal's shutdown can race the executor's wait (RCLError: context not valid)
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()


if __name__ == "__main__":
    main()
