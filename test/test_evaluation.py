"""Dataset readers on real folder layouts, the generated suite, and the benchmark/model-card commands end to end."""
import json
import os
import re

import cv2
import numpy as np
import pytest

from dytrack_ros.data.sequences import (generated_suite, read_got10k, read_lasot, read_otb, read_trackingnet,
                                        read_uav123)


def write_frames(folder, n, names):
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        img = np.full((40, 60, 3), 20 * i, np.uint8)
        cv2.imwrite(os.path.join(folder, names(i)), img)


def test_otb_layout(tmp_path):
    write_frames(tmp_path / "Car" / "img", 3, lambda i: f"{i + 1:04d}.jpg")
    (tmp_path / "Car" / "groundtruth_rect.txt").write_text("1,2,3,4\n5\t6\t7\t8\n9 10 11 12\n")
    (seq,) = read_otb(str(tmp_path))
    assert seq.name == "Car" and len(seq) == 3 and seq.boxes[1].tolist() == [5, 6, 7, 8]
    assert seq.frame(2).shape == (40, 60, 3)


def test_uav123_layout_nan_rows_mean_target_out_of_view(tmp_path):
    write_frames(tmp_path / "data_seq" / "UAV123" / "group3" , 4, lambda i: f"{i + 1:06d}.jpg")
    os.makedirs(tmp_path / "anno" / "UAV123")
    (tmp_path / "anno" / "UAV123" / "group3.txt").write_text("1,1,5,5\nNaN,NaN,NaN,NaN\nnan,nan,nan,nan\n4,4,5,5\n")
    (seq,) = read_uav123(str(tmp_path))
    assert seq.name == "group3" and len(seq) == 4
    assert seq.visible_mask().tolist() == [True, False, False, True]


def test_lasot_layout_with_occlusion_flags(tmp_path):
    d = tmp_path / "cat" / "cat-1"
    write_frames(d / "img", 4, lambda i: f"{i + 1:08d}.jpg")
    (d / "groundtruth.txt").write_text("1,1,5,5\n2,2,5,5\n3,3,5,5\n4,4,5,5\n")
    (d / "full_occlusion.txt").write_text("0,1,0,0")
    (d / "out_of_view.txt").write_text("0,0,0,1")
    (seq,) = read_lasot(str(tmp_path))
    assert seq.visible_mask().tolist() == [True, False, True, False]


def test_got10k_layout_with_absence(tmp_path):
    d = tmp_path / "GOT-10k_Train_000001"
    write_frames(d, 3, lambda i: f"{i + 1:08d}.jpg")
    (d / "groundtruth.txt").write_text("1,1,5,5\n2,2,5,5\n3,3,5,5\n")
    (d / "absence.label").write_text("0\n1\n0\n")
    (seq,) = read_got10k(str(tmp_path))
    assert seq.visible_mask().tolist() == [True, False, True]


def test_trackingnet_layout_sorts_frames_numerically(tmp_path):
    write_frames(tmp_path / "TRAIN_0" / "frames" / "abc", 12, lambda i: f"{i}.jpg")
    os.makedirs(tmp_path / "TRAIN_0" / "anno")
    (tmp_path / "TRAIN_0" / "anno" / "abc.txt").write_text("".join(f"{i},1,5,5\n" for i in range(12)))
    (seq,) = read_trackingnet(str(tmp_path))
    assert [os.path.basename(f) for f in seq.frames[:3]] == ["0.jpg", "1.jpg", "2.jpg"]
    assert seq.frames[10].endswith("10.jpg")


def test_generated_suite_is_reproducible_and_held_out(heldout_photos):
    a = generated_suite(2, 10, seed=5)
    b = generated_suite(2, 10, seed=5)
    assert np.array_equal(a[1].boxes, b[1].boxes) and np.array_equal(a[1].frame(9), b[1].frame(9))
    from dytrack_ros.data.photos import list_photos
    assert not set(list_photos("heldout")) & set(list_photos("train"))


