"""The DyTrack network (plain PyTorch; knows nothing of video or ROS)."""
from .config import ModelConfig, RECYCLING_SCHEMAS
from .dytrack import DyTrack, StageGraph, TemplateGraph, OUTPUT_NAMES, stage_input_names
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["ModelConfig", "RECYCLING_SCHEMAS", "DyTrack", "StageGraph", "TemplateGraph", "OUTPUT_NAMES",
           "stage_input_names", "load_checkpoint", "save_checkpoint"]
