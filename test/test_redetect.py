"""Finding the target again (tracking/redetect.py), with a backend that really looks at the crops: it finds the
template's colour in the search crop (the box of the matching pixels; the score falls with the colour distance).
The target vanishes and comes back far from where it was lost; a look-alike appears first."""
import numpy as np
import pytest

from dytrack_ros.contract import StagedBackend, StageResult, from_network_input
from dytrack_ros.tracking import LOST, TRACKING
from dytrack_ros.tracking.redetect import grid_centres
from dytrack_ros.tracking.tracker import DyTracker, TrackerParams

G = 16
TOL = 80.0   # colour distance (max over channels, 0..255) at which a pixel stops matching


class ColourBackend(StagedBackend):
    name = "colour"
    num_stages = 1

    def __init__(self):
        self.stage0_runs = 0

    def set_template(self, template):
        t = from_network_input(template, self.input_convention)
        self.colour = t[t.shape[0] // 2, t.shape[1] // 2]

    def run_stage(self, stage, search=None):
        self.stage0_runs += 1
        img = from_network_input(search, self.input_convention)
        size = img.shape[0]
        dist = np.abs(img - self.colour).max(-1)
        mask = dist < TOL
        score_map, iou = np.zeros((G, G), np.float32), np.zeros((G, G), np.float32)
        sizes, offsets = np.full((2, G, G), 0.1, np.float32), np.zeros((2, G, G), np.float32)
        cx = cy = 0.5
        score = 0.0
        if mask.sum() >= 4:
            ys, xs = np.nonzero(mask)
            cx, cy = (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size
            sizes[:] = np.array([(np.ptp(xs) + 1) / size, (np.ptp(ys) + 1) / size], np.float32)[:, None, None]
            score = 0.9 * (1 - dist[mask].mean() / TOL)
        gx, gy = min(int(cx * G), G - 1), min(int(cy * G), G - 1)
        score_map[gy, gx], iou[gy, gx] = 1.0, score
        offsets[:, gy, gx] = (cx * G - gx, cy * G - gy)
        return StageResult(score_map, sizes, offsets, np.array([cx, cy, *sizes[:, 0, 0]]), float(score), iou)


RED = (40, 40, 200)


def scene(objects, shape=(240, 400)):
    """Grey frame with coloured squares: objects = [(x, y, side, bgr)]."""
    frame = np.full((*shape, 3), 110, np.uint8)
    for x, y, s, colour in objects:
        frame[y:y + s, x:x + s] = colour
    return frame


def tracker(backend=None, **overrides):
    params = TrackerParams(template_size=32, search_size=64, thresholds=[0.0], lost_threshold=0.3,
                           redetect_patience=3, redetect_windows=2, confirm_frames=3, confirm_threshold=0.5,
                           memory_interval=2, memory_score=0.6)
    for k, v in overrides.items():
        setattr(params, k, v)
    return DyTracker(backend or ColourBackend(), params)


def test_grid_covers_the_image_with_overlapping_windows():
    centres = grid_centres(400, 240, 80)
    xs, ys = sorted({c[0] for c in centres}), sorted({c[1] for c in centres})
    assert xs[0] == 40 and xs[-1] == 360 and ys[0] == 40 and ys[-1] == 200
    assert max(np.diff(xs)) <= 0.75 * 80 + 1e-9 and max(np.diff(ys)) <= 0.75 * 80 + 1e-9
    assert grid_centres(50, 40, 80) == [(25.0, 20.0)]   # a window larger than the image: one, centred


def test_target_found_again_far_from_where_it_was_lost():
    t = tracker()
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    results = [t.track(scene([(60 + 2 * i, 60, 20, RED)])) for i in range(1, 8)]
    assert all(r.state == TRACKING for r in results)
    gone = [t.track(scene([])) for _ in range(10)]
    assert all(r.state == LOST for r in gone)
    assert [r.lost_frames for r in gone] == list(range(1, 11))      # what TrackedTarget tells a follower
    back = [t.track(scene([(330, 180, 20, RED)])) for _ in range(30)]
    first = next(i for i, r in enumerate(back) if r.state == TRACKING)
    assert back[first].redetected and back[first].lost_frames == 0
    assert np.hypot(back[first].box[0] - 330, back[first].box[1] - 180) < 6
    assert all(r.state == TRACKING for r in back[first:])
    assert t.search.stats.reacquired == 1
    assert first <= 20           # the grid is swept at 2 windows a frame, then 3 confirmations


def test_without_redetection_the_target_stays_lost():
    t = tracker(redetect=False)
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    for _ in range(5):
        t.track(scene([]))
    assert all(t.track(scene([(330, 180, 20, RED)])).state == LOST for _ in range(30))


def test_each_lost_frame_spends_at_most_its_budget_and_tracking_frames_nothing():
    backend = ColourBackend()
    t = tracker(backend, redetect_windows=3)
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    extra = []
    for _ in range(12):
        before = backend.stage0_runs
        t.track(scene([(60, 60, 20, RED)]))
        extra.append(backend.stage0_runs - before - 1)             # TRACKING: the local search, and the check of
    # the box against the newest memory template when a template is due (memory_interval 2; none before the first)
    assert extra == [0, 0] + [0, 1] * 5, extra
    runs = []
    for _ in range(20):
        before = backend.stage0_runs
        t.track(scene([]))
        runs.append(backend.stage0_runs - before)
    assert runs[:3] == [1, 1, 1]                                    # patience: local search only
    assert max(runs) <= 1 + 3 and runs[-1] == 4


def test_a_look_alike_that_appears_first_is_refused_by_the_appearance_memory():
    """The target drifts from red to purple while tracked (the memory keeps its recent look); while it is away a
    look-alike as far from the first-frame colour on the other side appears. Without the memory it is taken."""
    def drifted(i):
        return (min(40 + 3 * i, 70), 40, 200)              # red -> purple over the first 10 frames
    lookalike = (10, 40, 200)                             # as far from the first colour as the target drifted

    def play(t):
        t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
        for i in range(1, 12):
            t.track(scene([(60, 60, 20, drifted(i))]))
        for _ in range(4):
            t.track(scene([]))
        early = [t.track(scene([(300, 40, 20, lookalike)])) for _ in range(25)]
        late = [t.track(scene([(300, 40, 20, lookalike), (80, 170, 20, drifted(10))])) for _ in range(40)]
        return early, late

    t = tracker(memory_size=0, memory_score=0.5)
    early, _ = play(t)
    assert any(r.state == TRACKING and r.box[0] > 250 for r in early), "without memory the look-alike is taken"
    t = tracker(memory_size=4, memory_score=0.5)
    early, late = play(t)
    assert all(r.state == LOST for r in early) and t.search.stats.refused_by_memory >= 1
    found = [r for r in late if r.state == TRACKING]
    assert found and all(abs(r.box[0] - 80) < 8 and abs(r.box[1] - 170) < 8 for r in found)


def test_memory_is_bounded_and_never_taken_from_lost_frames():
    t = tracker(memory_size=3, memory_interval=1)
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    for _ in range(10):
        t.track(scene([(60, 60, 20, RED)]))
    assert len(t.search.memory) == 3
    kept = [m.copy() for m in t.search.memory]
    for _ in range(5):
        t.track(scene([]))
    assert all(np.array_equal(a, b) for a, b in zip(kept, t.search.memory))
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    assert t.search.memory == []                           # a new target starts with an empty memory


@pytest.mark.parametrize("bad", [{"redetect_windows": 0}, {"confirm_frames": 0}])
def test_degenerate_settings_still_search(bad):
    t = tracker(**bad)
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    for _ in range(5):
        t.track(scene([]))
    assert any(t.track(scene([(330, 180, 20, RED)])).state == TRACKING for _ in range(60))


def test_the_search_starts_nearest_to_where_the_target_was_last_seen():
    centres = grid_centres(400, 240, 80, near=(390, 230))
    assert centres[0] == (360.0, 200.0)
    d = [np.hypot(x - 390, y - 230) for x, y in centres]
    assert d == sorted(d) and sorted(centres) == sorted(grid_centres(400, 240, 80))


def test_a_look_alike_in_the_local_window_does_not_end_the_lost_state_without_the_memory_agreeing():
    """The target (drifted to purple while tracked) leaves; a look-alike of the first-frame colour on the other side
    steps in right where it was lost. The local search sees it at once; it must not read TRACKING."""
    def drifted(i):
        return (min(40 + 3 * i, 70), 40, 200)
    lookalike = (10, 40, 200)

    def play(t):
        t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
        for i in range(1, 12):
            t.track(scene([(60, 60, 20, drifted(i))]))
        t.track(scene([]))
        t.track(scene([]))
        return [t.track(scene([(62, 60, 20, lookalike)])) for _ in range(20)]

    taken = play(tracker(memory_size=0, memory_score=0.5, redetect_patience=100))
    assert any(r.state == TRACKING for r in taken)
    t = tracker(memory_size=4, memory_score=0.5, redetect_patience=100)
    refused = play(t)
    assert all(r.state == LOST for r in refused) and t.search.stats.refused_by_memory >= 1


def test_a_box_cut_by_the_image_border_teaches_neither_the_memory_nor_the_search_size():
    t = tracker(memory_interval=1, memory_size=8)
    t.initialize(scene([(300, 100, 30, RED)]), (300, 100, 30, 30))
    for x in range(302, 330, 2):
        t.track(scene([(x, 100, 30, RED)]))
    whole = len(t.search.memory)
    size = t.confident_size.copy()
    for x in range(372, 400, 4):                       # leaving through the right border: the visible part shrinks
        r = t.track(scene([(x, 100, 30, RED)]))
        assert r.state == TRACKING
    assert len(t.search.memory) == whole and np.allclose(t.confident_size, size)


class TwoStageBackend(ColourBackend):
    """Stage 1 repeats stage 0's answer and counts its runs."""
    num_stages = 2

    def __init__(self):
        super().__init__()
        self.stage1_runs = 0

    def run_stage(self, stage, search=None):
        if stage == 0:
            self.last = super().run_stage(0, search)
            return self.last
        self.stage1_runs += 1
        return self.last


def test_while_the_whole_image_is_searched_the_local_window_runs_the_first_exit_only():
    backend = TwoStageBackend()
    t = tracker(backend, thresholds=[1.0, 0.0], redetect_patience=3)
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    t.track(scene([(60, 60, 20, RED)]))
    assert backend.stage1_runs == 1                     # tracking: the score never clears 1.0, stage 2 answers
    for i in range(8):
        before = backend.stage1_runs
        t.track(scene([]))
        assert backend.stage1_runs - before == (1 if i < 3 else 0)   # patience 3, then the global search


def test_a_confident_box_the_memory_does_not_recognise_is_reported_lost():
    """While tracked the target drifts to purple; then, in its place, a look-alike of the first-frame colour on the
    other side: the first template still scores it (TRACKING), the newest memory template does not."""
    def play(t):
        t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
        for i in range(1, 12):
            t.track(scene([(60, 60, 20, (min(40 + 3 * i, 70), 40, 200))]))
        return [t.track(scene([(60, 60, 20, (10, 40, 200))])) for _ in range(6)]

    kept = play(tracker(memory_size=4, memory_score=0.5, verify_threshold=0.0))
    assert all(r.state == TRACKING for r in kept)
    t = tracker(memory_size=4, memory_score=0.5, verify_threshold=0.6)
    checked = play(t)
    first_lost = next(i for i, r in enumerate(checked) if r.state == LOST)
    assert first_lost < 2 and all(r.state == LOST for r in checked[first_lost:])   # within memory_interval (2) frames
    assert t.search.stats.drifts == 1


def test_uncalibrated_thresholds_follow_the_backends_stage_count():
    from dytrack_ros.contract import default_thresholds
    for backend in (ColourBackend(), TwoStageBackend()):
        t = DyTracker(backend, TrackerParams(template_size=32, search_size=64))
        assert t.params.thresholds == default_thresholds(backend.num_stages) and len(t.params.thresholds) == \
            backend.num_stages


def test_one_template_cut_off_the_target_does_not_veto_it():
    """The memory's verdict is its median: one template cut while the box was sliding off the target (group3_2:
    0.65, 0.67, 0.63 and 0.22) does not refuse the target; a look-alike most templates doubt is still refused."""
    from dytrack_ros.tracking.redetect import Candidate
    assert Candidate(np.zeros(4), 0.7, memory_scores=[0.65, 0.67, 0.63, 0.22]).memory_agrees(0.6)
    assert not Candidate(np.zeros(4), 0.7, memory_scores=[0.65, 0.45, 0.5, 0.22]).memory_agrees(0.6)


class BlobBackend(ColourBackend):
    """Like ColourBackend, but every blob of matching colour is its own candidate (score map 1.0 at its cell, as the
    real first exit saturates on any object of the target's class; predicted IoU falling with the colour distance)."""

    def run_stage(self, stage, search=None):
        import cv2
        self.stage0_runs += 1
        img = from_network_input(search, self.input_convention)
        size = img.shape[0]
        dist = np.abs(img - self.colour).max(-1)
        n, labels, stats, _ = cv2.connectedComponentsWithStats((dist < TOL).astype(np.uint8))
        score_map, iou = np.zeros((G, G), np.float32), np.zeros((G, G), np.float32)
        sizes, offsets = np.full((2, G, G), 0.1, np.float32), np.zeros((2, G, G), np.float32)
        best = (0.0, np.array([0.5, 0.5, 0.1, 0.1]))
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < 4:
                continue
            ys, xs = np.nonzero(labels == k)
            cx, cy = (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size
            gx, gy = min(int(cx * G), G - 1), min(int(cy * G), G - 1)
            score = 0.9 * (1 - dist[labels == k].mean() / TOL)
            score_map[gy, gx], iou[gy, gx] = 1.0, score
            sizes[:, gy, gx] = ((np.ptp(xs) + 1) / size, (np.ptp(ys) + 1) / size)
            offsets[:, gy, gx] = (cx * G - gx, cy * G - gy)
            if score > best[0]:
                best = (score, np.array([cx, cy, *sizes[:, gy, gx]]))
        return StageResult(score_map, sizes, offsets, best[1], float(best[0]), iou)


def test_a_look_alike_seen_beside_the_target_is_remembered_and_refused_when_the_target_leaves():
    """A look-alike (a slightly different red) walks beside the target while it is tracked; the target leaves and the
    look-alike stays in the local window. The memory of the target alone takes it (it matches the target's colour well
    enough); with the look-alike memory it is refused, the target stays LOST and is found when it comes back."""
    lookalike = (40, 40, 230)   # as close to the target's colour as a look-alike person is to the real one

    def play(t):
        t.initialize(scene([(60, 60, 20, RED), (92, 60, 20, lookalike)]), (60, 60, 20, 20))
        for _ in range(11):
            t.track(scene([(60, 60, 20, RED), (92, 60, 20, lookalike)]))
        away = [t.track(scene([(92, 60, 20, lookalike)])) for _ in range(25)]
        back = [t.track(scene([(92, 60, 20, lookalike), (300, 180, 20, RED)])) for _ in range(40)]
        return away, back

    t = tracker(BlobBackend(), memory_size=4, memory_score=0.5, lookalike_memory=0)
    away, _ = play(t)
    assert any(r.state == TRACKING and r.box[0] > 80 for r in away), "without it the look-alike is taken"
    t = tracker(BlobBackend(), memory_size=4, memory_score=0.5, lookalike_memory=4)
    away, back = play(t)
    assert t.search.lookalikes and len(t.search.lookalikes) <= 4
    assert all(r.state == LOST for r in away) and t.search.stats.refused_as_lookalike >= 1
    found = [r for r in back if r.state == TRACKING]
    assert found and all(abs(r.box[0] - 300) < 8 and abs(r.box[1] - 180) < 8 for r in found)
    t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
    assert t.search.lookalikes == []                      # a new target starts without the old one's look-alikes


def test_a_tracked_box_that_matches_a_remembered_look_alike_better_is_reported_lost():
    """The target walks beside a look-alike and is then swapped for it in place (it leaves as the look-alike steps
    where it was): the first template and the target memory still score the box, the look-alike memory scores it
    higher, so the check reports LOST within memory_interval frames."""
    lookalike = (40, 40, 230)   # as close to the target's colour as a look-alike person is to the real one

    def play(t):
        t.initialize(scene([(60, 60, 20, RED), (92, 60, 20, lookalike)]), (60, 60, 20, 20))
        for _ in range(11):
            t.track(scene([(60, 60, 20, RED), (92, 60, 20, lookalike)]))
        return [t.track(scene([(60, 60, 20, lookalike)])) for _ in range(6)]

    assert all(r.state == TRACKING for r in play(tracker(BlobBackend(), memory_size=4, memory_score=0.5,
                                                         verify_threshold=0.3, lookalike_memory=0)))
    t = tracker(BlobBackend(), memory_size=4, memory_score=0.5, verify_threshold=0.3, lookalike_memory=4)
    checked = play(t)
    first_lost = next(i for i, r in enumerate(checked) if r.state == LOST)
    assert first_lost < 2 and all(r.state == LOST for r in checked[first_lost:])
    assert t.search.stats.drifts >= 1


def test_the_look_alike_memory_keeps_at_most_its_size_and_nothing_at_zero():
    from dytrack_ros.tracking.redetect import GlobalSearch
    for size, kept in ((2, 2), (0, 0)):
        search = GlobalSearch(TrackerParams(template_size=32, search_size=64, lookalike_memory=size), None, None)
        for k in range(5):
            search.add_lookalike(np.full((2, 2), k))
        assert len(search.lookalikes) == kept
        assert kept == 0 or [int(t[0, 0]) for t in search.lookalikes] == [3, 4]    # the newest stay


def test_a_candidate_the_memory_refused_is_remembered_and_refused_when_it_looks_nearer():
    """The target (drifted to purple while tracked) leaves; an object of another shade stays in the local window and
    the memory refuses it. Then the light changes and it looks nearer the target: the memory alone would take it now.
    Remembered from its refusal, it is refused again; the target itself is still found when it returns."""
    def play(t):
        t.initialize(scene([(60, 60, 20, RED)]), (60, 60, 20, 20))
        for i in range(1, 21):
            t.track(scene([(60, 60, 20, (min(40 + 3 * i, 70), 40, 200))]))
        t.track(scene([]))
        first = [t.track(scene([(62, 60, 20, (20, 40, 200))])) for _ in range(25)]
        relit = [t.track(scene([(62, 60, 20, (36, 40, 200))])) for _ in range(30)]
        back = [t.track(scene([(300, 180, 20, (70, 40, 200))])) for _ in range(40)]
        return first, relit, back

    t = tracker(memory_size=4, memory_score=0.5, remember_refused=0)
    first, relit, _ = play(t)
    assert all(r.state == LOST for r in first) and t.search.stats.refused_by_memory >= 1
    assert any(r.state == TRACKING and r.box[0] < 100 for r in relit), "without it the relit object is taken"
    t = tracker(memory_size=4, memory_score=0.5)
    first, relit, back = play(t)
    assert all(r.state == LOST for r in first + relit)
    assert t.search.stats.refused_by_memory >= 1 and t.search.stats.refused_as_seen_before >= 1
    found = [r for r in back if r.state == TRACKING]
    assert found and all(abs(r.box[0] - 300) < 8 and abs(r.box[1] - 180) < 8 for r in found)
