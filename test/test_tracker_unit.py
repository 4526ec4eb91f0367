"""DyTracker's own logic with a scripted backend (no network): exit policy, LOST and re-detection, size handling."""
import numpy as np
import pytest

from dytrack_ros.contract import StagedBackend, StageResult
from dytrack_ros.tracking import LOST, TRACKING
from dytrack_ros.tracking.tracker import DyTracker, TrackerParams

G = 8


class ScriptedBackend(StagedBackend):
    """Each stage answers with a peak at crop position (cx, cy), size (w, h) in crop fractions and a score (the
    predicted IoU at the peak; 0 elsewhere), taken from `script(frame_index, stage)`; records how many stages ran
    per frame."""
    name = "scripted"
    num_stages = 3

    def __init__(self, script):
        self.script, self.frame, self.stages_run = script, -1, []

    def set_template(self, template):
        self.frame = -1

    def run_stage(self, stage, search=None):
        if stage == 0:
            self.frame += 1
            self.stages_run.append(0)
        self.stages_run[-1] += 1
        cx, cy, w, h, score = self.script(self.frame, stage)
        gx, gy = min(int(cx * G), G - 1), min(int(cy * G), G - 1)
        score_map = np.zeros((G, G), np.float32)
        score_map[gy, gx] = 1.0
        size = np.zeros((2, G, G), np.float32)
        size[:] = np.array([w, h], np.float32)[:, None, None]   # every cell sizes the box alike
        offset = np.zeros((2, G, G), np.float32)
        offset[:, gy, gx] = (cx * G - gx, cy * G - gy)
        iou = np.zeros((G, G), np.float32)
        iou[gy, gx] = score
        return StageResult(score_map, size, offset, np.array([cx, cy, w, h]), float(score), iou)


def tracker(script, **params):
    kw = dict(template_size=64, search_size=128, thresholds=[0.6, 0.6, 0.0], window_influence=0.0)
    kw.update(params)
    backend = ScriptedBackend(script)
    return DyTracker(backend, TrackerParams(**kw)), backend


FRAME = np.zeros((480, 640, 3), np.uint8)
BOX = [300, 200, 40, 40]          # search crop side 4 x 40 = 160 px around (320, 220); w, h = 0.25 of the crop


def still(score):
    return lambda f, s: (0.5, 0.5, 0.25, 0.25, score(f, s) if callable(score) else score)


@pytest.mark.parametrize("thresholds,expected", [([0, 0, 0], 1), ([1, 1, 0], 3)])
def test_thresholds_0_always_exit_first_and_1_always_go_full_depth(thresholds, expected):
    t, b = tracker(still(0.9), thresholds=thresholds)
    t.initialize(FRAME, BOX)
    assert {t.track(FRAME).stages_run for _ in range(5)} == {expected}
    assert set(b.stages_run) == {expected}


def test_a_frame_stops_at_the_first_confident_exit():
    scores = {0: 0.3, 1: 0.7, 2: 0.9}
    t, b = tracker(still(lambda f, s: scores[s]))
    t.initialize(FRAME, BOX)
    r = t.track(FRAME)
    assert r.stages_run == 2 and r.score == pytest.approx(0.7) and r.stage_scores == pytest.approx([0.3, 0.7])
    assert t.track(FRAME, force_stages=3).stages_run == 3           # evaluation can force the depth


def test_box_follows_the_peak():
    # the peak at crop (0.75, 0.5): 0.25 x 160 px = 40 px right of the search center
    t, _ = tracker(lambda f, s: (0.75, 0.5, 0.25, 0.25, 0.9))
    t.initialize(FRAME, BOX)
    r = t.track(FRAME)
    assert r.state == TRACKING and r.box == pytest.approx([340, 200, 40, 40], abs=1e-6)


