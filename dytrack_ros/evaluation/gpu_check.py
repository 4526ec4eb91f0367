"""The GPU path, checked on a real GPU in one run: engines built and compared with the CPU, timings, the node.

    bash scripts/gpu_check.sh                 # installs what it can, then runs this module
    python -m dytrack_ros.evaluation.gpu_check --out benchmarks/GPU.md [--require-gpu]

Every GPU backend present (TensorRT FP32 and FP16, torch on CUDA eager and with CUDA graphs, ONNX Runtime's CUDA
provider) is compared with ONNX Runtime on the CPU (the reference every other test trusts):
- outputs: every stage's head outputs on real crops of the demo video, max abs difference per output;
- boxes: the dynamic tracker over the demo clip's first frames, every frame's box within IoU 0.95 of the CPU's, each
  frame from the same state (the CPU tracker's); the free-running trajectories are reported beside it;
- time: per stage p50/p95 (CUDA events around run_stage, which includes the copy of the head outputs back) and the
  dynamic policy per frame;
- the node: `backend:=tensorrt` (torch on CUDA where TensorRT is missing) over DDS (dytrack-bench-node), results
  received and latency.
What cannot run here (no GPU, no TensorRT, no rclpy) is a SKIP line with the reason, never a number. Any FAIL makes
the exit status 1; with --require-gpu, a machine without CUDA is a failure (exit 2) instead of a list of SKIPs.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from ..backends import BackendError, create_backend
from ..contract import DEFAULT_MODEL_DIR, HEAD_OUTPUTS, Manifest, to_network_input
from ..tracking.crops import box_center, crop_and_resize, crop_side
from . import machine
from .metrics import box_iou

# FP32 engines and torch should agree with the CPU to rounding; FP16 to its mantissa (scores are IoUs in 0..1)
TOLERANCE = {"fp32": 2e-3, "tf32": 1e-2, "fp16": 3e-2}
BOX_IOU_MIN = 0.95
DEMO_INIT = (638, 238, 48, 86)   # the man in vtest.avi, as in the README's demo


@dataclass
class Check:
    name: str
    status: str                      # PASS, FAIL or SKIP
    detail: str
    rows: List[str] = field(default_factory=list)


def environment() -> List[str]:
    """Versions, driver and GPU, as far as this machine has them."""
    from ..data.photos import data_dir
    lines = [f"- machine: {machine.describe()}", f"- date: {machine.today()}",
             f"- demo clip: {os.path.relpath(os.path.join(data_dir(), 'vtest.avi'))}"]
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        lines.append(f"- nvidia-smi: {smi.stdout.strip() or smi.stderr.strip()}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        lines.append(f"- nvidia-smi: not available ({exc.__class__.__name__})")
    for module in ("torch", "tensorrt", "onnxruntime", "openvino", "cv2", "rclpy"):
        try:
            mod = __import__(module)
            version = getattr(mod, "__version__", "present")
            if module == "torch":
                version += f", CUDA {mod.version.cuda}, cuda available: {mod.cuda.is_available()}"
            if module == "onnxruntime":
                version += f", providers {mod.get_available_providers()}"
            lines.append(f"- {module}: {version}")
        except Exception as exc:   # a broken install is reported, not fatal
            lines.append(f"- {module}: not importable ({str(exc).splitlines()[0][:120]})")
    return lines


def demo_frames(count: int) -> List[np.ndarray]:
    import cv2
    from ..data.photos import data_dir
    cap = cv2.VideoCapture(os.path.join(data_dir(), "vtest.avi"))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    if not frames:
        raise FileNotFoundError("vtest.avi not found: run scripts/fetch_data.sh (or set DYTRACK_PHOTOS)")
    return frames


def real_crops(manifest: Manifest, frames: List[np.ndarray], count: int = 4):
    """The template from frame 0 and search crops of later frames around the demo's man."""
    d = manifest.data
    box = np.array(DEMO_INIT, float)
    template = to_network_input(crop_and_resize(frames[0], box_center(box), crop_side(box, d["template_factor"], 0.5),
                                                d["template_size"]), manifest.normalization)
    step = max(1, (len(frames) - 1) // count)
    searches = [to_network_input(crop_and_resize(frames[i], box_center(box), crop_side(box, d["search_factor"], 0.5),
                                                 d["search_size"]), manifest.normalization)
                for i in range(1, len(frames), step)][:count]
    return template, searches


def compare_outputs(candidate, reference, template, searches) -> Dict[str, float]:
    """Max abs difference per head output over every stage and crop, candidate vs reference backend."""
    worst: Dict[str, float] = {}
    for b in (candidate, reference):
        b.set_template(template)
    for search in searches:
        for k in range(reference.num_stages):
            got = candidate.run_stage(k, search if k == 0 else None)
            ref = reference.run_stage(k, search if k == 0 else None)
            for name in HEAD_OUTPUTS:
                a, r = getattr(got, name, None), getattr(ref, name, None)
                if a is None or r is None:
                    continue
                diff = float(np.max(np.abs(np.asarray(a, float) - np.asarray(r, float))))
                worst[name] = max(worst.get(name, 0.0), diff)
    return worst


def clip_boxes(tracker, frames) -> np.ndarray:
    """Free running: the tracker's boxes over the clip, each frame from its own previous state."""
    boxes = [tracker.initialize(frames[0], DEMO_INIT)]
    boxes += [tracker.track(f).box for f in frames[1:]]
    return np.array(boxes)


def take_state(candidate, reference) -> None:
    """The candidate tracker takes over the reference's whole state (box, template, memories, LOST bookkeeping); its
    own backend gets the reference's template."""
    memo = {id(reference): candidate, id(reference.backend): candidate.backend}   # bound methods follow the tracker
    for name, value in vars(reference).items():
        if name != "backend":
            setattr(candidate, name, copy.deepcopy(value, memo))
    candidate.backend.set_template(candidate.template)


def stepwise_boxes(candidate, reference, frames):
    """(candidate boxes, reference boxes): each frame tracked by both from the reference's state after the frame
    before. A free-running comparison drifts apart by design: a memory template cut or an exit taken one frame
    earlier on one side (a score within rounding of its threshold) changes everything after it; this isolates what the
    backend changes on one frame."""
    reference.initialize(frames[0], DEMO_INIT)
    candidate.initialize(frames[0], DEMO_INIT)
    got, want = [], []
    for frame in frames[1:]:
        take_state(candidate, reference)
        got.append(candidate.track(frame).box)
        want.append(reference.track(frame).box)
    return np.array(got), np.array(want)


def box_agreement(boxes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return box_iou(boxes, reference)


def stage_times(backend, template, search, repeats: int) -> np.ndarray:
    """(repeats, stages) milliseconds per run_stage, CUDA events where the backend is on a GPU."""
    import torch
    backend.set_template(template)
    for _ in range(10):
        for k in range(backend.num_stages):
            backend.run_stage(k, search if k == 0 else None)
    times = np.zeros((repeats, backend.num_stages))
    for r in range(repeats):
        for k in range(backend.num_stages):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            backend.run_stage(k, search if k == 0 else None)
            end.record()
            end.synchronize()
            times[r, k] = start.elapsed_time(end)
    return times


def gpu_backends(model_dir: str) -> Dict[str, Callable[[], object]]:
    """name -> constructor of every GPU backend this machine could have; constructors raise BackendError."""
    def trt(fp16):
        return lambda: create_backend("tensorrt", model_dir, fp16=fp16)

    def torch_cuda(graphs, tf32=False):
        def make():
            from ..model.checkpoint import load_checkpoint
            from ..backends.torch_backend import TorchBackend
            model, _ = load_checkpoint(os.path.join(model_dir, "model.pt"))
            return TorchBackend(model, "cuda", cuda_graphs=graphs, tf32=tf32)
        return make

    def ort_cuda():
        import onnxruntime as ort
        from ..backends.onnx_backend import OnnxRuntimeBackend
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendError("onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
        return OnnxRuntimeBackend(Manifest.load(model_dir), providers=["CUDAExecutionProvider"])

    return {"tensorrt-fp32": trt(False), "tensorrt-fp16": trt(True), "torch-cuda": torch_cuda(False),
            "torch-cuda-graphs": torch_cuda(True), "torch-cuda-graphs-tf32": torch_cuda(True, tf32=True),
            "onnxruntime-cuda": ort_cuda}


def cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def run_checks(model_dir: str, frames_n: int, repeats: int, node: bool) -> List[Check]:
    from ..runtime import tracker_params
    from ..tracking.tracker import DyTracker
    checks: List[Check] = []
    manifest = Manifest.load(model_dir)
    frames = demo_frames(frames_n)
    template, searches = real_crops(manifest, frames)
    reference = create_backend("onnxruntime", model_dir, threads=1)
    ref_boxes = clip_boxes(DyTracker(reference, tracker_params(manifest)), frames)
    if not cuda_available():
        return [Check("GPU backends", "SKIP", "no CUDA GPU on this machine (torch.cuda.is_available() is False): "
                      "engine builds, comparisons, timings and the node on the GPU did not run")]
    for name, make in gpu_backends(model_dir).items():
        precision = name.rsplit("-", 1)[-1] if name.endswith(("fp16", "tf32")) else "fp32"
        t0 = time.perf_counter()
        try:
            backend = make()
        except (BackendError, ImportError) as exc:
            checks.append(Check(name, "SKIP", f"not available: {exc}"))
            continue
        build_s = time.perf_counter() - t0
        rows = [f"first construction (engine build or load, graph capture on first run): {build_s:.1f} s"]
        if name.startswith("tensorrt"):
            t0 = time.perf_counter()
            make()
            rows.append(f"second construction (engines from the cache): {time.perf_counter() - t0:.1f} s")
        diffs = compare_outputs(backend, reference, template, searches)
        rows.append("max abs difference vs ONNX Runtime CPU: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
        got, want = stepwise_boxes(DyTracker(backend, tracker_params(manifest)),
                                   DyTracker(reference, tracker_params(manifest)), frames)
        ious = box_agreement(got, want)
        rows.append(f"demo clip, {len(frames)} frames, each from the CPU tracker's state: box IoU with the CPU's min "
                    f"{ious.min():.3f}, mean {ious.mean():.4f}, frames under {BOX_IOU_MIN}: {int((ious < BOX_IOU_MIN).sum())}")
        free = box_agreement(clip_boxes(DyTracker(backend, tracker_params(manifest)), frames), ref_boxes)
        rows.append(f"free running (each tracker on its own state, not a criterion): box IoU with the CPU's mean "
                    f"{free.mean():.3f}, frames under {BOX_IOU_MIN}: {int((free < BOX_IOU_MIN).sum())}"
                    + (f", first at frame {int(np.argmax(free < BOX_IOU_MIN))}" if (free < BOX_IOU_MIN).any() else ""))
        t = stage_times(backend, template, searches[0], repeats)
        rows.append("per stage p50 / p95 ms: " + ", ".join(
            f"stage {k}: {np.percentile(t[:, k], 50):.3f} / {np.percentile(t[:, k], 95):.3f}" for k in range(t.shape[1])))
        tracker = DyTracker(backend, tracker_params(manifest))
        tracker.initialize(frames[0], DEMO_INIT)
        per_frame = [tracker.track(f).inference_ms for f in frames[1:]]
        rows.append(f"dynamic policy per frame (wall clock, crop + stages): p50 {np.percentile(per_frame, 50):.3f} ms, "
                    f"p95 {np.percentile(per_frame, 95):.3f} ms")
        bad = [k for k, v in diffs.items() if v > TOLERANCE[precision]] + (["boxes"] if ious.min() < BOX_IOU_MIN else [])
        checks.append(Check(name, "FAIL" if bad else "PASS",
                            f"outside tolerance: {', '.join(bad)}" if bad else
                            f"outputs within {TOLERANCE[precision]:g}, boxes within IoU {BOX_IOU_MIN}", rows))
    if node:
        checks.append(node_check(model_dir))
    return checks


def node_backend() -> str:
    """The node runs on the fastest GPU backend this machine has: TensorRT, else torch on CUDA."""
    return "tensorrt" if importlib.util.find_spec("tensorrt") is not None else "torch"


def node_check(model_dir: str) -> Check:
    """The node on the GPU over DDS (dytrack-bench-node), its table taken over as it is."""
    backend = node_backend()
    name = f"node, backend {backend}" + ("" if backend == "tensorrt" else " on CUDA (TensorRT is not installed)")
    if importlib.util.find_spec("rclpy") is None:
        return Check(name, "SKIP", "rclpy is not installed (scripts/setup.sh installs it)")
    out = os.path.join(tempfile.mkdtemp(), "node.md")
    proc = subprocess.run([sys.executable, "-m", "dytrack_ros.tools.node_latency", "--model", model_dir, "--backend",
                           backend, "--out", out], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not os.path.isfile(out):
        return Check(name, "FAIL", "dytrack-bench-node failed: " + proc.stderr.strip()[-400:])
    rows = [ln for ln in open(out).read().splitlines() if ln.startswith(("- ", "|"))]
    return Check(name, "PASS", "results received over DDS (table below)", rows)


def report(checks: List[Check], env: List[str], command: str) -> List[str]:
    lines = ["# GPU path check", "", *env, f"- command: `{command}`", "", "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {c.status} | {c.detail} |" for c in checks]
    for c in checks:
        if c.rows:
            lines += ["", f"## {c.name}", ""]
            for r in c.rows:
                if r.startswith("|") and not lines[-1].startswith("|"):
                    lines.append("")        # a table needs a blank line above it
                lines.append(r if r.startswith(("|", "- ")) else f"- {r}")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--out", default="benchmarks/GPU.md")
    p.add_argument("--frames", type=int, default=200, help="frames of the demo clip for the box comparison")
    p.add_argument("--repeats", type=int, default=200, help="timed runs per stage")
    p.add_argument("--no-node", action="store_true", help="skip the node run")
    p.add_argument("--require-gpu", action="store_true", help="a machine without CUDA is a failure (exit 2)")
    args = p.parse_args(argv)
    env = environment()
    if args.require_gpu and not cuda_available():
        print("\n".join(env + ["no CUDA GPU: nothing to check (--require-gpu)"]), file=sys.stderr)
        return 2
    checks = run_checks(args.model, args.frames, args.repeats, node=not args.no_node)
    command = "python -m dytrack_ros.evaluation.gpu_check " + " ".join(argv if argv is not None else sys.argv[1:])
    machine.write_report(args.out, report(checks, env, command.strip()))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
