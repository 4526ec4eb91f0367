"""Run any tracker over sequences the same way: init on frame 0's ground truth, time each update."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional, Sequence as Seq

import numpy as np
from tqdm import tqdm

from .datasets import Sequence
from .metrics import SequenceScores, aggregate, score_sequence


@dataclass
class RunResult:
    name: str
    boxes: np.ndarray
    times_ms: np.ndarray          # per tracked frame (frame 0 excluded)
    stages: Optional[np.ndarray]  # DyTrack only: stage that answered each tracked frame


def run_dytrack(tracker, seq: Sequence, force_stage: Optional[int] = None) -> RunResult:
    boxes = np.zeros((len(seq), 4))
    boxes[0] = tracker.initialize(seq.frame(0), seq.boxes[0])
    times, stages = [], []
    for i in range(1, len(seq)):
        frame = seq.frame(i)
        t0 = time.perf_counter()
        r = tracker.track(frame, force_stage=force_stage)
        times.append((time.perf_counter() - t0) * 1000)
        boxes[i] = r.box
        stages.append(r.stage)
    return RunResult(seq.name, boxes, np.array(times), np.array(stages))


def run_peer(peer, seq: Sequence) -> RunResult:
    boxes = np.zeros((len(seq), 4))
    boxes[0] = seq.boxes[0]
    peer.initialize(seq.frame(0), seq.boxes[0])
    times = []
    for i in range(1, len(seq)):
        frame = seq.frame(i)
        t0 = time.perf_counter()
        b = peer.update(frame)
        times.append((time.perf_counter() - t0) * 1000)
        boxes[i] = b if b is not None and np.all(np.isfinite(b)) else boxes[i - 1]  # failure: keep last box
    return RunResult(seq.name, boxes, np.array(times), None)


def summarize(runs: List[RunResult], suite: Seq[Sequence], num_stages: int = 0) -> dict:
    scores: List[SequenceScores] = [score_sequence(r.boxes, s.boxes, s.visible) for r, s in zip(runs, suite)]
    times = np.concatenate([r.times_ms for r in runs])
    out = aggregate(scores)
    out.update(ms_per_frame=float(times.mean()), fps=float(1000.0 / times.mean()), frames=int(len(times)))
    if runs and runs[0].stages is not None and num_stages:
        st = np.concatenate([r.stages for r in runs])
        out["mean_stages"] = float(st.mean())
        out["stage_share"] = (np.bincount(st, minlength=num_stages + 1)[1:] / len(st)).tolist()
    return out


def warm_up(tracker, seq: Sequence, frames: int = 30, dytrack: bool = True) -> None:
    """Untimed run over the first frames: runtime initialisation, caches and allocations stay out of the timings."""
    short = Sequence(seq.name, seq.frames[:frames], seq.boxes[:frames])
    (run_dytrack if dytrack else run_peer)(tracker, short)


def evaluate_dytrack(tracker, suite: Seq[Sequence], force_stage: Optional[int] = None, desc: str = "") -> dict:
    runs = [run_dytrack(tracker, s, force_stage) for s in tqdm(suite, desc=desc or "dytrack", leave=False)]
    return summarize(runs, suite, tracker.num_stages)


def evaluate_peer(peer, suite: Seq[Sequence]) -> dict:
    warm_up(peer, suite[0], dytrack=False)
    runs = [run_peer(peer, s) for s in tqdm(suite, desc=peer.name, leave=False)]
    return summarize(runs, suite)


def dytrack_policies(tracker, suite, thresholds: Seq[float], calibrated: Optional[Seq[float]] = None) -> dict:
    """Every exit forced, and the dynamic policy at uniform thresholds (plus the model's calibrated ones)."""
    k = tracker.num_stages
    saved = list(tracker.params.thresholds)
    results = {}
    warm_up(tracker, suite[0])
    for stage in range(1, k + 1):
        name = f"exit {stage} forced" + (" (full depth)" if stage == k else "")
        results[name] = evaluate_dytrack(tracker, suite, force_stage=stage, desc=name)
    policies = [(f"dynamic t={t:.2f}", [t] * (k - 1) + [0.0]) for t in thresholds]
    if calibrated:
        policies.append(("dynamic calibrated " + "/".join(f"{t:.2f}" for t in calibrated[:-1]), list(calibrated)))
    for name, th in policies:
        tracker.set_thresholds(th)
        results[name] = evaluate_dytrack(tracker, suite, desc=name)
        results[name]["thresholds"] = th
    tracker.set_thresholds(saved)
    return results


def calibrate_thresholds(tracker, suite, candidates=(0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8),
                         keep: float = 0.98) -> tuple:
    """Uniform early-exit threshold with the fewest mean stages whose AUC stays >= keep x full depth
    (on a validation suite from training photos, never the held-out ones)."""
    k = tracker.num_stages
    full = evaluate_dytrack(tracker, suite, force_stage=k, desc="calibrate full")
    best = None
    table = {}
    saved = list(tracker.params.thresholds)
    for t in candidates:
        tracker.set_thresholds([t] * (k - 1) + [0.0])
        r = evaluate_dytrack(tracker, suite, desc=f"calibrate t={t}")
        table[t] = r
        if r["auc"] >= keep * full["auc"] and (best is None or r["mean_stages"] < table[best]["mean_stages"]):
            best = t
    tracker.set_thresholds(saved)
    if best is None:
        best = max(table, key=lambda t: table[t]["auc"])
    return [best] * (k - 1) + [0.0], full, table
