"""What the tracker node's worker does next, without ROS: the newest-frame slot, recent frames for stamp
matching, and init / reset requests applied in the order they arrived.

Why a separate class: the ordering rules (a reset cancels an init that came before it, never one that came
after; a box is applied to the frame it was drawn on; a reset outlives a restart) are easy to get wrong with
flags shared between threads, and here they are unit-tested without DDS (`test/test_scheduler.py`).
Thread-safe: callbacks call the `put_*` methods, the worker calls `next_work()`.
"""
from __future__ import annotations

import bisect
import collections
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, List, NamedTuple, Optional, Tuple


class Frame(NamedTuple):
    """A buffered camera frame."""
    stamp_ns: int          # the image header's stamp
    header: Any            # the ROS header, copied into every output for this frame
    image: Any             # BGR pixels, or a CompressedFrame the worker decodes if it gets to it
    received: float        # time.perf_counter() when the callback stored it


MATCH_TOLERANCE_NS = 1_000_000_000           # a box may name a frame up to 1 s before the oldest one kept


@dataclass
class InitRequest:
    box: Tuple[float, float, float, float]
    stamp_ns: int                             # 0: "the newest frame"
    received: float                           # time.perf_counter() at the callback (frame freshness)
    order_ns: int = 0                         # arrival time for ordering against resets (DDS reception time)
    reply: Optional[Callable[[bool, str], None]] = None   # told the outcome (the set_target service waits on it)

    def fingerprint(self) -> List[float]:
        return [*map(float, self.box), int(self.stamp_ns)]


def _tell(req: Optional[InitRequest], ok: bool, message: str) -> None:
    if req is not None and req.reply is not None:
        req.reply(ok, message)


@dataclass
class Work:
    reset: bool = False                       # the tracker must be reset before anything else
    init: Optional[InitRequest] = None
    init_frame: Optional[Frame] = None
    init_refusal: str = ""                    # why init has no frame (init_frame None)
    frame: Optional[Frame] = None             # newest unprocessed frame (None: nothing to track)
    dropped: int = 0                          # frames replaced before they were processed, since the last Work
    new_camera: str = ""                      # the frames now come from another camera (frame_id or size): why
    init_expired: str = ""                    # a waiting box was dropped (init_box_timeout): why


