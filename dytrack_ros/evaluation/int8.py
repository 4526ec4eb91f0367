"""Does int8 pay on this CPU? ONNX Runtime quantization of the stage graphs, timed beside float32.

    python -m dytrack_ros.evaluation.int8 --model models/dytrack_small --out benchmarks/experiments/INT8.md

Two variants: dynamic (int8 weights, activations quantized per call) and static QDQ (int8 weights per channel,
uint8 activations calibrated on crops of the real calibration split). Per variant: median time of all stages on
one thread (same crops, same process, interleaved), and how far the outputs move (largest score-map difference,
exit scores) on held-out crops of the same split.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from ..contract import (DEFAULT_MODEL_DIR, STAGE_OUTPUTS, TEMPLATE_INPUT, Manifest, stage_input_names,
                        to_network_input)
from ..data.realdata import load_split, realdata_root
from ..tracking.crops import box_center, crop_and_resize, crop_side
from . import machine


def real_crops(manifest: Manifest, split: str, count: int, seed: int):
    d = manifest.data
    rng = np.random.default_rng(seed)
    out = []
    for seq in load_split(split, realdata_root()):
        for i in rng.choice(len(seq.frames) - 10, count, replace=False):
            box = seq.boxes[i]
            if not np.all(np.isfinite(box)):
                continue
            c = box_center(box)
            t = crop_and_resize(seq.frame(i), c, crop_side(box, d["template_factor"]), d["template_size"])
            s = crop_and_resize(seq.frame(i + 5), c, crop_side(box, d["search_factor"]), d["search_size"])
            out.append((to_network_input(t, manifest.normalization), to_network_input(s, manifest.normalization)))
    return out


def session(path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run_all(template_sess, stages, template, search):
    """Every stage's outputs (by name) for one crop pair, and the feeds each stage got."""
    tokens = template_sess.run(None, {TEMPLATE_INPUT: template})[0]
    values, outs, feeds = (tokens, search), [], []
    for k, sess in enumerate(stages):
        accepted = [i.name for i in sess.get_inputs()]
        feed = {n: v for n, v in zip(stage_input_names(k), values) if n in accepted}
        out = dict(zip(STAGE_OUTPUTS, sess.run(None, feed)))
        outs.append(out)
        feeds.append(feed)
        values = (out["carry"], out["score_map"])
    return outs, feeds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--out", default="benchmarks/experiments/INT8.md")
    p.add_argument("--repeats", type=int, default=300)
    args = p.parse_args(argv)
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    m = Manifest.load(args.model)
    calib, check = real_crops(m, "calibration", 8, 0), real_crops(m, "calibration", 4, 1)
    template_sess = session(m.path(m.data["template_graph"]))
    fp32 = [session(m.path(g)) for g in m.data["stage_graphs"]]
    per_stage_feeds = [[] for _ in fp32]
    for t, s in calib:
        for k, feed in enumerate(run_all(template_sess, fp32, t, s)[1]):
            per_stage_feeds[k].append(feed)

    class Feeds(CalibrationDataReader):
        def __init__(self, items):
            self.items = iter(items)

        def get_next(self):
            return next(self.items, None)

    tmp = tempfile.mkdtemp(prefix="dytrack_int8_")
    variants = {"float32": fp32, "int8 dynamic": [], "int8 static QDQ": []}
    for k, graph in enumerate(m.data["stage_graphs"]):
        dyn, sta = os.path.join(tmp, f"dyn{k}.onnx"), os.path.join(tmp, f"static{k}.onnx")
        quantize_dynamic(m.path(graph), dyn, weight_type=QuantType.QInt8)
        quantize_static(m.path(graph), sta, Feeds(per_stage_feeds[k]), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        variants["int8 dynamic"].append(session(dyn))
        variants["int8 static QDQ"].append(session(sta))
    t0, s0 = check[0]
    times = {name: [] for name in variants}
    for _ in range(args.repeats):                       # interleaved: machine noise hits every variant alike
        for name, stages in variants.items():
            a = time.perf_counter()
            run_all(template_sess, stages, t0, s0)
            times[name].append((time.perf_counter() - a) * 1000)
    reference = [run_all(template_sess, fp32, t, s)[0] for t, s in check]
    lines = ["# int8 on this CPU", "", f"- machine: {machine.describe()}", f"- date: {machine.today()}",
             f"- model: `{args.model}`; ONNX Runtime, 1 thread; calibration: {len(calib)} crop pairs of the real "
             f"calibration split; deviation: {len(check)} other pairs of it",
             f"- command: `python -m dytrack_ros.evaluation.int8 --model {args.model}`", "",
             "| variant | all stages + template, median ms | vs float32 | max score-map change | mean exit-score change |",
             "|---|---|---|---|---|"]
    base = float(np.median(times["float32"]))
    for name, stages in variants.items():
        got = [run_all(template_sess, stages, t, s)[0] for t, s in check]
        dmap = max(float(np.abs(g[k]["score_map"] - r[k]["score_map"]).max())
                   for g, r in zip(got, reference) for k in range(len(stages)))
        dscore = float(np.mean([abs(float(g[k]["score"][0]) - float(r[k]["score"][0]))
                                for g, r in zip(got, reference) for k in range(len(stages))]))
        med = float(np.median(times[name]))
        lines.append(f"| {name} | {med:.2f} | {base / med:.2f}x | {dmap:.3f} | {dscore:.3f} |")
    machine.write_report(args.out, lines)


if __name__ == "__main__":
    main()
