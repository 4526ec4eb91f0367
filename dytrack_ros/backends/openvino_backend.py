"""OpenVINO backend (CPU), reading the same per-stage ONNX graphs. Optional: `pip install openvino`."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .base import BackendError, Manifest, StagedBackend, StageResult, result_from_outputs, stage_feeds


class OpenVINOBackend(StagedBackend):
    name = "openvino"

    def __init__(self, manifest: Manifest, threads: int = 0):
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendError("openvino is not installed (pip install openvino)") from exc
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        config["PERFORMANCE_HINT"] = "LATENCY"
        config["INFERENCE_PRECISION_HINT"] = "f32"  # its default on CPUs with bf16 units costs ~1e-2 accuracy
        try:
            compile_ = lambda f: core.compile_model(core.read_model(manifest.path(f)), "CPU", config)
            self.template_model = compile_(manifest.data["template_graph"])
            self.stage_models = [compile_(f) for f in manifest.data["stage_graphs"]]
        except Exception as exc:
            raise BackendError(f"OpenVINO could not load the model graphs in {manifest.folder}: {exc}") from exc
        self.manifest = manifest
        self.requests = [m.create_infer_request() for m in self.stage_models]
        self._inputs = [[i.get_any_name() for i in m.inputs] for m in self.stage_models]
        self.num_stages = manifest.num_stages
        self._template = self._carry = self._prev_score = None

    def set_template(self, template: np.ndarray) -> None:
        self._template = self.template_model({"template": np.ascontiguousarray(template, np.float32)})[0].copy()

    def run_stage(self, stage: int, search: Optional[np.ndarray] = None) -> StageResult:
        feeds = stage_feeds(stage, search, self._template, self._carry, self._prev_score, self._inputs[stage])
        res = self.requests[stage].infer(feeds)
        out = {k.get_any_name(): v for k, v in res.items()}
        self._carry, self._prev_score = out["carry"].copy(), out["score_map"].copy()
        return result_from_outputs(out)
