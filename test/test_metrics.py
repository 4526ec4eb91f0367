import numpy as np
import pytest

from dytrack_ros.evaluation.metrics import (box_iou, center_error, forward_backward_error, score_sequence,
                                            success_curve)


def test_iou_hand_computed():
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10])[0] == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 5, 5])[0] == 0
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10])[0] == 1
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0])[0] == 0
    assert box_iou([np.nan, 0, 1, 1], [0, 0, 1, 1])[0] == 0


def test_success_auc_and_precision_hand_computed():
    gt = np.array([[0, 0, 10, 10]] * 4, float)
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 10, 10], [100, 100, 10, 10]], float)
    s = score_sequence(pred, gt)
    # IoUs: 1, 1/3, 1, 0 -> success(t) counts IoU > t over 21 thresholds
    ious = np.array([1, 1 / 3, 1, 0])
    expected = np.mean([(ious > t).mean() for t in np.linspace(0, 1, 21)])
    assert s.auc == pytest.approx(expected)
    # by hand: t=0..0.30 (7 values): 3/4; t=0.35..0.95 (13 values): 2/4; t=1: 0
    assert s.auc == pytest.approx((7 * 0.75 + 13 * 0.5) / 21)
    # center errors: 0, 5, 0, 141 -> precision@20 = 3/4
    assert s.precision == pytest.approx(0.75)
    # normalised: 0, 0.5, 0, 14.1 -> @0.2: 2/4
    assert s.norm_precision == pytest.approx(0.5)
    # AO excludes frame 0: mean(1/3, 1, 0)
    assert s.ao == pytest.approx((1 / 3 + 1) / 3)
    assert s.sr50 == pytest.approx(1 / 3) and s.sr75 == pytest.approx(1 / 3)


def test_first_frame_counts_as_ground_truth():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[50, 50, 1, 1], [0, 0, 10, 10]], float)
    assert score_sequence(pred, gt).auc == pytest.approx(20 / 21)


def test_matches_got10k_reference_implementation():
    got10k = pytest.importorskip("got10k.utils.metrics")
    rng = np.random.default_rng(0)
    gt = np.abs(rng.normal(50, 20, (200, 4))) + 1
    pred = gt + rng.normal(0, 8, gt.shape)
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1
    assert np.allclose(box_iou(pred, gt), got10k.rect_iou(pred, gt))
    assert np.allclose(center_error(pred, gt), got10k.center_error(pred, gt))
    ours = success_curve(box_iou(pred, gt))
    theirs = np.mean(np.greater(got10k.rect_iou(pred, gt)[:, None], np.linspace(0, 1, 21)[None]), 0)
    assert np.allclose(ours, theirs)


def test_forward_backward_return():
    fwd = [[10, 10, 20, 20], [12, 10, 20, 20]]
    assert forward_backward_error(fwd, [[12, 10, 20, 20], [10, 10, 20, 20]])["return_iou"] == 1.0
    r = forward_backward_error(fwd, [[0, 0, 1, 1], [30, 10, 20, 20]])
    assert r["return_iou"] == 0 and r["return_center_error"] == pytest.approx(1.0)
