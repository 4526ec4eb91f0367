"""PyTorch backend: CPU or CUDA. It runs the same stage modules that export writes to ONNX (model.StageGraph).
On CUDA the carry stays on the GPU between stages and each stage can be captured once as a CUDA graph (static
input/output buffers, replayed every frame). On CUDA the arithmetic is IEEE FP32 unless tf32=True: torch lets cuDNN
convolutions run in TF32 by default, which moved our head outputs by up to 3e-3 on an H200 (benchmarks/GPU.md)."""
from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import torch

from ..contract import HEAD_OUTPUTS, STAGE_OUTPUTS, BackendError, StagedBackend, StageResult, input_convention
from ..model import DyTrackNet, StageGraph


class TorchBackend(StagedBackend):
    name = "torch"

    def __init__(self, model: DyTrackNet, device: str = "cpu", cuda_graphs: bool = True, threads: int = 0,
                 tf32: bool = False):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch backend asked for CUDA but torch.cuda.is_available() is False")
        if threads and self.device.type == "cpu":
            torch.set_num_threads(threads)
        self.model = model.to(self.device).eval()
        self.stages = [StageGraph(self.model, k) for k in range(model.cfg.num_stages)]
        self.num_stages = model.cfg.num_stages
        self.input_convention = input_convention(model.cfg.to_dict())   # the code's own: model.pt has no graphs
        self.use_graphs = cuda_graphs and self.device.type == "cuda"
        self._template = None
        self._carry = None
        self._prev_score = None
        self._graphs = {}
        self.tf32 = tf32 and self.device.type == "cuda"
        self.name = f"torch-{self.device.type}" + ("-graphs" if self.use_graphs else "") + ("-tf32" if self.tf32 else "")

    @contextlib.contextmanager
    def _precision(self):
        """Convolutions and matmuls in TF32 or IEEE FP32 for this backend's calls only (torch's flags are global;
        a graph keeps the kernels chosen while it was captured). The CPU path leaves them alone."""
        if self.device.type != "cuda":
            yield
            return
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self.tf32
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved

    @torch.inference_mode()
    def set_template(self, template: np.ndarray) -> None:
        t = torch.from_numpy(np.ascontiguousarray(template)).to(self.device)
        with self._precision():
            tokens = self.model.embed_template(t)
        if self._template is None or not self.use_graphs:
            self._template = tokens
        else:
            self._template.copy_(tokens)  # graphs read this buffer: update in place

    def _eager(self, stage, a, b):
        with self._precision():
            return dict(zip(STAGE_OUTPUTS, self.stages[stage](a, b)))

    def _graph_stage(self, stage, a, b):
        if stage not in self._graphs:
            static_a, static_b = a.clone(), b.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm up outside the graph (allocator, cuDNN choices)
                    self._eager(stage, static_a, static_b)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self._eager(stage, static_a, static_b)
            self._graphs[stage] = (graph, static_a, static_b, out)
        graph, static_a, static_b, out = self._graphs[stage]
        if static_a.data_ptr() != a.data_ptr():
            static_a.copy_(a)
        static_b.copy_(b)
        graph.replay()
        return out

    @torch.inference_mode()
    def run_stage(self, stage: int, search: Optional[np.ndarray] = None) -> StageResult:
        if stage == 0:
            if search is None or self._template is None:
                raise ValueError("stage 0 needs a search crop and a template (set_template first)")
            a = self._template
            b = torch.from_numpy(np.ascontiguousarray(search)).to(self.device, non_blocking=True)
        else:
            a, b = self._carry, self._prev_score
        out = self._graph_stage(stage, a, b) if self.use_graphs else self._eager(stage, a, b)
        self._carry, self._prev_score = out["carry"], out["score_map"]
        # one host transfer per stage: the small head outputs, never the tokens
        flat = torch.cat([out[n].flatten() for n in HEAD_OUTPUTS]).float().cpu().numpy()
        return StageResult.from_flat(flat, self.model.cfg.search_grid)
