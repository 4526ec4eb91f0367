"""Every backend against torch on real crops; export checks; TensorRT parse/build without a GPU; GPU-only paths."""
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import SHIPPED_MODEL, real_crops as crops_of
from dytrack_ros.backends import BackendError, create_backend
from dytrack_ros.contract import Manifest
from dytrack_ros.backends.export import OPSET
from dytrack_ros.model import load_checkpoint

# ONNX Runtime / OpenVINO reorder float sums; 1e-4 absolute on outputs of magnitude ~1 is float32 rounding.
TOLERANCE = 1e-4


def real_crops(bundle, seed):
    model, _ = load_checkpoint(os.path.join(bundle, "model.pt"))
    t, s = crops_of(model, seed)
    return model, t.numpy(), s.numpy()


def compare_with_torch(backend, model, template, search):
    ref = create_backend("torch", backend.manifest.folder, device="cpu")
    ref.set_template(template)
    backend.set_template(template)
    worst = 0.0
    for k in range(backend.num_stages):
        a = ref.run_stage(k, search if k == 0 else None)
        b = backend.run_stage(k, search if k == 0 else None)
        for field in ("score_map", "size_map", "offset_map", "box"):
            worst = max(worst, float(np.abs(getattr(a, field) - getattr(b, field)).max()))
        worst = max(worst, abs(a.score - b.score))
        if b.iou_map is not None:
            worst = max(worst, float(np.abs(a.iou_map - b.iou_map).max()))
            # the map read at the raw peak is the raw peak's score
            assert abs(float(b.iou_map.ravel()[int(np.argmax(b.score_map))]) - b.score) < 1e-4
    return worst


@pytest.mark.parametrize("seed", [1, 2])
def test_onnxruntime_matches_torch_on_every_stage(tiny_bundle, seed):
    model, t, s = real_crops(tiny_bundle, seed)
    backend = create_backend("onnxruntime", tiny_bundle)
    assert compare_with_torch(backend, model, t, s) < TOLERANCE


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("design", ["centre", "refine"])
def test_backends_match_torch_on_the_shipped_design(tiny_first_exit_bundle, tiny_refine_bundle, kind, design):
    """The first exit (NanoTrack v2's head on its stem) and the transformer stages behind it, as shipped; and with
    refining exits, whose carry holds the first exit's maps beside the tokens."""
    if importlib.util.find_spec(kind) is None:
        pytest.skip(f"{kind} not installed")
    bundle = tiny_first_exit_bundle if design == "centre" else tiny_refine_bundle
    model, t, s = real_crops(bundle, 2)
    backend = create_backend(kind, bundle)
    assert backend.num_stages == 3 and model.cfg.first_exit == "nanotrack_v2" and model.cfg.exit_head == design
    assert compare_with_torch(backend, model, t, s) < TOLERANCE


def test_openvino_matches_torch(tiny_bundle):
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino not installed (optional CPU backend: pip install openvino)")
    model, t, s = real_crops(tiny_bundle, 3)
    assert compare_with_torch(create_backend("openvino", tiny_bundle), model, t, s) < TOLERANCE


def test_manifest_describes_the_graphs(tiny_bundle):
    m = json.load(open(os.path.join(tiny_bundle, "manifest.json")))
    assert m["opset"] == OPSET == 18 and m["num_stages"] == 3
    assert m["max_abs_diff_vs_torch"] < TOLERANCE
    assert set(m["sha256"]) == {"template.onnx", "stage0.onnx", "stage1.onnx", "stage2.onnx", "model.pt"}
    assert m["normalization"]["mean"] == 127.0


