"""ONNX Runtime backend (CPU): one InferenceSession per exported graph."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .base import BackendError, Manifest, StagedBackend, StageResult, result_from_outputs, stage_feeds


class OnnxRuntimeBackend(StagedBackend):
    name = "onnxruntime"

    def __init__(self, manifest: Manifest, threads: int = 0, providers=None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError("onnxruntime is not installed (pip install onnxruntime)") from exc
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        providers = providers or ["CPUExecutionProvider"]
        self.manifest = manifest
        self.num_stages = manifest.num_stages
        try:
            self.template_session = ort.InferenceSession(manifest.path(manifest.data["template_graph"]), opts,
                                                         providers=providers)
            self.stage_sessions = [ort.InferenceSession(manifest.path(f), opts, providers=providers)
                                   for f in manifest.data["stage_graphs"]]
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise BackendError(f"ONNX Runtime could not load the model graphs in {manifest.folder}: {exc}") from exc
        self.output_names = manifest.data["output_names"]
        self._inputs = [[i.name for i in s.get_inputs()] for s in self.stage_sessions]
        self._template = None
        self._carry = None
        self._prev_score = None

    def set_template(self, template: np.ndarray) -> None:
        self._template = self.template_session.run(None, {"template": np.ascontiguousarray(template, np.float32)})[0]

    def run_stage(self, stage: int, search: Optional[np.ndarray] = None) -> StageResult:
        feeds = stage_feeds(stage, search, self._template, self._carry, self._prev_score, self._inputs[stage])
        out = dict(zip(self.output_names, self.stage_sessions[stage].run(self.output_names, feeds)))
        self._carry, self._prev_score = out["carry"], out["score_map"]
        return result_from_outputs(out)
