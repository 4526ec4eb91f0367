"""Backends behind the staged interface of dytrack_ros/contract.py, and the factory that picks one.

    backend = create_backend("auto", "models/dytrack_small")

auto: TensorRT when it imports and a CUDA GPU is present, else torch on CUDA, else OpenVINO on CPU (fastest CPU
runtime measured here, benchmarks/BACKENDS.md), else ONNX Runtime, else torch on CPU.
"""
from __future__ import annotations

import logging
import os
from typing import List

from ..contract import CHECKPOINT_NAME, MANIFEST_NAME, BackendError, Manifest, StagedBackend

BACKEND_NAMES = ("auto", "tensorrt", "onnxruntime", "openvino", "torch")


def _cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def _importable(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def available_backends() -> List[str]:
    out = []
    if _importable("tensorrt") and _cuda_available():
        out.append("tensorrt")
    if _importable("onnxruntime"):
        out.append("onnxruntime")
    if _importable("openvino"):
        out.append("openvino")
    if _importable("torch"):
        out.append("torch")
    return out


def resolve_auto(device: str = "auto") -> tuple:
    """The (backend, device, why) that 'auto' means on this machine; why says what was passed over and for what."""
    trt, cuda = _importable("tensorrt"), _cuda_available()
    gpu_wanted = device in ("auto", "cuda")
    passed = []
    if gpu_wanted:
        if trt and cuda:
            return "tensorrt", "cuda", "TensorRT and a CUDA GPU are present"
        passed.append("TensorRT: " + ("no CUDA GPU" if trt else "not installed"))
        if cuda and _importable("torch"):
            return "torch", "cuda", "; ".join(passed) + "; torch sees a CUDA GPU"
        passed.append("torch CUDA: " + ("no CUDA GPU" if _importable("torch") else "torch not installed"))
    for name, module in (("openvino", "openvino"), ("onnxruntime", "onnxruntime"), ("torch", "torch")):
        if _importable(module):
            return name, "cpu", "; ".join(passed + [f"{name} on the CPU"])
        passed.append(f"{name}: not installed")
    raise BackendError("no backend is installed (" + "; ".join(passed) + "): install onnxruntime (CPU) or torch")


def create_backend(kind: str, model_dir: str, device: str = "auto", threads: int = 0, fp16: bool = True,
                   verify_hashes: bool = True) -> StagedBackend:
    if kind not in BACKEND_NAMES:
        raise BackendError(f"unknown backend {kind!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if not os.path.isdir(model_dir):
        raise BackendError(f"model folder not found: {model_dir}")
    if kind == "auto":
        kind, device, why = resolve_auto(device)
        logging.getLogger("dytrack_ros").info("backend auto -> %s on %s (%s)", kind, device, why)
    if kind == "torch":
        from ..model.checkpoint import ModelFileError, load_checkpoint
        from .torch_backend import TorchBackend
        checkpoint = CHECKPOINT_NAME
        if os.path.isfile(os.path.join(model_dir, MANIFEST_NAME)):   # an exported folder: its model.pt is sealed
            checkpoint = Manifest.read(model_dir).data.get("checkpoint", CHECKPOINT_NAME)   # a composed model's
            Manifest.load(model_dir, verify_hashes=verify_hashes, files=[checkpoint])
        try:
            model, _ = load_checkpoint(os.path.join(model_dir, checkpoint))
        except ModelFileError as exc:
            raise BackendError(str(exc)) from exc
        dev = ("cuda" if _cuda_available() else "cpu") if device == "auto" else device
        return TorchBackend(model, dev, threads=threads)
    manifest = Manifest.load(model_dir, verify_hashes=verify_hashes)
    if kind == "onnxruntime":
        from .onnx_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend(manifest, threads=threads)
    if kind == "openvino":
        from .openvino_backend import OpenVINOBackend
        return OpenVINOBackend(manifest, threads=threads)
    from .tensorrt_backend import TensorRTBackend
    return TensorRTBackend(manifest, fp16=fp16)


__all__ = ["BACKEND_NAMES", "BackendError", "available_backends", "create_backend", "resolve_auto"]
