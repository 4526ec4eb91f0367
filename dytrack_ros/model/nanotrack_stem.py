"""NanoTrack v2's tracking-trained backbone (the first 9 blocks of a MobileNetV3-small, stride 16, 48 channels)
as a convolutional tokenizer.

Why: ImageNet features (the Lite0 stem) separate object classes, not one person from the next; NanoTrack's
backbone was trained for tracking on GOT-10k, LaSOT, VID, YouTube-BB, COCO and DET, so neighbouring tokens
already differ for look-alike targets. Weights: `HonglinChu/SiamTrackers`, `NanoTrack/models/pretrained/
nanotrackv2.pth` (Apache-2.0), its `backbone.*` tensors saved as `models/third_party/nanotrack_v2_backbone.pt`
(see the NOTICE there). The module layout is written from the MobileNetV3 paper's table so that those tensor
names load as they are; `test_model.py` checks it against the published ONNX graph of the same backbone.

Input: raw BGR pixels 0..255 (NanoTrack's convention; no mean/std). The tracker converts its crops to that once
(contract.INPUT_CONVENTIONS, recorded in the manifest); nothing is converted inside.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn

# (kernel, expanded channels, out channels, squeeze-excite, hard-swish, stride): MobileNetV3-small, first 8 blocks
MNV3_SMALL_BLOCKS = [(3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
                     (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
                     (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1)]
WEIGHTS_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "models", "third_party", "nanotrack_v2_backbone.pt")


def _divisible(v: float, divisor: int = 8) -> int:
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, _divisible(channels // 4)), nn.ReLU(),
                                nn.Linear(_divisible(channels // 4), channels), nn.Hardsigmoid())

    def forward(self, x):
        w = self.fc(x.mean((2, 3)))
        return x * w[:, :, None, None]


class InvertedResidual(nn.Module):
    """`conv.N` indices match the checkpoint: with expansion pw(0) bn(1) act(2) dw(3) bn(4) se(5) act(6) pw(7) bn(8);
    without it dw(0) bn(1) act(2) se(3) pw(4) bn(5)."""

    def __init__(self, cin, kernel, mid, cout, se, hswish, stride):
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        dw = [nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), nn.BatchNorm2d(mid)]
        squeeze = SqueezeExcite(mid) if se else nn.Identity()
        project = [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        if cin == mid:
            layers = dw + [act(), squeeze] + project
        else:
            layers = [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), act()] + dw + [squeeze, act()] + project
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class NanoTrackStem(nn.Module):
    out_channels = 48

    def __init__(self):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())]
        cin = 16
        for kernel, mid, cout, se, hs, stride in MNV3_SMALL_BLOCKS:
            layers.append(InvertedResidual(cin, kernel, mid, cout, se, hs, stride))
            cin = cout
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        """x: raw BGR pixels 0..255 (NanoTrack's convention; contract.INPUT_CONVENTIONS)."""
        return self.features(x)

    def load_pretrained(self, path: str = WEIGHTS_FILE) -> str:
        return load_nanotrack_weights(self, path, "backbone")


def load_nanotrack_weights(module: nn.Module, path: str, part: str) -> str:
    """Loads one part of NanoTrack v2's checkpoint (models/third_party) into our module; returns the file used."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NanoTrack v2 {part} weights not found: {path}")
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return path
