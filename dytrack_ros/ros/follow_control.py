"""The follower's control law and safety rules, without ROS (follower.py wires them to topics; the tests and the
closed-loop simulation drive them directly too).

Inputs are tracker results (TrackedTarget's fields), init boxes seen on the tracker's init topic, the tracker's
lifecycle transitions and the clock; the output is a command (yaw rate, forward and vertical speed, gimbal pan/tilt
rates) plus the reason it is what it is. Any doubt gives a zero command at once: the acceleration limit shapes
speeding up, never stopping (a robot's own braking applies after a zero).

TrackedTarget has no target id field. What it offers to tell that the followed object changed: an IDLE result
(published after every reset, so IDLE -> TRACKING is a new init), a box that jumps between consecutive results, and
`redetected` (the whole-frame search took a candidate elsewhere). Init boxes on the tracker's init topic are seen
too; a target set through `~/set_target` (a service call) is not visible to anyone else, so a far-away new target
set that way while tracking reads as a jump: the follower stops until a reset, an init box or `~/resume`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Dict, Optional, Tuple

IDLE, TRACKING, LOST = 0, 1, 2           # TrackedTarget.STATE_*

# name -> (default, description, (min, max) or None)
PARAMETERS: Dict[str, Tuple[object, str, Optional[Tuple[float, float]]]] = {
    "image_width": (640, "camera image width in pixels (the tracker's input)", (1, 100000)),
    "image_height": (480, "camera image height in pixels", (1, 100000)),
    "kp_yaw": (2.0, "yaw rate (rad/s) per unit horizontal error (box centre offset / image width); about "
                    "horizontal field of view / wanted time constant", (0.0, 50.0)),
    "ki_yaw": (0.3, "integral gain on the horizontal error (removes the lag behind a target that keeps moving)",
               (0.0, 50.0)),
    "kd_yaw": (0.0, "derivative gain on the horizontal error", (0.0, 10.0)),
    "kp_forward": (1.5, "forward speed (m/s) per unit relative size error ((set-point - size) / set-point)",
                   (0.0, 50.0)),
    "kp_vertical": (1.0, "vertical speed (m/s, linear.z, multirotors; ground robots ignore it) per unit vertical "
                         "error (box centre offset / image height, up positive)", (0.0, 50.0)),
    "size_setpoint": (0.0, "target size to hold, sqrt(box area / image area); 0 = the size at the first TRACKING "
                           "result after each init", (0.0, 1.0)),
    "deadband": (0.02, "errors under this (image fraction; relative size) count as zero", (0.0, 0.5)),
    "max_yaw_rate": (1.0, "yaw rate limit, rad/s", (0.0, 20.0)),
    "max_yaw_accel": (4.0, "yaw acceleration limit while speeding up, rad/s^2 (stops are immediate)", (0.01, 200.0)),
    "max_forward_speed": (1.0, "forward speed limit, m/s (backwards too)", (0.0, 20.0)),
    "max_forward_accel": (1.0, "forward acceleration limit while speeding up, m/s^2", (0.01, 200.0)),
    "max_vertical_speed": (0.5, "vertical speed limit, m/s", (0.0, 20.0)),
    "max_vertical_accel": (1.0, "vertical acceleration limit while speeding up, m/s^2", (0.01, 200.0)),
    "integral_limit": (0.3, "anti-windup: the integral of the horizontal error is clamped to this (image widths x "
                            "s)", (0.0, 10.0)),
    "gimbal_pan_gain": (2.0, "gimbal pan rate (rad/s) per unit horizontal error", (0.0, 50.0)),
    "gimbal_tilt_gain": (2.0, "gimbal tilt rate (rad/s) per unit vertical error", (0.0, 50.0)),
    "max_result_age": (0.5, "seconds: a result whose image stamp is older than this when it arrives, or that "
                            "arrived longer ago than this with no newer one, stops the robot", (0.01, 60.0)),
    "silence_timeout": (0.5, "seconds without any message from the tracker before a zero command", (0.01, 60.0)),
    "max_jump": (1.0, "a TRACKING box whose centre moved more than this many box diagonals from the previous "
                      "result (per frame, dropped frames counted) is taken as another target: stop until a new "
                      "init; 0 = off", (0.0, 100.0)),
    "max_size_jump": (2.0, "the same for a box whose size changed by more than this factor; 0 = off", (0.0, 100.0)),
    "follow_redetections": (True, "act on a target the tracker's whole-frame search found again (its memories "
                                  "checked it); false: stop until a new init", None),
    "init_grace": (1.0, "seconds after an init box is seen during which the jump check is off (the new target's "
                        "first results)", (0.0, 10.0)),
    "watchdog_rate": (20.0, "Hz of the silence / age checks", (1.0, 1000.0)),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages", (0.05, 60.0)),
}


@dataclass
class FollowerParams:
    image_width: int = 640
    image_height: int = 480
    kp_yaw: float = 2.0
    ki_yaw: float = 0.3
    kd_yaw: float = 0.0
    kp_forward: float = 1.5
    kp_vertical: float = 1.0
    size_setpoint: float = 0.0
    deadband: float = 0.02
    max_yaw_rate: float = 1.0
    max_yaw_accel: float = 4.0
    max_forward_speed: float = 1.0
    max_forward_accel: float = 1.0
    max_vertical_speed: float = 0.5
    max_vertical_accel: float = 1.0
    integral_limit: float = 0.3
    gimbal_pan_gain: float = 2.0
    gimbal_tilt_gain: float = 2.0
    max_result_age: float = 0.5
    silence_timeout: float = 0.5
    max_jump: float = 1.0
    max_size_jump: float = 2.0
    follow_redetections: bool = True
    init_grace: float = 1.0
    watchdog_rate: float = 20.0
    diagnostics_period: float = 1.0

    def __post_init__(self):
        for f in fields(self):
            assert PARAMETERS[f.name][0] == f.default, f"{f.name}: default differs from PARAMETERS"


def validate_parameter(name: str, value) -> object:
    """The value converted to the parameter's type, or ValueError naming the parameter and its allowed range."""
    default, _, bounds = PARAMETERS[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r}: must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}={value!r}: must be a number")
    if isinstance(default, int) and float(value) != int(value):
        raise ValueError(f"{name}={value!r}: must be an integer")
    value = int(value) if isinstance(default, int) else float(value)
    if not math.isfinite(value) or not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{name}={value}: must be in {bounds[0]}..{bounds[1]}")
    return value