def test_low_scores_read_lost_at_once_follow_for_the_patience_then_hold_and_widen_the_search():
    # the peak drifts 10 px right per frame with a low score
    t, _ = tracker(lambda f, s: (0.5 + 10 / 160, 0.5, 0.25, 0.25, 0.05), lost_threshold=0.15, lost_patience=2)
    t.initialize(FRAME, BOX)
    r1, r2, r3 = t.track(FRAME), t.track(FRAME), t.track(FRAME)
    assert r1.state == r2.state == r3.state == LOST
    assert r1.box[0] == pytest.approx(310) and r2.box[0] == pytest.approx(320)    # still following
    assert r3.box[0] == pytest.approx(320) and t.growth > 1.0                     # held; search widened
    back = lambda f, s: (0.5, 0.5, 0.25, 0.25, 0.9 if f >= 3 else 0.05)
    t2, _ = tracker(back, lost_threshold=0.15, redetect=False)
    t2.initialize(FRAME, BOX)
    states = [t2.track(FRAME).state for _ in range(5)]
    assert states == [LOST, LOST, LOST, TRACKING, TRACKING] and t2.growth == 1.0  # found again
    # with re-detection (default) leaving LOST takes confirm_frames first-exit scores >= confirm_threshold in a row,
    # as a find of the global search does: a background blip does not end the search
    t3, _ = tracker(back, lost_threshold=0.15, confirm_frames=3, confirm_threshold=0.5)
    t3.initialize(FRAME, BOX)
    states = [t3.track(FRAME).state for _ in range(7)]
    assert states == [LOST, LOST, LOST, LOST, LOST, TRACKING, TRACKING]


def test_size_is_smoothed_and_bounded_relative_to_the_init_box():
    # every frame the network says the target is twice as large
    t, _ = tracker(lambda f, s: (0.5, 0.5, 0.5, 0.5, 0.9), size_lr=0.5, scale_penalty=0.0)
    t.initialize(FRAME, BOX)
    r = t.track(FRAME)
    assert r.box[2] == pytest.approx(40 * 0.5 + 80 * 0.5)        # rate = size_lr x the peak's score (1 here)
    for _ in range(20):
        r = t.track(FRAME)
    assert r.box[2] <= 5 * 40 + 1e-6                                              # size_bounds (0.2, 5)


def test_reinitialising_starts_a_fresh_track():
    t, b = tracker(still(0.05), lost_threshold=0.15, lost_patience=0)
    t.initialize(FRAME, BOX)
    for _ in range(4):
        t.track(FRAME)
    assert t.state == LOST and t.growth > 1
    t.initialize(FRAME, [100, 100, 30, 60])
    assert t.state == TRACKING and t.growth == 1.0 and t.box == pytest.approx([100, 100, 30, 60])


def test_scale_penalty_prefers_the_candidate_of_the_targets_shape():
    """Two equal peaks: one the target's size, one a look-alike three times larger; with the penalty the
    target's wins whichever comes first in the map."""
    class TwoPeaks(ScriptedBackend):
        def run_stage(self, stage, search=None):
            r = super().run_stage(stage, search)
            r.score_map[1, 1] = 1.0                   # the look-alike, top left, 0.75 of the crop wide
            r.size_map[:, 1, 1] = (0.75, 0.75)
            return r
    for penalty, expect_target in ((0.0, False), (0.5, True)):
        b = TwoPeaks(lambda f, s: (0.9, 0.9, 0.25, 0.25, 0.9))
        t = DyTracker(b, TrackerParams(template_size=64, search_size=128, window_influence=0.0,
                                       scale_penalty=penalty))
        t.initialize(FRAME, BOX)
        r = t.track(FRAME)
        assert (r.box[2] == pytest.approx(40)) == expect_target, (penalty, r.box)


def test_the_published_box_is_the_one_scored():
    """Two candidates: the raw peak far from the previous position (predicted IoU 0.2) and a slightly weaker one at
    the centre (predicted IoU 0.8). The motion prior picks the centre one; its score, not the raw peak's, is reported
    and decides the exit and the state."""
    class Decoy(ScriptedBackend):
        def run_stage(self, stage, search=None):
            r = super().run_stage(stage, search)        # the target at the centre, IoU 0.8
            r.score_map[4, 4] = 0.7
            r.score_map[0, 7] = 1.0                       # the raw peak, top right
            r.size_map[:, 0, 7] = (0.25, 0.25)
            r.iou_map[0, 7] = 0.2
            r.score = 0.2                                 # what the graph says about its raw peak
            return r
    b = Decoy(lambda f, s: (0.5 + 0.5 / G, 0.5 + 0.5 / G, 0.25, 0.25, 0.8))
    t = DyTracker(b, TrackerParams(template_size=64, search_size=128, thresholds=[0.6, 0.6, 0.0],
                                   lost_threshold=0.5))
    t.initialize(FRAME, BOX)
    r = t.track(FRAME)
    assert r.score == pytest.approx(0.8) and r.stages_run == 1 and r.state == TRACKING
    assert r.box[0] + r.box[2] / 2 == pytest.approx(320 + 10, abs=1e-6)   # cell (4, 4) centre: 0.5625 of 160 px


