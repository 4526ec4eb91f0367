"""Training pairs (template crop, search crop, box in the search crop) from sequences.

The same crop code as the tracker (tracking/crops.py). Search crops are jittered in position and scale, as a
tracker's previous estimate is, so the network learns to find a target that is not at the crop's center.
"""
from __future__ import annotations

from typing import Iterator, List, Optional

import numpy as np
import torch

from ..model.config import ModelConfig
from ..tracking.crops import box_to_crop_units, crop_and_resize, crop_side, box_center, to_network_input
from .synthetic import Scene, SequenceSpec


def make_pair(cfg: ModelConfig, rng, template_frame, template_box, search_frame, search_box,
              center_jitter: float = 0.8, scale_jitter: float = 0.25):
    t_side = crop_side(template_box, cfg.template_factor)
    template = crop_and_resize(template_frame, box_center(template_box), t_side, cfg.template_size)
    size = np.sqrt(search_box[2] * search_box[3])
    cx, cy = box_center(search_box)
    jittered_center = (cx + rng.uniform(-1, 1) * center_jitter * size, cy + rng.uniform(-1, 1) * center_jitter * size)
    s_side = size * cfg.search_factor * float(np.exp(rng.normal(0, scale_jitter)))
    search = crop_and_resize(search_frame, jittered_center, s_side, cfg.search_size)
    gt = box_to_crop_units(search_box, jittered_center, s_side)
    return template, search, gt


def color_jitter(rng, img):
    gain = rng.uniform(0.8, 1.2, 3)
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


class SyntheticPairs(torch.utils.data.IterableDataset):
    """Endless pairs from photo-built scenes; each scene yields `pairs_per_scene` pairs (frame gaps up to max_gap).

    Items: (template, search, gt box in the search crop, present). With probability `negatives` the search crop
    comes from another scene (the target is absent, present = 0): the IoU head must learn to say so."""

    def __init__(self, cfg: ModelConfig, photos: List[np.ndarray], seed: int, pairs_per_scene: int = 4,
                 max_gap: int = 40, spec: Optional[SequenceSpec] = None, negatives: float = 0.0):
        self.cfg, self.photos, self.seed = cfg, photos, seed
        self.pairs_per_scene, self.max_gap, self.negatives = pairs_per_scene, max_gap, negatives
        self.spec = spec or SequenceSpec(length=max_gap + 1)

    def __iter__(self) -> Iterator:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        previous = None   # a frame of the last scene: a search region where this scene's target is absent
        while True:
            scene = Scene(self.photos, rng, self.spec)
            cache = {}
            for _ in range(self.pairs_per_scene):
                t0, t1 = sorted(rng.choice(len(scene), 2, replace=False))
                if rng.random() < 0.5:
                    t0, t1 = t1, t0
                for t in (t0, t1):
                    if t not in cache:
                        cache[t] = scene.frame(t)
                negative = previous is not None and rng.random() < self.negatives
                if negative:  # a box of this target's size somewhere in the other scene
                    frame = previous
                    box = np.array([rng.uniform(0, frame.shape[1] - 20), rng.uniform(0, frame.shape[0] - 20),
                                    *scene.boxes[t1][2:]])
                else:
                    frame, box = cache[t1], scene.boxes[t1]
                template, search, gt = make_pair(self.cfg, rng, cache[t0], scene.boxes[t0], frame, box)
                yield (torch.from_numpy(to_network_input(color_jitter(rng, template))[0]),
                       torch.from_numpy(to_network_input(search)[0]), torch.from_numpy(gt),
                       torch.tensor(0.0 if negative else 1.0))
            previous = cache[t1]


class FolderPairs(torch.utils.data.IterableDataset):
    """Pairs from real annotated datasets (GOT-10k / LaSOT / TrackingNet readers in evaluation/datasets.py)."""

    def __init__(self, cfg: ModelConfig, sequences, seed: int, max_gap: int = 100):
        self.cfg, self.sequences, self.seed, self.max_gap = cfg, sequences, seed, max_gap

    def __iter__(self):
        import cv2
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            seq = self.sequences[rng.integers(len(self.sequences))]
            visible = np.flatnonzero(seq.visible_mask())
            if len(visible) < 2:
                continue
            t0 = rng.choice(visible)
            near = visible[np.abs(visible - t0) <= self.max_gap]
            t1 = rng.choice(near)
            f0, f1 = cv2.imread(seq.frames[t0]), cv2.imread(seq.frames[t1])
            if f0 is None or f1 is None:
                continue
            template, search, gt = make_pair(self.cfg, rng, f0, seq.boxes[t0], f1, seq.boxes[t1])
            yield (torch.from_numpy(to_network_input(template)[0]), torch.from_numpy(to_network_input(search)[0]),
                   torch.from_numpy(gt), torch.tensor(1.0))
