"""Export a trained checkpoint to one ONNX graph per stage plus a manifest.

    dytrack-export --checkpoint models/dytrack_small/model.pt --out models/dytrack_small

Writes template.onnx, stage{k}.onnx (opset 18: TensorRT 10 / JetPack 6 parse it) and manifest.json
(stages, default exit thresholds, input sizes, normalisation, SHA-256 of every graph), then checks every
graph against torch on real crops and refuses to write a manifest if they differ by more than --tolerance.
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from typing import List, Optional

import numpy as np
import torch

from ..model import OUTPUT_NAMES, DyTrack, StageGraph, TemplateGraph, load_checkpoint, stage_input_names
from ..tracking.crops import PIXEL_MEAN, PIXEL_SCALE
from .base import MANIFEST_NAME, sha256_of

OPSET = 18
DEFAULT_TOLERANCE = 1e-4


def _export(module, args, path, input_names, output_names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, path, input_names=list(input_names), output_names=list(output_names),
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False)


def example_inputs(model: DyTrack, seed: int = 0):
    """Real crops when the photo set is present, else noise shaped like crops (export needs shapes only)."""
    cfg = model.cfg
    try:
        from ..data.photos import load_photos
        from ..data.synthetic import Scene, SequenceSpec
        from ..tracking.crops import box_center, crop_and_resize, crop_side, to_network_input
        rng = np.random.default_rng(seed)
        scene = Scene(load_photos("heldout"), rng, SequenceSpec(length=10))
        f0, f1 = scene.frame(0), scene.frame(9)
        b0, b1 = scene.boxes[0], scene.boxes[9]
        t = to_network_input(crop_and_resize(f0, box_center(b0), crop_side(b0, cfg.template_factor), cfg.template_size))
        s = to_network_input(crop_and_resize(f1, box_center(b0), crop_side(b0, cfg.search_factor), cfg.search_size))
        return torch.from_numpy(t), torch.from_numpy(s)
    except FileNotFoundError:
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(1, 3, cfg.template_size, cfg.template_size, generator=g),
                torch.randn(1, 3, cfg.search_size, cfg.search_size, generator=g))


def export_model(model: DyTrack, out_dir: str, thresholds: Optional[List[float]] = None,
                 tolerance: float = DEFAULT_TOLERANCE, extra: Optional[dict] = None) -> dict:
    model = model.eval().cpu()
    cfg = model.cfg
    os.makedirs(out_dir, exist_ok=True)
    template, search = example_inputs(model)
    files = {"template_graph": "template.onnx", "stage_graphs": [f"stage{k}.onnx" for k in range(cfg.num_stages)]}
    with torch.no_grad():
        ref_template = model.embed_template(template)
        _export(TemplateGraph(model), (template,), os.path.join(out_dir, files["template_graph"]), ["template"],
                ["template_tokens"])
        refs, stage_inputs = [], []
        a, b = ref_template, search
        for k in range(cfg.num_stages):
            stage_inputs.append((a, b))
            outs = StageGraph(model, k)(a, b)
            refs.append(outs)
            _export(StageGraph(model, k), (a, b), os.path.join(out_dir, files["stage_graphs"][k]),
                    stage_input_names(k), OUTPUT_NAMES)
            a, b = outs[0], outs[1]
    max_diff = check_against_torch(out_dir, files, template, ref_template, stage_inputs, refs)
    if max_diff > tolerance:
        raise RuntimeError(f"exported graphs differ from torch by {max_diff:.2e} > tolerance {tolerance:.0e}")
    thresholds = list(thresholds or [0.6] * (cfg.num_stages - 1) + [0.0])
    manifest = {
        "format": "dytrack-staged-onnx/1",
        **files,
        "opset": OPSET,
        "num_stages": cfg.num_stages,
        "output_names": list(OUTPUT_NAMES),
        "stage_inputs": [list(stage_input_names(k)) for k in range(cfg.num_stages)],
        "exit_thresholds": thresholds,
        "template_size": cfg.template_size,
        "search_size": cfg.search_size,
        "template_factor": cfg.template_factor,
        "search_factor": cfg.search_factor,
        "normalization": {"color": "RGB", "mean": PIXEL_MEAN, "scale": PIXEL_SCALE,
                          "formula": "(pixel - mean) / scale"},
        "model_config": cfg.to_dict(),
        "max_abs_diff_vs_torch": max_diff,
        "sha256": {name: sha256_of(os.path.join(out_dir, name))
                   for name in [files["template_graph"]] + files["stage_graphs"]},
    }
    manifest.update(extra or {})
    with open(os.path.join(out_dir, MANIFEST_NAME), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def check_against_torch(out_dir, files, template, ref_template, stage_inputs, refs) -> float:
    """Largest absolute difference between ONNX Runtime and torch over every output of every graph."""
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(out_dir, files["template_graph"]), providers=["CPUExecutionProvider"])
    diffs = [np.abs(sess.run(None, {"template": template.numpy()})[0] - ref_template.numpy()).max()]
    for k, name in enumerate(files["stage_graphs"]):
        sess = ort.InferenceSession(os.path.join(out_dir, name), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feeds = {n: t.numpy() for n, t in zip(stage_input_names(k), stage_inputs[k]) if n in names}
        outs = sess.run(list(OUTPUT_NAMES), feeds)
        for o, r in zip(outs, refs[k]):
            diffs.append(np.abs(o.astype(np.float64) - r.numpy().astype(np.float64)).max())
    return float(max(diffs))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds", type=float, nargs="*", default=None, help="per-stage exit thresholds")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    args = p.parse_args(argv)
    model, extra = load_checkpoint(args.checkpoint)
    m = export_model(model, args.out, args.thresholds, args.tolerance)
    print(f"exported {m['num_stages']} stages to {args.out} (max |onnx - torch| = {m['max_abs_diff_vs_torch']:.2e})")


if __name__ == "__main__":
    main()
