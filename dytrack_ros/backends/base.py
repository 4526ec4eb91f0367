"""What the ONNX Runtime and OpenVINO backends share: chaining the exported graphs on the host.

The staged interface, stage result, output layout and manifest are the contract (dytrack_ros/contract.py).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Dict, List, Optional

import numpy as np

from ..contract import STAGE_OUTPUTS, Manifest, StagedBackend, StageResult, stage_input_names


class ChainedGraphBackend(StagedBackend):
    """Runs template.onnx once per target, then stage graphs in order, feeding each the carry and score map
    the previous one returned (host memory). Subclasses load the graphs and run one with named inputs."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.num_stages = manifest.num_graph_stages
        self.input_convention = manifest.normalization
        self._template = self._carry = self._prev_score = None

    @abstractmethod
    def _run_template(self, template: np.ndarray) -> np.ndarray:
        """template crop -> template tokens (an array the caller may keep)"""

    @abstractmethod
    def _run_graph(self, stage: int, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """one stage graph; outputs in the manifest's output order (STAGE_OUTPUTS), arrays the caller may keep"""

    @abstractmethod
    def _graph_inputs(self, stage: int) -> List[str]:
        """the inputs the graph declares (a recycling schema that ignores one exports a graph without it)"""

    def set_template(self, template: np.ndarray) -> None:
        self._template = self._run_template(np.ascontiguousarray(template, np.float32))

    def run_stage(self, stage: int, search: Optional[np.ndarray] = None) -> StageResult:
        if stage == 0:
            if search is None or self._template is None:
                raise ValueError("stage 0 needs a search crop and a template (set_template first)")
            values = (self._template, np.ascontiguousarray(search, np.float32))
        else:
            values = (self._carry, self._prev_score)
        accepted = self._graph_inputs(stage)
        feeds = {n: v for n, v in zip(stage_input_names(stage), values) if n in accepted}
        out = dict(zip(STAGE_OUTPUTS, self._run_graph(stage, feeds)))
        self._carry, self._prev_score = out["carry"], out["score_map"]
        return StageResult.from_outputs(out)