def write_otb_folder(root, suite, absent=()):
    """Write sequences as an OTB-layout folder (JPEG frames, 1-based comma-separated boxes); rows listed in
    `absent` are written as NaN (target out of view)."""
    for seq in suite:
        write = root / seq.name
        os.makedirs(write / "img")
        rows = []
        for i in range(len(seq)):
            cv2.imwrite(str(write / "img" / f"{i + 1:04d}.jpg"), seq.frame(i))
            rows.append("NaN,NaN,NaN,NaN" if i in absent else ",".join(f"{v:.2f}" for v in seq.boxes[i]))
        (write / "groundtruth_rect.txt").write_text("\n".join(rows) + "\n")


def main_table(text: str, suite_name: str) -> dict:
    """RESULTS.md's main table of one suite: tracker name -> its other cells (AUC first), as printed."""
    section = text.split(f"## {suite_name}\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| tracker | AUC |")) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_benchmark_command_writes_results_and_charts(tiny_bundle, tmp_path):
    from dytrack_ros.evaluation import benchmark
    out = tmp_path / "bench"
    write_otb_folder(tmp_path / "otb", generated_suite(2, 12, seed=77), absent={6, 7})
    benchmark.main(["--model", tiny_bundle, "--out", str(out), "--real", "", "--dataset", f"otb:{tmp_path / 'otb'}",
                    "--photo-sequences", "1", "--length", "8", "--thresholds", "0.5", "0", "1.5", "--peers", "KCF",
                    "MOSSE", "CSRT", "--video-frames", "5", "--threads", "1"])
    text = (out / "RESULTS.md").read_text()
    for row in ("DyTrack exit 1 forced", "DyTrack exit 3 forced (full depth)", "DyTrack dynamic t=0.50", "| KCF |",
                "| MOSSE |", "| CSRT |", "machine:", "forward-backward", "Per-sequence success AUC",
                "Lost and found", "threads per tracker: 1"):
        assert row in text, row
    # the OTB suite (the first one written) comes before the photo-built one
    assert text.index("## otb") < text.index("## photo-built")
    for png in ("speed_accuracy.png", "exit_histogram.png"):
        assert cv2.imread(str(out / png)) is not None
    res = json.load(open(out / "results.json"))
    otb = next(iter(res["suites"].values()))
    # RESULTS.md's main table is results.json, as printed: AUC, precision and mean stages of every row of each suite
    for suite_name, suite in res["suites"].items():
        rows = main_table(text, suite_name)
        assert set(rows) == set(suite), suite_name
        for name, r in suite.items():
            cells = rows[name]
            assert cells[0] == f"{100 * r['auc']:.1f}", (suite_name, name, "AUC")
            assert cells[1] == f"{100 * r['precision']:.1f}", (suite_name, name, "precision")
            if "mean_stages" in r:
                assert cells[7] == f"{r['mean_stages']:.2f}", (suite_name, name, "mean stages")
        # the stage counts follow the policy: mean stages is the mean of the stage shares, a forced exit k runs k
        # stages on every frame, threshold 0 stops at the first exit (as exit 1 forced), a threshold above any score
        # runs every stage (as full depth), and threshold 0.5 lies in between
        k = 3
        for name, r in suite.items():
            if "stage_share" in r:
                assert len(r["stage_share"]) == k and abs(sum(r["stage_share"]) - 1) < 1e-9, name
                assert abs(r["mean_stages"] - sum((i + 1) * x for i, x in enumerate(r["stage_share"]))) < 1e-9, name
        for stage in range(1, k + 1):
            r = suite[f"DyTrack exit {stage} forced" + (" (full depth)" if stage == k else "")]
            assert r["mean_stages"] == stage and r["stage_share"][stage - 1] == 1.0
        first, full = suite["DyTrack exit 1 forced"], suite[f"DyTrack exit {k} forced (full depth)"]
        never, always = suite["DyTrack dynamic t=0.00"], suite["DyTrack dynamic t=1.50"]
        assert never["mean_stages"] == 1.0 and never["auc"] == first["auc"], suite_name
        assert always["mean_stages"] == k and always["auc"] == full["auc"], suite_name
        mid = suite["DyTrack dynamic t=0.50"]
        assert 1.0 < mid["mean_stages"] < k, (suite_name, mid["stage_share"])
    r = otb["DyTrack dynamic t=0.50"]
    assert set(r["per_sequence_auc"]) == {s for s in os.listdir(tmp_path / "otb")}
    lf = r["lost_and_found"]
    assert lf["absent_frames"] == 4 and lf["visible_frames"] == 2 * 11 - 4
    assert "lost_and_found" not in otb["KCF"]   # peers report no state


