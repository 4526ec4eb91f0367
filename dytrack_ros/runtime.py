"""From a model folder and a backend name to a ready tracker: the one place that joins tracking and backends.

    tracker = build_tracker("models/dytrack_small", backend="auto")
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from .backends import create_backend
from .contract import (CHECKPOINT_NAME, MANIFEST_NAME, TRACKER_SETTING_CHOICES, TRACKER_SETTING_RANGES, BackendError,
                       Manifest)
from .tracking.fear_stage import DeepIoUHead, FearStage
from .tracking.tracker import DyTracker, TrackerParams

# tracker settings a model may carry in manifest.json's "tracker" section (the contract lists them with their ranges)
TUNABLE = tuple(TRACKER_SETTING_RANGES) + tuple(TRACKER_SETTING_CHOICES)


def model_manifest(model_dir: str) -> Manifest:
    """The folder's manifest, or (a folder with only model.pt, for the torch backend) what its config implies."""
    if not os.path.isdir(model_dir):
        raise BackendError(f"model folder not found: {model_dir}")
    if os.path.isfile(os.path.join(model_dir, MANIFEST_NAME)):
        return Manifest.read(model_dir)
    from .model.checkpoint import ModelFileError, load_checkpoint
    try:
        model, _ = load_checkpoint(os.path.join(model_dir, CHECKPOINT_NAME))
    except ModelFileError as exc:
        raise BackendError(str(exc)) from exc
    return Manifest.from_model_config(model_dir, model.cfg.to_dict())


def tracker_params(manifest: Manifest, thresholds: Optional[Sequence[float]] = None,
                   search_factor: Optional[float] = None,
                   lost_threshold: float = TrackerParams.lost_threshold) -> TrackerParams:
    d = manifest.data
    params = TrackerParams(template_size=int(d["template_size"]), search_size=int(d["search_size"]),
                           template_factor=float(d["template_factor"]),
                           search_factor=search_factor or float(d["search_factor"]),
                           thresholds=list(thresholds) if thresholds else manifest.exit_thresholds,
                           lost_threshold=lost_threshold)
    for key, value in manifest.tracker_settings.items():
        if key == "size_bounds":
            params.size_bounds = (float(value[0]), float(value[1]))
        elif key in TUNABLE:   # settings of an older tracker loop (e.g. lost_window_influence) are ignored
            numeric = key in TRACKER_SETTING_RANGES and value is not None
            setattr(params, key, (int(value) if key == "lost_patience" else float(value)) if numeric else value)
    return params


def build_tracker(model_dir: str, backend: str = "auto", device: str = "auto", threads: int = 0,
                  thresholds: Optional[Sequence[float]] = None, search_factor: Optional[float] = None,
                  lost_threshold: float = TrackerParams.lost_threshold, fp16: bool = True) -> DyTracker:
    manifest = model_manifest(model_dir)
    params = tracker_params(manifest, thresholds, search_factor, lost_threshold)
    staged = create_backend(backend, model_dir, device=device, threads=threads, fp16=fp16)
    kind = backend if backend != "auto" else staged.name.split("-")[0]   # torch's name carries its device
    return DyTracker(staged, params, deep=deep_stage(manifest, kind, device, threads))


def deep_stage(manifest: Manifest, backend: str, device: str = "auto", threads: int = 0) -> Optional[FearStage]:
    """The manifest's deep stage (FEAR-XS) on the backend nearest the staged one's, with its IoU head; None if it
    has none. TensorRT has no engines for FEAR-XS yet: beside it FEAR-XS runs on torch (CUDA) where torch sees a GPU,
    else on ONNX Runtime."""
    spec = manifest.deep_stage
    if spec is None:
        return None
    from .backends.fear_backend import create_fear_backend
    kind, dev = backend, "cpu"
    if backend in ("torch", "tensorrt"):
        import torch
        cuda = torch.cuda.is_available() and device != "cpu"
        kind, dev = ("torch", "cuda") if cuda else (("torch", "cpu") if backend == "torch" else ("onnxruntime", "cpu"))
    head = None
    if spec.get("iou_head"):
        path = manifest.path(spec["iou_head"])
        try:
            head = DeepIoUHead.load(path)
        except (OSError, ValueError) as exc:
            raise BackendError(f"deep stage IoU head {path} is unreadable: {exc}") from exc
    return FearStage(create_fear_backend(kind, manifest.deep_stage_folder(), threads, dev), head)
