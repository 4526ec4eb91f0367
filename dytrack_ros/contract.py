"""The contract between the network, the backends and the tracker. Imports nothing else of this package.

A model folder holds `template.onnx`, `stage{k}.onnx` (k = 0 .. n-1), `manifest.json` and usually `model.pt`.
A backend runs them behind one staged interface and holds the template tokens and the carry between stages
itself (on the GPU for GPU backends), so the tracker hands in crops and reads back small outputs:

    set_template(template)      template: float32 (1, 3, T, T), normalised as NORMALIZATION says
    run_stage(0, search)        search:   float32 (1, 3, S, S)
    run_stage(k)                k > 0: continues from what stage k-1 left

Stages are numbered from 0 wherever an index is meant (run_stage, stage{k}.onnx, exit_thresholds[k]); a result
reports `stages_run` (a count, 1 .. n): the exit of stage stages_run - 1 produced the box. One quantity, `score`,
is the exit's predicted IoU of its own box, from the network output to the ROS message.
"""
from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

DEFAULT_MODEL_DIR = "models/dytrack_small"    # the shipped model, relative to the repository (commands' --model)
MANIFEST_NAME = "manifest.json"
CHECKPOINT_NAME = "model.pt"
MANIFEST_FORMAT = "dytrack-staged-onnx/1"

# how a model's graphs take pixels: its stem's own convention, (pixel in `color` order - mean) / scale, written into
# the manifest at export and checked on load; to_network_input converts a crop to it, the graphs convert nothing
INPUT_CONVENTIONS = {
    "nanotrack_v2": {"color": "BGR", "mean": 0.0, "scale": 1.0},     # NanoTrack's backbone: raw BGR 0..255
    "lite0": {"color": "RGB", "mean": 127.0, "scale": 128.0},        # EfficientNet-Lite's
}

# one stage graph's outputs, in this order (the exporter names them so; backends read them by position)
STAGE_OUTPUTS = ("carry", "score_map", "size_map", "offset_map", "box", "score", "iou_map")
# what the tracker reads; GPU backends copy these back as one flat float array, in this order
HEAD_OUTPUTS = ("score_map", "size_map", "offset_map", "box", "score", "iou_map")
# graphs exported before iou_map existed end at "score"; they still load (the score then judges the raw peak only)
OPTIONAL_OUTPUTS = ("iou_map",)
TEMPLATE_INPUT, TEMPLATE_OUTPUT = "template", "template_tokens"

# exit thresholds of a model nobody has calibrated: exit early on a confident score, the last stage always answers
UNCALIBRATED_EXIT_THRESHOLD = 0.6

# manifest fields a user may edit (validated on load); every other field defines the model and is sealed by
# model_sha256 at export (an edit of a size, factor, normalisation or stage list silently changes tracking)
TUNABLE_FIELDS = ("exit_thresholds", "tracker", "threshold_calibration", "max_abs_diff_vs_torch", "model_sha256")
# tracker settings a manifest may carry, with their allowed ranges (runtime.py applies them)
TRACKER_SETTING_RANGES = {"window_influence": (0.0, 1.0), "scale_penalty": (0.0, 10.0), "size_lr": (0.0, 1.0),
                          "lost_patience": (0, 10**6), "context_amount": (0.0, 2.0), "absent_threshold": (0.0, 1.0)}
TRACKER_SETTING_CHOICES = {"later_exits": ("own", "refine", "fuse"), "best_scored": (True, False),
                           "later_exits_steer": (True, False), "deep_answer": ("deep", "fuse", "choose"),
                           "deep_identity_check": (True, False)}
DEEP_STAGE_KINDS = ("fear_xs",)     # networks a manifest may name as its deep stage (tracking/fear_stage.py)


def input_convention(model_config: dict) -> dict:
    """The pixel convention of a model's graphs (INPUT_CONVENTIONS), from its config's stem."""
    stem = model_config.get("stem", "lite0")
    if stem not in INPUT_CONVENTIONS:
        raise BackendError(f"no input convention for stem {stem!r} (known: {sorted(INPUT_CONVENTIONS)})")
    return dict(INPUT_CONVENTIONS[stem])


def to_network_input(crop_bgr: np.ndarray, convention: dict) -> np.ndarray:
    """uint8 BGR HxWx3 crop -> float32 1x3xHxW in the model's convention (input_convention): the one conversion."""
    x = crop_bgr if convention["color"] == "BGR" else crop_bgr[:, :, ::-1]
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)     # the one copy
    if convention["mean"] != 0.0 or convention["scale"] != 1.0:
        x -= np.float32(convention["mean"])
        x /= np.float32(convention["scale"])
    return x


