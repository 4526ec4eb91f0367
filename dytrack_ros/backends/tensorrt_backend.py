"""TensorRT backend: one engine per exported graph, built on the target from the ONNX files and cached.

- Engines are cached under ~/.cache/dytrack_ros/tensorrt (override: DYTRACK_TRT_CACHE) by a key made of the
  ONNX file's SHA-256, the TensorRT version, the GPU name and compute capability, and the precision; a changed
  model, TensorRT upgrade or another GPU gives another key, so a stale engine is never loaded.
- FP16 keeps LayerNorm and softmax-reduction layers in FP32 (FP16 LayerNorm overflow is the usual cause of
  accuracy loss after conversion).
- Device buffers are allocated once (torch CUDA tensors) and bound once; stage k+1's carry/prev_score inputs
  are bound to stage k's output buffers, so tokens never leave the GPU. Each stage ends in one stream sync to
  read its small head outputs.
Needs `tensorrt` (JetPack / NVIDIA's wheels) and torch with CUDA for the buffers.
"""
from __future__ import annotations

import hashlib
import os
from typing import Dict, Optional

import numpy as np

from ..contract import (HEAD_OUTPUTS, STAGE_OUTPUTS, TEMPLATE_INPUT, TEMPLATE_OUTPUT,
                        BackendError, Manifest, StagedBackend, StageResult,
                        stage_input_names)

try:  # TensorRT proper, or TensorRT-RTX (same builder API) for the parse/build check only
    import tensorrt as trt
except ImportError:  # pragma: no cover - depends on the machine
    trt = None


def cache_dir() -> str:
    return os.environ.get("DYTRACK_TRT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "dytrack_ros", "tensorrt"))


def engine_key(onnx_sha256: str, trt_version: str, gpu_name: str, capability: str, precision: str) -> str:
    text = "|".join([onnx_sha256, trt_version, gpu_name, capability, precision])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def build_serialized_engine(trt_module, onnx_path: str, fp16: bool = False, workspace_mb: int = 1024):
    """Parse an ONNX graph and build a serialized engine (also used by the CPU-only parse/build check)."""
    logger = trt_module.Logger(trt_module.Logger.WARNING)
    builder = trt_module.Builder(logger)
    flags = 0
    if hasattr(trt_module, "NetworkDefinitionCreationFlag") and \
            hasattr(trt_module.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        flags = 1 << int(trt_module.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt_module.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt_module.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if fp16 and hasattr(trt_module.BuilderFlag, "FP16"):
        config.set_flag(trt_module.BuilderFlag.FP16)
        keep_fp32 = {getattr(trt_module.LayerType, n) for n in ("NORMALIZATION", "REDUCE", "SOFTMAX")
                     if hasattr(trt_module.LayerType, n)}
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.type in keep_fp32:
                layer.precision = trt_module.float32
        if hasattr(trt_module.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS"):
            config.set_flag(trt_module.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine from {onnx_path}")
    return serialized


class TensorRTBackend(StagedBackend):
    name = "tensorrt"

    def __init__(self, manifest: Manifest, fp16: bool = True, device: int = 0):
        if trt is None:
            raise BackendError("TensorRT is not installed (on Jetson it comes with JetPack; elsewhere NVIDIA's "
                               "tensorrt wheels)")
        try:
            import torch
        except ImportError as exc:
            raise BackendError("the TensorRT backend uses torch (CUDA build) for device buffers") from exc
        if not torch.cuda.is_available():
            raise BackendError("the TensorRT backend needs a CUDA GPU (torch.cuda.is_available() is False)")
        self.torch = torch
        self.device = torch.device("cuda", device)
        self.stream = torch.cuda.Stream(self.device)
        self.manifest = manifest
        self.num_stages = manifest.num_graph_stages
        self.input_convention = manifest.normalization
        self.precision = "fp16" if fp16 else "fp32"
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        props = torch.cuda.get_device_properties(self.device)
        self._gpu = (props.name, f"{props.major}.{props.minor}")
        self.engines = [self._load_or_build(n, fp16) for n in manifest.graph_files()]
        self.contexts = [e.create_execution_context() for e in self.engines]
        self.buffers: list = [self._allocate(e) for e in self.engines]
        # the graphs' own output names (STAGE_OUTPUTS order) -> ours
        self._out = dict(zip(STAGE_OUTPUTS, manifest.output_names))
        # chain: template tokens -> stage 0; stage k's carry/score -> stage k+1 (same device memory)
        self._bind(1, stage_input_names(0)[0], self.buffers[0][TEMPLATE_OUTPUT])
        for k in range(1, self.num_stages):
            carry_in, prev_score = stage_input_names(k)
            self._bind(k + 1, carry_in, self.buffers[k][self._out["carry"]])
            self._bind(k + 1, prev_score, self.buffers[k][self._out["score_map"]])
        for i, ctx in enumerate(self.contexts):
            for name, tensor in self.buffers[i].items():
                ctx.set_tensor_address(name, tensor.data_ptr())
        self.name = f"tensorrt-{self.precision}"

    def _load_or_build(self, graph: str, fp16: bool):
        path = self.manifest.path(graph)
        key = engine_key(self.manifest.data["sha256"][graph], trt.__version__, self._gpu[0], self._gpu[1],
                         self.precision)
        os.makedirs(cache_dir(), exist_ok=True)
        cached = os.path.join(cache_dir(), f"{os.path.splitext(graph)[0]}-{key}.engine")
        if os.path.isfile(cached):
            with open(cached, "rb") as f:
                engine = self.runtime.deserialize_cuda_engine(f.read())
            if engine is not None:
                return engine
        serialized = build_serialized_engine(trt, path, fp16=fp16)
        tmp = cached + ".tmp"
        with open(tmp, "wb") as f:
            f.write(serialized)
        os.replace(tmp, cached)
        engine = self.runtime.deserialize_cuda_engine(serialized)
        if engine is None:
            raise BackendError(f"could not deserialize the engine built from {path}")
        return engine

    def _allocate(self, engine) -> Dict[str, "object"]:
        torch = self.torch
        out = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            dtype = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int64: torch.int64,
                     trt.int32: torch.int32}[engine.get_tensor_dtype(name)]
            out[name] = torch.empty(shape, dtype=dtype, device=self.device)
        return out

    def _bind(self, engine_index: int, name: str, tensor) -> None:
        if name in self.buffers[engine_index]:
            self.buffers[engine_index][name] = tensor

    def _execute(self, i: int) -> None:
        if not self.contexts[i].execute_async_v3(self.stream.cuda_stream):
            raise BackendError(f"TensorRT execution of graph {i} failed")

    def set_template(self, template: np.ndarray) -> None:
        with self.torch.cuda.stream(self.stream):
            self.buffers[0][TEMPLATE_INPUT].copy_(self.torch.from_numpy(np.ascontiguousarray(template)), non_blocking=False)
            self._execute(0)
        self.stream.synchronize()

    def run_stage(self, stage: int, search: Optional[np.ndarray] = None) -> StageResult:
        torch = self.torch
        bufs = self.buffers[stage + 1]
        with torch.cuda.stream(self.stream):
            if stage == 0:
                bufs[stage_input_names(0)[1]].copy_(torch.from_numpy(np.ascontiguousarray(search)), non_blocking=False)
            self._execute(stage + 1)
            heads = [bufs[self._out[n]] for n in HEAD_OUTPUTS if n in self._out]   # older graphs: no iou_map
            flat = torch.cat([t.float().flatten() for t in heads]).cpu()  # one sync per stage
        return StageResult.from_flat(flat.numpy(), heads[0].shape[-1])
