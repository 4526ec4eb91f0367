"""The contract module on its own: the manifest's read/write/update, the defaults, the flat result layout."""
import json

import numpy as np
import pytest

from dytrack_ros.contract import (HEAD_OUTPUTS, MANIFEST_NAME, STAGE_OUTPUTS, BackendError, Manifest, StageResult,
                                  default_thresholds, head_shapes)


def test_manifest_write_read_update_round_trip(tmp_path):
    for name in ("template.onnx", "stage0.onnx", "stage1.onnx"):
        (tmp_path / name).write_bytes(name.encode())
    cfg = {"template_size": 96, "search_size": 192, "template_factor": 2.0, "search_factor": 4.0,
           "stage_ends": [2, 4]}
    Manifest.write(str(tmp_path), cfg, "template.onnx", ["stage0.onnx", "stage1.onnx"], opset=18)
    m = Manifest.load(str(tmp_path))                            # hashes verified
    assert m.num_stages == 2 and m.exit_thresholds == default_thresholds(2) == [0.6, 0.0]
    assert m.output_names == list(STAGE_OUTPUTS) and m.tracker_settings == {}
    m.update(exit_thresholds=[0.8, 0.0], tracker={"size_lr": 0.5})
    again = Manifest.read(str(tmp_path))
    assert again.exit_thresholds == [0.8, 0.0] and again.tracker_settings == {"size_lr": 0.5}
    assert again.data["sha256"] == m.data["sha256"]               # calibration keeps everything else
    (tmp_path / "stage1.onnx").write_bytes(b"replaced")
    with pytest.raises(BackendError, match="does not match its manifest hash"):
        Manifest.load(str(tmp_path))


def test_manifest_errors_name_the_problem(tmp_path):
    with pytest.raises(BackendError, match="model folder not found"):
        Manifest.read(str(tmp_path / "nowhere"))
    with pytest.raises(BackendError, match="no manifest.json"):
        Manifest.read(str(tmp_path))
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(BackendError, match="unreadable"):
        Manifest.read(str(tmp_path))
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"template_graph": "t.onnx", "stage_graphs": []}))
    with pytest.raises(BackendError, match="lacks template_size"):
        Manifest.read(str(tmp_path))


def test_a_checkpoint_only_folder_gets_geometry_and_default_thresholds(tmp_path):
    cfg = {"template_size": 64, "search_size": 128, "template_factor": 2.0, "search_factor": 4.0,
           "stage_ends": [1, 2, 3]}
    m = Manifest.from_model_config(str(tmp_path), cfg)
    assert m.num_stages == 3 and m.exit_thresholds == [0.6, 0.6, 0.0] and m.data["search_size"] == 128


def test_flat_and_named_head_outputs_give_the_same_result():
    rng = np.random.default_rng(0)
    g = 5
    named = {n: rng.random((1, *s) if s else (1,)).astype(np.float32) for n, s in head_shapes(g).items()}
    named["score_map"] = named["score_map"][:, None]            # graphs give (1, 1, G, G)
    flat = np.concatenate([named[n].ravel() for n in HEAD_OUTPUTS])
    a, b = StageResult.from_outputs(named), StageResult.from_flat(flat, g)
    for n in HEAD_OUTPUTS[:-1]:
        assert np.array_equal(getattr(a, n), getattr(b, n)) and getattr(a, n).shape == head_shapes(g)[n]
    assert isinstance(a.score, float) and a.score == b.score
