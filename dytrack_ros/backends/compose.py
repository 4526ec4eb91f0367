"""A model folder whose first exit is another folder's and whose second exit is FEAR-XS (the deep stage).

    python -m dytrack_ros.backends.compose --first-exit models/dytrack_small --fear models/third_party/fear_xs \
        --iou-head deep_iou_head.json --thresholds 0.6 --out models/dytrack_fear

No file is copied: the manifest names the first exit's template and stage-0 graphs and checkpoint, and FEAR-XS's
folder, by paths relative to the new folder (installs keep models/ together), and seals their SHA-256 as any export
does; the IoU head (a small JSON, evaluation/deep_score.py) lives in the new folder.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from typing import Optional, Sequence

from ..contract import CHECKPOINT_NAME, Manifest, sha256_of


def compose_deep_model(first_exit_dir: str, fear_dir: str, out_dir: str, thresholds: Sequence[float],
                       iou_head: Optional[str] = None, tracker: Optional[dict] = None,
                       extra: Optional[dict] = None) -> Manifest:
    src = Manifest.load(first_exit_dir)
    os.makedirs(out_dir, exist_ok=True)
    rel = lambda path: os.path.relpath(path, out_dir)
    template, stage0 = rel(src.path(src.data["template_graph"])), rel(src.path(src.data["stage_graphs"][0]))
    checkpoint = rel(src.path(CHECKPOINT_NAME))
    data = {k: src.data[k] for k in ("format", "opset", "output_names", "template_size", "search_size",
                                     "template_factor", "search_factor", "normalization", "model_config")}
    data.update(template_graph=template, stage_graphs=[stage0], num_stages=2,
                stage_inputs=[src.data["stage_inputs"][0]], checkpoint=checkpoint,
                deep_stage={"kind": "fear_xs", "folder": rel(fear_dir)},
                exit_thresholds=[float(t) for t in thresholds])
    files = [template, stage0, checkpoint]
    if iou_head:
        name = os.path.basename(iou_head)
        if os.path.abspath(iou_head) != os.path.abspath(os.path.join(out_dir, name)):
            shutil.copyfile(iou_head, os.path.join(out_dir, name))
        data["deep_stage"]["iou_head"] = name
        files.append(name)
    data["sha256"] = {name: sha256_of(os.path.join(out_dir, name)) for name in files}
    data["tracker"] = dict(tracker or {})
    data.update(extra or {})
    m = Manifest(out_dir, data)
    m.check_editable()
    m.seal()
    return Manifest.load(out_dir)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--first-exit", required=True, help="the model folder whose template and stage-0 graphs answer first")
    p.add_argument("--fear", required=True, help="FEAR-XS's folder (models/third_party/fear_xs)")
    p.add_argument("--iou-head", default=None, help="the deep stage's IoU head (evaluation/deep_score.py fit)")
    p.add_argument("--thresholds", type=float, nargs=2, required=True, help="the two exits' thresholds (last: 0)")
    p.add_argument("--tracker", default="{}", help="tracker settings as JSON (contract: TRACKER_SETTING_*)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    m = compose_deep_model(args.first_exit, args.fear, args.out, args.thresholds, args.iou_head,
                           json.loads(args.tracker))
    print(f"wrote {m.folder}/manifest.json: first exit from {args.first_exit}, deep stage {args.fear}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
