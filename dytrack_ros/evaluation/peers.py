"""Peer trackers for the same harness: OpenCV's classical trackers (opencv-contrib-python-headless), OpenCV's
learned trackers (`cv2.TrackerNano` on NanoTrack's shipped graphs, `cv2.TrackerVit` with a user-supplied file),
and NanoTrack's own tracker loop (`NanoTrackReference`) on the published NanoTrack v2 / v3 graphs."""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import cv2
import numpy as np


def _factories() -> Dict[str, Callable]:
    legacy = getattr(cv2, "legacy", None)
    f = {
        "CSRT": getattr(cv2, "TrackerCSRT_create", None),
        "KCF": getattr(cv2, "TrackerKCF_create", None),
        "MIL": getattr(cv2, "TrackerMIL_create", None),
        "MOSSE": getattr(legacy, "TrackerMOSSE_create", None) if legacy else None,
        "MedianFlow": getattr(legacy, "TrackerMedianFlow_create", None) if legacy else None,
        "Boosting": getattr(legacy, "TrackerBoosting_create", None) if legacy else None,
        "TLD": getattr(legacy, "TrackerTLD_create", None) if legacy else None,
    }
    return {k: v for k, v in f.items() if v is not None}


CLASSICAL = tuple(_factories())


class OpenCVTracker:
    """Same init/update contract as our tracker: boxes are x, y, w, h floats; update returns None on failure."""

    def __init__(self, name: str, model_path: Optional[str] = None):
        self.name = name
        self._make = self._factory(name, model_path)
        self._tracker = None

    @staticmethod
    def _factory(name, model_path):
        classical = _factories()
        if name in classical:
            return classical[name]
        if name == "NanoTrack":  # cv2.TrackerNano on NanoTrack v2's two ONNX graphs (shipped, or another folder)
            model_path = model_path or os.path.join(THIRD_PARTY, "nanotrack_v2")
            backbone = os.path.join(model_path, "nanotrack_backbone_sim.onnx")
            head = os.path.join(model_path, "nanotrack_head_sim.onnx")
            for f in (backbone, head):
                if not os.path.isfile(f):
                    raise ValueError(f"NanoTrack model file not found: {f}")

            def make():
                p = cv2.TrackerNano_Params()
                p.backbone, p.neckhead = backbone, head
                return cv2.TrackerNano_create(p)
            return make
        if name == "Vit":  # user-supplied ONNX (OpenCV zoo's object_tracking_vittrack)
            if not model_path:
                raise ValueError("the Vit peer needs --peer-model Vit=PATH_TO_ONNX (no package ships it)")
            def make():
                p = cv2.TrackerVit_Params()
                p.net = model_path
                return cv2.TrackerVit_create(p)
            return make
        raise ValueError(f"unknown peer {name!r}; available: {', '.join(classical)} (and Vit with a model file)")

    def initialize(self, frame, box):
        self._tracker = self._make()
        self._tracker.init(frame, tuple(int(round(v)) for v in box))

    def update(self, frame):
        ok, box = self._tracker.update(frame)
        return np.array(box, float) if ok else None


# ---- NanoTrack's own tracker loop, on its published ONNX graphs ------------------------------------------------
THIRD_PARTY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "third_party")
# (folder, backbone graph, head graph, window influence, penalty k, size lr) from SiamTrackers' configv2 / configv3
NANOTRACK_VERSIONS = {
    "v2": ("nanotrack_v2", "nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx", 0.49, 0.15, 0.385),
    "v3": ("nanotrack_v3", "nanotrack_backbone.onnx", "nanotrack_head.onnx", 0.455, 0.138, 0.348),
}


