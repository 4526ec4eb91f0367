"""The DyTrack network (plain PyTorch; knows nothing of video or ROS)."""
from .config import ModelConfig, RECYCLING_SCHEMAS
from .dytrack import DyTrackNet, StageGraph, TemplateGraph
from .checkpoint import load_checkpoint, save_checkpoint, transfer_weights

__all__ = ["ModelConfig", "RECYCLING_SCHEMAS", "DyTrackNet", "StageGraph", "TemplateGraph", "load_checkpoint", "save_checkpoint",
           "transfer_weights"]
