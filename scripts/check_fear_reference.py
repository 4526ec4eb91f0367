"""Run the FEARTracker repository's own tracker code (model_training/tracker, unmodified) over our converted FEAR-XS
network, beside our FearLoop (dytrack_ros/tracking/fear_stage.py), on real held-out sequences; report box agreement.
Outside the package on purpose: it needs the repository's code and albumentations, which we do not ship or install.

    git -C <mirror of PinataFarms/FEARTracker> archive 0a3bd039 model_training | tar -x -C /tmp/fearref
    pip install --target /tmp/albu "albumentations<2"
    FEAR_REPO=/tmp/fearref ALBU=/tmp/albu .venv/bin/python scripts/check_fear_reference.py [SEQUENCE ...]
"""
import os
import sys
import types
REPO, ROOT = os.environ.get("FEAR_REPO", "/tmp/fearref"), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO); sys.path.insert(0, ROOT); sys.path.append(os.environ.get("ALBU", "/tmp/albu"))
for pkg in ('model_training.dataset', 'model_training.utils'):   # skip the packages' __init__ (training deps)
    m = types.ModuleType(pkg); m.__path__ = [os.path.join(REPO, *pkg.split('.'))]; sys.modules[pkg] = m
import numpy as np, torch, yaml
from model_training.tracker.fear_tracker import FEARTracker
from model_training.utils.constants import TARGET_CLASSIFICATION_KEY, TARGET_REGRESSION_LABEL_KEY
from dytrack_ros.model.fear_xs import load_fear_xs
from dytrack_ros.backends.fear_backend import create_fear_backend
from dytrack_ros.tracking.fear_stage import FearLoop
from dytrack_ros.data.realdata import load_split

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255

class Net(torch.nn.Module):
    """The repository's tracker feeds ImageNet-normalised crops; our module takes raw 0..255 (it normalises inside)."""
    def __init__(self):
        super().__init__(); self.fear = load_fear_xs()
    def get_features(self, img):
        with torch.no_grad(): return self.fear.template(img * STD + MEAN)
    def track(self, img, feats):
        with torch.no_grad(): bbox, cls = self.fear.track(img * STD + MEAN, feats)
        return {TARGET_CLASSIFICATION_KEY: cls, TARGET_REGRESSION_LABEL_KEY: bbox}

cfg = yaml.safe_load(open(os.path.join(REPO, 'model_training/config/tracker/siam_tracker.yaml')))
cfg.pop('_target_'); cfg['stride'] = 16
torch.set_num_threads(1)
names = sys.argv[1:] or ['Crossing', 'car16_1', 'Freeman1']
total, same, within1 = 0, 0, 0
for seq in [s for s in load_split('validation+calibration') if s.name in names]:
    ref = FEARTracker(Net(), cuda_id='cpu', **cfg)
    ours = FearLoop(create_fear_backend('torch', threads=1))
    f0 = seq.frame(0)
    ref.initialize(f0[:, :, ::-1].copy(), np.array(seq.boxes[0]))
    ours.initialize(f0, seq.boxes[0])
    diffs = []
    for i in range(1, len(seq)):
        f = seq.frame(i)
        a = np.array(ref.update(f[:, :, ::-1].copy())['bbox'], float)
        b = ours.update(f)
        diffs.append(np.abs(a - b).max())
    d = np.array(diffs)
    total += len(d); same += int((d == 0).sum()); within1 += int((d <= 1).sum())
    print(f"{seq.name}: {len(d)} frames, identical boxes {int((d == 0).sum())}, within 1 px {int((d <= 1).sum())}, max diff {d.max():.0f} px")
print(f"all: {total} frames, identical {same} ({100*same/total:.1f}%), within 1 px {within1} ({100*within1/total:.1f}%)")
