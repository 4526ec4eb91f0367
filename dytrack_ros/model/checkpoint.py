"""Saving and loading models with their config, with clear errors for missing or corrupt files."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from .config import ModelConfig
from .dytrack import DyTrackNet


class ModelFileError(RuntimeError):
    """A model file is missing, unreadable or does not match its config."""


def save_checkpoint(path: str, model: DyTrackNet, extra: Optional[dict] = None) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    state = {k: v for k, v in model.state_dict().items()}
    payload = {"config": model.cfg.to_dict(), "state_dict": state, "extra": extra or {}}
    tmp = path + ".tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves half a checkpoint


def load_checkpoint(path: str, map_location: str = "cpu") -> Tuple[DyTrackNet, dict]:
    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise ModelFileError(f"model file {path} is corrupt or not a DyTrack checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or "config" not in payload or "state_dict" not in payload:
        raise ModelFileError(f"model file {path} is not a DyTrack checkpoint (no config/state_dict)")
    cfg = ModelConfig.from_dict(payload["config"])
    model = DyTrackNet(cfg, load_pretrained=False)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelFileError(f"model file {path} does not match its config: {exc}") from exc
    model.eval()
    return model, payload.get("extra", {})


def transfer_weights(model: DyTrackNet, source: DyTrackNet) -> List[str]:
    """Starts `model` from another configuration's weights: tensors with the same name and shape are copied, the
    position embeddings are resized (bilinear) to the new token grids. Returns the names left as initialised."""
    src = source.state_dict()
    grids = {"pos_template": (source.cfg.template_grid, model.cfg.template_grid),
             "pos_search": (source.cfg.search_grid, model.cfg.search_grid)}
    state, kept = model.state_dict(), []
    for name, tensor in state.items():
        value = src.get(name)
        if name in grids and value is not None and value.shape[-1] == tensor.shape[-1]:
            old, new = grids[name]
            grid = value.reshape(1, old, old, -1).permute(0, 3, 1, 2)
            value = F.interpolate(grid, size=(new, new), mode="bilinear", align_corners=False)
            value = value.permute(0, 2, 3, 1).reshape(1, new * new, -1)
        if value is not None and value.shape == tensor.shape:
            state[name] = value.clone()
        else:
            kept.append(name)
    model.load_state_dict(state)
    return kept
