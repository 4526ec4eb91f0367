"""Hard target-absent windows mined from the training frames, for pairs that teach the first exit's IoU score to tell
the target from what surrounds it (the runner beside the runner, the next car seen from above).

    python -m dytrack_ros.training.lookalikes --model models/dytrack_small --out .data/cache/lookalikes.json

For every `stride`-th cached frame of the train split (data/pairs.py's frame cache), `tries` windows beside the target
(data/pairs.window_beside: the target left out) are scored by the model's first exit with a template from the same
frame; the window with the highest predicted IoU is that frame's look-alike when it reaches `min_score` (the memory
checks of tracking/redetect.py accept a candidate from about 0.6). Written as {cache index: [x, y, side, score]} in
cache pixels; RealPairs(lookalikes=...) (dytrack-train --lookalikes FILE --lookalike-share P) cuts absent pairs there.
(A search crop around the target shows no look-alike: the first exit's score map is near 0 a box size away from a
present target, so the windows leave the target out.)
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from tqdm import tqdm

from ..contract import DEFAULT_MODEL_DIR, to_network_input
from ..data.pairs import window_beside
from ..tracking.crops import crop_and_resize, crop_side


def mine(backend, cache, index, cache_size: int, template_size: int, search_size: int, stride: int = 3,
         tries: int = 6, min_score: float = 0.3, template_factor: float = 2.0, context: float = 0.5,
         seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    found = {}
    c = cache_size / 2.0
    for n in tqdm(range(0, len(index), stride), desc="mining look-alikes", leave=False):
        _, _, w, h = index[n]
        box = np.array([c - w / 2, c - h / 2, w, h])
        image = np.asarray(cache[n])
        template = crop_and_resize(image, (c, c), crop_side(box, template_factor, context), template_size)
        backend.set_template(to_network_input(template, backend.input_convention))
        best = None
        for _ in range(tries):
            x, y, side = window_beside(rng, float(cache_size), box)
            crop = crop_and_resize(image, (x, y), side, search_size)
            score = backend.run_stage(0, to_network_input(crop, backend.input_convention)).score
            if best is None or score > best[3]:
                best = (x, y, side, score)
        if best[3] >= min_score:
            found[n] = [round(float(v), 3) for v in best]
    return found


def main(argv=None):
    from ..backends import create_backend
    from ..contract import Manifest
    from ..data.pairs import build_frame_cache
    from ..data.realdata import load_split, realdata_root
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL_DIR)
    p.add_argument("--out", default=".data/cache/lookalikes.json")
    p.add_argument("--stride", type=int, default=1, help="every n-th cached frame")
    p.add_argument("--tries", type=int, default=6, help="windows beside the target scored per frame")
    p.add_argument("--min-score", type=float, default=0.3)
    args = p.parse_args(argv)
    m = Manifest.read(args.model).data
    cache_size = int(round(int(m["search_size"]) * 8.0 / float(m["search_factor"])))     # pairs.cache_size_for
    sequences = load_split("train", realdata_root(), require_all=False)
    path = os.path.join(realdata_root(), "..", "cache", f"train_{len(sequences)}seq_{cache_size}px.npy")
    cache, index = build_frame_cache(sequences, path, cache_size)
    backend = create_backend("onnxruntime", args.model, threads=1)
    found = mine(backend, cache, index, cache_size, int(m["template_size"]), int(m["search_size"]), args.stride,
                 args.tries, args.min_score, float(m["template_factor"]))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    json.dump({"cache": os.path.basename(path), "frames": len(index), "stride": args.stride,
               "tries": args.tries, "min_score": args.min_score,
               "model": args.model, "lookalikes": found}, open(args.out, "w"))
    print(f"{len(found)} of {len(range(0, len(index), args.stride))} frames have a window scored >= {args.min_score}: "
          f"{args.out}")


if __name__ == "__main__":
    main()
