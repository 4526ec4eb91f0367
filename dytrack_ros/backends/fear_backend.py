"""FEAR-XS (the deeper stage) behind contract.DeepStageBackend: ONNX Runtime, OpenVINO or torch.

    backend = create_fear_backend("onnxruntime", "models/third_party/fear_xs")

The folder holds graph.json + weights.pt (torch) and fear_template.onnx + fear_search.onnx (written by
`export_fear_xs`, checked against torch), and fear_xs.json with their SHA-256 (a replaced or damaged file is refused).
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np

from ..contract import BackendError, DeepStageBackend, sha256_of

TEMPLATE_GRAPH, SEARCH_GRAPH, FEAR_MANIFEST = "fear_template.onnx", "fear_search.onnx", "fear_xs.json"
DEFAULT_FEAR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "third_party",
                                "fear_xs")


def _checked(folder: str, names) -> dict:
    path = os.path.join(folder, FEAR_MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
        hashes = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"FEAR-XS manifest {path} is missing or unreadable ({exc}): run dytrack-export-fear") from exc
    for name in names:
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            raise BackendError(f"FEAR-XS file missing: {file}")
        if sha256_of(file) != hashes.get(name):
            raise BackendError(f"FEAR-XS file {file} does not match its hash in {FEAR_MANIFEST} (corrupt or replaced)")
    return manifest


class OnnxFearBackend(DeepStageBackend):
    name = "onnxruntime"

    def __init__(self, folder: str, threads: int = 0):
        import onnxruntime as ort
        _checked(folder, (TEMPLATE_GRAPH, SEARCH_GRAPH))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = max(threads, 0), 1
        make = lambda n: ort.InferenceSession(os.path.join(folder, n), opts, providers=["CPUExecutionProvider"])
        self.template_session, self.search_session = make(TEMPLATE_GRAPH), make(SEARCH_GRAPH)
        self.features = None

    def set_template(self, template):
        self.features = self.template_session.run(None, {"image": template})[0]

    def run(self, search):
        bbox, cls = self.search_session.run(None, {"image": search, "template_features": self.features})
        return bbox[0], cls[0, 0]


class OpenVINOFearBackend(DeepStageBackend):
    name = "openvino"

    def __init__(self, folder: str, threads: int = 0):
        import openvino as ov
        _checked(folder, (TEMPLATE_GRAPH, SEARCH_GRAPH))
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads} if threads > 0 else {}
        self.template_net = core.compile_model(os.path.join(folder, TEMPLATE_GRAPH), "CPU", config)
        self.search_net = core.compile_model(os.path.join(folder, SEARCH_GRAPH), "CPU", config)
        self.features = None

    def set_template(self, template):
        self.features = np.asarray(self.template_net([template])[0])

    def run(self, search):
        out = self.search_net({"image": search, "template_features": self.features})
        bbox, cls = (np.asarray(out[self.search_net.output(k)]) for k in ("bbox", "cls"))
        return bbox[0], cls[0, 0]


class TorchFearBackend(DeepStageBackend):
    name = "torch"

    def __init__(self, folder: str, device: str = "cpu", threads: int = 0):
        import torch
        from ..model.fear_xs import load_fear_xs
        _checked(folder, ("graph.json", "weights.pt"))
        if threads > 0:
            torch.set_num_threads(threads)
        self.torch, self.device = torch, device
        try:
            self.net = load_fear_xs(folder).to(device)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise BackendError(f"FEAR-XS weights in {folder} do not load: {exc}") from exc
        self.features = None

    def set_template(self, template):
        with self.torch.no_grad():
            self.features = self.net.template(self.torch.from_numpy(template).to(self.device))

    def run(self, search):
        with self.torch.no_grad():
            bbox, cls = self.net.track(self.torch.from_numpy(search).to(self.device), self.features)
        return bbox[0].float().cpu().numpy(), cls[0, 0].float().cpu().numpy()


def create_fear_backend(kind: str, folder: str = DEFAULT_FEAR_DIR, threads: int = 0,
                        device: str = "cpu") -> DeepStageBackend:
    """kind: the staged backend's name; TensorRT and auto fall back to what runs here (FEAR's graphs are plain
    opset-18 ONNX, but no engine cache is built for them yet)."""
    if not os.path.isdir(folder):
        raise BackendError(f"FEAR-XS folder not found: {folder}")
    if kind == "torch":
        return TorchFearBackend(folder, device if device != "auto" else "cpu", threads)
    if kind == "openvino":
        return OpenVINOFearBackend(folder, threads)
    return OnnxFearBackend(folder, threads)


def export_fear_xs(folder: str = DEFAULT_FEAR_DIR, tolerance: float = 1e-3) -> dict:
    """Write fear_template.onnx and fear_search.onnx from graph.json + weights.pt, check them against torch on
    random crops, and record every file's SHA-256 in fear_xs.json."""
    import onnxruntime as ort
    import torch
    from ..model.fear_xs import FearSearchGraph, FearTemplateGraph, load_fear_xs
    net = load_fear_xs(folder)
    gen = torch.Generator().manual_seed(0)
    template = torch.rand(1, 3, 128, 128, generator=gen) * 255
    search = torch.rand(1, 3, 256, 256, generator=gen) * 255
    with torch.no_grad():
        features = net.template(template)
        bbox, cls = net.track(search, features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module, args, name, inputs, outputs in (
                (FearTemplateGraph(net), (template,), TEMPLATE_GRAPH, ["image"], ["features"]),
                (FearSearchGraph(net), (search, features), SEARCH_GRAPH, ["image", "template_features"],
                 ["bbox", "cls"])):
            torch.onnx.export(module, args, os.path.join(folder, name), input_names=inputs, output_names=outputs,
                              opset_version=18, dynamo=True, external_data=False, verbose=False)
    t = ort.InferenceSession(os.path.join(folder, TEMPLATE_GRAPH), providers=["CPUExecutionProvider"])
    s = ort.InferenceSession(os.path.join(folder, SEARCH_GRAPH), providers=["CPUExecutionProvider"])
    f2 = t.run(None, {"image": template.numpy()})[0]
    b2, c2 = s.run(None, {"image": search.numpy(), "template_features": features.numpy()})
    # relative to each output's range: bbox distances reach ~100 px, so an absolute 1e-4 is float32 rounding
    diff = max(float(np.abs(a - r.numpy()).max() / max(float(r.abs().max()), 1.0))
               for a, r in ((f2, features), (b2, bbox), (c2, cls)))
    if diff > tolerance:
        raise RuntimeError(f"FEAR-XS ONNX graphs differ from torch by {diff:.2e} (relative) > {tolerance:.0e}")
    files = ("graph.json", "weights.pt", TEMPLATE_GRAPH, SEARCH_GRAPH)
    manifest = {"network": "FEAR-XS (Borsuk et al., ECCV 2022, MIT; NOTICE.md beside this file)",
                "opset": 18, "max_rel_diff_vs_torch": diff,
                "template": {"input": [1, 3, 128, 128], "output": [1, 256, 8, 8]},
                "search": {"inputs": [[1, 3, 256, 256], [1, 256, 8, 8]], "outputs": {"bbox": [1, 4, 16, 16],
                                                                                     "cls": [1, 1, 16, 16]}},
                "pixels": "RGB 0..255 (ImageNet mean/std applied inside the graphs)",
                "sha256": {name: sha256_of(os.path.join(folder, name)) for name in files}}
    with open(os.path.join(folder, FEAR_MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Export FEAR-XS's ONNX graphs (checked against torch) and their hashes.")
    ap.add_argument("--folder", default=DEFAULT_FEAR_DIR)
    args = ap.parse_args(argv)
    m = export_fear_xs(args.folder)
    print(f"wrote {TEMPLATE_GRAPH}, {SEARCH_GRAPH}, {FEAR_MANIFEST} in {args.folder} "
          f"(max relative difference to torch {m['max_rel_diff_vs_torch']:.1e})")


if __name__ == "__main__":
    main()
