"""The model we ship: its files agree with each other, its card names its data, and it tracks real video (on the
validation sequences when they are on this machine; see the README's 'Real video: data')."""
import json
import os

import numpy as np
import pytest

from conftest import ROOT, SHIPPED_MODEL, real_crops
from dytrack_ros.backends import create_backend
from dytrack_ros.contract import Manifest
from dytrack_ros.data import realdata
from dytrack_ros.data.sequences import Sequence
from dytrack_ros.evaluation.runner import evaluate_dytrack
from dytrack_ros.model import ModelConfig, load_checkpoint
from dytrack_ros.runtime import build_tracker


def test_shipped_graphs_match_shipped_checkpoint():
    m = Manifest.load(SHIPPED_MODEL)                        # verifies every SHA-256
    model, _ = load_checkpoint(os.path.join(SHIPPED_MODEL, "model.pt"))
    # the manifest holds the config as exported; fields added since then take their defaults on both sides
    assert model.cfg == ModelConfig.from_dict(m.model_config)
    t, s = (x.numpy() for x in real_crops(model, 11))
    ort, ref = create_backend("onnxruntime", SHIPPED_MODEL), create_backend("torch", SHIPPED_MODEL, device="cpu")
    for b in (ort, ref):
        b.set_template(t)
    for k in range(m.num_stages):
        a, c = ort.run_stage(k, s if k == 0 else None), ref.run_stage(k, s if k == 0 else None)
        assert np.abs(a.score_map - c.score_map).max() < 1e-4 and abs(a.score - c.score) < 1e-4


def test_model_card_names_every_sequence_and_the_calibration_is_stored():
    card = open(os.path.join(SHIPPED_MODEL, "MODEL_CARD.md")).read()
    manifest = json.load(open(os.path.join(SHIPPED_MODEL, "manifest.json")))
    k = Manifest.read(SHIPPED_MODEL).num_stages
    assert "<!-- results:start -->" in card and f"exit {k} forced (full depth)" in card
    # thresholds chosen on the validation frames: the card must carry the honest, leave-one-sequence-out figure
    assert "threshold chosen leave-one-sequence-out" in card
    for e in realdata.inventory():
        assert f"| {e['split']} | {e['name']} |" in card and e["commit"] in card, e["name"]
    # thresholds chosen on every held-out sequence by the benchmark's --calibrate, with its leave-one-out figure
    calibration = manifest["threshold_calibration"]
    assert "real validation+calibration split" in calibration["rule"]
    assert calibration["leave_one_sequence_out_auc"] > 0 and str(calibration["chosen"]) in calibration["sweep"]
    assert manifest["exit_thresholds"][:-1] == [calibration["chosen"]] * (k - 1)
    assert set(manifest["tracker"]) >= {"later_exits", "best_scored", "absent_threshold"}


VALIDATION = realdata.available("validation")


@pytest.mark.skipif(len(VALIDATION) < 3, reason="the real validation sequences are not on this machine "
                                                  "(README, 'Real video: data': scripts/extract_realdata.py extracts them)")
def test_tracks_real_validation_video():
    """The shipped policy on the first 150 frames of three validation sequences that the card reports as tracked
    (a car from a drone, a face, a wakeboarder); floors well under the measured values."""
    seqs = {s.name: s for s in realdata.load_split("validation", require_all=False)}
    suite = [Sequence(n, seqs[n].frames[:150], seqs[n].boxes[:150]) for n in ("car16_2", "Freeman1", "wakeboard10")
             if n in seqs]
    tracker = build_tracker(SHIPPED_MODEL, "onnxruntime", threads=1)
    dynamic = evaluate_dytrack(tracker, suite)
    assert dynamic["auc"] > 0.45 and dynamic["precision"] > 0.5, dynamic


