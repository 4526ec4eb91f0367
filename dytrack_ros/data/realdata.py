"""The real annotated sequences we train and validate on, and their fixed split.

`real_sequences.json` names each sequence (public repository, commit, frames folder, ground-truth file) and its
split. The frames are not in this repository (research-use terms): the README ('Real video: data') says how to
bring the repositories and extract them into an OTB-layout folder, by default `.data/realdata`
(`DYTRACK_REALDATA` overrides it). Validation sequences are never trained on and never used to calibrate.
"""
from __future__ import annotations

import json
import os
from typing import List, Optional

from .photos import REPO_ROOT
from .sequences import Sequence, read_otb_sequence

INVENTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_sequences.json")
DEFAULT_ROOT = os.path.join(REPO_ROOT, ".data", "realdata")
SPLITS = ("train", "calibration", "validation")


def realdata_root() -> str:
    return os.environ.get("DYTRACK_REALDATA", DEFAULT_ROOT)


def inventory(path: str = INVENTORY) -> List[dict]:
    with open(path) as f:
        return json.load(f)["sequences"]


HELD_OUT = "validation+calibration"   # every sequence no network weight was trained on


def split_names(split: str, path: str = INVENTORY) -> List[str]:
    """The split's sequence names; 'a+b' joins splits (HELD_OUT: every sequence not trained on)."""
    parts = split.split("+")
    for part in parts:
        if part not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} (or several joined by '+'), got {split!r}")
    return [e["name"] for part in parts for e in inventory(path) if e["split"] == part]


def available(split: str, root: Optional[str] = None) -> List[str]:
    """Names of the split's sequences present under root (each needs img/ and groundtruth_rect.txt)."""
    root = root or realdata_root()
    return [n for n in split_names(split)
            if os.path.isfile(os.path.join(root, n, "groundtruth_rect.txt")) and os.path.isdir(os.path.join(root, n, "img"))]


def load_split(split: str, root: Optional[str] = None, require_all: bool = True) -> List[Sequence]:
    root = root or realdata_root()
    names = split_names(split)
    present = available(split, root)
    missing = sorted(set(names) - set(present))
    if missing and require_all:
        raise FileNotFoundError(f"{len(missing)} {split} sequences missing under {root}: {', '.join(missing)} "
                                "(README, 'Real video: data': scripts/extract_realdata.py extracts them)")
    return [read_otb_sequence(os.path.join(root, n)) for n in present]
