"""Per return: how long until the tracker had the target again, and what it did meanwhile (one line of states and
one of IoU tenths per return). The reading behind the look-alike memory (redetection_tuning_train.md, round 3).

    .venv/bin/python benchmarks/experiments/redetection_per_return.py [SPLIT[+SPLIT]] [param=value ...]

e.g. `... validation+calibration+train lookalike_memory=0`; SPLIT defaults to validation+calibration.
States from five frames before the target left: T tracking, L lost; IoU digit = floor(10 x IoU), 0 while absent.
"""
import ast
import sys

import numpy as np

from dytrack_ros.evaluation import redetection
from dytrack_ros.evaluation.metrics import box_iou
from dytrack_ros.evaluation.runner import in_memory
from dytrack_ros.runtime import build_tracker
from dytrack_ros.tracking.tracker import TRACKING


def main(argv):
    split = argv[0] if argv and "=" not in argv[0] else "validation+calibration"
    tracker = build_tracker("models/dytrack_small", "onnxruntime", threads=1)
    for arg in [a for a in argv if "=" in a]:
        name, value = arg.split("=", 1)
        setattr(tracker.params, name, ast.literal_eval(value))
    found = total = 0
    for part in split.split("+"):
        for seq in redetection.suite_with_returns(part):
            seq = in_memory(seq)
            result = redetection.run(tracker, seq)
            scored = redetection.score_returns(result, seq)
            vis = seq.visible_mask()
            ious = np.zeros(len(seq))
            ious[vis] = box_iou(result["boxes"][vis], seq.boxes[vis])
            print(f"== {seq.name} ({part}) AUC {100 * scored['auc']:.1f} frames to re-acquire {scored['delays']} "
                  f"wrong-target frames {scored['wrong']} global re-detections {scored['jumps']}")
            for r in np.flatnonzero(vis[1:] & ~vis[:-1]) + 1:
                gone = r - 1
                while gone > 0 and not vis[gone - 1]:
                    gone -= 1
                span = slice(max(gone - 5, 0), r + redetection.WITHIN)
                states = "".join("T" if s == TRACKING else "L" for s in result["states"][span])
                print(f"   absent {gone}-{r - 1}, states from {span.start}: {states}")
                print(f"   IoU tenths{' ' * (len(str(gone)) + len(str(r - 1)) + 7)}: "
                      + "".join(str(min(int(v * 10), 9)) for v in ious[span]))
            found += sum(d is not None for d in scored["delays"])
            total += len(scored["delays"])
    print(f"re-acquired within {redetection.WITHIN} frames: {found} of {total} returns")


if __name__ == "__main__":
    main(sys.argv[1:])