@dataclass
class Result:
    """The fields of one TrackedTarget the follower uses. stamp_ns 0 = unstamped (judged by arrival only)."""
    state: int
    box: Tuple[float, float, float, float]
    stamp_ns: int
    arrival_ns: int
    redetected: bool = False
    dropped_frames: int = 0


@dataclass
class Command:
    yaw_rate: float = 0.0          # rad/s, positive = turn left (REP 103)
    forward: float = 0.0           # m/s
    vertical: float = 0.0          # m/s, up
    pan_rate: float = 0.0          # gimbal, rad/s, positive = left
    tilt_rate: float = 0.0         # gimbal, rad/s, positive = up
    reason: str = ""               # "following", or why the command is zero

    @property
    def is_zero(self) -> bool:
        return not any((self.yaw_rate, self.forward, self.vertical, self.pan_rate, self.tilt_rate))


def _limit(value: float, previous: float, max_abs: float, max_accel: float, dt: float) -> float:
    """Clamp to +-max_abs; speeding up (moving away from zero) by at most max_accel * dt, slowing down at once."""
    value = max(-max_abs, min(max_abs, value))
    if abs(value) > abs(previous) or value * previous < 0:
        start = previous if value * previous >= 0 else 0.0      # a reversal passes through zero first
        step = max_accel * dt
        value = max(start - step, min(start + step, value))
    return value


def _deadband(error: float, band: float) -> float:
    return 0.0 if abs(error) < band else error - math.copysign(band, error)


