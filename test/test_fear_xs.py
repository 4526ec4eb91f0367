"""FEAR-XS, the deeper stage (models/third_party/fear_xs): our module against an independent numpy evaluation of the
spec's layers on a real crop, the exported ONNX graphs against the module, the sealed files, the crop geometry and
decoding, FEAR-XS's own loop and the two-exit tracker on the real demo video."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import SHIPPED_MODEL

from dytrack_ros.backends.fear_backend import DEFAULT_FEAR_DIR, create_fear_backend
from dytrack_ros.contract import BackendError
from dytrack_ros.evaluation.metrics import box_iou
from dytrack_ros.tracking import fear_stage as fs


def real_crops(demo_walker):
    frames, box, _ = demo_walker
    fill = frames[0].mean(axis=(0, 1))
    template = fs.stretched_crop(frames[0], fs.extended_window(box, fs.TEMPLATE_OFFSET), 128, fill)
    search = fs.stretched_crop(frames[5], fs.extended_window(box, fs.SEARCH_CONTEXT), 256, fill)
    return fs.to_fear_input(template), fs.to_fear_input(search)


def numpy_conv(x, weight, bias, stride, pad, groups):
    """A plain numpy 2-D convolution (CHW, one image): the spec's semantics, written without torch."""
    c, h, w = x.shape
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out_c, in_per_group, k, _ = weight.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = np.zeros((out_c, oh, ow))
    per_out = out_c // groups
    for o in range(out_c):
        g = o // per_out
        xs = x[g * in_per_group:(g + 1) * in_per_group]
        for i in range(k):
            for j in range(k):
                patch = xs[:, i:i + stride * oh:stride, j:j + stride * ow:stride]
                out[o] += np.tensordot(weight[o, :, i, j], patch, axes=1)
        out[o] += bias[o]
    return out


def test_first_layers_match_a_numpy_evaluation_of_the_spec(demo_walker):
    import torch
    from dytrack_ros.model.fear_xs import load_fear_xs
    with open(os.path.join(DEFAULT_FEAR_DIR, "graph.json")) as f:
        graph = json.load(f)
    weights = torch.load(os.path.join(DEFAULT_FEAR_DIR, "weights.pt"), weights_only=True)
    layers = graph["template"][:5]
    assert [op["op"] for op in layers] == ["scale", "convolution", "relu", "convolution", "relu"]
    template, _ = real_crops(demo_walker)
    # numpy, from the spec: pixel + bias, x scale (ImageNet mean and std), conv 3x3/2, relu, depthwise 3x3, relu
    x = (template[0].astype(np.float64) + np.array(graph["preprocessing"]["bias_rgb"])[:, None, None])
    x = x * weights[layers[0]["weight"] + ".scale"].double().numpy().reshape(3, 1, 1)
    for op in layers[1:]:
        if op["op"] == "relu":
            x = np.maximum(x, 0)
            continue
        w = weights[op["weight"] + ".weight"].double().numpy()
        x = numpy_conv(x, w, weights[op["weight"] + ".bias"].double().numpy(), op["stride"][0], op["pad"][0][0],
                       op["groups"])
    net = load_fear_xs()
    full = net.template_net.layers
    net.template_net.layers = layers
    try:
        with torch.no_grad():
            ours = net.template_net({"image": torch.from_numpy(template) + net.pixel_bias})[layers[-1]["outputs"][0]]
    finally:
        net.template_net.layers = full
    assert x.shape == tuple(ours.shape[1:]) == (16, 64, 64)
    assert x.std() > 0.1                                     # a real, non-degenerate activation
    np.testing.assert_allclose(ours[0].numpy(), x, rtol=1e-4, atol=1e-3 * np.abs(x).max())


