"""The GPU check (scripts/gpu_check.sh) and the backend chooser, on this machine. The GPU parts run where CUDA is
(marked gpu); here they must say SKIP with the reason, never a number; the comparison code they use runs for real
between two CPU backends on the shipped model."""
import os
import subprocess

import pytest

from conftest import ROOT, SHIPPED_MODEL
from dytrack_ros import backends
from dytrack_ros.backends import BackendError, create_backend, resolve_auto
from dytrack_ros.contract import Manifest
from dytrack_ros.evaluation import gpu_check


def test_script_runs_on_a_machine_without_gpu_and_says_what_it_skipped(tmp_path):
    out = tmp_path / "GPU.md"
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh"), "--out", str(out), "--no-node"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    if gpu_check.cuda_available():
        pytest.skip("this machine has CUDA: the real run is test_gpu_check_passes_on_this_gpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert "| GPU backends | SKIP | no CUDA GPU" in text
    assert "- torch:" in text and "- tensorrt:" in text and "- date:" in text
    assert " ms" not in text.split("| check |")[1]            # no timing without a GPU
    no_gpu = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh"), "--require-gpu",
                             "--out", str(tmp_path / "x.md")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert no_gpu.returncode == 2 and "no CUDA GPU" in no_gpu.stderr


def test_comparison_code_finds_agreement_and_a_real_difference():
    """compare_outputs / clip_boxes, as the GPU run uses them, between torch CPU and ONNX Runtime CPU; a backend
    whose scores are off is caught."""
    from dytrack_ros.runtime import tracker_params
    from dytrack_ros.tracking.tracker import DyTracker
    manifest = Manifest.load(SHIPPED_MODEL)
    frames = gpu_check.demo_frames(12)
    template, searches = gpu_check.real_crops(manifest, frames, count=2)
    ort = create_backend("onnxruntime", SHIPPED_MODEL, threads=1)
    torch_cpu = create_backend("torch", SHIPPED_MODEL, device="cpu", threads=1)
    diffs = gpu_check.compare_outputs(torch_cpu, ort, template, searches)
    assert set(diffs) >= {"score_map", "size_map", "score", "iou_map"}
    assert max(diffs.values()) < gpu_check.TOLERANCE["fp32"], diffs

    class Off:                       # what a broken FP16 engine would look like
        num_stages = ort.num_stages
        set_template = ort.set_template

        def run_stage(self, k, search=None):
            r = ort.run_stage(k, search)
            r.score_map = r.score_map + 0.1
            return r
    ort2 = create_backend("onnxruntime", SHIPPED_MODEL, threads=1)
    assert gpu_check.compare_outputs(Off(), ort2, template, searches)["score_map"] == pytest.approx(0.1, abs=1e-5)
    boxes = gpu_check.clip_boxes(DyTracker(torch_cpu, tracker_params(manifest)), frames)
    ref = gpu_check.clip_boxes(DyTracker(ort, tracker_params(manifest)), frames)
    assert gpu_check.box_agreement(boxes, ref).min() > gpu_check.BOX_IOU_MIN


def test_boxes_compared_frame_by_frame_from_the_reference_state():
    """Each frame from the reference tracker's state: equal backends agree on every frame of a stretch where free
    running parts them (at frame 35 on this clip one side cuts a memory template a frame earlier), and a backend
    whose offsets are half a cell off is caught on every frame."""
    from dytrack_ros.runtime import tracker_params
    from dytrack_ros.tracking.tracker import DyTracker
    params = tracker_params(Manifest.load(SHIPPED_MODEL))
    frames = gpu_check.demo_frames(45)
    ort = lambda: create_backend("onnxruntime", SHIPPED_MODEL, threads=1)
    torch_cpu = create_backend("torch", SHIPPED_MODEL, device="cpu", threads=1)
    got, want = gpu_check.stepwise_boxes(DyTracker(torch_cpu, params), DyTracker(ort(), params), frames)
    assert len(got) == len(frames) - 1 and gpu_check.box_agreement(got, want).min() > 0.99

    class HalfCellOff:
        inner = ort()
        num_stages, input_convention = inner.num_stages, inner.input_convention
        set_template = inner.set_template

        def run_stage(self, k, search=None):
            r = self.inner.run_stage(k, search)
            r.offset_map = r.offset_map + 0.5
            return r
    reference = DyTracker(ort(), params)
    off = DyTracker(HalfCellOff(), params)
    got, want = gpu_check.stepwise_boxes(off, reference, frames[:10])
    assert gpu_check.box_agreement(got, want).max() < gpu_check.BOX_IOU_MIN
    assert off.search is not reference.search and off.search.memory is not reference.search.memory


@pytest.mark.parametrize("trt, cuda, mods, expected, reason", [
    (True, True, {"torch", "onnxruntime"}, ("tensorrt", "cuda"), "TensorRT and a CUDA GPU"),
    (False, True, {"torch", "onnxruntime"}, ("torch", "cuda"), "TensorRT: not installed"),
    (True, False, {"torch", "openvino"}, ("openvino", "cpu"), "TensorRT: no CUDA GPU"),
    (False, False, {"onnxruntime"}, ("onnxruntime", "cpu"), "openvino: not installed"),
])
def test_auto_falls_back_in_order_and_says_why(monkeypatch, trt, cuda, mods, expected, reason):
    monkeypatch.setattr(backends, "_cuda_available", lambda: cuda)
    monkeypatch.setattr(backends, "_importable", lambda m: m in mods | ({"tensorrt"} if trt else set()))
    kind, device, why = resolve_auto()
    assert (kind, device) == expected and reason in why


def test_auto_without_any_backend_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(backends, "_cuda_available", lambda: False)
    monkeypatch.setattr(backends, "_importable", lambda m: False)
    with pytest.raises(BackendError, match="onnxruntime: not installed.*install onnxruntime"):
        resolve_auto()


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_check.cuda_available(), reason="no CUDA GPU on this machine")
def test_gpu_check_passes_on_this_gpu(tmp_path):
    assert gpu_check.main(["--out", str(tmp_path / "GPU.md"), "--no-node", "--frames", "60", "--repeats", "20"]) == 0
    text = (tmp_path / "GPU.md").read_text()
    assert "FAIL" not in text and "torch-cuda" in text