class ResetMemory:
    """The last reset, kept in a small JSON file so that a restarted node does not resume a target the operator
    cancelled: boxes stamped before the reset are ignored, and so is the very box that was cancelled when a new
    node gets it again from the latched init topic (until it accepts another box, or that box again: within one
    run, sending the same box again after a reset is a new request and is taken).

    Never in the way of a reset or a start: a state file that cannot be read or makes no sense is discarded with
    a log line; a stamp from the future (beyond future_tolerance_ns of the node's clock) is discarded too (it would
    refuse every box); a record that cannot be written is logged, kept in memory, reported (`write_error`) and
    retried."""

    def __init__(self, path: str = "", log: Callable[[str], None] = lambda _m: None,
                 now_ns: Optional[Callable[[], int]] = None, future_tolerance_ns: int = 0):
        self.path, self.log = path, log
        self.now_ns, self.future_tolerance_ns = now_ns, future_tolerance_ns
        self.stamp_ns, self.cancelled = 0, None
        self.cancelled_before_start = None
        self.write_error: Optional[str] = None
        if path and os.path.exists(path):
            try:
                self.stamp_ns, self.cancelled = self._read(path)
            except Exception as exc:   # whatever is in the file, the node starts
                self.log(f"reset memory {path} discarded: {exc}")
            self.cancelled_before_start = self.cancelled

    def _read(self, path: str):
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {type(data).__name__}")
        stamp = data.get("reset_stamp_ns", 0)
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp) or stamp < 0:
            raise ValueError(f"reset_stamp_ns must be a stamp in ns, found {stamp!r:.40}")
        stamp = int(stamp)
        if self.now_ns is not None and stamp > self.now_ns() + self.future_tolerance_ns:
            raise ValueError(f"its reset stamp lies {(stamp - self.now_ns()) / 1e9:.0f} s in the future (a camera "
                             "with a wrong clock?)")
        box = data.get("cancelled_box")
        if box is not None and (not isinstance(box, list) or len(box) != 5 or
                                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise ValueError(f"cancelled_box must be [x, y, w, h, stamp] or null, found {box!r:.60}")
        return stamp, box

    def remember(self, stamp_ns: int, cancelled: Optional[InitRequest]) -> None:
        self.stamp_ns = int(stamp_ns)
        self.cancelled = cancelled.fingerprint() if cancelled else self.cancelled
        self._write()

    def _write(self) -> None:
        if not self.path:
            return
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"reset_stamp_ns": self.stamp_ns, "cancelled_box": self.cancelled}, f)
            os.replace(tmp, self.path)
        except OSError as exc:
            if self.write_error is None:
                self.log(f"the reset could not be recorded in {self.path} ({exc}): tracking stopped all the same; "
                         "a restarted node would not know of this reset. Retrying.")
            self.write_error = f"{type(exc).__name__}: {exc}"
        else:
            if self.write_error is not None:
                self.log(f"the reset is now recorded in {self.path}")
            self.write_error = None

    def retry(self) -> None:
        if self.write_error is not None:
            self._write()

    def refuses(self, req: InitRequest) -> Optional[str]:
        if req.stamp_ns < 0:
            return "its stamp is negative"
        if self.cancelled_before_start is not None and req.fingerprint() == self.cancelled_before_start:
            return "it is the box a reset cancelled before this node started (latched on the init topic)"
        if req.stamp_ns and req.stamp_ns < self.stamp_ns:
            return "it was drawn on a frame older than the last reset"
        self.cancelled_before_start = None
        if self.cancelled is not None and req.fingerprint() == self.cancelled:
            self.cancelled = None      # taken again on purpose: a later start must not refuse it as cancelled
            self._write()
        return None


def _size(image) -> tuple:
    """(height, width) of a frame's pixels; () for a compressed frame (its size is known once decoded)."""
    return tuple(getattr(image, "shape", ())[:2])