def from_network_input(x: np.ndarray, convention: dict) -> np.ndarray:
    """The inverse (1x3xHxW -> float HxWx3 BGR 0..255): what a crop looked like, for tests and debugging."""
    img = x[0].transpose(1, 2, 0) * convention["scale"] + convention["mean"]
    return img if convention["color"] == "BGR" else img[:, :, ::-1]


def stage_input_names(stage: int) -> tuple:
    """Stage 0 embeds the search crop beside the template tokens; later stages continue from the carry and
    the previous exit's score map (feature and prediction recycling)."""
    return (TEMPLATE_OUTPUT, "search") if stage == 0 else ("carry_in", "prev_score")


def default_thresholds(num_stages: int) -> List[float]:
    return [UNCALIBRATED_EXIT_THRESHOLD] * (num_stages - 1) + [0.0]


def head_shapes(grid: int) -> Dict[str, tuple]:
    """Shapes of the head outputs for one crop (batch dimension removed) on a grid x grid score map."""
    return {"score_map": (grid, grid), "size_map": (2, grid, grid), "offset_map": (2, grid, grid), "box": (4,),
            "score": (), "iou_map": (grid, grid)}


class BackendError(RuntimeError):
    """A backend cannot be created or run (missing runtime, bad or missing model files)."""


@dataclass
class StageResult:
    score_map: np.ndarray   # (G, G) center score, 0..1
    size_map: np.ndarray    # (2, G, G) box w, h as crop fractions
    offset_map: np.ndarray  # (2, G, G) sub-cell offsets
    box: np.ndarray         # (4,) cx, cy, w, h in crop fractions, at the raw peak
    score: float            # the exit's predicted IoU of its own box (the raw peak's)
    iou_map: Optional[np.ndarray] = None  # (G, G) the predicted IoU of every cell's box (None: an older graph)

    def __post_init__(self):
        self.score = float(self.score)

    @classmethod
    def from_outputs(cls, out: Dict[str, np.ndarray]) -> "StageResult":
        """From a graph's outputs by name (batch of one)."""
        grid = out["score_map"].shape[-1]
        return cls(**{name: np.asarray(out[name]).reshape(shape) for name, shape in head_shapes(grid).items()
                      if name in out or name not in OPTIONAL_OUTPUTS})

    @classmethod
    def from_flat(cls, flat: np.ndarray, grid: int) -> "StageResult":
        """From the HEAD_OUTPUTS concatenation that GPU backends copy back in one transfer."""
        parts, start = {}, 0
        for name, shape in head_shapes(grid).items():
            n = int(np.prod(shape))
            if start + n > flat.size and name in OPTIONAL_OUTPUTS:
                break
            parts[name] = flat[start:start + n].reshape(shape)
            start += n
        return cls(**parts)


class StagedBackend(ABC):
    name = "base"
    num_stages: int
    # the pixel convention its graphs take (INPUT_CONVENTIONS): backends built from a manifest use the manifest's;
    # this default (raw BGR) serves backends made up in tests
    input_convention: dict = {"color": "BGR", "mean": 0.0, "scale": 1.0}

    @abstractmethod
    def set_template(self, template: np.ndarray) -> None:
        ...

    @abstractmethod
    def run_stage(self, stage: int, search: Optional[np.ndarray] = None) -> StageResult:
        ...


