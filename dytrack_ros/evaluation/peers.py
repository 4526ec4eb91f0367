"""Peer trackers for the same harness: OpenCV's classical trackers (opencv-contrib-python-headless), plus
OpenCV's learned trackers when the user supplies their model files (no registry package ships them)."""
from __future__ import annotations

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
        if name == "NanoTrack":  # user-supplied folder with NanoTrack v2's two ONNX graphs (SiamTrackers, Apache-2.0)
            import os
            if not model_path:
                raise ValueError("the NanoTrack peer needs --nanotrack DIR (the folder with nanotrack_backbone_sim.onnx "
                                 "and nanotrack_head_sim.onnx from HonglinChu/SiamTrackers NanoTrack/models/nanotrackv2)")
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
