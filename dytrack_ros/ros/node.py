"""The ROS 2 tracker node (a lifecycle node): images and init boxes in; TrackedTarget, detections, debug image,
diagnostics out. It only wires ROS to the scheduler (scheduler.py), the tracker (runtime.py) and the message
builders (messages.py).

Threads: the executor thread only converts and stores messages (the newest frame replaces an unprocessed
one, which is counted as dropped; compressed frames are decoded later, by the worker); one worker thread runs
the tracker, so inference never blocks callbacks and nothing queues without bound. Every output carries the
input image's header.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
import rclpy.service
import rclpy.timer
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Empty, Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import ImageMarker

from dytrack_ros.msg import TargetBox, TrackedTarget
from dytrack_ros.srv import SetTarget

from ..backends import BackendError, resolve_auto
from ..tracking import IDLE, LOST, STATE_NAMES, TRACKING, InvalidBoxError
from ..runtime import build_tracker, model_manifest
from .messages import Detection2DArray, detections, draw_target, idle_target, image_marker, tracked_target
from .image_conversion import CompressedFrame, ImageConversionError, bgr_to_image, image_to_bgr
from .scheduler import InitRequest, ResetMemory, Scheduler
from .transport import DuplicateFilter, TransportWatch
from .params import (DESCRIPTIONS, NodeParams, ParameterError, as_float, as_float_list, resolve_model_path, validate,
                     validate_lost_threshold, validate_thresholds)
from .stats import RollingStats


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def received_ns(info) -> int:
    """When DDS received a message (system clock, ns): orders messages of different topics by arrival."""
    return int(info["received_timestamp"]) if info and info.get("received_timestamp") else 0


def parameter_descriptor(name: str, default) -> ParameterDescriptor:
    """Description and range (rqt_reconfigure draws sliders from the range) from params.DESCRIPTIONS."""
    text, bounds = DESCRIPTIONS[name]
    desc = ParameterDescriptor(description=text, read_only=name not in NodeParams.RUNTIME_CHANGEABLE,
                               dynamic_typing=isinstance(default, float))
    if bounds is not None and isinstance(default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))]
    elif bounds is not None and isinstance(default, int) and not isinstance(default, bool):
        desc.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]))]
    return desc


class TrackerNode(LifecycleNode):
    """A managed (lifecycle) node. configure: load and warm up the model (a failure is a failed transition with the
    reason); activate: subscribe and publish; deactivate: pause, the target is kept; cleanup: free the model.
    With `autostart` (default) main() configures and activates it at once, for users without a lifecycle manager."""

    def __init__(self, **kwargs):
        super().__init__("dytrack_tracker", **kwargs)
        self.p = self._declare_parameters()
        self.tracker = None
        self.worker = None
        self.configure_error = ""
        self._running = False
        self._bad_log = {}                   # kind of input -> (window start, lines logged, suppressed)
        self._last_tracked = None            # stamp (s) of the last TRACKING frame: how long the target is lost
        self._last_search_sample = None      # (area searched, time) at the last diagnostics
        self._target_id = 0                  # counts accepted init boxes: a detection's id changes with the target
        self._inputs = []                    # subscriptions, services and timers that exist while active
        self._outputs = []                   # publishers, created on configure
        # init boxes already taken (DDS publisher + sequence number): the second init subscription, and a latched box
        # delivered again after deactivate/activate, must not restart the target
        self._init_seen = DuplicateFilter()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        self.model_path = resolve_model_path(self.p.model_path)
        try:
            manifest = model_manifest(self.model_path)
            thresholds = self._declare_thresholds(manifest)
            validate(self.p, manifest.num_stages)
            self.tracker = build_tracker(self.model_path, self.p.backend, self.p.device, self.p.threads,
                                         thresholds=thresholds, search_factor=self.p.search_factor or None,
                                         lost_threshold=self.p.lost_threshold, fp16=self.p.fp16)
            for name in ("redetect", "redetect_patience", "redetect_windows", "confirm_frames"):
                setattr(self.tracker.params, name, getattr(self.p, name))
            if self.p.backend == "auto":
                self.get_logger().info("backend auto -> %s on %s (%s)" % resolve_auto(self.p.device))
            self._warm_up()
        except (BackendError, ParameterError, ValueError) as exc:
            self.configure_error = f"dytrack tracker cannot start: {exc}"
            self.get_logger().error(self.configure_error)
            self.tracker = None
            return TransitionCallbackReturn.FAILURE
        self.stats = RollingStats(self.tracker.num_stages)
        self.backend_name = self.tracker.backend.name
        self.target_pub = self.create_publisher(TrackedTarget, "~/target", 10)
        self.debug_pub = self.create_publisher(Image, "~/debug_image", QoSProfile(depth=1))
        self.marker_pub = self.create_publisher(ImageMarker, "~/image_marker", 10)
        self.det_pub = self.create_publisher(Detection2DArray, "~/detections", 10) if Detection2DArray else None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._outputs = [x for x in (self.target_pub, self.debug_pub, self.marker_pub, self.det_pub, self.diag_pub)
                         if x is not None]
        self.get_logger().info(f"configured: {self.backend_name}, {self.tracker.num_stages} stages, thresholds "
                               f"{self.tracker.params.thresholds}, model {self.model_path}")
        return TransitionCallbackReturn.SUCCESS

    def _warm_up(self) -> None:
        """One init and frame on a grey image: graph optimisation and allocation happen now, not on the first
        camera frame (the tracker is reset afterwards)."""
        size = max(64, self.p.min_image_side)
        grey = np.full((size, size, 3), 127, np.uint8)
        self.tracker.initialize(grey, [size / 4, size / 4, size / 2, size / 2])
        self.tracker.track(grey)
        self.tracker.reset()

    def on_activate(self, state) -> TransitionCallbackReturn:
        # what the worker does next: newest frame, recent frames, init/reset in arrival order (ros/scheduler.py)
        warn = lambda m: self.get_logger().warning(m)
        now_ns = lambda: self.get_clock().now().nanoseconds
        tolerance_ns = int(self.p.future_tolerance * 1e9)
        self.scheduler = Scheduler(self.p.frame_buffer, ResetMemory(self._state_file(), warn, now_ns, tolerance_ns),
                                   log=warn, stale_after=self.p.stale_after, now_ns=now_ns,
                                   future_tolerance_ns=tolerance_ns,
                                   max_frame_age_ns=int(self.p.max_init_frame_age * 1e9))
        self.transport = TransportWatch(lambda m: self.get_logger().warning(m))
        image_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                               reliability=ReliabilityPolicy.BEST_EFFORT if self.p.image_qos == "sensor_data"
                               else ReliabilityPolicy.RELIABLE)
        # init boxes are rare and must not be lost: reliable. Two subscriptions, one callback: transient-local
        # receives a box latched before this node started; volatile receives ordinary publishers (`ros2 topic pub`,
        # create_publisher(..., 10)), which a transient-local subscription refuses as QoS-incompatible. A latched
        # box arrives through both: the duplicate filter keeps one.
        latched_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
        plain_qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.VOLATILE)
        if self.p.use_compressed:
            image_sub = self._image_subscription(CompressedImage, self.p.image_topic.rstrip("/") + "/compressed",
                                                 self._on_compressed, image_qos)
        else:
            image_sub = self._image_subscription(Image, self.p.image_topic, self._on_image, image_qos)
        # a volatile publisher is incompatible with the latched subscription by design (the plain one takes its
        # boxes): without a handler rclpy would log "no messages will be received" for every such publisher
        expected = SubscriptionEventCallbacks(incompatible_qos=lambda _info: None)
        self._inputs = [
            image_sub,
            self.create_subscription(TargetBox, self.p.init_topic, self._on_init, latched_qos,
                                     event_callbacks=expected),
            self.create_subscription(TargetBox, self.p.init_topic, self._on_init, plain_qos),
            # its own group, run by a second executor thread: a call waiting for its frame must not stop the images
            self.create_service(SetTarget, "~/set_target", self._on_set_target,
                                callback_group=MutuallyExclusiveCallbackGroup()),
            self.create_subscription(Empty, "~/reset", lambda _msg, info: self._request_reset("topic", info), 10),
            self.create_service(Trigger, "~/reset", self._on_reset_service),
            self.create_timer(self.p.diagnostics_period, self._publish_diagnostics),
        ]
        self._running = True
        self.worker = threading.Thread(target=self._work, name="dytrack-worker", daemon=True)
        self.worker.start()
        if self.tracker.state == IDLE:
            self._publish_idle()    # subscribers learn at once that nothing is tracked yet
        self.get_logger().info(
            f"tracking with {self.backend_name} ({self.tracker.num_stages} stages, thresholds "
            f"{self.tracker.params.thresholds}) from {self.model_path}; images on "
            f"{self.resolve_topic_name(self.p.image_topic)} ({self.p.image_qos}), init boxes on "
            f"{self.resolve_topic_name(self.p.init_topic)}")
        return super().on_activate(state)

    def _image_subscription(self, msg_type, topic, callback, qos):
        try:
            lost = SubscriptionEventCallbacks(message_lost=self.transport.on_message_lost)
            return self.create_subscription(msg_type, topic, callback, qos, event_callbacks=lost)
        except UnsupportedEventTypeError:
            self.get_logger().info("this rmw does not report lost messages: frames lost in transport go unnoticed")
            return self.create_subscription(msg_type, topic, callback, qos)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Pause: no input is taken and nothing is published; the target and its template stay for activate."""
        self._stop_inputs()
        self.get_logger().info(f"paused ({STATE_NAMES[self.tracker.state]}); activate to continue")
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        for pub in self._outputs:
            self.destroy_publisher(pub)
        self._outputs, self.tracker = [], None     # the model's sessions and memory go with the tracker
        self.get_logger().info("cleaned up: model unloaded")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_inputs()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        self._stop_inputs()
        return TransitionCallbackReturn.SUCCESS

    def _stop_inputs(self) -> None:
        self._running = False
        if self.worker is not None:
            self.scheduler.close()
            self.worker.join(timeout=2.0)
            self.worker = None
        for entity in self._inputs:
            if isinstance(entity, rclpy.timer.Timer):
                self.destroy_timer(entity)
            elif isinstance(entity, rclpy.service.Service):
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self._inputs = []

    # ---- parameters -------------------------------------------------------------------------------------
    def _declare_parameters(self) -> NodeParams:
        p = NodeParams()
        for name, default in vars(NodeParams()).items():
            if name == "exit_thresholds":
                continue
            # real-valued parameters take integers too (`lost_threshold: 0` in YAML, `ros2 param set ... 0`)
            desc = parameter_descriptor(name, default)
            value = self.declare_parameter(name, default, desc).value
            setattr(p, name, as_float(name, value) if isinstance(default, float) else value)
        return p

    def _declare_thresholds(self, manifest):
        """Declared on the first configure, with the model's calibrated thresholds as the default."""
        if self.has_parameter("exit_thresholds"):
            values = as_float_list("exit_thresholds", self.get_parameter("exit_thresholds").value)
            values = values or manifest.exit_thresholds
        else:
            desc = ParameterDescriptor(description=DESCRIPTIONS["exit_thresholds"][0], dynamic_typing=True)
            values = as_float_list("exit_thresholds", self.declare_parameter(
                "exit_thresholds", manifest.exit_thresholds, desc).value)
        self.p.exit_thresholds = values
        return values

    def _on_set_parameters(self, params) -> SetParametersResult:
        try:
            values = {}
            for prm in params:
                if prm.name == "exit_thresholds":
                    values[prm.name] = as_float_list(prm.name, prm.value)
                    validate_thresholds(values[prm.name], self.tracker.num_stages if self.tracker else 0)
                elif prm.name == "lost_threshold":
                    values[prm.name] = as_float(prm.name, prm.value)
                    validate_lost_threshold(values[prm.name])
                else:
                    values[prm.name] = prm.value
            # the worker may be mid-frame: each assignment replaces a whole value, so it sees old or new, never half
            for name, value in values.items():
                if name == "exit_thresholds" and self.tracker is not None:
                    self.tracker.set_thresholds(value)
                elif name == "lost_threshold" and self.tracker is not None:
                    self.tracker.params.lost_threshold = value
                if hasattr(self.p, name):
                    setattr(self.p, name, value)
        except (ParameterError, ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    # ---- inputs (executor thread: cheap work only) -------------------------------------------------------
    def _store_frame(self, header, frame) -> None:
        self.stats.received(replaced=self.scheduler.put_frame(stamp_ns(header), header, frame, time.perf_counter()))

    def _bad_message(self, what: str, exc: Exception) -> None:
        """Log why a message was dropped. Every refusal is logged, up to 10 lines per kind of input in 2 s; past
        that (a broken camera at 300 Hz) the lines are counted and the count is logged with the next one."""
        self.stats.bad_message()
        now = time.monotonic()
        start, lines, suppressed = self._bad_log.get(what, (now, 0, 0))
        if now - start >= 2.0:
            start, lines = now, 0
        if lines < 10:
            more = f" ({suppressed} more dropped {what} messages not logged)" if suppressed else ""
            self.get_logger().error(f"dropped {what}: {exc}{more}")
            self._bad_log[what] = (start, lines + 1, 0)
        else:
            self._bad_log[what] = (start, lines, suppressed + 1)

    def _check_size(self, width: int, height: int) -> None:
        if width * height > self.p.max_image_pixels:
            raise ImageConversionError(f"{width}x{height} pixels is over the limit of {self.p.max_image_pixels} "
                                       "(parameter max_image_pixels)")
        if min(width, height) < self.p.min_image_side:
            raise ImageConversionError(f"{width}x{height} is smaller than {self.p.min_image_side} px on a side "
                                       "(parameter min_image_side): not a camera frame")

    def _on_image(self, msg: Image) -> None:
        self.transport.received_frame()
        try:
            self._check_size(int(msg.width), int(msg.height))
            frame = image_to_bgr(msg)
        except ImageConversionError as exc:
            return self._bad_message("image", exc)
        self._store_frame(msg.header, frame)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self.transport.received_frame()
        if not msg.data:
            return self._bad_message("compressed image", ImageConversionError("compressed image has no data"))
        # decoded by the worker, and only if it gets to this frame (ros/image_conversion.py CompressedFrame)
        self._store_frame(msg.header, CompressedFrame(msg, self.p.max_image_pixels, self._check_size))

    def _decoded(self, entry):
        """A buffered frame with its pixels (compressed frames are decoded here); None when they cannot be."""
        if entry is None or not isinstance(entry[2], CompressedFrame):
            return entry
        try:
            return (entry[0], entry[1], entry[2].pixels(), entry[3])
        except ImageConversionError as exc:
            self._bad_message("compressed image", exc)
            return None

    def _box_request(self, msg: TargetBox, info=None, reply=None) -> InitRequest:
        """An init request from a box message, or InvalidBoxError with the reason it cannot be one."""
        box = [msg.x, msg.y, msg.width, msg.height]
        if not all(np.isfinite(box)) or msg.width <= 0 or msg.height <= 0:
            raise InvalidBoxError(f"box {box} must be finite with positive width and height")
        ahead = (stamp_ns(msg.header) - self.get_clock().now().nanoseconds) / 1e9
        if stamp_ns(msg.header) and ahead > self.p.future_tolerance:
            raise InvalidBoxError(f"box {box} is stamped {ahead:.1f} s in the future (tolerance "
                                  f"{self.p.future_tolerance:g} s, parameter future_tolerance): clocks out of sync?")
        return InitRequest(tuple(box), stamp_ns(msg.header), time.perf_counter(), received_ns(info), reply)

    def _on_init(self, msg: TargetBox, info) -> None:
        if not self._init_seen.first_time(info):
            return                                  # the same box through the other init subscription
        try:
            req = self._box_request(msg, info)
        except InvalidBoxError as exc:
            return self._bad_message("init box", exc)
        refused = self.scheduler.put_init(req)
        if refused:
            return self._bad_message("init box", InvalidBoxError(f"box {list(req.box)} ignored: {refused}"))
        if not self.scheduler.has_frames:
            self.get_logger().warning("init box received before any image: tracking starts with the first image")

    def _on_set_target(self, request, response):
        """Like a box on the init topic, but answered: success with the box used, or exactly why not."""
        if not self.scheduler.has_frames:
            response.success = False
            response.message = f"no image received yet on {self.resolve_topic_name(self.p.image_topic)}"
            return response
        done, outcome = threading.Event(), []
        try:
            req = self._box_request(request.box, reply=lambda ok, text: (outcome.append((ok, text)), done.set()))
        except InvalidBoxError as exc:
            response.success, response.message = False, str(exc)
            return response
        refused = self.scheduler.put_init(req)
        if refused:
            response.success, response.message = False, f"box {list(req.box)} refused: {refused}"
            return response
        # the worker applies it on its frame within one frame time; only this service's thread waits
        if not done.wait(timeout=5.0):
            if self.scheduler.cancel(req):    # an answered failure must not be applied later
                response.success = False
                response.message = ("the box was not applied within 5 s (no fresh frame, or the node is overloaded); "
                                    "it was withdrawn: send it again")
                return response
            done.wait(timeout=2.0)            # the worker took it meanwhile: answer what happened
            if not outcome:
                response.success, response.message = False, "the box was taken but not answered within 7 s"
                return response
        response.success, response.message = outcome[0]
        return response

    def _request_reset(self, source: str, info=None) -> None:
        self.scheduler.put_reset(order_ns=received_ns(info))
        self.get_logger().info(f"tracking reset ({source})")

    def _state_file(self) -> str:
        """Where the last reset is remembered across restarts (parameter state_dir; one file per node name)."""
        folder = os.path.expanduser(self.p.state_dir or os.path.join(
            os.environ.get("ROS_HOME", os.path.join("~", ".ros")), "dytrack_ros"))
        return os.path.join(folder, self.get_fully_qualified_name().strip("/").replace("/", "__") + ".json")

    def _on_reset_service(self, _req, resp):
        self._request_reset("service")
        resp.success, resp.message = True, "tracking stopped; send a new init box to start again"
        return resp

    # ---- worker -------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            try:
                work = self.scheduler.next_work(timeout=0.5)
                if work is None:
                    continue
                if work.reset:
                    self.tracker.reset()
                    self._publish_idle()
                if work.init is not None:
                    init_frame = self._decoded(work.init_frame)
                    if work.init_frame is None or init_frame is not None:
                        self._initialize(work.init, init_frame, work.init_refusal)
                    elif work.init.reply is not None:
                        work.init.reply(False, "the frame this box was drawn on could not be decoded")
                latest = self._decoded(work.frame)
                if latest is not None and self.tracker.state != IDLE:
                    self._track(latest, work.dropped)
            except Exception as exc:  # the node must never die on one bad frame
                if self._running and self.context.ok():   # at shutdown, publishing fails: nothing to report
                    self.get_logger().error(f"tracking step failed: {type(exc).__name__}: {exc}",
                                            throttle_duration_sec=2.0)

    def _publish_idle(self) -> None:
        out = idle_target(Header(stamp=self.get_clock().now().to_msg()), self.tracker.num_stages)
        self.target_pub.publish(out)

    def _initialize(self, req: InitRequest, frame_entry, refusal: str = "") -> None:
        reply = req.reply or (lambda ok, text: None)
        if frame_entry is None:
            exc = InvalidBoxError(f"box {list(req.box)} refused: {refusal}")
            reply(False, str(exc))
            return self._bad_message("init box", exc)
        _, header, frame, _ = frame_entry
        try:
            box = self.tracker.initialize(frame, list(req.box))
        except InvalidBoxError as exc:
            reply(False, str(exc))
            return self._bad_message("init box", exc)
        self._target_id += 1
        self._last_tracked = None
        if not np.allclose(box, req.box):
            self.get_logger().warning(f"init box {list(req.box)} reaches outside the {frame.shape[1]}x{frame.shape[0]} "
                                      f"image: clipped to {np.round(box, 1).tolist()}")
        done = (f"initialised on frame {header.stamp.sec}.{header.stamp.nanosec:09d} with box "
                f"{np.round(box, 1).tolist()}")
        self.get_logger().info(done)
        reply(True, done)

    def _track(self, latest, dropped: int) -> None:
        _, header, frame, received = latest
        r = self.tracker.track(frame)
        latency_ms = (time.perf_counter() - received) * 1000.0
        seen = header.stamp.sec + header.stamp.nanosec * 1e-9 if header.stamp.sec or header.stamp.nanosec else received
        if r.state != LOST or self._last_tracked is None:
            self._last_tracked = seen
        out = tracked_target(header, r, self.tracker.num_stages, latency_ms, self._since_stamp_ms(header.stamp),
                             dropped, lost_seconds=max(seen - self._last_tracked, 0.0) if r.state == LOST else 0.0)
        if r.redetected:
            self.get_logger().info(f"target found again after {out.lost_seconds:.1f} s lost, at "
                                   f"{np.round(r.box, 1).tolist()} (score {r.score:.2f})")
        self.target_pub.publish(out)
        self.stats.processed(latency_ms, r.inference_ms, r.stages_run)
        self._publish_extras(out, frame)
        if self.p.log_results:
            self.get_logger().info(
                f"t={header.stamp.sec}.{header.stamp.nanosec:09d} box=[{r.box[0]:.1f}, {r.box[1]:.1f}, "
                f"{r.box[2]:.1f}, {r.box[3]:.1f}] stage={r.stages_run}/{self.tracker.num_stages} score={r.score:.2f} "
                f"state={STATE_NAMES[r.state]} inference={r.inference_ms:.1f}ms latency={latency_ms:.1f}ms")

    def _since_stamp_ms(self, stamp) -> float:
        """Camera-to-result latency on the node's clock (sim time when use_sim_time is set)."""
        if stamp.sec == 0 and stamp.nanosec == 0:
            return float("nan")
        return (self.get_clock().now() - Time.from_msg(stamp, clock_type=self.get_clock().clock_type)).nanoseconds / 1e6

    def _publish_extras(self, target: TrackedTarget, frame) -> None:
        self.marker_pub.publish(image_marker(target))
        if self.det_pub is not None:
            self.det_pub.publish(detections(target, self._target_id))
        if self.p.publish_debug_image and self.debug_pub.get_subscription_count() > 0:
            self.debug_pub.publish(bgr_to_image(draw_target(frame.copy(), target), target.header, Image))

    # ---- diagnostics -----------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        s = self.stats.snapshot()
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: tracker"
        status.hardware_id = self.backend_name
        state = self.tracker.state
        status.level = DiagnosticStatus.OK if state == TRACKING else DiagnosticStatus.WARN
        status.message = {IDLE: "waiting for an init box", TRACKING: "tracking", LOST: "target lost"}[state]
        if self.scheduler.memory.write_error:     # a restarted node would not know of the last reset
            status.level = DiagnosticStatus.WARN
            status.message += "; the last reset could not be recorded on disk"
        silent = s["seconds_since_last_frame"]
        if silent > self.p.stale_after:   # a dead camera must not look healthy
            status.level = DiagnosticStatus.STALE
            status.message = ("no image received yet" if silent == float("inf") else
                              f"no image for {silent:.1f} s") + f" on {self.resolve_topic_name(self.p.image_topic)}"
        values = {"state": STATE_NAMES[state], "backend": self.backend_name, "fps": f"{s['fps']:.2f}",
                  "input_fps": f"{s['input_fps']:.2f}",
                  "seconds_since_last_frame": "never" if silent == float("inf") else f"{silent:.2f}",
                  "latency_p50_ms": f"{s['latency_p50_ms']:.2f}", "latency_p95_ms": f"{s['latency_p95_ms']:.2f}",
                  "inference_p50_ms": f"{s['inference_p50_ms']:.2f}",
                  "inference_p95_ms": f"{s['inference_p95_ms']:.2f}",
                  "exit_stage_histogram": ",".join(str(c) for c in s["exit_histogram"]),
                  "mean_stages": f"{s['mean_stages']:.2f}", "frames_received": str(s["received"]),
                  "frames_processed": str(s["processed"]), "frames_dropped": str(s["dropped"]),
                  "frames_lost_in_transport": str(self.transport.lost),
                  "bad_messages": str(s["bad"]),
                  "reset_record": self.scheduler.memory.write_error or "ok",
                  "exit_thresholds": ",".join(f"{t:g}" for t in self.tracker.params.thresholds),
                  **self._redetection_values()}
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status]
        self.diag_pub.publish(arr)

    def _redetection_values(self) -> dict:
        """Whole-frame search counters since the node started, and the image area it covered per second lately."""
        st = self.tracker.search.stats
        now = time.monotonic()
        last_area, last_t = self._last_search_sample or (st.area_searched, now)
        per_second = (st.area_searched - last_area) / max(now - last_t, 1e-6) if self._last_search_sample else 0.0
        self._last_search_sample = (st.area_searched, now)
        return {"redetect": str(self.tracker.params.redetect).lower(), "redetect_windows_run": str(st.windows),
                "redetect_candidates": str(st.candidates), "redetect_refused_by_memory": str(st.refused_by_memory),
                "reacquisitions": str(st.reacquired), "redetect_frames_covered_per_second": f"{per_second:.2f}"}

    def shutdown(self) -> None:
        self._stop_inputs()


def main(args=None):
    rclpy.init(args=args)
    node: Optional[TrackerNode] = None
    try:
        try:
            node = TrackerNode()
        except SystemExit:
            raise
        except Exception as exc:  # e.g. a parameter of the wrong type in the YAML file
            raise SystemExit(f"dytrack tracker cannot start: {type(exc).__name__}: {exc}") from exc
        if node.p.autostart:      # no lifecycle manager needed: configure and activate now
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise SystemExit(node.configure_error or "dytrack tracker cannot start: configure failed")
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                raise SystemExit("dytrack tracker cannot start: activate failed (see the log above)")
        else:
            node.get_logger().info("waiting in the unconfigured state (autostart:=false): configure and activate "
                                   "it with a lifecycle manager or `ros2 lifecycle set`")
        executor = MultiThreadedExecutor(num_threads=2)   # one thread for ~/set_target, one for everything else
        executor.add_node(node)
        executor.spin()
    except SystemExit as exc:
        print(exc, flush=True)
        raise SystemExit(2)
    except KeyboardInterrupt:
        pass
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()


if __name__ == "__main__":
    main()