class DeepStageBackend(ABC):
    """A pretrained Siamese network behind the first exit (FEAR-XS, dytrack_ros/model/fear_xs.py) with crops of its
    own geometry (tracking/fear_stage.py): RGB 0..255 float32 crops in, its raw maps out."""
    name = "base"

    @abstractmethod
    def set_template(self, template: np.ndarray) -> None:
        """template: float32 (1, 3, 128, 128) RGB 0..255."""

    @abstractmethod
    def run(self, search: np.ndarray):
        """search: float32 (1, 3, 256, 256) RGB 0..255 -> (bbox (4, 16, 16) l/t/r/b crop pixels, cls (16, 16) logits)."""


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Manifest:
    """manifest.json of a model folder: graphs and their hashes, crop geometry, exit thresholds, tracker settings.

    Read with `load` (graphs checked), `from_model_config` (a folder with only model.pt: geometry and defaults),
    written with `write` (the exporter) and `update` (calibration and tuning keep everything else).
    """
    folder: str
    data: dict

    # ---- reading ------------------------------------------------------------------------------------
    @classmethod
    def read(cls, folder: str) -> "Manifest":
        """The file as it is, without looking at the graphs."""
        if not os.path.isdir(folder):
            raise BackendError(f"model folder not found: {folder}")
        path = os.path.join(folder, MANIFEST_NAME)
        if not os.path.isfile(path):
            raise BackendError(f"no {MANIFEST_NAME} in {folder}: export the model with dytrack-export first")
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise BackendError(f"{path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise BackendError(f"{path} is not a JSON object")
        missing = [k for k in ("template_graph", "stage_graphs", "template_size", "search_size", "template_factor",
                               "search_factor") if k not in data]
        if missing:
            raise BackendError(f"{path} lacks {', '.join(missing)}: re-export the model with dytrack-export")
        return cls(folder, data)

    @classmethod
    def load(cls, folder: str, verify_hashes: bool = True, files: Optional[Sequence[str]] = None) -> "Manifest":
        """The file, with its model-defining fields unchanged since export, its editable fields valid, and every
        model file it names (or `files` of them) present and (by default) matching its SHA-256."""
        m = cls.read(folder)
        path = os.path.join(folder, MANIFEST_NAME)
        m.check_editable()
        hashes = m.data.get("sha256")
        if verify_hashes:
            if not isinstance(hashes, dict):
                raise BackendError(f"{path} has no graph hashes (sha256): re-export the model with dytrack-export")
            if m.data.get("model_sha256") != m.model_hash():
                raise BackendError(
                    f"{path}: its model-defining fields (crop sizes and factors, normalisation, stages, graphs, "
                    f"model config) were edited after export, or it was not sealed (model_sha256 missing); only "
                    f"{', '.join(TUNABLE_FIELDS[:2])} may be edited: restore it or re-export the model")
            m.check_normalization()
        for name in (m.sealed_files() if files is None else files):
            file = m.path(name)
            if not os.path.isfile(file):
                raise BackendError(f"model file missing: {file}")
            if verify_hashes and name not in hashes:
                raise BackendError(f"{path} has no hash for {name}: re-export the model with dytrack-export")
            if verify_hashes and sha256_of(file) != hashes[name]:
                raise BackendError(f"model file {file} does not match its manifest hash (corrupt or replaced)")
        return m

    def model_hash(self) -> str:
        """SHA-256 over the model-defining fields (all but TUNABLE_FIELDS), canonical JSON."""
        defining = {k: v for k, v in self.data.items() if k not in TUNABLE_FIELDS}
        return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()

    def seal(self) -> None:
        """Record model_sha256 (the exporter does; a test that edits a model on purpose does it again)."""
        self.data["model_sha256"] = self.model_hash()
        self.save()

    @property
    def normalization(self) -> dict:
        """How the graphs take pixels (what the tracker converts crops to): the model's stem convention."""
        return input_convention(self.data.get("model_config", {}))

    def check_normalization(self) -> None:
        norm = self.data.get("normalization")
        want = self.normalization
        if norm is None or any(norm.get(k) != v for k, v in want.items()):
            raise BackendError(f"{self.folder}: its graphs take pixels as {norm}, this version feeds a "
                               f"{self.data.get('model_config', {}).get('stem')} model {want} (graphs exported by an "
                               f"older version convert inside): re-export the model with dytrack-export")

    def check_editable(self) -> None:
        """The fields a user may edit: exit thresholds (one per stage, 0..1) and known tracker settings in range."""
        th = self.data.get("exit_thresholds", [])
        n = self.num_stages
        if (not isinstance(th, list) or len(th) != n or
                not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0.0 <= t <= 1.0 for t in th)):
            raise BackendError(f"{self.folder}/{MANIFEST_NAME}: exit_thresholds must be {n} numbers in 0..1, "
                               f"found {th!r:.80}")
        tracker = self.data.get("tracker", {})
        if not isinstance(tracker, dict):
            raise BackendError(f"{self.folder}/{MANIFEST_NAME}: tracker must be an object, found {tracker!r:.60}")
        for key, value in tracker.items():
            if key == "size_bounds":    # the box's width and height stay within these multiples of the init box
                if not (isinstance(value, list) and len(value) == 2 and
                        all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and
                        0.0 < value[0] <= 1.0 <= value[1] <= 100.0):
                    raise BackendError(f"{self.folder}/{MANIFEST_NAME}: tracker setting size_bounds={value!r:.40} "
                                       f"must be [low, high] with 0 < low <= 1 <= high <= 100")
                continue
            if key in TRACKER_SETTING_CHOICES:
                if not any(value is c or (isinstance(c, str) and value == c) for c in TRACKER_SETTING_CHOICES[key]):
                    raise BackendError(f"{self.folder}/{MANIFEST_NAME}: tracker setting {key}={value!r:.40} is not "
                                       f"one of {', '.join(map(str, TRACKER_SETTING_CHOICES[key]))}")
                continue
            if key not in TRACKER_SETTING_RANGES:
                continue   # a setting of an older tracker loop: ignored
            lo, hi = TRACKER_SETTING_RANGES[key]
            ok = (key == "lost_patience" and value is None) or (   # None: follow the best candidate always
                isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi)
            if not ok:
                raise BackendError(f"{self.folder}/{MANIFEST_NAME}: tracker setting {key}={value!r:.40} is outside "
                                   f"{lo}..{hi}")

    @classmethod
    def from_model_config(cls, folder: str, model_config: dict) -> "Manifest":
        """What a folder with only a checkpoint implies: its geometry and the uncalibrated thresholds."""
        n = len(model_config["stage_ends"]) + (model_config.get("first_exit", "none") != "none")
        data = {k: model_config[k] for k in ("template_size", "search_size", "template_factor", "search_factor")}
        data.update(num_stages=n, exit_thresholds=default_thresholds(n), model_config=dict(model_config))
        return cls(folder, data)

    def graph_files(self) -> List[str]:
        return [self.data["template_graph"]] + list(self.data["stage_graphs"])

    def sealed_files(self) -> List[str]:
        """Every file load() checks: the graphs and, for a composed model, its deep stage's IoU head."""
        head = (self.deep_stage or {}).get("iou_head")
        return self.graph_files() + ([head] if head else [])

    @property
    def deep_stage(self) -> Optional[dict]:
        """A deeper stage of another network behind the stage graphs' first exit, or None:
        {"kind": "fear_xs", "folder": its files, relative to this folder, "iou_head": a file here (optional)}."""
        deep = self.data.get("deep_stage")
        if deep is None:
            return None
        if not isinstance(deep, dict) or deep.get("kind") not in DEEP_STAGE_KINDS or not isinstance(
                deep.get("folder"), str):
            raise BackendError(f"{self.folder}/{MANIFEST_NAME}: deep_stage must name a kind "
                               f"({', '.join(DEEP_STAGE_KINDS)}) and a folder, found {deep!r:.80}")
        return deep

    def deep_stage_folder(self) -> str:
        return os.path.normpath(os.path.join(self.folder, self.deep_stage["folder"]))

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def num_stages(self) -> int:
        """The tracker's exits: the stage graphs' (or the checkpoint's), plus the deep stage where there is one."""
        return self.num_graph_stages + (self.deep_stage is not None)

    @property
    def num_graph_stages(self) -> int:
        if "stage_graphs" in self.data:
            return len(self.data["stage_graphs"])
        return int(self.data["num_stages"])

    @property
    def exit_thresholds(self) -> List[float]:
        return [float(t) for t in self.data.get("exit_thresholds", default_thresholds(self.num_stages))]

    @property
    def tracker_settings(self) -> dict:
        """Per-model tracker settings tuned on the calibration split (evaluation/tune.py)."""
        return dict(self.data.get("tracker", {}))

    @property
    def output_names(self) -> List[str]:
        """The graphs' own output names, in STAGE_OUTPUTS order."""
        return list(self.data.get("output_names", STAGE_OUTPUTS))

    @property
    def model_config(self) -> dict:
        return self.data["model_config"]

    # ---- writing ------------------------------------------------------------------------------------
    @classmethod
    def write(cls, folder: str, model_config: dict, template_graph: str, stage_graphs: Sequence[str],
              opset: int, thresholds: Optional[Sequence[float]] = None, extra: Optional[dict] = None) -> "Manifest":
        """The exporter's manifest: graphs with their hashes, geometry, normalisation, thresholds."""
        n = len(stage_graphs)
        data = {
            "format": MANIFEST_FORMAT,
            "template_graph": template_graph,
            "stage_graphs": list(stage_graphs),
            "opset": opset,
            "num_stages": n,
            "output_names": list(STAGE_OUTPUTS),
            "stage_inputs": [list(stage_input_names(k)) for k in range(n)],
            "exit_thresholds": [float(t) for t in thresholds] if thresholds else default_thresholds(n),
            **{k: model_config[k] for k in ("template_size", "search_size", "template_factor", "search_factor")},
            "normalization": {**input_convention(model_config), "formula": "(pixel - mean) / scale"},
            "model_config": dict(model_config),
            "sha256": {name: sha256_of(os.path.join(folder, name)) for name in [template_graph, *stage_graphs]},
        }
        if os.path.isfile(os.path.join(folder, CHECKPOINT_NAME)):   # the torch backend's weights are sealed too
            data["sha256"][CHECKPOINT_NAME] = sha256_of(os.path.join(folder, CHECKPOINT_NAME))
        data.update(extra or {})
        m = cls(folder, data)
        m.seal()
        return m

    def update(self, **fields) -> None:
        """Change some editable top-level fields (calibrated thresholds, tracker settings) and save."""
        defining = sorted(set(fields) - set(TUNABLE_FIELDS))
        if defining:
            raise ValueError(f"{', '.join(defining)} define the model: re-export it instead of editing the manifest")
        self.data.update(fields)
        self.save()

    def save(self) -> None:
        path = os.path.join(self.folder, MANIFEST_NAME)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2)
        os.replace(tmp, path)   # a crash never leaves half a manifest
