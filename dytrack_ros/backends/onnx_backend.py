"""ONNX Runtime backend (CPU): one InferenceSession per exported graph."""
from __future__ import annotations

from ..contract import TEMPLATE_INPUT, BackendError, Manifest
from .base import ChainedGraphBackend


class OnnxRuntimeBackend(ChainedGraphBackend):
    name = "onnxruntime"

    def __init__(self, manifest: Manifest, threads: int = 0, providers=None):
        super().__init__(manifest)
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
        try:
            self.template_session, *self.stage_sessions = [
                ort.InferenceSession(manifest.path(f), opts, providers=providers) for f in manifest.graph_files()]
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise BackendError(f"ONNX Runtime could not load the model graphs in {manifest.folder}: {exc}") from exc
        self._outputs = manifest.output_names
        self._inputs = [[i.name for i in s.get_inputs()] for s in self.stage_sessions]

    def _run_template(self, template):
        return self.template_session.run(None, {TEMPLATE_INPUT: template})[0]

    def _run_graph(self, stage, feeds):
        return self.stage_sessions[stage].run(self._outputs, feeds)

    def _graph_inputs(self, stage):
        return self._inputs[stage]
