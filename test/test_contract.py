"""The contract module on its own: the manifest's read/write/update, the defaults, the flat result layout."""
import json
import os

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
    for n in HEAD_OUTPUTS:
        if n != "score":
            assert np.array_equal(getattr(a, n), getattr(b, n)) and getattr(a, n).shape == head_shapes(g)[n]
    assert isinstance(a.score, float) and a.score == b.score


def test_graphs_without_an_iou_map_still_give_a_result():
    """Models exported before the per-cell IoU map existed end at 'score' (named and flat forms)."""
    g = 4
    named = {n: np.zeros((1, *s) if s else (1,), np.float32) for n, s in head_shapes(g).items() if n != "iou_map"}
    flat = np.concatenate([named[n].ravel() for n in HEAD_OUTPUTS if n != "iou_map"])
    for r in (StageResult.from_outputs(named), StageResult.from_flat(flat, g)):
        assert r.iou_map is None and r.score == 0.0


TAMPERING = [   # (what, edit of the manifest's data, words of the refusal)
    ("search_factor 4 -> 9", lambda d: d.update(search_factor=9.0), "edited after export"),
    ("search_size 128 -> 228", lambda d: d.update(search_size=228), "edited after export"),
    ("num_stages", lambda d: d.update(num_stages=2), "edited after export"),
    ("normalisation mean", lambda d: d["normalization"].update(mean=0.0), "edited after export"),
    ("normalisation colour", lambda d: d["normalization"].update(color="BGR"), "edited after export"),
    ("stage list", lambda d: d["stage_graphs"].reverse(), "edited after export"),
    ("model config", lambda d: d["model_config"].update(depth=9), "edited after export"),
    ("seal removed", lambda d: d.pop("model_sha256"), "not sealed"),
    ("a threshold above 1", lambda d: d.update(exit_thresholds=[1.5, 0.5, 0.0]), "exit_thresholds"),
    ("too few thresholds", lambda d: d.update(exit_thresholds=[0.5, 0.0]), "exit_thresholds"),
    ("a tracker setting out of range", lambda d: d.update(tracker={"window_influence": 7}), "window_influence"),
    ("a yes/no setting given as 1", lambda d: d.update(tracker={"best_scored": 1}), "best_scored=1 is not one of True"),
    ("a yes/no setting given as text", lambda d: d.update(tracker={"later_exits_steer": "no"}), "later_exits_steer"),
]


@pytest.mark.parametrize("what,edit,words", TAMPERING, ids=[t[0] for t in TAMPERING])
def test_an_edited_manifest_is_refused_with_the_reason(tiny_bundle, tmp_path, what, edit, words):
    import shutil
    from dytrack_ros.backends import create_backend
    folder = str(tmp_path / "m")
    shutil.copytree(tiny_bundle, folder)
    m = Manifest.read(folder)
    edit(m.data)
    m.save()
    for kind in ("onnxruntime", "torch"):
        with pytest.raises(BackendError, match=words):
            create_backend(kind, folder)


def test_editable_fields_stay_editable(tiny_bundle, tmp_path):
    import shutil
    from dytrack_ros.backends import create_backend
    folder = str(tmp_path / "m")
    shutil.copytree(tiny_bundle, folder)
    m = Manifest.read(folder)
    m.update(exit_thresholds=[0.3, 0.7, 0.0], tracker={"window_influence": 0.3, "lost_patience": None})
    saved = json.load(open(os.path.join(folder, MANIFEST_NAME)))          # what is on disk, not what is in memory
    assert saved["exit_thresholds"] == [0.3, 0.7, 0.0]
    assert saved["tracker"] == {"window_influence": 0.3, "lost_patience": None}
    backend = create_backend("onnxruntime", folder)                        # and the seal still accepts the edit
    assert backend.num_stages == 3
    assert backend.manifest.exit_thresholds == [0.3, 0.7, 0.0]
    assert backend.manifest.tracker_settings == {"window_influence": 0.3, "lost_patience": None}
    with pytest.raises(ValueError, match="define the model"):
        m.update(search_factor=5.0)


def test_a_truncated_checkpoint_is_refused_by_the_torch_backend(tiny_bundle, tmp_path):
    import shutil
    from dytrack_ros.backends import create_backend
    folder = str(tmp_path / "m")
    shutil.copytree(tiny_bundle, folder)
    with open(os.path.join(folder, "model.pt"), "r+b") as f:
        f.truncate(1000)
    with pytest.raises(BackendError, match="model.pt does not match"):
        create_backend("torch", folder)


def test_a_model_whose_graphs_take_other_pixels_is_refused_and_crops_are_converted_once(tiny_first_exit_bundle,
                                                                                      tmp_path):
    """The manifest says how the graphs take pixels (the stem's convention); a folder exported by a version whose
    NanoTrack graphs converted normalised RGB back inside (sealed as such) is refused with what to do."""
    import shutil
    from dytrack_ros.backends import create_backend
    from dytrack_ros.contract import input_convention, to_network_input
    m = Manifest.load(tiny_first_exit_bundle)
    assert m.normalization == {"color": "BGR", "mean": 0.0, "scale": 1.0}                # NanoTrack's own
    assert all(m.data["normalization"][k] == v for k, v in m.normalization.items())
    crop = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(to_network_input(crop, m.normalization)[0].transpose(1, 2, 0), crop)
    lite = to_network_input(crop, input_convention({"stem": "lite0"}))
    assert np.allclose(lite[0].transpose(1, 2, 0) * 128 + 127, crop[:, :, ::-1])
    folder = str(tmp_path / "old")
    shutil.copytree(tiny_first_exit_bundle, folder)
    old = Manifest.read(folder)
    old.data["normalization"] = {"color": "RGB", "mean": 127.0, "scale": 128.0, "formula": "(pixel - mean) / scale"}
    old.seal()
    for kind in ("onnxruntime", "torch"):
        with pytest.raises(BackendError, match="re-export the model"):
            create_backend(kind, folder)
