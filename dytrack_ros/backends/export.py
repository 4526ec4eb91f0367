"""Export a trained checkpoint to one ONNX graph per stage plus a manifest.

    dytrack-export --checkpoint models/dytrack_small/model.pt --out models/dytrack_small

Writes template.onnx, stage{k}.onnx (opset 18: TensorRT 10 / JetPack 6 parse it) and manifest.json
(contract.Manifest.write: stages, default exit thresholds, input sizes, normalisation, SHA-256 of every graph),
then checks every graph against torch and refuses to write a manifest if they differ by more than --tolerance.
The check runs on crops from a given video frame (--frame) or on smooth random images shaped like crops.
"""
from __future__ import annotations

import argparse
import os
import shutil
import warnings
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch

from ..contract import (CHECKPOINT_NAME, STAGE_OUTPUTS, TEMPLATE_INPUT, TEMPLATE_OUTPUT, Manifest, input_convention,
                        stage_input_names, to_network_input)
from ..model import DyTrackNet, StageGraph, TemplateGraph, load_checkpoint

OPSET = 18
DEFAULT_TOLERANCE = 1e-4


def _export(module, args, path, input_names, output_names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, path, input_names=list(input_names), output_names=list(output_names),
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False)


def _to_input(bgr: np.ndarray, size: int, convention: dict) -> torch.Tensor:
    return torch.from_numpy(to_network_input(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA), convention))


def example_inputs(model: DyTrackNet, frame: Optional[np.ndarray] = None, seed: int = 0) -> Tuple[torch.Tensor, ...]:
    """(template, search) crops: the frame's centre (template) and the whole frame (search), or smooth random
    images (low-frequency noise: pixel statistics nearer a photo's than white noise) when no frame is given."""
    cfg = model.cfg
    if frame is None:
        rng = np.random.default_rng(seed)
        frame = cv2.resize(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
    h, w = frame.shape[:2]
    side = min(h, w) // 2
    centre = frame[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
    convention = input_convention(cfg.to_dict())
    return _to_input(centre, cfg.template_size, convention), _to_input(frame, cfg.search_size, convention)


def export_model(model: DyTrackNet, out_dir: str, thresholds: Optional[List[float]] = None,
                 tolerance: float = DEFAULT_TOLERANCE, extra: Optional[dict] = None,
                 frame: Optional[np.ndarray] = None) -> Manifest:
    model = model.eval().cpu()
    cfg = model.cfg
    os.makedirs(out_dir, exist_ok=True)
    template, search = example_inputs(model, frame)
    template_graph, stage_graphs = "template.onnx", [f"stage{k}.onnx" for k in range(cfg.num_stages)]
    with torch.no_grad():
        ref_template = model.embed_template(template)
        _export(TemplateGraph(model), (template,), os.path.join(out_dir, template_graph), [TEMPLATE_INPUT],
                [TEMPLATE_OUTPUT])
        refs, stage_inputs = [], []
        a, b = ref_template, search
        for k in range(cfg.num_stages):
            stage_inputs.append((a, b))
            outs = StageGraph(model, k)(a, b)
            refs.append(outs)
            _export(StageGraph(model, k), (a, b), os.path.join(out_dir, stage_graphs[k]), stage_input_names(k),
                    STAGE_OUTPUTS)
            a, b = outs[0], outs[1]
    max_diff = check_against_torch(out_dir, template_graph, stage_graphs, template, ref_template, stage_inputs, refs)
    if max_diff > tolerance:
        raise RuntimeError(f"exported graphs differ from torch by {max_diff:.2e} > tolerance {tolerance:.0e}")
    return Manifest.write(out_dir, cfg.to_dict(), template_graph, stage_graphs, OPSET, thresholds,
                          extra={"max_abs_diff_vs_torch": max_diff, **(extra or {})})


def check_against_torch(out_dir, template_graph, stage_graphs, template, ref_template, stage_inputs, refs) -> float:
    """Largest absolute difference between ONNX Runtime and torch over every output of every graph."""
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(out_dir, template_graph), providers=["CPUExecutionProvider"])
    diffs = [np.abs(sess.run(None, {TEMPLATE_INPUT: template.numpy()})[0] - ref_template.numpy()).max()]
    for k, name in enumerate(stage_graphs):
        sess = ort.InferenceSession(os.path.join(out_dir, name), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feeds = {n: t.numpy() for n, t in zip(stage_input_names(k), stage_inputs[k]) if n in names}
        outs = sess.run(list(STAGE_OUTPUTS), feeds)
        for o, r in zip(outs, refs[k]):
            diffs.append(np.abs(o.astype(np.float64) - r.numpy().astype(np.float64)).max())
    return float(max(diffs))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds", type=float, nargs="*", default=None, help="per-stage exit thresholds")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    p.add_argument("--frame", default=None, help="an image (BGR file) whose crops the equality check uses")
    p.add_argument("--keep-calibration", action="store_true",
                   help="re-exporting the same model into its folder: keep the manifest's calibrated exit thresholds "
                        "and tuned tracker settings")
    args = p.parse_args(argv)
    model, _ = load_checkpoint(args.checkpoint)
    thresholds, extra = args.thresholds, {}
    if args.keep_calibration:
        old = Manifest.read(args.out).data
        thresholds = thresholds or old.get("exit_thresholds")
        extra = {k: old[k] for k in ("threshold_calibration", "tracker") if k in old}
    # the checkpoint goes beside its graphs first, so that the manifest seals it too (the torch backend loads it)
    target = os.path.join(args.out, CHECKPOINT_NAME)
    os.makedirs(args.out, exist_ok=True)
    if os.path.abspath(args.checkpoint) != os.path.abspath(target):
        shutil.copyfile(args.checkpoint, target)
    frame = None
    if args.frame:
        frame = cv2.imread(args.frame)
        if frame is None:
            p.error(f"cannot read --frame {args.frame}")
    m = export_model(model, args.out, thresholds, args.tolerance, extra=extra, frame=frame)
    print(f"exported {m.num_stages} stages to {args.out} "
          f"(max |onnx - torch| = {m.data['max_abs_diff_vs_torch']:.2e})")


if __name__ == "__main__":
    main()
