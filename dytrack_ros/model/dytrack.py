"""DyTrack: a one-stream ViT over template + search tokens, cut into stages, with an exit after each stage.

Inference contract (what every backend implements, see dytrack_ros/contract.py):
  template tokens  = embed_template(template crop)                      once per target
  stage 0          : (template tokens, search crop)      -> outputs        every frame
                     (with cfg.first_exit "nanotrack_v2", stage 0 is NanoTrack v2's correlation head on the stem
                      features, the template "tokens" are the raw 8 x 8 stem features, and the transformer stages
                      are stages 1..; see model/nanotrack_head.py)
  stage k > 0      : (carry from stage k-1, its score map) -> outputs      only if stage k-1 did not exit
  outputs          = carry, score map, size map, offset map, box (cx,cy,w,h in crop units), score (predicted IoU
                     of the raw peak's box), iou map (the predicted IoU of every cell's box)

Feature recycling (cfg.recycling) decides what a stage hands on:
  "tokens_and_prediction" (default): the previous stage's output tokens, plus its score map embedded and
                                     added to the search tokens (the prediction is reused, not only features)
  "tokens":                          the previous stage's output tokens only
  "none":                            nothing is reused: stage k runs its own layers on the token embeddings,
                                     not on stage k-1's output (same compute per stage; the ablation baseline)
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn as nn

from .config import ModelConfig
from .heads import PRIOR_CHANNELS, CenterHead, IoUHead, RefineHead, decode_box, iou_map, predicted_iou
from .nanotrack_head import NanoTrackHead
from .nanotrack_stem import NanoTrackStem
from .stem import Lite0Stem
from .vit import Block

from ..contract import STAGE_OUTPUTS


class DyTrackNet(nn.Module):
    def __init__(self, cfg: ModelConfig, load_pretrained: Optional[bool] = None):
        super().__init__()
        self.cfg = cfg
        self.stem = NanoTrackStem() if cfg.stem == "nanotrack_v2" else Lite0Stem(cfg.stem_blocks)
        if cfg.stem_channels != self.stem.out_channels:
            raise ValueError(f"stem_channels={cfg.stem_channels} but the {cfg.stem} stem gives {self.stem.out_channels}")
        if cfg.pretrained_stem if load_pretrained is None else load_pretrained:
            self.stem.load_pretrained()
        if cfg.freeze_stem:
            for p in self.stem.parameters():
                p.requires_grad_(False)
        d = cfg.dim
        self.embed = nn.Linear(cfg.stem_channels, d)
        self.pos_template = nn.Parameter(torch.randn(1, cfg.num_template_tokens, d) * 0.02)
        self.pos_search = nn.Parameter(torch.randn(1, cfg.num_search_tokens, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        k = len(cfg.stage_ends)     # transformer exits; with a first exit they are stages 1..k
        self.first = cfg.first_exit_stages
        self.exit_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(k))
        self.refine = cfg.exit_head == "refine"
        head = RefineHead if self.refine else CenterHead
        self.exit_heads = nn.ModuleList(head(d, cfg.head_channels, cfg.search_grid) for _ in range(k))
        self.iou_heads = nn.ModuleList(IoUHead(d) for _ in range(k))
        # prediction recycling: previous exit's score map -> additive token embedding (zero-init: starts as "tokens")
        self.prediction_embed = nn.ModuleList(nn.Linear(1, d) for _ in range(cfg.num_stages - 1))
        for lin in self.prediction_embed:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        # target-aware self-distillation adaptors (training only; unused at inference)
        self.distill_proj = nn.ModuleList(nn.Linear(d, d) for _ in range(k - 1))
        if self.first:
            # NanoTrack's head is kept as trained (frozen, like the stem); only its IoU score is learned here
            self.nano_head = NanoTrackHead(cfg.stem_channels)
            if cfg.pretrained_stem if load_pretrained is None else load_pretrained:
                self.nano_head.load_pretrained()
            for p in self.nano_head.parameters():
                p.requires_grad_(False)
            self.nano_iou = IoUHead(96, template_dim=cfg.stem_channels)

    def train(self, mode: bool = True) -> "DyTrackNet":
        """Frozen parts keep their BatchNorm statistics in every mode: the stem when cfg.freeze_stem, NanoTrack's
        head always (it is kept as trained)."""
        super().train(mode)
        if self.cfg.freeze_stem:
            self.stem.eval()
        if self.first:
            self.nano_head.eval()
        return self

    # ---- tokenizer --------------------------------------------------------------------------------
    def _tokens(self, image: torch.Tensor) -> torch.Tensor:
        feat = self.stem(image)               # (B, C, g, g); frozen BatchNorm statistics: see train()
        return self.embed(feat.flatten(2).transpose(1, 2))

    def embed_template(self, template: torch.Tensor) -> torch.Tensor:
        if self.first:   # the head needs the raw features; stage 0 embeds them for the transformer stages
            return self.stem(template).flatten(2).transpose(1, 2)
        return self._tokens(template) + self.pos_template

    def embed_search(self, search: torch.Tensor) -> torch.Tensor:
        return self._tokens(search) + self.pos_search

    # ---- one stage ----------------------------------------------------------------------------------
    def _layers(self, stage: int) -> range:
        ends, t = self.cfg.stage_ends, stage - self.first
        return range(0 if t == 0 else ends[t - 1], ends[t])

    def _nanotrack_exit(self, template_feat: torch.Tensor, search: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Stage 0 with a first exit: NanoTrack's head on the stem features; hands on the embedded tokens."""
        b, _, c = template_feat.shape
        g = self.cfg.template_grid
        z = template_feat.transpose(1, 2).reshape(b, c, g, g)
        x = self.stem(search)
        out = self.nano_head(z, x)
        box, idx = decode_box(out["score_map"], out["size_map"], out["offset_map"])
        feats = out.pop("features").flatten(2).transpose(1, 2)           # (B, g*g, 96)
        out["score"] = predicted_iou(self.nano_iou, feats, idx, template_feat.mean(1), out["score_map"], box)
        out["iou_map"] = iou_map(self.nano_iou, feats, template_feat.mean(1), out["score_map"], out["size_map"])
        out["box"] = box
        out["peak_cell"] = idx
        out["carry"] = torch.cat([self.embed(template_feat) + self.pos_template,
                                  self.embed(x.flatten(2).transpose(1, 2)) + self.pos_search], dim=1)
        if self.refine:   # the first exit's maps travel beside the tokens: every later exit corrects its boxes
            prior = torch.cat([out["score_map"], out["size_map"], out["offset_map"]], dim=1).flatten(2).transpose(1, 2)
            prior = torch.cat([prior.new_zeros(b, self.cfg.num_template_tokens, PRIOR_CHANNELS), prior], dim=1)
            out["carry"] = torch.cat([out["carry"], prior], dim=2)
        return out

    def _exit(self, stage: int, tokens: torch.Tensor, prior: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        nt = self.cfg.num_template_tokens
        t = stage - self.first
        x = self.exit_norms[t](tokens)
        search = x[:, nt:]
        if self.refine:
            g = self.cfg.search_grid
            prior_maps = prior[:, nt:].transpose(1, 2).reshape(prior.shape[0], PRIOR_CHANNELS, g, g)
            score_map, size, offset = self.exit_heads[t](search, prior_maps)
        else:
            score_map, size, offset = self.exit_heads[t](search)
        box, idx = decode_box(score_map, size, offset)
        score = predicted_iou(self.iou_heads[t], search, idx, x[:, :nt].mean(1), score_map, box)
        return {"score_map": score_map, "size_map": size, "offset_map": offset, "box": box, "score": score,
                "iou_map": iou_map(self.iou_heads[t], search, x[:, :nt].mean(1), score_map, size),
                "search_features": search, "peak_cell": idx}

    def run_stage(self, stage: int, carry: torch.Tensor, prev_score: Optional[torch.Tensor] = None):
        """carry: stage 0 -> the embedded template+search tokens; stage k>0 -> what stage k-1 handed on (with
        exit_head "refine": the tokens, then the first exit's maps in the last PRIOR_CHANNELS channels)."""
        prior = None
        if self.refine and stage > 0:
            carry, prior = carry[..., :self.cfg.dim], carry[..., self.cfg.dim:]
        x = carry
        if stage > 0 and self.cfg.recycling == "tokens_and_prediction":
            nt = self.cfg.num_template_tokens
            hint = self.prediction_embed[stage - 1](prev_score.detach().flatten(2).transpose(1, 2))
            x = torch.cat([x[:, :nt], x[:, nt:] + hint], dim=1)
        for i in self._layers(stage):
            x = self.blocks[i](x)
        out = self._exit(stage, x, prior)
        out["carry"] = carry if self.cfg.recycling == "none" else x
        if prior is not None:
            out["carry"] = torch.cat([out["carry"], prior], dim=2)
        return out

    # ---- whole network ------------------------------------------------------------------------------
    def forward(self, template: torch.Tensor, search: torch.Tensor, num_stages: Optional[int] = None) -> List[dict]:
        """Runs stages 0..num_stages-1 (all by default) and returns every exit's outputs (used in training)."""
        return self.forward_from(self.first_stage(self.embed_template(template), search), num_stages)

    def first_stage_tokens(self, template_tokens: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """Stage 0's input: the template tokens (computed once per target) beside this frame's search tokens."""
        return torch.cat([template_tokens, self.embed_search(search)], dim=1)

    def first_stage(self, template_tokens: torch.Tensor, search: torch.Tensor) -> dict:
        """Stage 0 from the template graph's output and this frame's search crop."""
        if self.first:
            return self._nanotrack_exit(template_tokens, search)
        return self._student(0, self.run_stage(0, self.first_stage_tokens(template_tokens, search)))

    def _student(self, stage: int, out: dict) -> dict:
        t = stage - self.first
        if self.training and 0 <= t < len(self.cfg.stage_ends) - 1:   # distillation student (inside forward for DDP)
            out["distill_student"] = self.distill_proj[t](out["search_features"])
        return out

    def forward_from(self, first: dict, num_stages: Optional[int] = None) -> List[dict]:
        outs = [first]
        n = num_stages or self.cfg.num_stages
        for k in range(1, n):
            outs.append(self._student(k, self.run_stage(k, outs[-1]["carry"], outs[-1]["score_map"])))
        return outs


class TemplateGraph(nn.Module):
    """Export wrapper: template crop -> template tokens."""

    def __init__(self, model: DyTrackNet):
        super().__init__()
        self.model = model

    def forward(self, template):
        return self.model.embed_template(template)


class StageGraph(nn.Module):
    """One stage with fixed tensor inputs and outputs (STAGE_OUTPUTS order): what export writes to ONNX and what
    the torch backend runs."""

    def __init__(self, model: DyTrackNet, stage: int):
        super().__init__()
        self.model, self.stage = model, stage

    def forward(self, a, b):
        if self.stage == 0:   # a = template tokens, b = search crop
            out = self.model.first_stage(a, b)
        else:                 # a = carry, b = previous score map
            out = self.model.run_stage(self.stage, a, b)
        return tuple(out[n] for n in STAGE_OUTPUTS)

