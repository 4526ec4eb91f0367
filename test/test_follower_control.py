"""The follower's control law and safety rules (dytrack_ros/ros/follow_control.py), without ROS."""
import math

import pytest

from dytrack_ros.ros.follow_control import (IDLE, LOST, PARAMETERS, TRACKING, Follower, FollowerParams, Result,
                                            validate_parameter)

MS = 1_000_000
W, H = 640, 480


def result(state=TRACKING, box=(300, 200, 40, 80), t_ms=0, **kw):
    return Result(state, box, t_ms * MS, t_ms * MS, **kw)


def run(f, results, start_ms=1000, period_ms=33):
    """Feed results one frame apart (stamp = arrival = now); the commands answering them."""
    out = []
    for i, r in enumerate(results):
        t = start_ms + i * period_ms
        r.stamp_ns = r.arrival_ns = t * MS
        out.append(f.on_result(r, t * MS))
    return out


def test_signs_follow_rep103_and_the_size_setpoint():
    f = Follower(FollowerParams(image_width=W, image_height=H, max_yaw_accel=200, max_forward_accel=200,
                                max_vertical_accel=200, max_jump=0, max_size_jump=0))
    first, right = run(f, [result(box=(300, 200, 40, 80)), result(box=(500, 100, 20, 40))])
    assert first.forward == 0                   # the size at init is the set-point
    assert right.yaw_rate < 0                   # target right of centre: turn right (negative yaw, REP 103)
    assert right.vertical > 0                   # above centre: climb
    assert right.forward > 0                    # smaller than at init (farther): go forward
    assert right.reason == "following"
    left = run(f, [result(box=(20, 300, 80, 160))], start_ms=2000)[0]
    assert left.yaw_rate > 0 and left.vertical < 0 and left.forward < 0


def test_rate_and_acceleration_limits_shape_speeding_up_only():
    p = FollowerParams(image_width=W, image_height=H, kp_yaw=50.0, max_yaw_rate=1.0, max_yaw_accel=3.0)
    f = Follower(p)
    cmds = run(f, [result(box=(600, 200, 30, 60)) for _ in range(20)], period_ms=50)
    rates = [abs(c.yaw_rate) for c in cmds]
    assert all(r <= 1.0 + 1e-9 for r in rates)                                    # rate limit
    assert all(b - a <= 3.0 * 0.05 + 1e-9 for a, b in zip(rates, rates[1:]))      # acceleration limit
    assert rates[-1] == pytest.approx(1.0)
    stop = f.on_result(result(LOST, (600, 200, 30, 60), 5000), 5000 * MS)        # a stop is not ramped
    assert stop.is_zero and stop.reason == "target LOST"


@pytest.mark.parametrize("state,reason", [(LOST, "target LOST"), (IDLE, "tracker IDLE")])
def test_lost_and_idle_stop_on_that_very_result(state, reason):
    f = Follower(FollowerParams(image_width=W, image_height=H))
    cmds = run(f, [result(box=(500, 200, 30, 60))] * 3 + [result(state, (500, 200, 30, 60))])
    assert not cmds[2].is_zero and cmds[3].is_zero and cmds[3].reason == reason


def test_stale_by_stamp_and_by_arrival_and_silence():
    f = Follower(FollowerParams(image_width=W, image_height=H, max_result_age=0.3, silence_timeout=0.5))
    moving = f.on_result(Result(TRACKING, (500, 200, 30, 60), 1000 * MS, 1000 * MS), 1000 * MS)
    assert not moving.is_zero
    old = f.on_result(Result(TRACKING, (500, 200, 30, 60), 1000 * MS, 1400 * MS), 1400 * MS)
    assert old.is_zero and old.reason.startswith("result stale: image stamp 0.40 s old")
    f.on_result(Result(TRACKING, (500, 200, 30, 60), 1450 * MS, 1450 * MS), 1450 * MS)
    assert f.on_tick(1700 * MS) is None                          # 0.25 s: still fresh
    stale = f.on_tick(1800 * MS)
    assert stale.is_zero and stale.reason.startswith("result stale: arrived 0.35 s ago")
    assert f.on_tick(1850 * MS) is None                          # a zero is published once
    g = Follower(FollowerParams(image_width=W, image_height=H, max_result_age=5.0, silence_timeout=0.5))
    g.on_result(Result(TRACKING, (500, 200, 30, 60), 1000 * MS, 1000 * MS), 1000 * MS)
    silent = g.on_tick(1600 * MS)
    assert silent.is_zero and silent.reason.startswith("silence")