def test_follows_the_demo_walker_until_the_crossing(demo_walker):
    """Real video in every run (no labelled data needed): the first 20 frames of the demo, before the crossing
    (the model keeps him through it to about frame 37, README; the reference boxes cover the first 20)."""
    from dytrack_ros.evaluation.metrics import box_iou
    frames, init, reference = demo_walker
    tracker = build_tracker(SHIPPED_MODEL, "onnxruntime", threads=1)
    tracker.initialize(frames[0], init)
    boxes = {i: tracker.track(frames[i]).box for i in range(1, 21)}
    ious = {i: float(box_iou(boxes[i], ref)[0]) for i, ref in reference.items()}
    assert min(ious.values()) > 0.5, ious


def test_the_dynamic_policy_on_the_demo_video_follows_the_scores(demo_walker):
    """Real video, every run: the exit policy as the frames' own scores say it must go. With every early threshold
    at 1.0 (no predicted IoU reaches it) each frame runs every stage; at 0.75 some frames stop at the first exit and
    some go deeper; at the calibrated thresholds, and in every case, a frame ran n stages exactly when the exits before
    its last scored under their thresholds and the last one met its own (or was the last stage), and the answer is
    the best-scored exit's (manifest: best_scored)."""
    frames, init, _ = demo_walker
    k = Manifest.read(SHIPPED_MODEL).num_stages
    calibrated = Manifest.read(SHIPPED_MODEL).exit_thresholds
    runs = {}
    for name, thresholds in (("calibrated", calibrated), ("0.75", [0.75] * (k - 1) + [0.0]),
                             ("1.0", [1.0] * (k - 1) + [0.0])):
        tracker = build_tracker(SHIPPED_MODEL, "onnxruntime", threads=1, thresholds=thresholds)
        assert tracker.params.thresholds == thresholds and tracker.params.best_scored
        tracker.initialize(frames[0], init)
        results = [tracker.track(frames[i]) for i in range(1, 21)]
        for i, r in enumerate(results, 1):
            n, s = r.stages_run, r.stage_scores
            where = (name, i, n, [round(x, 3) for x in s])
            assert r.lost_frames == 0 and len(s) == n and 1 <= n <= k, where
            assert all(s[j] < thresholds[j] for j in range(n - 1)), where          # went on only when in doubt
            assert n == k or s[n - 1] >= thresholds[n - 1], where                  # stopped only when confident
            assert r.score == max(s), where                                       # the best-scored exit answers
        runs[name] = [r.stages_run for r in results]
    assert runs["1.0"] == [k] * 20, runs["1.0"]
    assert 1 in runs["0.75"] and max(runs["0.75"]) > 1, runs["0.75"]
    assert runs["calibrated"].count(1) >= 15, runs["calibrated"]     # the calibrated policy mostly stops at exit 1


# --- the figures quoted in README, docs/, card and RESULTS.md are the measurements (results.json, the manifest) ---

def _flat(path: str) -> str:
    """A text file with its line breaks and runs of spaces collapsed, so a quoted phrase may wrap."""
    return " ".join(open(os.path.join(ROOT, path)).read().split())


