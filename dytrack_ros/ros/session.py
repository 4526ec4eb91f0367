"""What the tracker node does between a frame coming in and a result going out, without ROS: checking inputs,
the worker thread that initialises and tracks, how long the target has been lost, refusals logged at a bounded
rate, and the diagnostics values. The node (node.py) declares parameters, wires topics and services to this, and
turns what it hands back into messages; the ordering rules live in scheduler.py.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..tracking import IDLE, LOST, STATE_NAMES, TRACKING, InvalidBoxError, InvalidFrameError
from ..tracking.tracker import TrackResult
from .image_conversion import CompressedFrame, ImageConversionError
from .params import TRACKER_SETTINGS, NodeParams
from .scheduler import Frame, InitRequest, ResetMemory, Scheduler
from .stats import RollingStats

SET_TARGET_WAIT_S = 5.0       # how long a ~/set_target call waits for its box to be applied


def load_tracker(p: NodeParams, model_path: str, thresholds):
    """The tracker the parameters describe, warmed up on a grey image (graph optimisation and allocation happen now,
    not on the first camera frame) and reset."""
    from ..runtime import build_tracker
    tracker = build_tracker(model_path, p.backend, p.device, p.threads, thresholds=thresholds,
                            search_factor=p.search_factor or None, lost_threshold=p.lost_threshold, fp16=p.fp16)
    for name in TRACKER_SETTINGS:
        setattr(tracker.params, name, getattr(p, name))
    size = max(64, p.min_image_side)
    grey = np.full((size, size, 3), 127, np.uint8)
    tracker.initialize(grey, [size / 4, size / 4, size / 2, size / 2])
    tracker.track(grey)
    tracker.reset()
    return tracker


def changed_settings(tracker, manifest, p: NodeParams) -> list:
    """'name=value (default D, from the manifest | parameter)' for every tracker setting in effect that differs from
    its default: the model's sealed search_factor, the tracker code's defaults for the settings a manifest's `tracker`
    block (editable, so not sealed) or a node parameter may change. Logged at configure: an edit that changes
    behaviour is seen."""
    import dataclasses
    from ..runtime import TUNABLE
    from ..tracking.tracker import TrackerParams
    defaults = {f.name: f.default for f in dataclasses.fields(TrackerParams)
                if f.default is not dataclasses.MISSING}
    defaults["search_factor"] = float(manifest.data["search_factor"])
    from_manifest = set(manifest.tracker_settings)
    lines = []
    for name in dict.fromkeys((*TUNABLE, "size_bounds", *TRACKER_SETTINGS, "lost_threshold", "search_factor")):
        if name not in defaults or not hasattr(tracker.params, name):
            continue
        value, default = getattr(tracker.params, name), defaults[name]
        if value != default and not (isinstance(value, tuple) and list(value) == list(default)):
            by_parameter = hasattr(p, name) and getattr(p, name) != getattr(NodeParams(), name)
            source = "manifest" if name in from_manifest and not by_parameter else "parameter"
            lines.append(f"{name}={value!r} (default {default!r}, from the {source})")
    return lines


def make_scheduler(p: NodeParams, node_name: str, warn: Callable[[str], None], now_ns: Callable[[], int]):
    """The scheduler the parameters describe, with the reset memory of this node's name."""
    tolerance_ns = int(p.future_tolerance * 1e9)
    memory = ResetMemory(state_file(p.state_dir, node_name), warn, now_ns, tolerance_ns)
    return Scheduler(p.frame_buffer, memory, log=warn, stale_after=p.stale_after, now_ns=now_ns,
                     future_tolerance_ns=tolerance_ns, max_frame_age_ns=int(p.max_init_frame_age * 1e9),
                     init_timeout=p.init_box_timeout)


class BadMessageLog:
    """Log why a message was dropped. Every refusal is logged, up to 10 lines per kind of input in 2 s; past that
    (a broken camera at 300 Hz) the lines are counted and the count is logged with the next one."""

    def __init__(self, log_error: Callable[[str], None], stats: Optional[RollingStats] = None):
        self.log_error, self.stats = log_error, stats
        self._windows = {}                    # kind of input -> (window start, lines logged, suppressed)
        self._lock = threading.Lock()

    def __call__(self, what: str, exc: Exception) -> None:
        if self.stats is not None:
            self.stats.bad_message()
        now = time.monotonic()
        with self._lock:
            start, lines, suppressed = self._windows.get(what, (now, 0, 0))
            if now - start >= 2.0:
                start, lines = now, 0
            if lines >= 10:
                self._windows[what] = (start, lines, suppressed + 1)
                return
            self._windows[what] = (start, lines + 1, 0)
        more = f" ({suppressed} more dropped {what} messages not logged)" if suppressed else ""
        self.log_error(f"dropped {what}: {exc}{more}")


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def received_ns(info) -> int:
    """When DDS received a message (system clock, ns): orders messages of different topics by arrival."""
    return int(info["received_timestamp"]) if info and info.get("received_timestamp") else 0


