"""Per-stage latency of every backend present, and end-to-end tracker fps: dynamic exits vs forced full depth.

    dytrack-bench-backends --model models/dytrack_small [--out benchmarks/BACKENDS.md]

Same crops and frames for every backend, one process, one run. Writes a Markdown table with the machine and date.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ..backends import BackendError, available_backends, create_backend
from ..data.sequences import generated_suite
from ..runtime import build_tracker, model_manifest
from ..contract import DEFAULT_MODEL_DIR, to_network_input
from ..tracking.crops import box_center, crop_and_resize, crop_side
from . import machine
from .runner import run_dytrack


def stage_latency(backend, template, search, repeats):
    backend.set_template(template)
    for _ in range(5):  # warm-up
        for k in range(backend.num_stages):
            backend.run_stage(k, search if k == 0 else None)
    times = np.zeros((repeats, backend.num_stages))
    for r in range(repeats):
        for k in range(backend.num_stages):
            t0 = time.perf_counter()
            backend.run_stage(k, search if k == 0 else None)
            times[r, k] = (time.perf_counter() - t0) * 1000
    return np.median(times, 0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--out", default="benchmarks/BACKENDS.md")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--sequences", type=int, default=6)
    p.add_argument("--length", type=int, default=100)
    args = p.parse_args(argv)
    manifest = model_manifest(args.model)
    info, convention = manifest.data, manifest.normalization
    suite = generated_suite(args.sequences, args.length, seed=7000)
    f0, b0 = suite[0].frame(0), suite[0].boxes[0]
    template = to_network_input(crop_and_resize(f0, box_center(b0), crop_side(b0, info["template_factor"]),
                                                info["template_size"]), convention)
    search = to_network_input(crop_and_resize(suite[0].frame(5), box_center(b0), crop_side(b0, info["search_factor"]),
                                              info["search_size"]), convention)
    rows, end_to_end = [], []
    candidates = [("torch", "cpu"), ("onnxruntime", "cpu"), ("openvino", "cpu")]
    import torch
    if torch.cuda.is_available():
        candidates += [("torch", "cuda")]
    if "tensorrt" in available_backends():
        candidates += [("tensorrt", "cuda")]
    for name, device in candidates:
        try:
            backend = create_backend(name, args.model, device=device, threads=args.threads)
        except BackendError as exc:
            rows.append((f"{name} ({device})", None, str(exc)))
            continue
        lat = stage_latency(backend, template, search, args.repeats)
        rows.append((f"{backend.name} ({device})", lat, ""))
        tracker = build_tracker(args.model, name, device=device, threads=args.threads)
        res = {}
        for label, force in (("dynamic (calibrated thresholds)", None), ("full depth (forced)", info["num_stages"])):
            runs = [run_dytrack(tracker, s, force_stages=force) for s in suite]
            ms = np.concatenate([r.times_ms for r in runs])
            st = np.concatenate([r.stages for r in runs])
            res[label] = (float(np.mean(ms)), float(np.mean(st)))
        end_to_end.append((f"{backend.name} ({device})", res))
    k = info["num_stages"]
    lines = ["# Backend latency", "", f"- machine: {machine.describe()}", f"- date: {machine.today()}",
             f"- model: `{args.model}`, thresholds {info['exit_thresholds']}; threads: {args.threads or 'runtime default'}",
             f"- command: `dytrack-bench-backends --model {args.model}`", "",
             "## Per-stage latency (median of %d, ms; stage 1 includes the search crop's convolutional stem)" % args.repeats,
             "", "| backend | " + " | ".join(f"stage {i + 1}" for i in range(k)) + " | all stages |",
             "|---|" + "---|" * (k + 1)]
    base = None
    for name, lat, err in rows:
        if lat is None:
            lines.append(f"| {name} | not available here: {err} |" + " |" * k)
        else:
            lines.append(f"| {name} | " + " | ".join(f"{x:.2f}" for x in lat) + f" | {lat.sum():.2f} |")
            if name.startswith("torch-cpu"):
                base = lat.sum()
    fastest = min((r for r in rows if r[1] is not None), key=lambda r: r[1].sum())
    if base:
        lines += ["", f"Fastest CPU backend: {fastest[0]}, {base / fastest[1].sum():.2f}x faster than torch eager "
                      f"over all stages (same run)."]
    lines += ["", f"## End-to-end tracker ({args.sequences} held-out sequences x {args.length} frames, same frames)", "",
              "| backend | dynamic ms/frame | dynamic fps | mean stages | full depth ms/frame | full depth fps | speed-up |",
              "|---|---|---|---|---|---|---|"]
    for name, res in end_to_end:
        d, f = res["dynamic (calibrated thresholds)"], res["full depth (forced)"]
        lines.append(f"| {name} | {d[0]:.2f} | {1000 / d[0]:.0f} | {d[1]:.2f} | {f[0]:.2f} | {1000 / f[0]:.0f} | "
                     f"{f[0] / d[0]:.2f}x |")
    machine.write_report(args.out, lines)


if __name__ == "__main__":
    main()
