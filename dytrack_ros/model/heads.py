"""Exit branch: an OSTrack-style center head (score / size / offset maps) and a learned IoU-score head."""
from __future__ import annotations

import torch
import torch.nn as nn


def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CenterHead(nn.Module):
    """Maps search tokens (B, H*W, D) to a center score map, box size map and sub-cell offset map."""

    def __init__(self, dim: int, channels: int, grid: int):
        super().__init__()
        self.grid = grid
        self.trunk = nn.Sequential(conv_bn_relu(dim, channels), conv_bn_relu(channels, channels))
        self.score = nn.Conv2d(channels, 1, 1)
        self.size = nn.Conv2d(channels, 2, 1)
        self.offset = nn.Conv2d(channels, 2, 1)
        nn.init.constant_(self.score.bias, -2.2)  # focal-loss prior: start near p=0.1

    def forward(self, search_tokens: torch.Tensor):
        b, n, d = search_tokens.shape
        x = search_tokens.transpose(1, 2).reshape(b, d, self.grid, self.grid)
        x = self.trunk(x)
        score = torch.sigmoid(self.score(x))
        size = torch.sigmoid(self.size(x))          # (w, h) as a fraction of the search crop
        offset = torch.sigmoid(self.offset(x))      # (dx, dy) inside the cell, 0..1
        return score, size, offset


PRIOR_CHANNELS = 5   # the first exit's score, size (w, h) and offset (dx, dy) at every cell


class RefineHead(nn.Module):
    """Corrects the first exit's box at every cell from the search tokens: size x exp(tanh(ds)), offset + tanh(do)
    (at most x2.7 and one cell). The last layer starts at zero, so an untrained head gives the first exit's boxes.
    No BatchNorm: the head is trained on a frozen network kept in eval mode."""

    def __init__(self, dim: int, channels: int, grid: int):
        super().__init__()
        self.grid = grid
        self.trunk = nn.Sequential(nn.Conv2d(dim + PRIOR_CHANNELS, channels, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.delta = nn.Conv2d(channels, 4, 1)
        nn.init.zeros_(self.delta.weight)
        nn.init.zeros_(self.delta.bias)

    def forward(self, search_tokens: torch.Tensor, prior: torch.Tensor):
        """prior: (B, 5, g, g) the first exit's score, size and offset maps. Returns score (the prior's), size, offset."""
        b, n, d = search_tokens.shape
        x = search_tokens.transpose(1, 2).reshape(b, d, self.grid, self.grid)
        delta = torch.tanh(self.delta(self.trunk(torch.cat([x, prior], dim=1))))
        return prior[:, :1], prior[:, 1:3] * torch.exp(delta[:, :2]), prior[:, 3:5] + delta[:, 2:]


def decode_box(score: torch.Tensor, size: torch.Tensor, offset: torch.Tensor):
    """Box at the score map's peak, as (cx, cy, w, h) normalised to the search crop. Returns (box, peak index)."""
    b, _, g, _ = score.shape
    idx = score.flatten(1).argmax(dim=1)                     # (B,)
    gy = torch.div(idx, g, rounding_mode="floor")
    gx = idx - gy * g
    gather = idx.view(b, 1, 1).expand(b, 2, 1)
    sz = size.flatten(2).gather(2, gather).squeeze(2)        # (B, 2)
    off = offset.flatten(2).gather(2, gather).squeeze(2)
    cx = (gx.to(score.dtype) + off[:, 0]) / g
    cy = (gy.to(score.dtype) + off[:, 1]) / g
    return torch.stack([cx, cy, sz[:, 0], sz[:, 1]], dim=1), idx


class IoUHead(nn.Module):
    """Predicts the IoU of this exit's own box from the token at the peak, the template summary and the peak score.

    Inputs are detached during training so the score learns to judge the box without bending the features.
    """

    def __init__(self, dim: int, hidden: int = 64, template_dim: int = 0):
        super().__init__()
        inputs = dim + (template_dim or dim) + 3
        self.mlp = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, peak_token, template_summary, peak_score, box_size):
        x = torch.cat([peak_token, template_summary, peak_score[:, None], box_size], dim=1)
        return torch.sigmoid(self.mlp(x)).squeeze(1)


def predicted_iou(iou_head: IoUHead, tokens: torch.Tensor, peak_idx: torch.Tensor, template_summary: torch.Tensor,
                  score_map: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """An exit's score: the IoU its IoU head predicts for its own box, from the token at the peak (inputs detached:
    the score learns to judge the box without bending the features)."""
    peak_token = tokens.gather(1, peak_idx.view(-1, 1, 1).expand(-1, 1, tokens.shape[2])).squeeze(1)
    peak = score_map.flatten(1).max(dim=1).values
    return iou_head(peak_token.detach(), template_summary.detach(), peak.detach(), box[:, 2:].detach())


def iou_map(iou_head: IoUHead, tokens: torch.Tensor, template_summary: torch.Tensor, score_map: torch.Tensor,
            size_map: torch.Tensor) -> torch.Tensor:
    """The same IoU head applied at every cell: (B, 1, g, g), the predicted IoU of each cell's box. At the raw peak
    it equals `predicted_iou`; the tracker reads it at the cell it publishes (after its motion and shape priors)."""
    b, n, _ = tokens.shape
    g = score_map.shape[-1]
    cells = torch.cat([tokens, template_summary[:, None].expand(b, n, template_summary.shape[1]),
                       score_map.flatten(2).transpose(1, 2), size_map.flatten(2).transpose(1, 2)], dim=2)
    return torch.sigmoid(iou_head.mlp(cells.detach())).reshape(b, 1, g, g)