MAX_FRAME_ID = 256            # characters of an image's frame_id (copied into every result): a TF frame name is short


def check_frame_id(frame_id: str) -> None:
    """A frame_id is copied into every result: a huge one (100 KB made each result 8 ms slower) is refused, not
    truncated (a cut name would be a wrong TF frame)."""
    if len(frame_id) > MAX_FRAME_ID:
        raise ImageConversionError(f"frame_id of {len(frame_id)} characters ({frame_id[:40]!r}...) is over the "
                                   f"{MAX_FRAME_ID} character limit: not a TF frame name")


def check_frame_size(width: int, height: int, p: NodeParams) -> None:
    if width * height > p.max_image_pixels:
        raise ImageConversionError(f"{width}x{height} pixels is over the limit of {p.max_image_pixels} "
                                   "(parameter max_image_pixels)")
    if min(width, height) < p.min_image_side:
        raise ImageConversionError(f"{width}x{height} is smaller than {p.min_image_side} px on a side "
                                   "(parameter min_image_side): not a camera frame")


def box_request(box, stamp_ns: int, now_ns: int, future_tolerance: float, order_ns: int = 0,
                reply=None) -> InitRequest:
    """An init request from a box, or InvalidBoxError with the reason it cannot be one."""
    box = [float(v) for v in box]
    if not all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise InvalidBoxError(f"box {box} must be finite with positive width and height")
    ahead = (stamp_ns - now_ns) / 1e9
    if stamp_ns and ahead > future_tolerance:
        raise InvalidBoxError(f"box {box} is stamped {ahead:.1f} s in the future (tolerance "
                              f"{future_tolerance:g} s, parameter future_tolerance): clocks out of sync?")
    return InitRequest(tuple(box), stamp_ns, time.perf_counter(), order_ns, reply)


def target_values(tracker) -> dict:
    """The tracker's own state and box for /diagnostics (also while the node is inactive: the kept target)."""
    box = "none" if tracker.box is None or tracker.state == IDLE else \
        "[" + ", ".join(f"{v:.1f}" for v in tracker.box) + "]"
    return {"tracker_state": STATE_NAMES[tracker.state], "box": box}


def state_file(state_dir: str, node_name: str) -> str:
    """Where the last reset is remembered across restarts (parameter state_dir; one file per node name)."""
    folder = os.path.expanduser(state_dir or os.path.join(os.environ.get("ROS_HOME", os.path.join("~", ".ros")),
                                                          "dytrack_ros"))
    return os.path.join(folder, node_name.strip("/").replace("/", "__") + ".json")


@dataclass
class Outcome:
    """One tracked frame, for the node to publish."""
    frame: Frame
    result: TrackResult
    latency_ms: float          # frame received -> result ready
    lost_seconds: float        # since the last TRACKING frame (image stamps; the node's monotonic clock across a
                               # stamp jump), 0 unless LOST
    dropped: int               # frames replaced before they were processed, since the last result
    camera_latency_ms: float   # image stamp -> result ready, on the node's clock (NaN when the stamp is 0)

    def log_line(self, num_stages: int) -> str:
        r, stamp = self.result, self.frame.header.stamp
        return (f"t={stamp.sec}.{stamp.nanosec:09d} box=[{r.box[0]:.1f}, {r.box[1]:.1f}, {r.box[2]:.1f}, "
                f"{r.box[3]:.1f}] stage={r.stages_run}/{num_stages} score={r.score:.2f} state={STATE_NAMES[r.state]} "
                f"inference={r.inference_ms:.1f}ms latency={self.latency_ms:.1f}ms")


