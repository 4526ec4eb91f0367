"""Real photographs for training and evaluation, from Debian's opencv-doc package.

`scripts/fetch_data.sh` unpacks the package into .data/opencv-doc; DYTRACK_PHOTOS overrides the folder.
The split is fixed by file name (a hash), so held-out photos are never used in training.
"""
from __future__ import annotations

import glob
import hashlib
import os
from typing import List

import cv2
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, ".data", "opencv-doc", "usr", "share", "doc", "opencv-doc", "examples", "data")
HELD_OUT_SHARE = 0.25
# Synthetic, near-uniform or text-only images make poor targets and backgrounds.
EXCLUDE = {"chessboard.png", "gradient.png", "mask.png", "notes.png", "detect_blob.png", "digits.png", "ml.png",
           "imageTextN.png", "imageTextR.png", "sudoku.png", "aloeGT.png", "opencv-logo.png", "opencv-logo-white.png",
           "pca_test1.jpg", "ellipses.jpg", "pic1.png", "pic2.png", "pic3.png", "pic4.png", "pic5.png", "pic6.png",
           "LinuxLogo.jpg", "WindowsLogo.jpg", "text_defocus.jpg", "text_motion.jpg", "tmpl.png", "templ.png", "board.jpg"}


def data_dir() -> str:
    return os.environ.get("DYTRACK_PHOTOS", DEFAULT_DATA_DIR)


def is_held_out(name: str) -> bool:
    digest = hashlib.sha1(os.path.basename(name).encode()).digest()
    return digest[0] / 255.0 < HELD_OUT_SHARE


def list_photos(split: str, folder: str = None) -> List[str]:
    """split: 'train' or 'heldout'."""
    if split not in ("train", "heldout"):
        raise ValueError("split must be 'train' or 'heldout'")
    folder = folder or data_dir()
    files = sorted(glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.png")))
    files = [f for f in files if os.path.basename(f) not in EXCLUDE]
    if not files:
        raise FileNotFoundError(f"no photos in {folder}: run scripts/fetch_data.sh (Debian opencv-doc) first")
    want_held = split == "heldout"
    return [f for f in files if is_held_out(f) == want_held]


def load_photos(split: str, folder: str = None, max_side: int = 640) -> List[np.ndarray]:
    out = []
    for path in list_photos(split, folder):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < 64:
            continue
        s = max_side / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        out.append(img)
    return out
