"""NanoTrack v2's tracking-trained box head (pixel-wise correlation + two depthwise towers) as DyTrack's first exit.

Why: the transformer stages trained on our few hundred real clips do not match a matcher trained on millions of
pairs (GOT-10k, LaSOT, VID, YouTube-BB, COCO, DET). With this exit the cheapest stage is that matcher, run on the
stem features the transformer stages use anyway, and the transformer stages refine it on the frames where its
predicted IoU is low (its score map is handed on by prediction recycling).

Weights: the `ban_head.*` tensors of `HonglinChu/SiamTrackers` `NanoTrack/models/pretrained/nanotrackv2.pth`
(Apache-2.0), saved as `models/third_party/nanotrack_v2_head.pt` (NOTICE there). The module is ours, laid out so
that those tensor names load; `test_model.py` checks it against the repository's published head graph.

Geometry: an 8 x 8 template feature map (128 px template crop) correlated with a 16 x 16 search map (256 px) gives a
16 x 16 response. Cell (i, j) is anchored at search pixel (16 j, 16 i); the box regression there is the distance
(left, top, right, bottom) from that anchor to the box sides, in search-crop pixels.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from .nanotrack_stem import load_nanotrack_weights

WEIGHTS_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "models", "third_party", "nanotrack_v2_head.pt")
TEMPLATE_GRID, SEARCH_GRID, STRIDE = 8, 16, 16


class ChannelAttention(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * w


class PixelwiseCorrelation(nn.Module):
    """Every template position is one output channel: its feature's dot product with every search position."""

    def __init__(self, channels: int, template_positions: int):
        super().__init__()
        self.conv_kernel = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.conv_search = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.CA_layer = ChannelAttention(template_positions)

    def forward(self, template_feat, search_feat):
        z = self.conv_kernel(template_feat).flatten(2)            # (B, C, Hz*Wz)
        x = self.conv_search(search_feat)
        b, c, h, w = x.shape
        corr = torch.matmul(z.transpose(1, 2), x.flatten(2))     # (B, Hz*Wz, Hx*Wx)
        return self.CA_layer(corr.view(b, -1, h, w))


def depthwise_tower(cin: int, width: int = 96, layers: int = 6) -> nn.Sequential:
    """Indices match the checkpoint: per layer dw 3x3 (4i), pw 1x1 (4i+1), BatchNorm (4i+2), ReLU6 (4i+3)."""
    mods = []
    for i in range(layers):
        c = cin if i == 0 else width
        mods += [nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, width, 1, bias=False),
                 nn.BatchNorm2d(width), nn.ReLU6()]
    return nn.Sequential(*mods)


class NanoTrackHead(nn.Module):
    """(template features (B,48,8,8), search features (B,48,16,16)) -> dict with the exit outputs DyTrack's other
    exits give: score_map (B,1,g,g) foreground probability, size_map (B,2,g,g) box (w,h) as a fraction of the crop,
    offset_map (B,2,g,g) box center inside its cell, plus the raw towers' features for the IoU head."""

    def __init__(self, channels: int = 48):
        super().__init__()
        positions = TEMPLATE_GRID * TEMPLATE_GRID
        self.corr_pw_cls = PixelwiseCorrelation(channels, positions)
        self.corr_pw_reg = PixelwiseCorrelation(channels, positions)
        self.cls_pw_tower = depthwise_tower(positions)
        self.bbox_pw_tower = depthwise_tower(positions)
        self.cls_pred = nn.Sequential(nn.Conv2d(96, 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(96, 4, 1))

    def raw(self, template_feat, search_feat):
        """NanoTrack's own outputs: class logits (B,2,g,g) and side distances (B,4,g,g) in crop pixels."""
        cls_feat = self.cls_pw_tower(self.corr_pw_cls(template_feat, search_feat))
        reg = torch.exp(self.bbox_pred(self.bbox_pw_tower(self.corr_pw_reg(template_feat, search_feat))))
        return self.cls_pred(cls_feat), reg, cls_feat

    def forward(self, template_feat, search_feat):
        logits, ltrb, cls_feat = self.raw(template_feat, search_feat)
        g = logits.shape[-1]
        crop = float(g * STRIDE)
        score = torch.softmax(logits, dim=1)[:, 1:2]
        left, top, right, bottom = ltrb.unbind(1)
        size = torch.stack([left + right, top + bottom], 1) / crop
        offset = torch.stack([right - left, bottom - top], 1) / (2.0 * STRIDE)   # anchor sits at the cell's corner
        return {"score_map": score, "size_map": size, "offset_map": offset, "features": cls_feat}

    def load_pretrained(self, path: str = WEIGHTS_FILE) -> str:
        return load_nanotrack_weights(self, path, "head")
