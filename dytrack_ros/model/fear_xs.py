"""FEAR-XS, a Siamese tracker trained at scale, as a PyTorch module of ours: the deeper stage behind NanoTrack's exit.

Why: the transformer stages trained here on 39 sequences learned those targets, not tracking; FEAR-XS (Borsuk et al.,
"FEAR: Fast, Efficient, Accurate and Robust Visual Tracker", ECCV 2022; MIT) was trained by its authors on LaSOT,
COCO, YouTube-BoundingBoxes, GOT-10k and ILSVRC, and its errors differ from NanoTrack's (it sizes rigid targets
better; it is weaker on small targets and occlusion).

Weights: read from the authors' CoreML specs by `scripts/convert_fear_xs.py` into `models/third_party/fear_xs/`
(`graph.json`: each layer in order; `weights.pt`: float16 tensors as published; NOTICE there). The specs are a
plain graph of convolutions (batch norm folded), ReLUs, a pixel-wise correlation (matmul) and an exp, so this module
builds one `nn.Conv2d` per convolution and runs the layers in the spec's order; `test_fear_xs.py` checks it against
an independent numpy evaluation of the spec.

Input: RGB, raw 0..255 (the ImageNet mean and std are applied inside, as in the spec: feeding 0..1 ruins it).
Template 128x128 -> features (1, 256, 8, 8); search 256x256 + features -> bbox (1, 4, 16, 16): distances left, top,
right, bottom from cell (i, j)'s point (STRIDE j, STRIDE i) in search-crop pixels (FEAR's box coder: (j - 8) 16 + 128);
cls (1, 1, 16, 16) logits.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F

FEAR_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "models", "third_party", "fear_xs")
TEMPLATE_SIZE, SEARCH_SIZE, GRID, STRIDE = 128, 256, 16, 16


class SpecGraph(nn.Module):
    """One network of the spec: its layers run in order over named values (convolutions are nn.Conv2d)."""

    def __init__(self, layers: List[dict]):
        super().__init__()
        self.layers = layers
        self.convs = nn.ModuleDict()
        self.scales = nn.ParameterDict()
        for op in layers:
            key = op.get("weight")
            if op["op"] == "convolution" and key not in self.convs:
                (top, bottom), (left, right) = op["pad"]
                if top != bottom or left != right:
                    raise ValueError(f"asymmetric padding {op['pad']} not supported")
                self.convs[key] = nn.Conv2d(op["in_channels"], op["out_channels"], op["kernel"], op["stride"],
                                            (top, left), op["dilation"], op["groups"], bias=op["bias"])
            elif op["op"] == "scale" and key not in self.scales:
                self.scales[key] = nn.Parameter(torch.ones(3, 1, 1), requires_grad=False)

    def forward(self, values: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        v = dict(values)
        for op in self.layers:
            x = [v[name] for name in op["inputs"]]
            kind = op["op"]
            if kind == "convolution":
                y = self.convs[op["weight"]](x[0])
            elif kind == "relu":
                y = torch.relu(x[0])
            elif kind == "add":
                y = x[0] + x[1]
            elif kind == "scale":
                y = x[0] * self.scales[op["weight"]]
            elif kind == "concat":
                y = torch.cat(x, dim=1)
            elif kind == "reshapeStatic":
                y = x[0].reshape(x[0].shape[0], *[int(s) for s in op["shape"][1:]])   # the spec fixes batch 1
            elif kind == "transpose":
                y = x[0].permute(*[int(a) for a in op["axes"]])
            elif kind == "matmul":
                y = torch.matmul(x[0], x[1])
            elif kind == "exp":
                y = torch.exp(x[0])
            else:
                raise ValueError(f"unknown op {kind}")
            v[op["outputs"][0]] = y
        return v


class FearXS(nn.Module):
    """template(image) -> features; track(image, features) -> (bbox l/t/r/b distances, cls logits)."""

    def __init__(self, graph: dict):
        super().__init__()
        self.about = graph.get("about", "")
        bias = graph["preprocessing"]["bias_rgb"]
        # the spec's image preprocessing (pixel + bias, per RGB channel), done once here for both networks
        self.register_buffer("pixel_bias", torch.tensor(bias, dtype=torch.float32).view(1, 3, 1, 1))
        self.template_net = SpecGraph(graph["template"])
        self.search_net = SpecGraph(graph["search"])
        # the search network's backbone reuses the template network's weights (stored once)
        for key in list(self.search_net.convs):
            if key in self.template_net.convs:
                self.search_net.convs[key] = self.template_net.convs[key]
        for key in list(self.search_net.scales):
            if key in self.template_net.scales:
                self.search_net.scales[key] = self.template_net.scales[key]

    def template(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, 128, 128) RGB 0..255 -> (B, 256, 8, 8)."""
        return self.template_net({"image": image + self.pixel_bias})["features"]

    def track(self, image: torch.Tensor, features: torch.Tensor):
        """(B, 3, 256, 256) RGB 0..255 + template features -> bbox (B, 4, 16, 16) and cls logits (B, 1, 16, 16)."""
        v = self.search_net({"image": image + self.pixel_bias, "template_features": features})
        return v["bbox"], v["cls"]


def load_fear_xs(folder: str = FEAR_DIR) -> FearXS:
    """The converted network from `graph.json` + `weights.pt` (float16 as published, run in float32)."""
    graph_path, weights_path = os.path.join(folder, "graph.json"), os.path.join(folder, "weights.pt")
    for path in (graph_path, weights_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"FEAR-XS file missing: {path} (scripts/convert_fear_xs.py writes it)")
    with open(graph_path) as f:
        graph = json.load(f)
    weights = torch.load(weights_path, map_location="cpu", weights_only=True)
    net = FearXS(graph)
    state = {}
    for net_name, sub in (("template_net", net.template_net), ("search_net", net.search_net)):
        for key in sub.convs:
            state[f"{net_name}.convs.{key}.weight"] = weights[f"{key}.weight"].float()
            if f"{key}.bias" in weights:
                state[f"{net_name}.convs.{key}.bias"] = weights[f"{key}.bias"].float()
        for key in sub.scales:
            state[f"{net_name}.scales.{key}"] = weights[f"{key}.scale"].float().view(3, 1, 1)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if [m for m in missing if m != "pixel_bias"] or unexpected:
        raise ValueError(f"{weights_path} does not fit graph.json: missing {missing}, unexpected {unexpected}")
    return net.eval()


class FearTemplateGraph(nn.Module):
    """The template network alone (what export writes as fear_template.onnx)."""

    def __init__(self, net: FearXS):
        super().__init__()
        self.net = net

    def forward(self, image):
        return self.net.template(image)


class FearSearchGraph(nn.Module):
    """The search network alone (fear_search.onnx): image + template features -> bbox, cls."""

    def __init__(self, net: FearXS):
        super().__init__()
        self.net = net

    def forward(self, image, template_features):
        return self.net.track(image, template_features)
