"""Training pairs (template crop, search crop, box in the search crop) from sequences.

The same crop code as the tracker (tracking/crops.py). Search crops are jittered in position and scale, as a
tracker's previous estimate is, so the network learns to find a target that is not at the crop's center.
"""
from __future__ import annotations

from typing import Iterator, List, Optional

import numpy as np
import torch

from ..model.config import ModelConfig
from ..contract import input_convention, to_network_input
from ..tracking.crops import box_to_crop_units, crop_and_resize, crop_side, box_center
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
        self.convention = input_convention(cfg.to_dict())
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
                yield (torch.from_numpy(to_network_input(color_jitter(rng, template), self.convention)[0]),
                       torch.from_numpy(to_network_input(search, self.convention)[0]), torch.from_numpy(gt),
                       torch.tensor(0.0 if negative else 1.0))
            previous = cache[t1]


class FolderPairs(torch.utils.data.IterableDataset):
    """Pairs from real annotated datasets (GOT-10k / LaSOT / TrackingNet readers in data/sequences.py)."""

    def __init__(self, cfg: ModelConfig, sequences, seed: int, max_gap: int = 100):
        self.cfg, self.sequences, self.seed, self.max_gap = cfg, sequences, seed, max_gap
        self.convention = input_convention(cfg.to_dict())

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
            yield (torch.from_numpy(to_network_input(template, self.convention)[0]),
                   torch.from_numpy(to_network_input(search, self.convention)[0]), torch.from_numpy(gt), torch.tensor(1.0))


# ---- real annotated sequences -------------------------------------------------------------------------------
CACHE_FACTOR = 8.0   # cached region side / target size: covers the largest jittered search crop (4 x e^0.5 + shift)
CACHE_SIZE = 512     # pixels (default); 64 px per target size, the same sampling as a 256 px search crop at factor 4


def cache_size_for(cfg: ModelConfig) -> int:
    """Cache side that samples the target as finely as the model's search crop does (no detail lost)."""
    return int(round(cfg.search_size * CACHE_FACTOR / cfg.search_factor))


def build_frame_cache(sequences, path: str, cache_size: int = CACHE_SIZE, factor: float = CACHE_FACTOR):
    """Crop every visible annotated frame once around its target (side = factor x target size, resized to
    cache_size) into one uint8 memmap at `path` (+ `.json` index). Decoding 1280x720 JPEGs for every pair would
    cost more than the training step on 2 cores; the cached crops hold every pixel a pair can need.
    Returns (memmap array (N, S, S, 3), index: list of (sequence number, frame number, target w, h in cache px))."""
    import json
    import os
    from tqdm import tqdm
    index = []
    for si, seq in enumerate(sequences):
        for fi in np.flatnonzero(seq.visible_mask()):
            index.append((si, int(fi)))
    meta_path = path + ".json"
    names = [s.name for s in sequences]
    if os.path.exists(meta_path) and os.path.exists(path):
        meta = json.load(open(meta_path))
        if meta["names"] == names and meta["size"] == cache_size and meta["factor"] == factor \
                and len(meta["index"]) == len(index):
            arr = np.lib.format.open_memmap(path, mode="r")
            return arr, [tuple(x) for x in meta["index"]]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    arr = np.lib.format.open_memmap(path + ".tmp", mode="w+", dtype=np.uint8, shape=(len(index), cache_size, cache_size, 3))
    out_index = []
    for n, (si, fi) in enumerate(tqdm(index, desc="caching real frames", leave=False)):
        seq = sequences[si]
        frame = seq.frame(fi)
        box = seq.boxes[fi]
        side = crop_side(box, factor)
        arr[n] = crop_and_resize(frame, box_center(box), side, cache_size)
        k = cache_size / side
        out_index.append((si, fi, float(box[2] * k), float(box[3] * k)))
    arr.flush()
    del arr
    os.replace(path + ".tmp", path)
    json.dump({"names": names, "size": cache_size, "factor": factor, "index": out_index}, open(meta_path, "w"))
    return np.lib.format.open_memmap(path, mode="r"), out_index


def augment(rng, img: np.ndarray, gray: float = 0.05, blur: float = 0.15) -> np.ndarray:
    """Photometric changes a camera makes between frames: gain per channel, brightness, grey, motion blur."""
    import cv2
    out = img.astype(np.float32) * rng.uniform(0.75, 1.25, 3) + rng.uniform(-20, 20)
    if rng.random() < gray:
        out[:] = out.mean(2, keepdims=True)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < blur:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    return out


