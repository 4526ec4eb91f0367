"""The data layer: the real-sequence inventory and its split, the split loader, and the real-pair sampler
(frame cache, jitter, negatives), on small OTB folders made here from real photos."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from dytrack_ros.data import realdata
from dytrack_ros.data.pairs import CACHE_SIZE, RealPairs, build_frame_cache
from dytrack_ros.data.sequences import generated_suite, read_otb
from dytrack_ros.model import ModelConfig


def test_inventory_names_every_sequence_with_its_source_and_keeps_cuts_of_one_video_together():
    inv = realdata.inventory()
    names = [e["name"] for e in inv]
    assert len(names) == len(set(names))
    for e in inv:
        assert e["split"] in realdata.SPLITS
        assert e["repo"].count("/") == 1 and len(e["commit"]) == 40 and e["frames_dir"] and e["gt_path"]
        assert e["n_gt"] == e["frames"] > 0          # what scripts/extract_realdata.py selects frames by
    val = realdata.split_names("validation")
    assert len(val) >= 8
    split_of = {e["name"]: e["split"] for e in inv}
    # UAV123 cuts of one video (name_1, name_2, ...) must never straddle train and validation
    videos = {}
    for n in names:
        base, _, cut = n.rpartition("_")
        if base and cut.isdigit():
            videos.setdefault(base, set()).add(split_of[n])
    assert all(len(s) == 1 for s in videos.values()), videos
    with pytest.raises(ValueError, match="split must be"):
        realdata.split_names("test")


def write_otb(root, suite, absent=()):
    for seq in suite:
        os.makedirs(root / seq.name / "img")
        rows = []
        for i in range(len(seq)):
            cv2.imwrite(str(root / seq.name / "img" / f"{i + 1:04d}.jpg"), seq.frame(i))
            rows.append("NaN,NaN,NaN,NaN" if i in absent else ",".join(f"{v:.3f}" for v in seq.boxes[i]))
        (root / seq.name / "groundtruth_rect.txt").write_text("\n".join(rows) + "\n")


def test_load_split_names_the_missing_sequences(tmp_path):
    with pytest.raises(FileNotFoundError, match="validation sequences missing") as err:
        realdata.load_split("validation", str(tmp_path))
    assert "Basketball" in str(err.value) and "scripts/extract_realdata.py" in str(err.value)
    assert realdata.load_split("validation", str(tmp_path), require_all=False) == []


@pytest.fixture(scope="module")
def otb_folder(tmp_path_factory, heldout_photos):
    root = tmp_path_factory.mktemp("otb")
    write_otb(root, generated_suite(2, 12, seed=31, photos=heldout_photos), absent={3})
    return root


def test_frame_cache_holds_each_visible_frame_centred_on_its_target_and_is_reused(otb_folder, tmp_path):
    seqs = read_otb(str(otb_folder))
    path = str(tmp_path / "cache.npy")
    arr, index = build_frame_cache(seqs, path)
    assert arr.shape == (2 * 12 - 2, CACHE_SIZE, CACHE_SIZE, 3)          # the NaN rows are not cached
    assert {(si, fi) for si, fi, _, _ in index} == {(s, f) for s in range(2) for f in range(12) if f != 3}
    si, fi, w, h = index[5]
    box = seqs[si].boxes[fi]
    # the cached crop spans 8 target sizes: the box scales by CACHE_SIZE / (8 sqrt(wh)) and keeps its aspect
    k = CACHE_SIZE / (8 * np.sqrt(box[2] * box[3]))
    assert w == pytest.approx(box[2] * k) and h == pytest.approx(box[3] * k)
    mtime = os.path.getmtime(path)
    arr2, index2 = build_frame_cache(seqs, path)
    assert os.path.getmtime(path) == mtime and index2 == index and np.array_equal(arr2[5], arr[5])


def test_real_pairs_put_the_target_where_the_label_says(otb_folder, tmp_path):
    cfg = ModelConfig(stem="nanotrack_v2", stem_channels=48, template_size=64, search_size=128, pretrained_stem=False)
    seqs = read_otb(str(otb_folder))
    pairs = RealPairs(cfg, seqs, str(tmp_path / "c.npy"), seed=3, negatives=0.3)
    assert pairs.cache_size == 256                 # samples the target as finely as a 128 px search crop
    items = [item for item, _ in zip(iter(pairs), range(60))]
    present = np.array([float(p) for *_, p in items])
    assert 0.1 < 1 - present.mean() < 0.6                     # some negatives, mostly positives
    for template, search, gt, p in items:
        assert template.shape == (3, 64, 64) and search.shape == (3, 128, 128)
        assert np.isfinite(gt.numpy()).all() and 0 < gt[2] < 1 and 0 < gt[3] < 1
        if p:   # the jittered target center stays inside the search crop
            assert 0 <= gt[0] <= 1 and 0 <= gt[1] <= 1
    # same seed, same stream (resumable training draws reproducible data)
    again = [item for item, _ in zip(iter(RealPairs(cfg, seqs, str(tmp_path / "c.npy"), seed=3, negatives=0.3)),
                                     range(5))]
    assert all(np.array_equal(a[1].numpy(), b[1].numpy()) for a, b in zip(items[:5], again))


def test_negatives_beside_the_target_leave_it_out_of_the_search_crop(otb_folder, tmp_path):
    """--beside-target: the target-absent pairs cut from the target's own frame (its surroundings) must not hold the
    target. On a cached region painted grey with the target pure red, the crop holds no red pixel."""
    cfg = ModelConfig(stem="nanotrack_v2", stem_channels=48, template_size=64, search_size=128, pretrained_stem=False)
    pairs = RealPairs(cfg, read_otb(str(otb_folder)), str(tmp_path / "c.npy"), seed=3, negatives=1.0,
                      beside_target=1.0)
    rng = np.random.default_rng(0)
    region = np.full((pairs.cache_size, pairs.cache_size, 3), 128, np.uint8)
    c, w, h = pairs.cache_size / 2, 40.0, 24.0            # a target 8 sizes across its cached region, as cached
    region[int(c - h / 2):int(c + h / 2), int(c - w / 2):int(c + w / 2)] = (0, 0, 255)
    for _ in range(50):
        crop = pairs._crop_beside_target(rng, region, np.array([c - w / 2, c - h / 2, w, h]))
        assert crop.shape == (128, 128, 3)
        assert not ((crop[..., 2] > 200) & (crop[..., 0] < 50)).any()
    items = [item for item, _ in zip(iter(pairs), range(10))]
    assert all(float(p) == 0.0 for *_, p in items)          # every pair a negative here, none labelled present


def test_train_command_reads_real_sequences(otb_folder, tmp_path, tiny_first_exit_bundle):
    """`--data real:DIR` trains on a folder laid out like the inventory (here: two sequences renamed to
    training names, as the loader requires every training sequence of the split)."""
    root = tmp_path / "realdata"
    names = realdata.split_names("train")
    for i, name in enumerate(names):
        src = otb_folder / sorted(os.listdir(otb_folder))[i % 2]
        os.symlink(src, root / name) if root.exists() else (os.makedirs(root), os.symlink(src, root / name))
    from dytrack_ros.training import train
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(stem="nanotrack_v2", stem_channels=48, template_size=64, search_size=128,
                                   dim=32, heads=2, depth=2, stage_ends=[1, 2], head_channels=16)))
    train.main(["--out", str(tmp_path / "run"), "--data", f"real:{root}", "--model-config", str(cfg),
                "--steps", "2", "--batch", "2", "--workers", "0", "--warmup", "1", "--negatives", "0.5"])
    assert os.path.isfile(tmp_path / "run" / "final.pt")
    # the first exit's IoU head alone (the shipped design, small), with negatives beside the target: nothing else moves
    from dytrack_ros.model import load_checkpoint
    start = os.path.join(tiny_first_exit_bundle, "model.pt")
    train.main(["--out", str(tmp_path / "iou"), "--data", f"real:{root}", "--init", start,
                "--steps", "2", "--batch", "4", "--workers", "0", "--warmup", "1", "--negatives", "0.5",
                "--beside-target", "0.5", "--trainable", "first_exit_iou", "--lr", "0.1"])
    before = load_checkpoint(start)[0].state_dict()
    after = load_checkpoint(str(tmp_path / "iou" / "final.pt"))[0].state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("nano_iou.") for k in moved), moved
    assert os.path.isfile(tmp_path / "cache" / f"train_{len(names)}seq_256px.npy")   # 128 px search at factor 4


def test_extract_script_reads_the_project_inventory_from_a_git_mirror(tmp_path):
    """scripts/extract_realdata.py (the README's line) on a real git repository laid out like the sources."""
    import subprocess
    import sys
    from conftest import ROOT
    repo = tmp_path / "mirrors" / "someone+clips" / "repo"
    (repo / "Walk" / "img").mkdir(parents=True)
    for i in range(1, 5):
        cv2.imwrite(str(repo / "Walk" / "img" / f"{i:04d}.jpg"), np.full((20, 30, 3), 40 * i, np.uint8))
    (repo / "Walk" / "groundtruth_rect.txt").write_text("1,2,5,6\nNaN,NaN,NaN,NaN\n3,4,5,6\n4,5,5,6\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "clips"], check=True)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    entry = {"name": "Walk", "split": "train", "repo": "someone/clips", "commit": commit, "frames_dir": "Walk/img",
             "gt_path": "Walk/groundtruth_rect.txt", "frames": 4, "n_gt": 4}
    (tmp_path / "inv.json").write_text(json.dumps({"about": "test", "sequences": [entry]}))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "extract_realdata.py"), "--inventory",
                          str(tmp_path / "inv.json"), "--out", str(tmp_path / "data")], capture_output=True, text=True,
                         env={**os.environ, "MIRROR_ROOT": str(tmp_path / "mirrors")})
    assert out.returncode == 0, out.stderr
    seq = realdata.read_otb_sequence(str(tmp_path / "data" / "Walk"))
    assert len(seq) == 4 and np.isnan(seq.boxes[1]).all() and seq.boxes[2].tolist() == [3, 4, 5, 6]
    assert seq.frame(3).mean() == pytest.approx(160, abs=2)