def test_nanotrack_peer_uses_the_shipped_graphs_and_refuses_a_folder_without_them(tmp_path):
    from dytrack_ros.evaluation.peers import OpenCVTracker
    OpenCVTracker("NanoTrack")                                  # models/third_party/nanotrack_v2
    with pytest.raises(ValueError, match="not found"):
        OpenCVTracker("NanoTrack", str(tmp_path))


def test_model_card_command_calibrates_and_writes_card(tiny_bundle, tmp_path):
    import shutil
    from dytrack_ros.evaluation import model_card
    model = tmp_path / "m"
    shutil.copytree(tiny_bundle, model)
    card = tmp_path / "CARD.md"
    card.write_text("# card\n\nintro\n\n<!-- results:start -->\nSTALE-RESULTS\n<!-- results:end -->\n\nfooter\n")
    model_card.main(["--model", str(model), "--real", "", "--sequences", "1", "--length", "6", "--thresholds", "0.5",
                     "--calibrate", "--card", str(card), "--ablation", f"same={model}",
                     "--ablation", f"twice={model},{model}", "--ablation-sequences", "1", "--threads", "1"])
    text = card.read_text()
    assert "intro" in text and "footer" in text and "STALE-RESULTS" not in text
    assert "exit 3 forced (full depth)" in text and "| same | 1 |" in text
    # several runs of one variant: the mean, and the range over the runs (identical runs: min = max = mean)
    row = next(line for line in text.splitlines() if line.startswith("| twice | 2 |"))
    mean, lo, hi = (float(x) for x in re.match(r"\| twice \| 2 \| ([\d.]+) \[([\d.]+)-([\d.]+)\]", row).groups())
    assert lo == hi == mean
    manifest = json.load(open(model / "manifest.json"))
    assert "threshold_calibration" in manifest and manifest["exit_thresholds"][-1] == 0.0


def test_leave_one_out_threshold_never_scores_a_sequence_with_a_threshold_it_chose():
    """Three sequences; t=0.3 is right for b and c, t=0.7 only for a. Sequence a must run at the threshold b and c
    pick (0.3) and score badly: its own preference may not leak into its score."""
    from dytrack_ros.data.sequences import Sequence
    from dytrack_ros.evaluation.runner import RunResult, leave_one_out_policy, summarize
    gt = np.array([[10.0, 10.0, 20.0, 20.0]] * 5)
    suite = [Sequence(n, [None] * 5, gt) for n in "abc"]
    good, bad = gt.copy(), gt + [200.0, 0.0, 0.0, 0.0]

    def run(name, boxes, stages):
        return RunResult(name, boxes, np.ones(4), np.full(4, stages))
    runs = {"DyTrack exit 2 forced (full depth)": [run(n, bad, 2) for n in "abc"],
            "DyTrack dynamic t=0.30": [run("a", bad, 1), run("b", good, 1), run("c", good, 1)],
            "DyTrack dynamic t=0.70": [run("a", good, 2), run("b", bad, 2), run("c", good, 2)]}
    def summaries(runs):
        return {name: summarize(rr, suite, 2) for name, rr in runs.items()}
    chosen, thresholds = leave_one_out_policy(runs, summaries(runs), 2)
    assert thresholds == [0.3, 0.7, 0.3]   # a: b,c prefer 0.3; b: a,c tie at 0.7 (0.3 fails a); c: 0.3 fewer stages
    assert chosen[0] is runs["DyTrack dynamic t=0.30"][0]
    one_threshold = {k: v for k, v in runs.items() if "0.70" not in k}
    assert leave_one_out_policy(one_threshold, summaries(one_threshold), 2) is None


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_nanotrack_reference_loop_follows_the_demo_walker(demo_walker, version):
    """NanoTrack's own loop on its shipped published graphs keeps the man (IoU >= 0.5 with the reference boxes)."""
    from dytrack_ros.evaluation.metrics import box_iou
    from dytrack_ros.evaluation.peers import NanoTrackReference
    frames, init, reference = demo_walker
    ref = NanoTrackReference(version)
    ref.initialize(frames[0], init)
    boxes = {i: ref.update(frames[i]) for i in range(1, len(frames))}
    for i, want in reference.items():
        assert box_iou(np.array([boxes[i]]), np.array([want]))[0] >= 0.5, (i, boxes[i], want)


