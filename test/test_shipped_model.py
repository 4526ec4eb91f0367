"""The model we ship: its files agree with each other, and it tracks on sequences built from held-out photos."""
import json
import os

import numpy as np
import pytest

from conftest import SHIPPED_MODEL
from dytrack_ros.backends import create_backend
from dytrack_ros.backends.base import Manifest
from dytrack_ros.backends.export import example_inputs
from dytrack_ros.data.sequences import generated_suite
from dytrack_ros.evaluation.runner import evaluate_dytrack
from dytrack_ros.model import load_checkpoint
from dytrack_ros.tracking.factory import build_tracker


def test_shipped_graphs_match_shipped_checkpoint():
    m = Manifest.load(SHIPPED_MODEL)                        # verifies every SHA-256
    model, _ = load_checkpoint(os.path.join(SHIPPED_MODEL, "model.pt"))
    assert model.cfg.to_dict() == m.model_config
    t, s = (x.numpy() for x in example_inputs(model, seed=11))
    ort, ref = create_backend("onnxruntime", SHIPPED_MODEL), create_backend("torch", SHIPPED_MODEL, device="cpu")
    for b in (ort, ref):
        b.set_template(t)
    for k in range(m.num_stages):
        a, c = ort.run_stage(k, s if k == 0 else None), ref.run_stage(k, s if k == 0 else None)
        assert np.abs(a.score_map - c.score_map).max() < 1e-4 and abs(a.iou - c.iou) < 1e-4


def test_model_card_and_calibration_are_present():
    card = open(os.path.join(SHIPPED_MODEL, "MODEL_CARD.md")).read()
    assert "<!-- results:start -->" in card and "exit 3 forced (full depth)" in card
    manifest = json.load(open(os.path.join(SHIPPED_MODEL, "manifest.json")))
    assert "threshold_calibration" in manifest


@pytest.fixture(scope="module")
def heldout_results():
    tracker = build_tracker(SHIPPED_MODEL, "onnxruntime")
    suite = generated_suite(8, 60, seed=31337)  # held-out photos, a seed the card did not use; 4 sequences swung AUC by 7 points
    full = evaluate_dytrack(tracker, suite, force_stage=tracker.num_stages)
    calibrated = evaluate_dytrack(tracker, suite)           # the calibrated thresholds from the manifest
    tracker.set_thresholds([0.7] * (tracker.num_stages - 1) + [0.0])
    faster = evaluate_dytrack(tracker, suite)
    return full, calibrated, faster, tracker.num_stages


def test_tracks_held_out_sequences(heldout_results):
    full = heldout_results[0]
    assert full["auc"] > 0.5, full
    assert full["precision"] > 0.6, full


def test_dynamic_policy_keeps_accuracy_with_fewer_stages(heldout_results):
    full, calibrated, faster, k = heldout_results
    assert calibrated["auc"] >= 0.9 * full["auc"], (calibrated["auc"], full["auc"])
    assert calibrated["mean_stages"] < k, calibrated["mean_stages"]
    assert faster["auc"] >= 0.9 * full["auc"], (faster["auc"], full["auc"])   # t=0.7: most frames exit early
    assert faster["mean_stages"] < 2.0, faster["mean_stages"]