@dataclass
class Follower:
    """One follower: feed it results, init boxes, tracker state and clock ticks; it answers commands."""
    p: FollowerParams = field(default_factory=FollowerParams)
    active: bool = True                  # the follower's own lifecycle state
    tracker_active: bool = True          # from the tracker's lifecycle transitions (unknown = assumed active)
    latched: str = ""                    # a target change waiting for a new init (the reason), "" = none
    stop_counts: Dict[str, int] = field(default_factory=dict)
    last: Command = field(default_factory=lambda: Command(reason="no result yet"))

    def __post_init__(self):
        self._prev: Optional[Result] = None      # previous non-IDLE result (jump check)
        self._setpoint = self.p.size_setpoint or None
        self._integral = 0.0
        self._prev_error: Optional[float] = None
        self._last_acted: Optional[Result] = None
        self._last_message_ns: Optional[int] = None
        self._grace_until_ns = -1

    # ---- events -------------------------------------------------------------------------------------------------
    def on_init(self, now_ns: int) -> None:
        """An init box was sent to the tracker: a new target; the next results may jump to it."""
        self._new_target()
        self.latched = ""
        self._grace_until_ns = now_ns + int(self.p.init_grace * 1e9)

    def resume(self) -> str:
        """The operator confirms the present target (after a jump or a refused re-detection)."""
        was, self.latched = self.latched, ""
        self._new_target()
        return f"resumed (was: {was})" if was else "nothing to resume: not stopped for a target change"

    def on_tracker_state(self, active: bool, label: str, now_ns: int) -> Optional[Command]:
        self.tracker_active = active
        return None if active else self._stop(f"tracker {label}")

    def on_result(self, r: Result, now_ns: int) -> Command:
        """The command answering one tracker result."""
        self._last_message_ns = r.arrival_ns
        if not self.active:
            return self._stop("follower inactive")
        if r.state == IDLE:
            self._new_target()
            self.latched = ""          # IDLE comes from a reset: whatever is tracked next is a new init
            return self._stop("tracker IDLE")
        jumped = self._identity_check(r, now_ns)
        self._prev = r
        if jumped:
            self.latched = jumped
        if self.latched:
            return self._stop(f"target changed without a new init ({self.latched})")
        if not self.tracker_active:
            return self._stop("tracker inactive")
        if r.state == LOST:
            return self._stop("target LOST")
        if r.state != TRACKING:
            return self._stop(f"unknown state {r.state}")
        if r.stamp_ns:
            age = (now_ns - r.stamp_ns) / 1e9
            if age > self.p.max_result_age:
                return self._stop(f"result stale: image stamp {age:.2f} s old > max_result_age")
        return self._control(r)

    def on_tick(self, now_ns: int) -> Optional[Command]:
        """Watchdog: a zero command when the tracker went silent or the acted-on result grew too old (None: no
        change to publish)."""
        if self._last_message_ns is None:
            return None
        silent = (now_ns - self._last_message_ns) / 1e9
        if silent > self.p.silence_timeout:
            return self._stop(f"silence: no tracker message for {silent:.2f} s", once=True)
        if self._last_acted is not None and not self.last.is_zero:
            age = (now_ns - self._last_acted.arrival_ns) / 1e9
            if age > self.p.max_result_age:
                return self._stop(f"result stale: arrived {age:.2f} s ago > max_result_age", once=True)
        return None

    def set_active(self, active: bool) -> Command:
        self.active = active
        return self._stop("follower inactive") if not active else Command(reason="activated")

    # ---- inside ---------------------------------------------------------------------------------------------------
    def _new_target(self) -> None:
        self._prev, self._last_acted = None, None
        self._setpoint = self.p.size_setpoint or None
        self._reset_controller()

    def _reset_controller(self) -> None:
        self._integral, self._prev_error = 0.0, None

    def _identity_check(self, r: Result, now_ns: int) -> str:
        """Why this result is not the previous result's object ("" when nothing says so)."""
        if r.redetected and not self.p.follow_redetections:
            return "re-detected by the whole-frame search; follow_redetections is false"
        prev = self._prev
        if prev is None or r.redetected or now_ns < self._grace_until_ns:
            return ""
        frames = 1 + max(int(r.dropped_frames), 0)
        (x0, y0, w0, h0), (x1, y1, w1, h1) = prev.box, r.box
        diag = math.hypot(w0, h0)
        if self.p.max_jump > 0 and diag > 0 and r.state == TRACKING:
            moved = math.hypot(x1 + w1 / 2 - x0 - w0 / 2, y1 + h1 / 2 - y0 - h0 / 2) / diag
            if moved > self.p.max_jump * frames:
                return f"box jumped {moved:.1f} box diagonals in {frames} frame(s)"
        if self.p.max_size_jump > 0 and r.state == TRACKING and min(w0, h0, w1, h1) > 0:
            ratio = math.sqrt((w1 * h1) / (w0 * h0))
            ratio = max(ratio, 1 / ratio)
            if ratio > self.p.max_size_jump ** frames:
                return f"box size changed {ratio:.1f}x in {frames} frame(s)"
        return ""

    def _stop(self, reason: str, once: bool = False) -> Optional[Command]:
        """A zero command (controller state cleared). once: None when the last command was already a zero."""
        self._reset_controller()
        self._last_acted = None             # the next start ramps from zero over one frame, not over the gap
        if once and self.last.is_zero:
            return None
        key = reason.split(":")[0].split(" (")[0]
        self.stop_counts[key] = self.stop_counts.get(key, 0) + 1
        self.last = Command(reason=reason)
        return self.last

    def _control(self, r: Result) -> Command:
        p = self.p
        x, y, w, h = r.box
        ex = (x + w / 2) / p.image_width - 0.5          # + : target right of centre
        ey = 0.5 - (y + h / 2) / p.image_height         # + : target above centre
        size = math.sqrt(max(w * h, 0.0) / (p.image_width * p.image_height))
        if self._setpoint is None:
            self._setpoint = size                       # hold the distance the target had when picked
        es = (self._setpoint - size) / self._setpoint if self._setpoint > 0 else 0.0   # + : too small, go closer
        dt = self._dt(r)
        ex_d, ey_d, es_d = (_deadband(e, p.deadband) for e in (ex, ey, es))
        if p.ki_yaw > 0:
            self._integral = max(-p.integral_limit, min(p.integral_limit, self._integral + ex_d * dt))
        deriv = 0.0 if self._prev_error is None or dt <= 0 else (ex - self._prev_error) / dt
        self._prev_error = ex
        # yaw positive turns left: a target right of centre (ex > 0) needs a negative yaw rate
        yaw = -(p.kp_yaw * ex_d + p.ki_yaw * self._integral + p.kd_yaw * deriv)
        prev = self.last if not self.last.is_zero else Command()
        cmd = Command(
            yaw_rate=_limit(yaw, prev.yaw_rate, p.max_yaw_rate, p.max_yaw_accel, dt),
            forward=_limit(p.kp_forward * es_d, prev.forward, p.max_forward_speed, p.max_forward_accel, dt),
            vertical=_limit(p.kp_vertical * ey_d, prev.vertical, p.max_vertical_speed, p.max_vertical_accel, dt),
            pan_rate=-p.gimbal_pan_gain * ex_d, tilt_rate=p.gimbal_tilt_gain * ey_d, reason="following")
        self._last_acted, self.last = r, cmd
        return cmd

    def _dt(self, r: Result) -> float:
        """Seconds since the last result acted on: by image stamps (the camera's clock) when both have one."""
        prev = self._last_acted
        if prev is None:
            return 1.0 / 30
        if r.stamp_ns and prev.stamp_ns and r.stamp_ns > prev.stamp_ns:
            dt = (r.stamp_ns - prev.stamp_ns) / 1e9
        else:
            dt = (r.arrival_ns - prev.arrival_ns) / 1e9
        return min(max(dt, 1e-3), 0.2)       # a long gap must not let the integral or the ramp jump
