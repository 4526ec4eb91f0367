"""The one staged interface every backend implements, and the model-bundle manifest they read.

A backend holds the template tokens and the carry between stages itself (on the GPU for GPU backends), so
the tracker only hands in crops and reads back small outputs:
    set_template(template)          template: float32 (1, 3, T, T), normalised
    run_stage(0, search)            search:   float32 (1, 3, S, S)
    run_stage(k)                    k > 0: continues from what stage k-1 left
Each run_stage returns a StageResult with numpy arrays.
"""
from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

MANIFEST_NAME = "manifest.json"


class BackendError(RuntimeError):
    """A backend cannot be created or run (missing runtime, bad model files)."""


@dataclass
class StageResult:
    score_map: np.ndarray   # (G, G) center score, 0..1
    size_map: np.ndarray    # (2, G, G) box w, h as crop fractions
    offset_map: np.ndarray  # (2, G, G) sub-cell offsets
    box: np.ndarray         # (4,) cx, cy, w, h in crop fractions, at the raw peak
    iou: float              # the exit's predicted IoU of its own box


def stage_feeds(stage: int, search, template, carry, prev_score, accepted) -> dict:
    """The named inputs of one stage graph. A schema that ignores an input exports a graph without it, so only
    the names the graph declares (`accepted`) are fed."""
    if stage == 0:
        if search is None or template is None:
            raise ValueError("stage 0 needs a search crop and a template (set_template first)")
        feeds = {"template_tokens": template, "search": np.ascontiguousarray(search, np.float32)}
    else:
        feeds = {"carry_in": carry, "prev_score": prev_score}
    return {k: v for k, v in feeds.items() if k in accepted}


def result_from_outputs(out: dict) -> StageResult:
    """StageResult from a graph's named outputs (batch of one)."""
    return StageResult(score_map=np.array(out["score_map"][0, 0]), size_map=np.array(out["size_map"][0]),
                       offset_map=np.array(out["offset_map"][0]), box=np.array(out["box"][0]),
                       iou=float(out["iou"][0]))


def result_from_flat(small: np.ndarray, grid: int) -> StageResult:
    """StageResult from the concatenation [score, size, offset, box, iou] that GPU backends copy back at once."""
    n = grid * grid
    return StageResult(score_map=small[:n].reshape(grid, grid), size_map=small[n:3 * n].reshape(2, grid, grid),
                       offset_map=small[3 * n:5 * n].reshape(2, grid, grid), box=small[5 * n:5 * n + 4],
                       iou=float(small[5 * n + 4]))


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Manifest:
    """What export writes next to the per-stage ONNX files (see backends/export.py)."""
    folder: str
    data: dict

    @classmethod
    def load(cls, folder: str, verify_hashes: bool = True) -> "Manifest":
        path = os.path.join(folder, MANIFEST_NAME)
        if not os.path.isfile(path):
            raise BackendError(f"no {MANIFEST_NAME} in {folder}: export the model with dytrack-export first")
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise BackendError(f"{path} is unreadable: {exc}") from exc
        m = cls(folder, data)
        missing = [k for k in ("template_graph", "stage_graphs") if k not in data]
        if missing:
            raise BackendError(f"{path} lacks {', '.join(missing)}: re-export the model with dytrack-export")
        hashes = data.get("sha256")
        if verify_hashes and not isinstance(hashes, dict):
            raise BackendError(f"{path} has no graph hashes (sha256): re-export the model with dytrack-export")
        for name in m.graph_files():
            file = os.path.join(folder, name)
            if not os.path.isfile(file):
                raise BackendError(f"model file missing: {file}")
            if verify_hashes and name not in hashes:
                raise BackendError(f"{path} has no hash for {name}: re-export the model with dytrack-export")
            if verify_hashes and sha256_of(file) != hashes[name]:
                raise BackendError(f"model file {file} does not match its manifest hash (corrupt or replaced)")
        return m

    def graph_files(self) -> List[str]:
        return [self.data["template_graph"]] + list(self.data["stage_graphs"])

    @property
    def num_stages(self) -> int:
        return len(self.data["stage_graphs"])

    @property
    def model_config(self) -> dict:
        return self.data["model_config"]

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)


class StagedBackend(ABC):
    name = "base"
    num_stages: int

    @abstractmethod
    def set_template(self, template: np.ndarray) -> None:
        ...

    @abstractmethod
    def run_stage(self, stage: int, search: Optional[np.ndarray] = None) -> StageResult:
        ...

    def describe(self) -> str:
        return self.name
