#!/usr/bin/env python3
"""Convert FEAR-XS's published CoreML specs into our PyTorch form (dytrack_ros/model/fear_xs.py).

FEAR-XS (Borsuk et al., "FEAR: Fast, Efficient, Accurate and Robust Visual Tracker", ECCV 2022; MIT) is published
as two CoreML NeuralNetwork specs in github PinataFarms/FEARTracker at 0a3bd039918909c79c1b7e55a4bfb7807520abde:
evaluate/FEARDemo/FEARDemo/TrackerInit.mlmodel (template 128x128 -> features 1x256x8x8) and Tracker.mlmodel
(search 256x256 + template features -> bbox 1x4x16x16, cls 1x1x16x16). Its PyTorch checkpoint is not reachable
here, so the weights come from the specs. CoreML prediction does not run on Linux; coremltools reads the specs.

Usage (coremltools is needed only here, not at run time; e.g. in a scratch venv: pip install coremltools numpy torch):
  python scripts/convert_fear_xs.py --init TrackerInit.mlmodel --track Tracker.mlmodel --out models/third_party/fear_xs

Writes OUT/graph.json (each network's layers in order: op, inputs, outputs, attributes; weights by name) and
OUT/weights.pt (a state dict of float16 tensors, as published; layers the two specs share are stored once).
"""
import argparse
import hashlib
import json
import os

import numpy as np


def _array(weight_params, shape):
    """A CoreML WeightParams as a float16 numpy array of `shape` (specs store fp16 bytes or float32 lists)."""
    if weight_params.float16Value:
        a = np.frombuffer(weight_params.float16Value, dtype=np.float16)
    else:
        a = np.asarray(weight_params.floatValue, dtype=np.float32).astype(np.float16)
    return a.reshape(shape)


def convert_spec(spec, prefix):
    """One spec -> (input preprocessing, layer list, {weight name: fp16 array})."""
    nn = spec.neuralNetwork
    pre = nn.preprocessing[0].scaler
    preprocessing = {"bias_rgb": [pre.redBias, pre.greenBias, pre.blueBias], "channel_scale": pre.channelScale}
    layers, weights = [], {}
    for i, layer in enumerate(nn.layers):
        kind = layer.WhichOneof("layer")
        p = getattr(layer, kind)
        op = {"op": kind, "inputs": list(layer.input), "outputs": list(layer.output)}
        name = f"{prefix}{i}"
        if kind == "convolution":
            if p.isDeconvolution or p.WhichOneof("ConvolutionPaddingType") != "valid":
                raise ValueError(f"layer {i}: only plain convolutions with explicit padding are supported")
            amounts = p.valid.paddingAmounts.borderAmounts
            pad = [[b.startEdgeSize, b.endEdgeSize] for b in amounts] or [[0, 0], [0, 0]]
            cin = p.kernelChannels * p.nGroups
            shape = (p.outputChannels, p.kernelChannels, *p.kernelSize)
            op.update(in_channels=cin, out_channels=p.outputChannels, kernel=list(p.kernelSize), stride=list(p.stride),
                      dilation=list(p.dilationFactor), groups=p.nGroups, pad=pad, bias=p.hasBias, weight=name)
            weights[name + ".weight"] = _array(p.weights, shape)
            if p.hasBias:
                weights[name + ".bias"] = _array(p.bias, (p.outputChannels,))
        elif kind == "activation":
            act = p.WhichOneof("NonlinearityType")
            if act != "ReLU":
                raise ValueError(f"layer {i}: activation {act} not supported")
            op["op"] = "relu"
        elif kind == "scale":
            op.update(weight=name)
            weights[name + ".scale"] = _array(p.scale, tuple(p.shapeScale))
            if p.hasBias:
                raise ValueError(f"layer {i}: scale with bias not supported")
        elif kind == "reshapeStatic":
            op["shape"] = list(p.targetShape)
        elif kind == "transpose":
            op["axes"] = list(p.axes)
        elif kind == "unary":
            if p.type != p.EXP or p.scale != 1.0 or p.shift != 0.0:
                raise ValueError(f"layer {i}: only exp is supported")
            op["op"] = "exp"
        elif kind == "batchedMatmul":
            if p.transposeA or p.transposeB or p.hasBias:
                raise ValueError(f"layer {i}: only a plain batched matmul is supported")
            op["op"] = "matmul"
        elif kind in ("add", "concat"):
            if kind == "concat" and p.sequenceConcat:
                raise ValueError(f"layer {i}: sequence concat not supported")
        else:
            raise ValueError(f"layer {i}: CoreML layer {kind} not supported")
        layers.append(op)
    return preprocessing, layers, weights


def dedupe(template, search, weights):
    """Layers of the search network whose weights equal the template network's at the same position name the
    template's weights (the two specs carry the same backbone), so they are stored once."""
    for a, b in zip(template, search):
        if a.get("weight") and b.get("weight") and a["op"] == b["op"]:
            keys = [k for k in weights if k.startswith(b["weight"] + ".")]
            same = all(np.array_equal(weights[k], weights.get(a["weight"] + k[len(b["weight"]):], np.empty(0)))
                       for k in keys)
            if same:
                for k in keys:
                    del weights[k]
                b["weight"] = a["weight"]


def main():
    import coremltools as ct
    import torch
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="TrackerInit.mlmodel")
    ap.add_argument("--track", required=True, help="Tracker.mlmodel")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    pre_t, template, w_t = convert_spec(ct.utils.load_spec(args.init), "t")
    pre_s, search, w_s = convert_spec(ct.utils.load_spec(args.track), "s")
    if pre_t != pre_s:
        raise ValueError(f"the two specs preprocess differently: {pre_t} vs {pre_s}")
    weights = {**w_t, **w_s}
    dedupe(template, search, weights)
    os.makedirs(args.out, exist_ok=True)
    sources = {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (args.init, args.track)}
    graph = {"about": "FEAR-XS (Borsuk et al., ECCV 2022, MIT), converted by scripts/convert_fear_xs.py from the "
                      "CoreML specs of github PinataFarms/FEARTracker at 0a3bd039918909c79c1b7e55a4bfb7807520abde",
             "sources_sha256": sources, "preprocessing": pre_t,
             "inputs": {"template": {"image": [1, 3, 128, 128]},
                        "search": {"image": [1, 3, 256, 256], "template_features": [1, 256, 8, 8]}},
             "outputs": {"template": ["features"], "search": ["bbox", "cls"]},
             "template": template, "search": search}
    with open(os.path.join(args.out, "graph.json"), "w") as f:
        json.dump(graph, f, indent=1)
    torch.save({k: torch.from_numpy(v.copy()) for k, v in sorted(weights.items())}, os.path.join(args.out, "weights.pt"))
    n = sum(v.size for v in weights.values())
    print(f"{len(template)} + {len(search)} layers, {len(weights)} tensors, {n:,} parameters -> {args.out}")


if __name__ == "__main__":
    main()