class RealPairs(torch.utils.data.IterableDataset):
    """Pairs from real annotated sequences: template and search from two frames of the same sequence (gap up
    to max_gap frames), search jittered in position and scale as a tracker's previous estimate is, photometric
    augmentation, horizontal flip of both. With probability `negatives` the search region comes from another
    sequence (present = 0: the IoU score must learn to say 'not here'), or, for a `beside_target` share of those, from
    the search frame of the same sequence beside the target (its surroundings: a harder 'not here'). Reads frames from
    a cache (see build_frame_cache) built once in the main process and shared with workers through the page cache."""

    def __init__(self, cfg: ModelConfig, sequences, cache_path: str, seed: int, max_gap: int = 100,
                 negatives: float = 0.0, synthetic: Optional["SyntheticPairs"] = None, synthetic_share: float = 0.0,
                 beside_target: float = 0.0):
        self.cfg, self.seed, self.max_gap, self.negatives = cfg, seed, max_gap, negatives
        self.beside_target = beside_target
        self.convention = input_convention(cfg.to_dict())
        self.cache_path = cache_path
        self.cache_size = cache_size_for(cfg)
        _, self.index = build_frame_cache(sequences, cache_path, self.cache_size)
        self.synthetic, self.synthetic_share = synthetic, synthetic_share
        self.by_sequence = {}
        for n, (si, fi, _, _) in enumerate(self.index):
            self.by_sequence.setdefault(si, []).append((fi, n))
        # sample sequences by length^0.5: long sequences count more, but do not drown the short ones
        self.seq_ids = sorted(self.by_sequence)
        w = np.sqrt([len(self.by_sequence[s]) for s in self.seq_ids])
        self.seq_p = w / w.sum()

    def _box(self, n):
        _, _, w, h = self.index[n]
        c = self.cache_size / 2.0
        return np.array([c - w / 2, c - h / 2, w, h])

    def __iter__(self) -> Iterator:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        cache = np.lib.format.open_memmap(self.cache_path, mode="r")
        synthetic = iter(self.synthetic) if self.synthetic is not None and self.synthetic_share > 0 else None
        while True:
            if synthetic is not None and rng.random() < self.synthetic_share:
                yield next(synthetic)
                continue
            si = self.seq_ids[rng.choice(len(self.seq_ids), p=self.seq_p)]
            frames = self.by_sequence[si]
            a = int(rng.integers(len(frames)))
            near = [j for j, (fi, _) in enumerate(frames) if abs(fi - frames[a][0]) <= self.max_gap]
            b = near[int(rng.integers(len(near)))]
            na, nb = frames[a][1], frames[b][1]
            negative = rng.random() < self.negatives and len(self.seq_ids) > 1
            t_img, t_box = np.asarray(cache[na]), self._box(na)
            # template: small shift and scale jitter (the init box is never exact)
            t_box = t_box + np.r_[rng.normal(0, 0.05, 2) * t_box[2:], 0, 0]
            if negative and rng.random() < self.beside_target:
                # the template cut as for every pair; its search crop is unused, but drawing it keeps the random
                # stream of the run that trained the shipped head (scripts/build_model.sh reproduces it)
                template, _, _ = make_pair(self.cfg, rng, t_img, t_box, t_img, t_box)
                search = self._crop_beside_target(rng, np.asarray(cache[nb]), self._box(nb))
                # an absent pair trains only the IoU score (towards 0): its box label is a placeholder
                yield self._item(rng, template, search, np.array([0.5, 0.5, 0.25, 0.25], np.float32), False)
                continue
            if negative:
                other = [s for s in self.seq_ids if s != si]
                so = other[int(rng.integers(len(other)))]
                nb = self.by_sequence[so][int(rng.integers(len(self.by_sequence[so])))][1]
                s_img = np.asarray(cache[nb])
                # a region of the template's size away from the other sequence's target
                w, h = t_box[2:]
                cx, cy = rng.uniform(0.15, 0.85, 2) * self.cache_size
                s_box = np.array([cx - w / 2, cy - h / 2, w, h])
            else:
                s_img, s_box = np.asarray(cache[nb]), self._box(nb)
            template, search, gt = make_pair(self.cfg, rng, t_img, t_box, s_img, s_box)
            yield self._item(rng, template, search, gt, not negative)

    def _item(self, rng, template, search, gt, present: bool):
        template, search = augment(rng, template), augment(rng, search)
        if rng.random() < 0.5:   # mirror both: same task, new appearance
            template, search = template[:, ::-1], search[:, ::-1]
            gt = gt.copy()
            gt[0] = 1.0 - gt[0]
        return (torch.from_numpy(to_network_input(template, self.convention)[0]),
                torch.from_numpy(to_network_input(search, self.convention)[0]), torch.from_numpy(np.asarray(gt)),
                torch.tensor(1.0 if present else 0.0))

    def _crop_beside_target(self, rng, image, box, tries: int = 20):
        """A search crop of a frame of the target's own sequence that leaves the target out: its surroundings (the road
        the truck is on, the runner beside the runner) are a harder 'not here' than another sequence's frame. The cached
        region is 8 target sizes wide, so the crop is 2.6-3.4 sizes wide (a search crop's scale, within its jitter) and
        lies inside the region, on a side of the target."""
        full = float(image.shape[0])
        cx, cy, w, h = box[0] + box[2] / 2, box[1] + box[3] / 2, box[2], box[3]
        size = float(np.sqrt(w * h))
        for _ in range(tries):
            side = size * rng.uniform(2.6, 3.4)
            half = side / 2
            x, y = rng.uniform(half, full - half, 2)
            if abs(x - cx) >= half + w / 2 or abs(y - cy) >= half + h / 2:
                return crop_and_resize(image, (x, y), side, self.cfg.search_size)
        # a target too large for its region to hold a crop beside it: a corner crop, part of the target in it
        return crop_and_resize(image, (half, half), side, self.cfg.search_size)