class TrackingSession:
    """One active period of the node: the worker thread that takes the scheduler's work (reset, init, newest frame)
    to the tracker and hands each result to `publish(outcome)`; `idle()` is called when tracking stops."""

    def __init__(self, tracker, scheduler: Scheduler, stats: RollingStats, publish: Callable[[Outcome], None],
                 idle: Callable[[], None], log_info: Callable[[str], None], log_warning: Callable[[str], None],
                 log_error: Callable[[str], None], bad: BadMessageLog, running: Callable[[], bool] = lambda: True,
                 now_ns: Callable[[], int] = time.time_ns):
        self.tracker, self.scheduler, self.stats = tracker, scheduler, stats
        self.publish, self.idle, self.bad = publish, idle, bad
        self.log_info, self.log_warning, self.log_error = log_info, log_warning, log_error
        self.ok_to_report = running           # False at shutdown: a failing publish is not worth a log line
        self.now_ns = now_ns                  # the node's clock (sim time with use_sim_time)
        self.target_id = 0                    # counts accepted init boxes: a detection's id changes with the target
        # lost time: summed frame to frame, by image stamps while they move forward at a plausible pace, else by the
        # node's monotonic clock (a camera clock stepping back or far forward must not stop or inflate the count)
        self._previous: Optional[tuple] = None   # (stamp_ns, received) of the previous tracked frame; None: new target
        self._since_tracked = 0.0             # seconds since the last TRACKING frame
        self.lost_seconds = 0.0               # of the newest result
        self.stamp_jumps = 0                  # times the stamps stepped back or far forward between tracked frames
        self.last_stamp_jump = ""
        self._jump_logged = -1e9              # time.monotonic() of the last jump's log line (one per 5 s)
        self.last_refused = ""                # the last init box refused, and why
        self._last_search = None              # (area searched, time) at the last diagnostics
        self._running = False
        self._thread: Optional[threading.Thread] = None

    # ---- the worker ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._work, name="dytrack-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self.scheduler.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _work(self) -> None:
        while self._running:
            try:
                work = self.scheduler.next_work(timeout=0.5)
                if work is None:
                    continue
                if work.new_camera and not work.reset and self.tracker.state != IDLE:
                    self.log_warning(f"tracking stopped: the images come from another camera ({work.new_camera}); "
                                     "the target's box belonged to the old one")
                if work.init_expired:
                    self.refused(InvalidBoxError(work.init_expired))
                if work.reset or (work.new_camera and self.tracker.state != IDLE):
                    self.tracker.reset()
                    self.idle()
                if work.init is not None:
                    init_frame = self.decoded(work.init_frame)
                    if work.init_frame is None or init_frame is not None:
                        self._initialize(work.init, init_frame, work.init_refusal)
                    elif work.init.reply is not None:
                        work.init.reply(False, "the frame this box was drawn on could not be decoded")
                latest = self.decoded(work.frame)
                if latest is not None and self.tracker.state != IDLE:
                    self._track(latest, work.dropped)
            except Exception as exc:  # the node must never die on one bad frame
                if self._running and self.ok_to_report():
                    self.log_error(f"tracking step failed: {type(exc).__name__}: {exc}")

    def decoded(self, frame: Optional[Frame]) -> Optional[Frame]:
        """A buffered frame with its pixels (compressed frames are decoded here); None when they cannot be."""
        if frame is None or not isinstance(frame.image, CompressedFrame):
            return frame
        try:
            return frame._replace(image=frame.image.pixels())
        except ImageConversionError as exc:
            self.bad("compressed image", exc)
            self.scheduler.frame_refused(str(exc), time.perf_counter())
            return None

    def _initialize(self, req: InitRequest, frame: Optional[Frame], refusal: str = "") -> None:
        reply = req.reply or (lambda ok, text: None)
        if frame is None:
            exc = InvalidBoxError(f"box {list(req.box)} refused: {refusal}")
            reply(False, str(exc))
            return self.refused(exc)
        try:
            box = self.tracker.initialize(frame.image, list(req.box))
        except InvalidBoxError as exc:
            reply(False, str(exc))
            return self.refused(exc)
        except InvalidFrameError as exc:            # e.g. a 1x1 frame with min_image_side under the tracker's own
            self.frame_refused(exc)
            exc = InvalidBoxError(f"box {list(req.box)} refused: the frame it was to be applied to was refused: {exc}")
            reply(False, str(exc))
            return self.refused(exc)
        except Exception as exc:                    # answered, whatever happened (a caller must not wait in vain)
            reply(False, f"box {list(req.box)} could not be applied: {type(exc).__name__}: {exc}")
            raise
        self.target_id += 1
        self._previous, self._since_tracked = None, 0.0
        h, w = frame.image.shape[:2]
        if not np.allclose(box, req.box):
            self.log_warning(f"init box {list(req.box)} reaches outside the {w}x{h} image: clipped to "
                             f"{np.round(box, 1).tolist()}")
        stamp = frame.header.stamp
        done = f"initialised on frame {stamp.sec}.{stamp.nanosec:09d} with box {np.round(box, 1).tolist()}"
        self.log_info(done)
        reply(True, done)

    def frame_refused(self, exc: Exception) -> None:
        """A frame the tracker refused (InvalidFrameError): logged (bounded) and told to the scheduler, so that a
        ~/set_target caller and an expiring box learn why."""
        self.bad("image", exc)
        self.scheduler.frame_refused(str(exc), time.perf_counter())

    def _track(self, frame: Frame, dropped: int) -> None:
        try:
            r = self.tracker.track(frame.image)
        except InvalidFrameError as exc:
            return self.frame_refused(exc)
        latency_ms = (time.perf_counter() - frame.received) * 1000.0
        since = self._since_tracked + self._elapsed(frame)
        self._since_tracked = since if r.state == LOST else 0.0
        lost_seconds = since if r.state == LOST else 0.0
        self.lost_seconds = lost_seconds
        self.stats.processed(latency_ms, r.inference_ms, r.stages_run)
        if r.redetected:          # `since`, not lost_seconds: this frame is TRACKING again
            self.log_info(f"target found again after {since:.1f} s lost, at {np.round(r.box, 1).tolist()} "
                          f"(score {r.score:.2f})")
        camera_ms = (self.now_ns() - frame.stamp_ns) / 1e6 if frame.stamp_ns else float("nan")
        self.publish(Outcome(frame, r, latency_ms, lost_seconds, dropped, camera_ms))

    def _elapsed(self, frame: Frame) -> float:
        """Seconds from the previous tracked frame to this one: the image stamps' difference while it is plausible
        (forward, and at most twice the node's own time plus 1 s: bag playback may run fast), else the node's
        monotonic clock (frame.received), with a log line (one per 5 s) and a count for /diagnostics."""
        previous, self._previous = self._previous, (frame.stamp_ns, frame.received)
        if previous is None:
            return 0.0
        wall = max(frame.received - previous[1], 0.0)
        if not (frame.stamp_ns and previous[0]):
            return wall
        by_stamps = (frame.stamp_ns - previous[0]) / 1e9
        if 0.0 <= by_stamps <= 2.0 * wall + 1.0:
            return by_stamps
        self.stamp_jumps += 1
        self.last_stamp_jump = (f"image stamps jumped {'back' if by_stamps < 0 else 'forward'} {abs(by_stamps):.1f} s "
                                f"between two tracked frames {wall:.2f} s apart")
        if time.monotonic() - self._jump_logged >= 5.0:
            self._jump_logged = time.monotonic()
            self.log_warning(f"{self.last_stamp_jump} (jump {self.stamp_jumps}): lost time counts on the node's "
                             "monotonic clock across it")
        return wall

    # ---- requests from callbacks ------------------------------------------------------------------------------
    def init_box(self, make_request: Callable[[], InitRequest]) -> None:
        """A box from the init topic: queued, or logged with the reason it is not."""
        try:
            req = make_request()
        except InvalidBoxError as exc:
            return self.refused(exc)
        refused = self.scheduler.put_init(req)
        if refused:
            return self.refused(InvalidBoxError(f"box {list(req.box)} ignored: {refused}"))
        if not self.scheduler.has_frames:
            self.log_warning("init box received before any image: tracking starts with the first image")

    def submit_target(self, make_request: Callable[[Callable[[bool, str], None]], InitRequest], image_topic: str,
                      reply: Callable[[bool, str], None]):
        """A ~/set_target box: (answer, None) when it is refused at once, else (None, request) and the worker calls
        reply(success, message) once, when it applied or refused it (withdraw() if the caller stops waiting)."""
        lock, answered = threading.Lock(), []

        def once(ok: bool, text: str) -> None:          # the worker and a withdrawal may both answer
            with lock:
                if answered:
                    return
                answered.append(ok)
            reply(ok, text)
        refusals = self.scheduler.frames_refused()
        if not self.scheduler.has_frames:       # nothing arrived, or every frame that did was refused: say which
            return (False, f"no image taken yet on {image_topic}: {refusals}" if refusals
                    else f"no image received yet on {image_topic}"), None
        try:
            req = make_request(once)
        except InvalidBoxError as exc:
            self.last_refused = str(exc)
            return (False, str(exc)), None
        refusals = self.scheduler.refused_for(req)
        if refusals:                            # it would wait for a frame the node takes: say why none comes
            self.last_refused = f"box {list(req.box)} refused: no frame it can be applied to on {image_topic}: " \
                f"{refusals}"
            return (False, self.last_refused), None
        refused = self.scheduler.put_init(req)
        if refused:
            self.last_refused = f"box {list(req.box)} refused: {refused}"
            return (False, self.last_refused), None
        return None, req

    def refused(self, exc: InvalidBoxError) -> None:
        """An init box refused: logged (bounded), and kept for /diagnostics (an operator sees the last one and why)."""
        self.last_refused = str(exc)
        self.bad("init box", exc)

    def withdraw(self, req: InitRequest) -> bool:
        """The caller stops waiting: True when the box was withdrawn before the worker took it (it answers then)."""
        if self.scheduler.cancel(req):       # an answered failure must not be applied later
            req.reply(False, f"the box was not applied within {SET_TARGET_WAIT_S:g} s (no fresh frame, or the node is "
                             "overloaded); it was withdrawn: send it again")
            return True
        return False

    # ---- diagnostics -----------------------------------------------------------------------------------------
    def diagnostics(self, backend: str, image_topic: str, stale_after: float, lost_in_transport: int,
                    lifecycle: str = "active") -> tuple:
        """(level 'OK' | 'WARN' | 'STALE', message, key -> value strings) for /diagnostics."""
        s = self.stats.snapshot()
        state = self.tracker.state
        level = "OK" if state == TRACKING else "WARN"
        message = {IDLE: "waiting for an init box", TRACKING: "tracking", LOST: "target lost"}[state]
        record_error = self.scheduler.memory.write_error
        if record_error:                      # a restarted node would not know of the last reset
            level, message = "WARN", message + "; the last reset could not be recorded on disk"
        silent = s["seconds_since_last_frame"]
        if silent > stale_after:              # a dead camera must not look healthy
            level = "STALE"
            message = ("no image received yet" if silent == float("inf") else f"no image for {silent:.1f} s") + \
                f" on {image_topic}"
        # `state` is what a follower may act on: never "tracking" on a stale camera (tracker_state: the tracker's own)
        values = {"lifecycle_state": lifecycle, "state": "stale" if level == "STALE" and state != IDLE
                  else STATE_NAMES[state], **target_values(self.tracker),
                  "lost_seconds": f"{self.lost_seconds:.2f}" if state == LOST else "0.00",
                  "stamp_jumps": str(self.stamp_jumps), "last_stamp_jump": self.last_stamp_jump or "none",
                  "image_stream_changes": str(self.scheduler.stream_changes),
                  "last_image_stream_change": self.scheduler.last_stream_change or "none",
                  "last_refused_init_box": self.last_refused or "none",
                  "init_box_waiting": self.scheduler.waiting_init(),
                  "init_boxes_expired": str(self.scheduler.expired_inits),
                  "backend": backend, "fps": f"{s['fps']:.2f}",
                  "input_fps": f"{s['input_fps']:.2f}",
                  "seconds_since_last_frame": "never" if silent == float("inf") else f"{silent:.2f}",
                  "latency_p50_ms": f"{s['latency_p50_ms']:.2f}", "latency_p95_ms": f"{s['latency_p95_ms']:.2f}",
                  "inference_p50_ms": f"{s['inference_p50_ms']:.2f}", "inference_p95_ms": f"{s['inference_p95_ms']:.2f}",
                  "exit_stage_histogram": ",".join(str(c) for c in s["exit_histogram"]),
                  "mean_stages": f"{s['mean_stages']:.2f}", "frames_received": str(s["received"]),
                  "frames_processed": str(s["processed"]), "frames_dropped": str(s["dropped"]),
                  "frames_lost_in_transport": str(lost_in_transport), "bad_messages": str(s["bad"]),
                  "reset_record": record_error or "ok",
                  "exit_thresholds": ",".join(f"{t:g}" for t in self.tracker.params.thresholds),
                  **self._redetection_values()}
        return level, message, values

    def _redetection_values(self) -> dict:
        """Whole-frame search counters since the tracker was built, and the image area it covered per second lately."""
        st = self.tracker.search.stats
        now = time.monotonic()
        per_second = 0.0
        if self._last_search is not None:
            area, then = self._last_search
            per_second = (st.area_searched - area) / max(now - then, 1e-6)
        self._last_search = (st.area_searched, now)
        return {"redetect": str(self.tracker.params.redetect).lower(), "redetect_windows_run": str(st.windows),
                "redetect_candidates": str(st.candidates), "redetect_refused_by_memory": str(st.refused_by_memory),
                "redetect_refused_as_lookalike": str(st.refused_as_lookalike),
                "redetect_refused_as_seen_before": str(st.refused_as_seen_before),
                "reacquisitions": str(st.reacquired), "drifts_caught_by_memory": str(st.drifts),
                "redetect_frames_covered_per_second": f"{per_second:.2f}"}