def _session(model, threads: int, quiet: bool = False):
    """A CPU ONNX Runtime session on `threads` threads (model: a path or serialized bytes)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = max(threads, 1), 1
    if quiet:
        opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _session_with_free_input_size(path: str, threads: int):
    """An ONNX Runtime session whose image input takes any size: the published backbones declare 255 x 255,
    and the same graph also embeds the 127 px template."""
    import onnx
    model = onnx.load(path)
    for value in (model.graph.input[0], model.graph.output[0]):
        for dim in value.type.tensor_type.shape.dim[2:]:
            dim.dim_param = f"{value.name}_size"
    # quiet: the graph's inner shapes still say 255 px, and ONNX Runtime would warn at every template
    return _session(model.SerializeToString(), threads, quiet=True)


class NanoTrackReference:
    """NanoTrack's tracker loop as SiamTrackers' `NanoTracker` runs it (BGR 0..255 input, context-padded 127 / 255 px
    crops padded with the first frame's mean colour, a stride-16 point grid, softmax score, scale and aspect
    penalty, cosine window, size learning rate scaled by the penalised score), written here for the published
    ONNX graphs (models/third_party, Apache-2.0). The reference the first exit of our tracker is held to."""

    EXEMPLAR, INSTANCE, STRIDE, CONTEXT = 127, 255, 16, 0.5

    def __init__(self, version: str = "v2", threads: int = 1, folder: Optional[str] = None):
        if version not in NANOTRACK_VERSIONS:
            raise ValueError(f"NanoTrack version must be one of {sorted(NANOTRACK_VERSIONS)}, got {version!r}")
        sub, backbone, head, self.window_influence, self.penalty_k, self.lr = NANOTRACK_VERSIONS[version]
        folder = folder or os.path.join(THIRD_PARTY, sub)
        for f in (backbone, head):
            if not os.path.isfile(os.path.join(folder, f)):
                raise ValueError(f"NanoTrack {version} graph not found: {os.path.join(folder, f)}")
        self.name = self.label(version)
        self.backbone = _session_with_free_input_size(os.path.join(folder, backbone), threads)
        self.head = _session(os.path.join(folder, head), threads)

    @staticmethod
    def label(version: str) -> str:
        return f"NanoTrack {version} reference loop"

    def _features(self, crop: np.ndarray) -> np.ndarray:
        x = crop.transpose(2, 0, 1)[None].astype(np.float32)
        return self.backbone.run(None, {self.backbone.get_inputs()[0].name: x})[0]

    def _context_size(self) -> float:
        pad = self.CONTEXT * (self.size[0] + self.size[1])
        return float(np.sqrt((self.size[0] + pad) * (self.size[1] + pad)))

    def _crop(self, frame: np.ndarray, out: int, side: float) -> np.ndarray:
        """An integer-pixel window of `side` px around the centre (padded with the mean colour), resized to out."""
        side = int(round(side))
        x0 = int(np.floor(self.center[0] - (side + 1) / 2 + 0.5))
        y0 = int(np.floor(self.center[1] - (side + 1) / 2 + 0.5))
        h, w = frame.shape[:2]
        pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
        if pad:
            frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=self.mean.tolist())
        patch = frame[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
        return cv2.resize(patch, (out, out)) if side != out else patch

    def initialize(self, frame, box):
        box = np.asarray(box, float)
        self.center = np.array([box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2])
        self.size = box[2:].copy()
        self.mean = frame.mean(axis=(0, 1))
        self.template = self._features(self._crop(frame, self.EXEMPLAR, round(self._context_size())))
        self.window = None

    def update(self, frame):
        s_z = self._context_size()
        scale = self.EXEMPLAR / s_z
        search = self._features(self._crop(frame, self.INSTANCE, s_z * self.INSTANCE / self.EXEMPLAR))
        cls, loc = self.head.run(None, {self.head.get_inputs()[0].name: self.template,
                                        self.head.get_inputs()[1].name: search})
        g = cls.shape[-1]
        if self.window is None:
            self.window = np.outer(np.hanning(g), np.hanning(g)).ravel()
        logits = cls[0].reshape(2, -1)
        e = np.exp(logits - logits.max(0))
        score = e[1] / e.sum(0)
        grid = (np.arange(g) - g // 2) * self.STRIDE
        px, py = np.meshgrid(grid, grid)
        left, top, right, bottom = loc[0].reshape(4, -1)
        cx, cy = px.ravel() + (right - left) / 2, py.ravel() + (bottom - top) / 2
        w, h = left + right, top + bottom

        def change(r):
            return np.maximum(r, 1.0 / r)

        def context(w_, h_):
            pad = (w_ + h_) * 0.5
            return np.sqrt((w_ + pad) * (h_ + pad))
        s_c = change(context(w, h) / context(*(self.size * scale)))
        r_c = change((self.size[0] / self.size[1]) / (w / h))
        penalty = np.exp(-(r_c * s_c - 1) * self.penalty_k)
        pscore = penalty * score * (1 - self.window_influence) + self.window * self.window_influence
        best = int(np.argmax(pscore))
        lr = penalty[best] * score[best] * self.lr
        fh, fw = frame.shape[:2]
        new_cx = float(np.clip(self.center[0] + cx[best] / scale, 0, fw))
        new_cy = float(np.clip(self.center[1] + cy[best] / scale, 0, fh))
        width = float(np.clip(self.size[0] * (1 - lr) + w[best] / scale * lr, 10, fw))
        height = float(np.clip(self.size[1] * (1 - lr) + h[best] / scale * lr, 10, fh))
        self.center, self.size = np.array([new_cx, new_cy]), np.array([width, height])
        self.score = float(score[best])
        return np.array([new_cx - width / 2, new_cy - height / 2, width, height])