def test_onnx_graphs_match_the_torch_module_on_real_crops(demo_walker):
    import torch
    from dytrack_ros.model.fear_xs import load_fear_xs
    template, search = real_crops(demo_walker)
    net = load_fear_xs()
    with torch.no_grad():
        bbox, cls = net.track(torch.from_numpy(search), net.template(torch.from_numpy(template)))
    backend = create_fear_backend("onnxruntime", DEFAULT_FEAR_DIR, threads=1)
    backend.set_template(template)
    b, c = backend.run(search)
    assert b.shape == (4, 16, 16) and c.shape == (16, 16)
    np.testing.assert_allclose(b, bbox[0].numpy(), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(c, cls[0, 0].numpy(), rtol=1e-3, atol=1e-2)
    # the walker is where the search window was placed (its centre): the peak is near the crop's middle
    r, col = np.unravel_index(np.argmax(c), c.shape)
    assert abs(col * 16 - 128) <= 48 and abs(r * 16 - 128) <= 48, (r, col)


def test_a_replaced_or_missing_file_is_refused(tmp_path):
    folder = tmp_path / "fear"
    shutil.copytree(DEFAULT_FEAR_DIR, folder)
    with open(folder / "fear_search.onnx", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BackendError, match="does not match its hash"):
        create_fear_backend("onnxruntime", str(folder), threads=1)
    os.remove(folder / "fear_template.onnx")
    with pytest.raises(BackendError, match="missing"):
        create_fear_backend("onnxruntime", str(folder), threads=1)


def test_crop_geometry_and_decoding():
    # the template window is the box grown by 0.2 of its size on each side, the search window by 2, truncated
    assert fs.extended_window([100, 50, 40, 20], 0.2).tolist() == [92, 46, 56, 28]
    assert fs.extended_window([100, 50, 40, 20], 2.0).tolist() == [20, 10, 200, 100]
    # outside the image the crop is the fill colour; a window wholly outside is fill only
    img = np.full((50, 60, 3), 200, np.uint8)
    crop = fs.stretched_crop(img, np.array([-30, -25, 60, 50]), 64, (10, 20, 30))
    assert crop.shape == (64, 64, 3) and tuple(crop[0, 0]) == (10, 20, 30) and tuple(crop[-1, -1]) == (200, 200, 200)
    assert tuple(fs.stretched_crop(img, np.array([500, 500, 20, 20]), 8, (1, 2, 3))[4, 4]) == (1, 2, 3)
    # decoding: the arg-max cell's point (16 c, 16 r) minus / plus its distances, mapped back through the window
    bbox = np.ones((4, 16, 16), np.float32)
    cls = np.full((16, 16), -5.0, np.float32)
    cls[9, 7] = 3.0
    bbox[:, 9, 7] = [10, 20, 30, 40]
    box, score, cell = fs.decode(bbox, cls)
    assert cell == (9, 7) and box.tolist() == [7 * 16 - 10, 9 * 16 - 20, 40, 60]
    assert score[9, 7] == pytest.approx(1 / (1 + np.exp(-3.0)))
    window = np.array([100, 200, 512, 128])           # 2x wide, half high: the crop was stretched
    assert fs.crop_box_to_image(box, window).tolist() == [100 + 2 * 102, 200 + 0.5 * 124, 80, 30]
    # the reference's clamp: whole pixels inside the image, sides at least 3
    assert fs.clamp_box([-5.7, 10.2, 2, 300], (100, 80, 3)).tolist() == [0, 10, 3, 90]


@pytest.mark.parametrize("make", ["loop", "two_exits"])
def test_fear_xs_follows_the_walker_of_the_demo_video(demo_walker, make):
    frames, box, reference = demo_walker
    backend = create_fear_backend("onnxruntime", DEFAULT_FEAR_DIR, threads=1)
    if make == "loop":
        tracker = fs.FearLoop(backend)
        tracker.initialize(frames[0], box)
        step = tracker.update
    else:   # the shipped first exit with FEAR-XS as its second exit, forced to depth 2 on every frame
        from dytrack_ros.runtime import build_tracker
        from dytrack_ros.tracking.tracker import DyTracker
        first = build_tracker(SHIPPED_MODEL, backend="onnxruntime", threads=1)
        first.params.thresholds = []
        tracker = DyTracker(first.backend, first.params, deep=fs.FearStage(backend))
        assert tracker.num_stages == 2 and tracker.params.thresholds[-1] == 0.0
        tracker.initialize(frames[0], box)

        def step(frame):
            r = tracker.track(frame, force_stages=2)
            assert r.stages_run == 2 and len(r.stage_boxes) == 2 and len(r.stage_scores) == 2
            return r.box
    boxes = {i: step(frames[i]) for i in range(1, len(frames))}
    ious = [float(box_iou(np.array([boxes[i]]), np.array([ref]))[0]) for i, ref in reference.items()]
    # the reference boxes are two other trackers' mean (conftest): on the man, not more exact than 0.5-0.85
    assert min(ious) > 0.4 and np.mean(ious) > 0.6, ious


def test_two_exit_policy_runs_the_deep_stage_only_under_the_threshold(demo_walker):
    from dytrack_ros.runtime import build_tracker
    from dytrack_ros.tracking.tracker import DyTracker
    frames, box, _ = demo_walker
    first = build_tracker(SHIPPED_MODEL, backend="onnxruntime", threads=1)
    first.params.thresholds = []
    first.params.deep_answer = "fuse"
    tracker = DyTracker(first.backend, first.params, deep=fs.FearStage(create_fear_backend(
        "onnxruntime", DEFAULT_FEAR_DIR, threads=1)))
    tracker.initialize(frames[0], box)
    tracker.set_thresholds([0.0, 0.0])          # every first-exit score clears 0: the first exit answers
    assert all(tracker.track(f).stages_run == 1 for f in frames[1:6])
    tracker.set_thresholds([1.01, 0.0])         # none clears 1.01: FEAR-XS runs and its box is averaged in
    r = tracker.track(frames[6])
    assert r.stages_run == 2
    with pytest.raises(ValueError, match="deep_answer"):
        first.params.deep_answer = "bogus"
        DyTracker(first.backend, first.params, deep=tracker.deep)


def test_the_converter_reproduces_the_shipped_files(tmp_path):
    """Runs where coremltools and the repository's specs are present (conversion time only; CI has neither)."""
    pytest.importorskip("coremltools")
    specs = os.environ.get("FEAR_SPECS_DIR", "")
    init, track = os.path.join(specs, "TrackerInit.mlmodel"), os.path.join(specs, "Tracker.mlmodel")
    if not (os.path.isfile(init) and os.path.isfile(track)):
        pytest.skip("set FEAR_SPECS_DIR to the folder with FEAR's two .mlmodel files")
    import subprocess
    import sys
    subprocess.run([sys.executable, "scripts/convert_fear_xs.py", "--init", init, "--track", track, "--out",
                    str(tmp_path)], check=True)
    with open(tmp_path / "graph.json") as f, open(os.path.join(DEFAULT_FEAR_DIR, "graph.json")) as g:
        assert json.load(f) == json.load(g)


def compose(tmp_path, **kw):
    from dytrack_ros.backends.compose import compose_deep_model
    from dytrack_ros.tracking.fear_stage import DeepIoUHead
    head = tmp_path / "deep_iou_head.json"
    DeepIoUHead([2.0, 1.0, 1.0, 2.0, -1.0], -2.5).save(str(head))
    return compose_deep_model(SHIPPED_MODEL, DEFAULT_FEAR_DIR, str(tmp_path / "composed"), [0.6, 0.0], str(head),
                              {"deep_answer": "choose", "size_bounds": [0.05, 40.0]}, **kw)


def test_a_composed_model_runs_its_deep_stage_on_every_cpu_backend(tmp_path, demo_walker):
    from dytrack_ros.runtime import build_tracker
    frames, box, _ = demo_walker
    m = compose(tmp_path)
    assert m.num_stages == 2 and m.num_graph_stages == 1 and m.exit_thresholds == [0.6, 0.0]
    boxes = {}
    for kind in ("onnxruntime", "openvino", "torch"):
        t = build_tracker(m.folder, kind, threads=1)
        assert t.num_stages == 2 and t.deep.iou_head is not None and t.params.size_bounds == (0.05, 40.0)
        assert t.deep.backend.name == kind
        t.initialize(frames[0], box)
        results = [t.track(f, force_stages=2) for f in frames[1:6]]
        assert all(r.stages_run == 2 and 0.0 <= r.stage_scores[1] <= 1.0 for r in results)
        boxes[kind] = np.array([r.box for r in results])
    np.testing.assert_allclose(boxes["openvino"], boxes["onnxruntime"], atol=1.0)
    np.testing.assert_allclose(boxes["torch"], boxes["onnxruntime"], atol=1.0)


def test_a_composed_model_refuses_a_replaced_head_or_an_unknown_deep_stage(tmp_path):
    from dytrack_ros.contract import Manifest
    from dytrack_ros.runtime import build_tracker
    m = compose(tmp_path)
    with open(m.path("deep_iou_head.json"), "a") as f:
        f.write(" ")
    with pytest.raises(BackendError, match="does not match its manifest hash"):
        build_tracker(m.folder, "onnxruntime", threads=1)
    data = json.load(open(m.path("manifest.json")))
    data["deep_stage"]["kind"] = "siamrpn"
    bad = Manifest(m.folder, data)
    with pytest.raises(BackendError, match="deep_stage must name a kind"):
        bad.num_stages


def test_the_fear_model_card_quotes_its_result_file():
    """The card's table is the depth study's run 2 (benchmarks/depth_results_run2.json), figure for figure."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "benchmarks", "depth_results_run2.json")) as f:
        run = json.load(f)
    with open(os.path.join(root, "models", "dytrack_fear", "MODEL_CARD.md")) as f:
        card = f.read()
    base, design = run["baselines"], run["designs"]["C: the likelier answer by predicted IoU answers and steers"]
    loo = next(v for k, v in design.items() if "leave-one" in k)
    rows = {"threshold chosen leave-one-sequence-out": loo, "(full depth)": design["DyTrack exit 2 forced (full depth)"],
            "in-sample)": design["DyTrack dynamic t=0.30"], "first exit alone": base[
                "DyTrack exit 1 forced (first exit alone)"], "FEAR-XS, its own loop": base["FEAR-XS, its own loop"]}
    for label, res in rows.items():
        line = next(x for x in card.splitlines() if x.startswith("|") and label in x)
        assert f"{100 * res['auc']:.1f}" in line and f"{res['ms_per_frame']:.1f}" in line, (label, line)
    manifest = json.load(open(os.path.join(root, "models", "dytrack_fear", "manifest.json")))
    assert manifest["threshold_calibration"]["leave_one_sequence_out_auc"] == loo["auc"]
    assert manifest["exit_thresholds"] == [0.3, 0.0]


def test_the_benchmark_runs_fear_xs_s_own_loop_as_a_peer(demo_walker):
    from dytrack_ros.data.sequences import Sequence
    from dytrack_ros.evaluation.benchmark import peer_variants
    frames, box, reference = demo_walker
    gt = np.full((len(frames), 4), np.nan)
    gt[0] = box
    for i, ref in reference.items():
        gt[i] = ref
    variants = peer_variants([], {}, 1, (), fear=True)
    assert list(variants) == ["FEAR-XS, its own loop"]
    run = variants["FEAR-XS, its own loop"](Sequence("walker", frames, gt))
    assert len(run.boxes) == len(frames) and np.isfinite(run.boxes).all()
    assert np.mean(box_iou(run.boxes[list(reference)], gt[list(reference)])) > 0.6


def test_the_identity_check_keeps_the_first_exit_when_fear_xs_jumps_to_another_person(demo_walker):
    """deep_identity_check: FEAR-XS's answer on another part of the frame (as when it jumps to a look-alike) loses to
    the first exit's when the target's memory template matches the first exit's box better; without the check the
    likelier answer (here FEAR-XS's, its IoU head saying 1.0) is taken."""
    from dytrack_ros.runtime import build_tracker
    from dytrack_ros.tracking.fear_stage import DeepIoUHead, FearAnswer
    from dytrack_ros.tracking.tracker import Answer, DyTracker
    frames, box, reference = demo_walker
    first = build_tracker(SHIPPED_MODEL, backend="onnxruntime", threads=1)
    first.params.thresholds, first.params.deep_answer = [], "choose"
    stage = fs.FearStage(create_fear_backend("onnxruntime", DEFAULT_FEAR_DIR, threads=1), DeepIoUHead([0.0] * 5, 10.0))
    tracker = DyTracker(first.backend, first.params, deep=stage)
    tracker.initialize(frames[0], box)
    frame = frames[10]
    tracker.search.add_template(tracker._template_at(frame, np.array(reference[10], float)))
    elsewhere = np.array([100.0, 300.0, 45.0, 88.0])          # grass, far from the walker
    stage.run = lambda f, b: FearAnswer(elsewhere, 0.9, 0.5, np.zeros(4))
    on_target = Answer(np.array(reference[10], float), 0.5)
    tracker.params.deep_identity_check = False
    assert np.allclose(tracker._deep_answer(frame, on_target).box, elsewhere)
    tracker.params.deep_identity_check = True
    assert np.allclose(tracker._deep_answer(frame, on_target).box, reference[10])