def _table_after(text: str, title: str) -> dict:
    """The first '| tracker | AUC |' table after `title`: tracker name -> {column heading: cell as printed}."""
    lines = text[text.index(title):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| tracker | AUC |"))
    head = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = dict(zip(head, cells))
    return rows


def _figures():
    """The shipped results, as the documents print them (one decimal for AUC and precision, 2 for ms and stages)."""
    results = json.load(open(os.path.join(ROOT, "benchmarks", "results.json")))
    manifest = json.load(open(os.path.join(SHIPPED_MODEL, "manifest.json")))
    real = next(v for k, v in results["suites"].items() if k.startswith("real "))
    loo = real["DyTrack dynamic, threshold chosen leave-one-sequence-out"]
    k = Manifest.read(SHIPPED_MODEL).num_stages
    pct = lambda x: f"{100 * x:.1f}"                                            # noqa: E731
    f = {"results": results, "manifest": manifest, "real": real, "loo": loo, "k": k, "pct": pct,
         "first": real["DyTrack exit 1 forced"], "off": real["DyTrack exit 1 forced, re-detection off"],
         "v2": real["NanoTrack v2 reference loop"], "v3": real["NanoTrack v3 reference loop"],
         "cv2": real["cv2.TrackerNano (NanoTrack v2)"], "csrt": real["CSRT"], "kcf": real["KCF"],
         "deeper": [real[f"DyTrack exit {s} forced" + (" (full depth)" if s == k else "")] for s in range(2, k + 1)],
         "chosen": manifest["threshold_calibration"]["chosen"]}
    return f


def test_the_calibration_in_the_manifest_is_the_benchmark_runs():
    f = _figures()
    cal, bench = f["manifest"]["threshold_calibration"], f["results"]["calibration"]
    assert cal == bench                                       # the run that wrote the thresholds wrote results.json
    assert abs(cal["leave_one_sequence_out_auc"] - f["loo"]["auc"]) < 1e-12
    assert abs(cal["in_sample_auc"] - f["real"][f"DyTrack dynamic t={cal['chosen']:.2f}"]["auc"]) < 1e-12
    assert abs(cal["full_depth_auc"] - f["deeper"][-1]["auc"]) < 1e-12
    for t, row in cal["sweep"].items():
        r = f["real"][f"DyTrack dynamic t={float(t):.2f}"]
        assert abs(row["auc"] - r["auc"]) < 1e-12 and abs(row["mean_stages"] - r["mean_stages"]) < 1e-12, t


def test_results_md_and_the_cards_tables_print_results_json():
    f = _figures()
    cal, pct = f["manifest"]["threshold_calibration"], f["pct"]
    results_md = open(os.path.join(ROOT, "benchmarks", "RESULTS.md")).read()
    card = open(os.path.join(SHIPPED_MODEL, "MODEL_CARD.md")).read()
    assert (f"{cal['chosen']:.2f} at every early exit" in results_md
            and f"in-sample AUC {pct(cal['in_sample_auc'])}; the same rule applied leave-one-sequence-out: "
                f"{pct(cal['leave_one_sequence_out_auc'])} (the figure to quote)" in results_md)
    assert (f"{cal['chosen']:.2f} at every early exit" in card
            and f"(in-sample AUC {pct(cal['in_sample_auc'])}); the same rule leave-one-sequence-out: "
                f"{pct(cal['leave_one_sequence_out_auc'])}, the figure to quote" in card)
    for doc, text, title in [("RESULTS.md", results_md, "## {}"), ("MODEL_CARD.md", card, "\n{}:\n")]:
        for suite_name, suite in f["results"]["suites"].items():
            rows = _table_after(text, title.format(suite_name))
            assert set(rows) == set(suite), (doc, suite_name)
            for name, r in suite.items():
                row = rows[name]
                assert row["AUC"] == pct(r["auc"]) and row["precision@20px"] == pct(r["precision"]), (doc, name)
                assert row["ms/frame"] == f"{r['ms_per_frame']:.2f}", (doc, name)
                if "mean_stages" in r:
                    assert row["mean stages"] == f"{r['mean_stages']:.2f}", (doc, name)


def test_the_figures_quoted_in_readme_docs_and_card_are_the_results():
    """Every figure the README's, docs/benchmarks.md's, docs/model.md's and the card's prose quote from the shipped run,
    formatted from results.json and the manifest: a figure edited by hand, or left from an older run, fails here with
    the phrase that should be there."""
    f = _figures()
    pct, loo, first, off, real = f["pct"], f["loo"], f["first"], f["off"], f["real"]
    v2, v3, cv2n, deeper, chosen = f["v2"], f["v3"], f["cv2"], f["deeper"], f["chosen"]
    lead = pct(loo["auc"] - first["auc"])
    ratio = f"{loo['ms_per_frame'] / v2['ms_per_frame']:.1f}x"
    stop_first = f"{100 * loo['stage_share'][0]:.0f}%"
    seq_loo, seq_first = loo["per_sequence_auc"], first["per_sequence_auc"]
    sweep = {t: real[f"DyTrack dynamic t={t:.2f}"] for t in (chosen - 0.1, chosen, chosen + 0.1)}
    readme = [
        f"trained on: {pct(loo['auc'])} AUC (thresholds chosen leave-one-sequence-out; the first exit alone "
        f"{pct(first['auc'])}) against {pct(v2['auc'])} for NanoTrack's own loop on the same weights and "
        f"{pct(cv2n['auc'])} for `cv2.TrackerNano`, at {ratio} NanoTrack's time per frame",
    ]
    benchmarks = [
        f"DyTrack dynamic, thresholds chosen leave-one-sequence-out, **{pct(loo['auc'])}** / {pct(loo['precision'])} / "
        f"{loo['ms_per_frame']:.2f} at {loo['mean_stages']:.2f} of {f['k']} stages ({chosen:g} chosen for every "
        f"sequence, now the shipped threshold; {stop_first} of frames stop at the first exit)",
        f"first exit alone **{pct(first['auc'])}** / {pct(first['precision'])} / {first['ms_per_frame']:.2f}, and with "
        f"re-detection off {pct(off['auc'])} / {pct(off['precision'])} / {off['ms_per_frame']:.2f}",
        "exits 2, 3, 4 forced " + ", ".join(pct(r["auc"]) for r in deeper),
        f"NanoTrack v2's own tracker loop** (ours, `evaluation/peers.py`, on the published graphs) {pct(v2['auc'])} / "
        f"{pct(v2['precision'])} / {v2['ms_per_frame']:.2f}; NanoTrack v3's loop {pct(v3['auc'])} / "
        f"{pct(v3['precision'])} / {v3['ms_per_frame']:.2f}; `cv2.TrackerNano` {pct(cv2n['auc'])} / "
        f"{pct(cv2n['precision'])} / {cv2n['ms_per_frame']:.2f}; CSRT {pct(f['csrt']['auc'])}; KCF {pct(f['kcf']['auc'])}",
        "in this run Soccer scores " + " / ".join(pct(r["per_sequence_auc"]["Soccer"]) for r in sweep.values()),
        *(f"{q} {pct(seq_loo[q])} / {pct(seq_first[q])}" for q in ("airplane-1", "Soccer", "S1001", "Basketball",
                                                                   "Bolt")),
        f"group3_2 (10-20 px targets among look-alikes) {pct(seq_loo['group3_2'])} / {pct(seq_first['group3_2'])}",
    ]
    model = [
        f"The policy ({pct(loo['auc'])} leave-one-out at {chosen:g}) now leads the first exit alone by {lead}",
        f"transformer stages trained here on 12k frames score {min(pct(r['auc']) for r in deeper)}-"
        f"{max(pct(r['auc']) for r in deeper)} alone against its {pct(first['auc'])} ({pct(off['auc'])} without "
        "re-detection)",
    ]
    card = [
        f"in the 22:59 run {chosen - 0.1:g} scores {pct(sweep[chosen - 0.1]['auc'])}, {chosen:g} "
        f"{pct(sweep[chosen]['auc'])}, {chosen + 0.1:g} {pct(sweep[chosen + 0.1]['auc'])}",
        f"the dynamic policy ({pct(loo['auc'])} leave-one-out, {chosen:g} chosen on every sequence, {stop_first} of "
        f"frames stop at the first exit) is above the first exit alone ({pct(first['auc'])}; {pct(off['auc'])} with "
        f"re-detection off, against {pct(v2['auc'])} for NanoTrack's own loop on the same v2 weights, "
        f"{pct(v3['auc'])} for v3's loop, {pct(cv2n['auc'])} for `cv2.TrackerNano`) and far above every transformer "
        "exit forced alone (" + ", ".join(pct(r["auc"]) for r in deeper) + ")",
        f"Soccer ({pct(seq_loo['Soccer'])} against {pct(seq_first['Soccer'])}) and Bolt ({pct(seq_loo['Bolt'])} "
        f"against {pct(seq_first['Bolt'])})",
        f"lifts the first exit from {pct(off['auc'])} to {pct(first['auc'])} and costs time: "
        f"{first['ms_per_frame']:.2f} ms/frame against {off['ms_per_frame']:.2f} without it and "
        f"{v2['ms_per_frame']:.2f} for NanoTrack's loop in this run; the policy {loo['ms_per_frame']:.2f} ms, "
        f"{ratio} the loop",
        f"alone they score {min(pct(r['auc']) for r in deeper)}-{max(pct(r['auc']) for r in deeper)} against the first "
        f"exit's {pct(first['auc'])} ({pct(off['auc'])} without re-detection). The dynamic policy ({pct(loo['auc'])} "
        f"leave-one-out, {stop_first} of frames at the first exit) now leads the first exit alone by {lead}",
    ]
    for path, phrases in (("README.md", readme), ("docs/benchmarks.md", benchmarks), ("docs/model.md", model),
                          ("models/dytrack_small/MODEL_CARD.md", card)):
        text = _flat(path)
        missing = [p for p in phrases if p not in text]
        assert not missing, f"{path} should quote, from benchmarks/results.json: {missing}"


def test_the_readme_results_table_prints_results_json():
    """The README's headline table: each row is a row of the real suite in results.json, its AUC, precision and time
    as RESULTS.md prints them; the policy, the first exit and every peer are there."""
    f = _figures()
    rows = _table_after(open(os.path.join(ROOT, "README.md")).read(), "## Results")
    for name, row in rows.items():
        r = f["real"][name]
        assert (row["AUC"], row["precision@20px"], row["ms/frame"]) == (
            f["pct"](r["auc"]), f["pct"](r["precision"]), f"{r['ms_per_frame']:.2f}"), name
    assert {"DyTrack dynamic, threshold chosen leave-one-sequence-out", "DyTrack exit 1 forced",
            "NanoTrack v2 reference loop", "NanoTrack v3 reference loop", "cv2.TrackerNano (NanoTrack v2)", "CSRT",
            "KCF"} <= set(rows), sorted(rows)


def test_the_cards_threshold_sweep_sentence_is_the_per_sequence_results():
    """The card says which sequences make the sweep's differences: each sequence it names with three figures has them
    at the thresholds either side of the chosen one, and the others move by no more than it says."""
    import re
    f = _figures()
    chosen, real = f["chosen"], f["real"]
    per = [real[f"DyTrack dynamic t={t:.2f}"]["per_sequence_auc"] for t in (chosen - 0.1, chosen, chosen + 0.1)]
    text = _flat("models/dytrack_small/MODEL_CARD.md")
    sentence = text[text.index("The sweep is noisy"):]
    sentence = sentence[:sentence.index("The previous rule")]
    named = dict((q, (a, b, c)) for q, a, b, c in
                 re.findall(r"([A-Za-z][\w-]*) (\d+\.\d) / (\d+\.\d) / (\d+\.\d)", sentence))
    assert len(named) >= 2, sentence
    for q, figures in named.items():
        assert figures == tuple(f"{100 * p[q]:.1f}" for p in per), (q, figures)
    count, bound = re.search(r"the other (\w+) move by (?:at most|less than) (\d+\.\d)", sentence).groups()
    others = {q: 100 * (max(p[q] for p in per) - min(p[q] for p in per)) for q in per[0] if q not in named}
    words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen".split()
    assert count == words[len(others) - 1], (count, sorted(others))
    assert max(others.values()) <= float(bound), others
