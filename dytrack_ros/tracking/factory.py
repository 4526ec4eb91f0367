"""Build a ready DyTracker from a model folder (manifest + graphs + checkpoint) and a backend name."""
from __future__ import annotations

import json
import os
from typing import Optional, Sequence

from ..backends import CHECKPOINT_NAME, BackendError, create_backend
from ..backends.base import MANIFEST_NAME
from .tracker import DyTracker, TrackerParams

# tracker settings a model may carry in manifest.json's "tracker" section (tuned on training video)
TUNABLE = ("window_influence", "lost_window_influence", "size_lr", "lost_patience", "scale_penalty")


def read_model_info(model_dir: str) -> dict:
    """Sizes, factors and default thresholds: from manifest.json, else from the checkpoint's config."""
    if not os.path.isdir(model_dir):
        raise BackendError(f"model folder not found: {model_dir}")
    path = os.path.join(model_dir, MANIFEST_NAME)
    if os.path.isfile(path):
        try:
            with open(path) as f:
                m = json.load(f)
            info = {k: m[k] for k in ("template_size", "search_size", "template_factor", "search_factor",
                                      "exit_thresholds", "num_stages")}
            info["tracker"] = dict(m.get("tracker", {}))   # per-model tracker settings tuned on training video
            return info
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"{path} is unreadable or incomplete: {exc}") from exc
    from ..model.checkpoint import ModelFileError, load_checkpoint
    try:
        model, _ = load_checkpoint(os.path.join(model_dir, CHECKPOINT_NAME))
    except ModelFileError as exc:
        raise BackendError(str(exc)) from exc
    c = model.cfg
    return {"template_size": c.template_size, "search_size": c.search_size, "template_factor": c.template_factor,
            "search_factor": c.search_factor, "exit_thresholds": [0.6] * (c.num_stages - 1) + [0.0],
            "num_stages": c.num_stages, "tracker": {}}


def build_tracker(model_dir: str, backend: str = "auto", device: str = "auto", threads: int = 0,
                  thresholds: Optional[Sequence[float]] = None, search_factor: Optional[float] = None,
                  lost_threshold: float = TrackerParams.lost_threshold, fp16: bool = True) -> DyTracker:
    info = read_model_info(model_dir)
    params = TrackerParams(template_size=info["template_size"], search_size=info["search_size"],
                           template_factor=info["template_factor"],
                           search_factor=search_factor or info["search_factor"],
                           thresholds=list(thresholds) if thresholds else list(info["exit_thresholds"]),
                           lost_threshold=lost_threshold)
    for key in TUNABLE:
        if key in info["tracker"]:
            kind = type(getattr(params, key))
            setattr(params, key, kind(info["tracker"][key]))
    return DyTracker(create_backend(backend, model_dir, device=device, threads=threads, fp16=fp16), params)
