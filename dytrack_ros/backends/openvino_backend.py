"""OpenVINO backend (CPU), reading the same per-stage ONNX graphs. Optional: `pip install openvino`."""
from __future__ import annotations

from ..contract import TEMPLATE_INPUT, BackendError, Manifest
from .base import ChainedGraphBackend


class OpenVINOBackend(ChainedGraphBackend):
    name = "openvino"

    def __init__(self, manifest: Manifest, threads: int = 0):
        super().__init__(manifest)
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendError("openvino is not installed (pip install openvino)") from exc
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        config["PERFORMANCE_HINT"] = "LATENCY"
        config["INFERENCE_PRECISION_HINT"] = "f32"  # its default on CPUs with bf16 units costs ~1e-2 accuracy
        try:
            self.template_model, *self.stage_models = [
                core.compile_model(core.read_model(manifest.path(f)), "CPU", config) for f in manifest.graph_files()]
        except Exception as exc:
            raise BackendError(f"OpenVINO could not load the model graphs in {manifest.folder}: {exc}") from exc
        self.requests = [m.create_infer_request() for m in self.stage_models]
        self._inputs = [[i.get_any_name() for i in m.inputs] for m in self.stage_models]
        self._outputs = manifest.output_names

    # copies: OpenVINO reuses a request's output buffers on its next call
    def _run_template(self, template):
        return self.template_model({TEMPLATE_INPUT: template})[0].copy()

    def _run_graph(self, stage, feeds):
        res = self.requests[stage].infer(feeds)
        by_name = {k.get_any_name(): v for k, v in res.items()}
        return [by_name[n].copy() for n in self._outputs]

    def _graph_inputs(self, stage):
        return self._inputs[stage]
