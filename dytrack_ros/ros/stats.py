"""Rolling statistics for /diagnostics: fps, latency percentiles, exit-stage histogram, drops."""
from __future__ import annotations

import collections
import threading
import time

import numpy as np


class RollingStats:
    """Latency/exit statistics over the last `window` results; rates over the last `rate_window` seconds of
    wall time (a dead camera must read 0 fps, not the rate of its last 300 frames)."""

    def __init__(self, num_stages: int, window: int = 300, rate_window: float = 5.0):
        self.num_stages = num_stages
        self._lock = threading.Lock()
        self._times = collections.deque(maxlen=window)
        self._latency = collections.deque(maxlen=window)
        self._inference = collections.deque(maxlen=window)
        self._stages = collections.deque(maxlen=window)
        self.rate_window = rate_window
        self._received_times = collections.deque(maxlen=10_000)
        self.last_received = None                # time.monotonic() of the last frame received
        self.frames_received = 0
        self.frames_dropped = 0
        self.frames_processed = 0
        self.bad_messages = 0

    def received(self, replaced: bool = False) -> None:
        """A frame came in; replaced: it took the place of one never processed (that one is counted as dropped)."""
        with self._lock:
            now = time.monotonic()
            self.frames_received += 1
            self.frames_dropped += int(bool(replaced))
            self.last_received = now
            self._received_times.append(now)

    def bad_message(self) -> None:
        with self._lock:
            self.bad_messages += 1

    def processed(self, latency_ms: float, inference_ms: float, stage: int) -> None:
        with self._lock:
            self._times.append(time.monotonic())
            self._latency.append(latency_ms)
            self._inference.append(inference_ms)
            self._stages.append(stage)
            self.frames_processed += 1

    def snapshot(self) -> dict:
        now = time.monotonic()
        with self._lock:
            times, lat, inf, st = list(self._times), list(self._latency), list(self._inference), list(self._stages)
            counts = dict(received=self.frames_received, dropped=self.frames_dropped,
                          processed=self.frames_processed, bad=self.bad_messages)
            arrivals = sum(1 for t in self._received_times if now - t <= self.rate_window)
            last = self.last_received
        fps = sum(1 for t in times if now - t <= self.rate_window) / self.rate_window
        counts["input_fps"] = arrivals / self.rate_window
        counts["seconds_since_last_frame"] = (now - last) if last is not None else float("inf")
        hist = np.bincount(np.asarray(st, int), minlength=self.num_stages + 1)[1:] if st else np.zeros(self.num_stages, int)
        pct = lambda xs, q: float(np.percentile(xs, q)) if xs else 0.0
        return dict(fps=fps, latency_p50_ms=pct(lat, 50), latency_p95_ms=pct(lat, 95), inference_p50_ms=pct(inf, 50),
                    inference_p95_ms=pct(inf, 95), exit_histogram=hist.tolist(),
                    mean_stages=float(np.mean(st)) if st else 0.0, **counts)