def test_a_jump_is_another_target_until_a_new_init():
    f = Follower(FollowerParams(image_width=W, image_height=H, max_jump=1.0))
    cmds = run(f, [result(box=(300, 200, 40, 80)), result(box=(310, 200, 40, 80)),
                   result(box=(520, 60, 40, 80)), result(box=(525, 60, 40, 80))])
    assert not cmds[1].is_zero or cmds[1].reason == "following"
    assert cmds[2].is_zero and "target changed without a new init (box jumped" in cmds[2].reason
    assert cmds[3].is_zero                                       # latched: the next results are not acted on
    f.on_init(2000 * MS)                                         # an init box: a new target, jumps allowed
    after = run(f, [result(box=(100, 100, 40, 80)), result(box=(105, 100, 40, 80))], start_ms=2010)
    assert after[0].reason == after[1].reason == "following"
    run(f, [result(box=(600, 400, 40, 80))], start_ms=3500)       # grace over: a jump latches again
    assert f.latched
    assert f.on_result(result(IDLE, t_ms=3600), 3600 * MS).reason == "tracker IDLE"   # a reset clears it
    assert not f.latched
    assert run(f, [result(box=(10, 10, 40, 80))], start_ms=3700)[0].reason == "following"


def test_size_jump_and_dropped_frames():
    f = Follower(FollowerParams(image_width=W, image_height=H, max_size_jump=2.0))
    cmds = run(f, [result(box=(300, 200, 40, 80)), result(box=(280, 160, 120, 240))])
    assert cmds[1].is_zero and "size changed 3.0x" in cmds[1].reason
    g = Follower(FollowerParams(image_width=W, image_height=H, max_jump=1.0))
    # 1.5 diagonals, but two frames dropped in between: within 3 x max_jump
    ok = run(g, [result(box=(300, 200, 40, 80)), result(box=(300 + 1.5 * math.hypot(40, 80), 200, 40, 80),
                                                         dropped_frames=2)])
    assert ok[1].reason == "following"


def test_redetections_follow_or_stop_by_parameter():
    boxes = [result(box=(100, 200, 40, 80)), result(LOST, (110, 200, 40, 80)),
             result(box=(500, 100, 40, 80), redetected=True)]
    assert run(Follower(FollowerParams(image_width=W, image_height=H)), boxes)[2].reason == "following"
    boxes = [result(box=(100, 200, 40, 80)), result(LOST, (110, 200, 40, 80)),
             result(box=(500, 100, 40, 80), redetected=True)]
    strict = Follower(FollowerParams(image_width=W, image_height=H, follow_redetections=False))
    cmd = run(strict, boxes)[2]
    assert cmd.is_zero and "re-detected" in cmd.reason
    assert strict.resume().startswith("resumed")                 # the operator confirms the target
    assert run(strict, [result(box=(505, 100, 40, 80))], start_ms=5000)[0].reason == "following"


def test_inactive_tracker_and_follower():
    f = Follower(FollowerParams(image_width=W, image_height=H))
    run(f, [result(box=(500, 200, 30, 60))])
    assert f.on_tracker_state(False, "inactive", 2000 * MS).reason == "tracker inactive"
    assert run(f, [result(box=(500, 200, 30, 60))], start_ms=2100)[0].reason == "tracker inactive"
    f.on_tracker_state(True, "active", 2200 * MS)
    assert run(f, [result(box=(500, 200, 30, 60))], start_ms=2300)[0].reason == "following"
    assert f.set_active(False).reason == "follower inactive"


def test_parameters_have_ranges_and_are_checked():
    assert set(PARAMETERS) == set(vars(FollowerParams()))
    assert validate_parameter("kp_yaw", 3) == 3.0                  # integers welcome where reals are expected
    for name, bad in [("kp_yaw", -1.0), ("max_result_age", float("nan")), ("image_width", 0),
                      ("image_width", 10.5), ("follow_redetections", 1), ("deadband", "x")]:
        with pytest.raises(ValueError, match=name):
            validate_parameter(name, bad)