def test_low_scores_keep_following_the_best_candidate_by_default():
    """NanoTrack's behaviour on a short occlusion: LOST is reported, the box is not abandoned."""
    t, _ = tracker(lambda f, s: (0.5 + 10 / 160, 0.5, 0.25, 0.25, 0.05), lost_threshold=0.15)
    t.initialize(FRAME, BOX)
    results = [t.track(FRAME) for _ in range(5)]
    assert all(r.state == LOST for r in results)
    assert [r.box[0] for r in results] == pytest.approx([310, 320, 330, 340, 350]) and t.growth == 1.0


def test_later_exits_can_be_placed_by_the_first_exit():
    """'refine': the first exit's score map places the target, the later exit's size map sizes it."""
    sizes = {0: 0.25, 1: 0.5}
    places = {0: 0.5, 1: 0.75}
    for mode, expect_cx, expect_w in (("own", 360, 60), ("refine", 320, 60)):
        t, _ = tracker(lambda f, s: (places[s], 0.5, sizes[s], sizes[s], 0.9), thresholds=[1.0, 0.0, 0.0],
                       later_exits=mode, scale_penalty=0.0, size_lr=0.5)
        t.initialize(FRAME, BOX)
        r = t.track(FRAME)
        assert r.stages_run == 2
        assert r.box[0] + r.box[2] / 2 == pytest.approx(expect_cx) and r.box[2] == pytest.approx(expect_w)


def test_the_first_exit_saying_absent_reads_lost_whatever_a_later_exit_says():
    """Later exits are confident on background once the target has gone; the first exit is not."""
    scores = {0: 0.01, 1: 0.9, 2: 0.9}
    for absent, expected in ((0.0, TRACKING), (0.05, LOST)):
        t, _ = tracker(still(lambda f, s: scores[s]), absent_threshold=absent)
        t.initialize(FRAME, BOX)
        r = t.track(FRAME)
        assert r.stages_run == 2 and r.score == pytest.approx(0.9) and r.state == expected


def test_best_scored_publishes_the_most_confident_exit_run():
    scores, places = {0: 0.5, 1: 0.3, 2: 0.2}, {0: 0.5, 1: 0.75, 2: 0.75}
    for best, expect_cx in ((False, 360), (True, 320)):
        t, _ = tracker(lambda f, s: (places[s], 0.5, 0.25, 0.25, scores[s]), thresholds=[0.6, 0.6, 0.0],
                       best_scored=best)
        t.initialize(FRAME, BOX)
        r = t.track(FRAME)
        assert r.stages_run == 3 and r.box[0] + r.box[2] / 2 == pytest.approx(expect_cx)


def test_later_exits_that_do_not_steer_change_the_published_box_only():
    """later_exits_steer False: the loop goes on from the first exit's box (next crop, size), the published box is
    the later exit's: a later exit that sizes the box 2x the first exit's compounds frame by frame when it steers
    (the crop grows with the box, and with it the size it reads), and stays one step off when it does not."""
    sizes = {0: 0.25, 1: 0.5, 2: 0.5}
    for steer, expect_w in ((True, [60, 90, 135]), (False, [60, 60, 60])):
        t, _ = tracker(lambda f, s: (0.5, 0.5, sizes[s], sizes[s], 0.9), thresholds=[1.0, 0.0, 0.0],
                       later_exits_steer=steer, scale_penalty=0.0, size_lr=0.5)
        t.initialize(FRAME, BOX)
        results = [t.track(FRAME) for _ in range(3)]
        assert [r.stages_run for r in results] == [2, 2, 2]
        assert [r.box[2] for r in results] == pytest.approx(expect_w)
        assert t.box[2] == pytest.approx(expect_w[-1] if steer else 40)   # the state: the first exit's 40 px