class Scheduler:
    def __init__(self, buffer: int, reset_memory: Optional[ResetMemory] = None,
                 log: Callable[[str], None] = lambda _m: None, stale_after: float = 2.0,
                 now_ns: Optional[Callable[[], int]] = None, future_tolerance_ns: int = 0,
                 max_frame_age_ns: int = 2 * 10**9, init_timeout: float = 5.0):
        self._cv = threading.Condition()
        self._latest: Optional[Frame] = None
        self._recent = collections.deque(maxlen=buffer)
        self._events = collections.deque()     # ("reset", stamp) / ("init", InitRequest), arrival order
        self._pending_init: Optional[InitRequest] = None   # waiting for a first frame
        self._active_init: Optional[InitRequest] = None    # the box the current track started from
        self._dropped = 0
        self._closed = False
        self.memory = reset_memory or ResetMemory()
        self.log = log
        self.stale_after = stale_after            # a zero-stamped box waits for a fresh frame if the newest is older
        # frames stamped beyond the node's clock + tolerance do not move the reset's time (a camera with a wrong clock
        # would otherwise make every later box look older than the reset)
        self.now_ns, self.future_tolerance_ns = now_ns, future_tolerance_ns
        self._last_retry = 0.0
        self.max_frame_age_ns = max_frame_age_ns  # a box is not applied to a frame this much older than its stamp
        self._stream_start: Optional[Tuple[int, str]] = None   # (first stamp, why) of the stream that started last
        self._new_camera = ""                     # set by put_frame, taken by next_work: the tracker must stop
        # a box waiting for a frame expires init_timeout s after it arrived once the camera has been seen (a frame
        # taken or refused); before the camera's first frame it waits without a limit (a latched box at start-up)
        self.init_timeout = init_timeout
        self._camera_seen: Optional[float] = None  # perf_counter() of the first frame message, taken or refused
        self.refused_frames = 0                   # frames refused by the node since the last one it took
        self.last_frame_refusal = ""              # why the newest refused frame was refused
        self.expired_inits = 0                    # boxes dropped after init_timeout
        self.stream_changes = 0                   # new image streams seen (stamp jumps, another camera)
        self.last_stream_change = ""

    # ---- callbacks ------------------------------------------------------------------------------------------
    def put_frame(self, stamp_ns: int, header, image, received: float) -> bool:
        """Store the newest frame. Returns True when it replaced an unprocessed one (that one is dropped)."""
        with self._cv:
            if self._recent:
                self._check_stream(stamp_ns, header, image)
            replaced = self._latest is not None
            self._dropped += int(replaced)
            self._camera_seen = received if self._camera_seen is None else self._camera_seen
            self.refused_frames = 0
            self._latest = Frame(stamp_ns, header, image, received)
            self._recent.append(self._latest)
            self._cv.notify()
            return replaced

    def _check_stream(self, stamp_ns: int, header, image) -> None:
        """A new stream (another video played, a bag looped, the camera switched) must not leave its predecessor's
        frames to be matched with a box drawn on the new one (a lost first frame would match the box to a frame of
        the old stream). Stamps that jump back, or forward by more than max_init_frame_age: the old frames are
        dropped. Another frame_id or image size: another camera, so the target (in the old one's pixels) is dropped
        too. A time jump alone keeps the target (a camera glitch or a short dropout)."""
        last = self._recent[-1]
        why, camera = "", ""
        if getattr(header, "frame_id", None) != getattr(last.header, "frame_id", None):
            why = camera = f"frame_id {getattr(last.header, 'frame_id', '')!r} -> {getattr(header, 'frame_id', '')!r}"
        elif _size(image) != _size(last.image):
            sizes = ("x".join(map(str, _size(i)[::-1])) for i in (last.image, image))
            why = camera = "image size %s -> %s" % tuple(sizes)
        elif stamp_ns and self._plausible(stamp_ns):    # a frame stamped in the future is a glitch, not a stream
            held = [f.stamp_ns for f in self._recent if f.stamp_ns and self._plausible(f.stamp_ns)][-2:]
            if held and stamp_ns < held[-1]:
                why = f"stamps jumped back {(held[-1] - stamp_ns) / 1e9:.1f} s"
            # forward: past max_init_frame_age and 10 of the stream's own frame intervals (a 0.1 fps camera is no jump)
            elif len(held) == 2 and stamp_ns - held[-1] > max(self.max_frame_age_ns, 10 * (held[1] - held[0])):
                why = f"stamps jumped forward {(stamp_ns - held[-1]) / 1e9:.1f} s"
        if not why:
            return
        self.log(f"new image stream ({why}): the {len(self._recent)} frames held from the previous one are dropped; "
                 "init boxes are matched to the new stream's frames only")
        self._recent.clear()
        self._stream_start = (stamp_ns, why)
        self.stream_changes, self.last_stream_change = self.stream_changes + 1, why
        if camera:
            self._new_camera, self._active_init = camera, None
        if stamp_ns and stamp_ns < self.memory.stamp_ns:   # the last reset's time means nothing in the new time base
            self.memory.remember(0, None)

    def frame_refused(self, reason: str, received: float) -> None:
        """A frame message the node refused (its size, encoding, ...): the camera is there, but sends nothing usable."""
        with self._cv:
            self._camera_seen = received if self._camera_seen is None else self._camera_seen
            self.refused_frames += 1
            self.last_frame_refusal = reason

    def frames_refused(self) -> str:
        """'' while the newest frame message was taken, else 'the last N frames were refused: why'."""
        with self._cv:
            return self._refusals()

    def _refusals(self) -> str:
        n = self.refused_frames
        return f"the last {n} frame{'s were' if n > 1 else ' was'} refused: {self.last_frame_refusal}" if n else ""

    def refused_for(self, req: InitRequest) -> str:
        """Why `req` cannot be applied now because the newest frame messages were refused (no frame held can take
        it): 'the last N frames were refused: why'; '' when it can be, or is waiting for another reason."""
        with self._cv:
            if not self.refused_frames or (self._recent and self._fresh_enough(req)):
                return ""
            return self._refusals()

    def waiting_init(self) -> str:
        """The box waiting for a frame, and for how long (diagnostics); 'none'."""
        with self._cv:
            req = self._pending_init
            if req is None:
                return "none"
            waited = time.perf_counter() - req.received
            limit = "" if self._camera_seen is None else f", expires after {self.init_timeout:g} s"
            return f"box {list(req.box)} waiting {waited:.1f} s for a frame{limit}"

    def _expire_init(self, work: "Work") -> None:
        """Drop the waiting box once it has waited init_timeout s since it arrived (or since the camera was first
        seen): it must not be applied later to a scene nobody saw when it was drawn."""
        req = self._pending_init
        if req is None or self._camera_seen is None:
            return
        now = time.perf_counter()
        if now - max(req.received, self._camera_seen) <= self.init_timeout:
            return
        if self.refused_frames:
            why = self._refusals()
        elif not self._recent:
            why = "no image arrived"
        elif req.stamp_ns == 0:
            why = f"the newest image is {now - self._recent[-1][3]:.1f} s old (camera out?)"
        else:
            gap = (req.stamp_ns - self._recent[-1][0]) / 1e9
            why = f"no image of its time arrived (the newest is stamped {gap:.1f} s before it)"
        self._pending_init, self.expired_inits = None, self.expired_inits + 1
        work.init_expired = (f"box {list(req.box)} expired after waiting {now - req.received:.1f} s for a frame to be "
                             f"applied to (init_box_timeout {self.init_timeout:g} s): {why}; send it again")
        _tell(req, False, work.init_expired)

    def _plausible(self, stamp_ns: int) -> bool:
        return self.now_ns is None or stamp_ns <= self.now_ns() + self.future_tolerance_ns

    def put_init(self, req: InitRequest) -> Optional[str]:
        """Queue an init box; returns the reason when it is refused (older than the last reset)."""
        reason = self.memory.refuses(req)
        if reason:
            return reason
        req.order_ns = req.order_ns or time.time_ns()
        self._put(req.order_ns, ("init", req))
        return None

    def put_reset(self, stamp_ns: Optional[int] = None, order_ns: int = 0) -> None:
        """stamp_ns: the reset's time in the camera's time base (default: the newest frame's stamp; boxes drawn
        on older frames are refused from now on); order_ns: when it arrived (DDS reception time), to order it
        against init boxes that came through another topic."""
        order = order_ns or time.time_ns()
        if stamp_ns is None:
            with self._cv:
                plausible = [f[0] for f in self._recent if self._plausible(f[0])]
                stamp_ns = plausible[-1] if plausible else 0
        self._put(order, ("reset", (stamp_ns, order)))

    def _put(self, order: int, event) -> None:
        # callbacks of different topics run in the executor's order, not in the order the messages arrived:
        # keep the queue sorted by arrival time
        with self._cv:
            if len(self._events) > 64:            # a flood of requests: drop the oldest
                self._events.popleft()
            keys = [e[0] for e in self._events]
            self._events.insert(bisect.bisect_right(keys, order), (order, event))
            self._cv.notify()

    def cancel(self, req: InitRequest) -> bool:
        """Withdraw a box that has not been applied yet (its requester gave up); False when it is too late."""
        with self._cv:
            if self._pending_init is req:
                self._pending_init = None
                return True
            for i, (_, (kind, payload)) in enumerate(self._events):
                if kind == "init" and payload is req:
                    del self._events[i]
                    return True
            return False

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    @property
    def has_frames(self) -> bool:
        with self._cv:
            return bool(self._recent)

    # ---- worker ---------------------------------------------------------------------------------------------
    def next_work(self, timeout: float = 0.5) -> Optional[Work]:
        """Blocks until there is something to do; None when closed (or on timeout with nothing to do)."""
        with self._cv:
            self._cv.wait_for(lambda: self._closed or self._latest is not None or bool(self._events), timeout=timeout)
            if self._closed:
                return None
            if self.memory.write_error is not None and time.monotonic() - self._last_retry > 1.0:
                self._last_retry = time.monotonic()
                self.memory.retry()
            work = Work()
            while self._events:                   # in arrival order: reset cancels what came before it only
                _, (kind, payload) = self._events.popleft()
                if kind == "reset":
                    self._apply_reset(work, *payload)
                else:
                    _tell(self._pending_init, False, "a newer box arrived before this one was applied")
                    self._pending_init = payload
            if self._pending_init is not None and self._recent and self._fresh_enough(self._pending_init):
                work.init, self._pending_init = self._pending_init, None
                work.init_frame, work.init_refusal = self._frame_for(work.init)
                self._active_init = work.init
            self._expire_init(work)
            work.frame, self._latest = self._latest, None
            if work.init is not None and work.init_frame is None:
                self._active_init = None          # refused by the node (too old), nothing was started
            if work.init_frame is not None and work.frame is not None and work.frame[0] <= work.init_frame[0]:
                work.frame = None                 # the init frame itself: nothing to track yet
            work.dropped, self._dropped = self._dropped, 0
            work.new_camera, self._new_camera = self._new_camera, ""
            if not (work.reset or work.init or work.frame or work.new_camera or work.init_expired):
                return Work(dropped=work.dropped) if work.dropped else None
            return work

    def _apply_reset(self, work: Work, stamp_ns: int, order_ns: int) -> None:
        """A reset cancels the target and any waiting box that arrived before it, never a box that arrived after
        it (even one already applied because its callback ran first)."""
        if self._active_init is not None and self._active_init.order_ns > order_ns:
            self.log("a reset older than the current target's init box was ignored")
            return
        cancelled = self._pending_init if self._pending_init is not None else self._active_init
        if self._pending_init is not None and self._pending_init.order_ns > order_ns:
            cancelled = self._active_init        # the waiting box is newer than the reset: it stays
        else:
            _tell(self._pending_init, False, "a reset that arrived after this box cancelled it")
            self._pending_init = None
        work.reset, self._active_init = True, None   # tracking stops first, whatever happens to the record
        self.memory.remember(stamp_ns, cancelled)

    def _fresh_enough(self, req: InitRequest) -> bool:
        """A box without a stamp means 'what the camera shows now': not a frame from before the stream stopped. A
        stamped box whose frame has not arrived yet (every buffered frame is far older) waits for it."""
        if req.stamp_ns == 0:
            return req.received - self._recent[-1][3] <= self.stale_after
        return self._recent[-1][0] >= req.stamp_ns - self.max_frame_age_ns

    def _frame_for(self, req: InitRequest) -> Tuple[Optional[Frame], str]:
        """Newest buffered frame not after the box's stamp (the frame it was drawn on); zero stamp: the newest.
        (None, why) when no buffered frame can be the one it was drawn on."""
        if req.stamp_ns == 0:
            return self._recent[-1], ""
        older = [f for f in self._recent if f[0] <= req.stamp_ns]
        if older:
            gap = req.stamp_ns - older[-1][0]
            if gap > self.max_frame_age_ns:       # e.g. frames left from an earlier playback, none from its time
                return None, (f"the newest frame before its stamp is {gap / 1e9:.1f} s older than the box "
                              f"(max_init_frame_age {self.max_frame_age_ns / 1e9:g} s): no frame of its time arrived")
            return older[-1], ""
        oldest = self._recent[0]
        if self._stream_start is not None and self._stream_start[0] == oldest[0] and req.stamp_ns < oldest[0] - \
                MATCH_TOLERANCE_NS:
            return None, (f"no frame of its time is held: it is stamped {(oldest[0] - req.stamp_ns) / 1e9:.1f} s "
                          f"before the first frame of a new image stream ({self._stream_start[1]})")
        if oldest[0] - req.stamp_ns <= MATCH_TOLERANCE_NS:   # its frame is not here: the next one
            self.log(f"init box stamped {(oldest[0] - req.stamp_ns) / 1e6:.0f} ms before the oldest buffered frame: "
                     "using that frame")
            return oldest, ""
        return None, (f"it is stamped before every buffered frame (frame_buffer={len(self._recent)}): the frame it "
                      "was drawn on is gone; send it again")