def test_corrupt_or_missing_graphs_are_refused(tiny_bundle, tmp_path):
    bad = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bad)
    with open(bad / "stage1.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"garbage")
    with pytest.raises(BackendError, match="does not match its manifest hash"):
        create_backend("onnxruntime", str(bad))
    os.remove(bad / "stage2.onnx")
    with pytest.raises(BackendError, match="missing"):
        create_backend("onnxruntime", str(bad))
    with pytest.raises(BackendError, match="not found"):
        create_backend("onnxruntime", str(tmp_path / "nowhere"))
    with pytest.raises(BackendError, match="unknown backend"):
        create_backend("cuda-magic", tiny_bundle)


def _trt_module():
    for name in ("tensorrt", "tensorrt_rtx"):
        if importlib.util.find_spec(name) is not None:
            return importlib.import_module(name)
    return None


@pytest.mark.parametrize("bundle", ["tiny", "shipped"])
def test_exported_graphs_parse_and_build_with_tensorrt(bundle, tiny_bundle):
    """Runs without a GPU with TensorRT-RTX from PyPI (tensorrt-rtx-cu13): proves the graphs are TRT-exportable,
    both a freshly exported bundle and the model we ship."""
    trt = _trt_module()
    if trt is None:
        pytest.skip("neither tensorrt nor tensorrt_rtx is installed (pip install tensorrt-rtx-cu13)")
    from dytrack_ros.backends.tensorrt_backend import build_serialized_engine
    m = Manifest.load(tiny_bundle if bundle == "tiny" else SHIPPED_MODEL)
    for name in m.graph_files():
        engine = build_serialized_engine(trt, m.path(name))
        assert engine is not None and len(memoryview(engine)) > 100_000, name


def test_engine_cache_key_changes_with_every_input():
    from dytrack_ros.backends.tensorrt_backend import engine_key
    base = ("abc", "10.3", "Orin", "8.7", "fp16")
    keys = {engine_key(*base)}
    for i, other in enumerate(["abd", "10.4", "H100", "9.0", "fp32"]):
        changed = list(base)
        changed[i] = other
        keys.add(engine_key(*changed))
    assert len(keys) == 6


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.mark.gpu
@cuda
def test_torch_cuda_graphs_match_cpu(tiny_bundle):
    model, t, s = real_crops(tiny_bundle, 4)
    cpu = create_backend("torch", tiny_bundle, device="cpu")
    gpu = create_backend("torch", tiny_bundle, device="cuda")
    assert gpu.use_graphs
    for frame in range(3):  # replays reuse the captured graphs
        for b in (cpu, gpu):
            b.set_template(t)
        for k in range(3):
            a, c = cpu.run_stage(k, s if k == 0 else None), gpu.run_stage(k, s if k == 0 else None)
            assert np.abs(a.score_map - c.score_map).max() < 1e-3 and abs(a.score - c.score) < 1e-3


@pytest.mark.gpu
@cuda
def test_tensorrt_engine_matches_onnxruntime(tiny_bundle, tmp_path, monkeypatch):
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("TensorRT runtime not installed (JetPack or NVIDIA tensorrt wheels)")
    monkeypatch.setenv("DYTRACK_TRT_CACHE", str(tmp_path))
    model, t, s = real_crops(tiny_bundle, 5)
    for fp16, tol in ((False, 1e-3), (True, 2e-2)):
        trt_backend = create_backend("tensorrt", tiny_bundle, fp16=fp16)
        assert compare_with_torch(trt_backend, model, t, s) < tol
    assert len(os.listdir(tmp_path)) >= 4  # engines cached


def test_models_exported_before_the_score_rename_still_load(tiny_bundle, tmp_path):
    """Graphs exported before 'iou' was renamed 'score' name their last output 'iou', and those exported before the
    per-cell IoU map have no 'iou_map': backends read outputs by position in the manifest's output_names, so such a
    model folder gives the same results (the tracker then scores the raw peak)."""
    import onnx
    from dytrack_ros.contract import Manifest, sha256_of
    old = str(tmp_path / "old_model")
    shutil.copytree(tiny_bundle, old)
    m = Manifest.read(old)
    for name in m.data["stage_graphs"]:
        graph = onnx.load(os.path.join(old, name))
        for node in graph.graph.node:
            node.output[:] = ["iou" if o == "score" else o for o in node.output]
        for out in graph.graph.output:
            if out.name == "score":
                out.name = "iou"
        kept = [o for o in graph.graph.output if o.name != "iou_map"]
        del graph.graph.output[:]
        graph.graph.output.extend(kept)
        onnx.save(graph, os.path.join(old, name))
        m.data["sha256"][name] = sha256_of(os.path.join(old, name))
    m.data["output_names"] = ["iou" if n == "score" else n for n in m.data["output_names"] if n != "iou_map"]
    m.seal()
    model, t, s = real_crops(tiny_bundle, 3)
    for kind in ("onnxruntime", "openvino"):
        assert compare_with_torch(create_backend(kind, old), model, t, s) < TOLERANCE, kind