def test_first_exit_alone_tracks_like_nanotracks_own_loop(demo_walker):
    """Loop parity: the shipped tracker with stage 1 forced decodes NanoTrack's head as NanoTrack does, so on the same
    frames its boxes stay with the reference loop's (crops differ by a pixel: 128 / 256 px against 127 / 255)."""
    from conftest import SHIPPED_MODEL
    from dytrack_ros.evaluation.metrics import box_iou
    from dytrack_ros.evaluation.peers import NanoTrackReference
    from dytrack_ros.runtime import build_tracker
    frames, init, _ = demo_walker
    ref = NanoTrackReference("v2")
    ref.initialize(frames[0], init)
    ours = build_tracker(SHIPPED_MODEL, "onnxruntime", threads=1)
    ours.initialize(frames[0], init)
    ious = [box_iou(np.array([ref.update(f)]), np.array([ours.track(f, force_stages=1).box]))[0] for f in frames[1:]]
    assert np.mean(ious) >= 0.85 and min(ious) >= 0.6, np.round(ious, 2)


def test_nanotrack_reference_refuses_a_folder_without_its_graphs(tmp_path):
    from dytrack_ros.evaluation.peers import NanoTrackReference
    with pytest.raises(ValueError, match="not found"):
        NanoTrackReference("v2", folder=str(tmp_path))
    with pytest.raises(ValueError, match="version"):
        NanoTrackReference("v9")


def test_exit_boxes_reads_every_exit_on_the_first_exits_crops(demo_walker, tmp_path):
    """Refining exits that have learned nothing (their last layer is zero) give the first exit's boxes exactly; the
    first exit's column is its own box against the truth, on real video."""
    import torch
    from dytrack_ros.data.sequences import Sequence
    from dytrack_ros.evaluation.exit_boxes import exit_box_ious
    from dytrack_ros.model import DyTrackNet, ModelConfig, save_checkpoint
    from dytrack_ros.runtime import build_tracker
    frames, init, reference = demo_walker
    torch.manual_seed(0)
    cfg = ModelConfig(stem="nanotrack_v2", stem_channels=48, template_size=128, search_size=256,
                      first_exit="nanotrack_v2", dim=32, heads=2, depth=2, stage_ends=(1, 2), exit_head="refine")
    save_checkpoint(str(tmp_path / "model.pt"), DyTrackNet(cfg).eval())
    boxes = np.array([init] + [reference[i] if i in reference else [np.nan] * 4 for i in range(1, len(frames))], float)
    seq = Sequence("walker", frames, boxes)
    ious = exit_box_ious(build_tracker(str(tmp_path), "torch", device="cpu", threads=1), seq)
    assert ious.shape == (int(np.isfinite(boxes[1:, 0]).sum()), 3)
    assert np.allclose(ious[:, 1], ious[:, 0]) and np.allclose(ious[:, 2], ious[:, 0])
    assert ious[:, 0].mean() > 0.5        # NanoTrack's head follows the walker
