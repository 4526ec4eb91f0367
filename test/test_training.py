"""The training entry point for real: a few steps on photo-built pairs, resume, and 2-process DDP (gloo)."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import torch

from conftest import ROOT, tiny_config
from dytrack_ros.model import load_checkpoint


def run_train(out, steps, extra=(), launcher=(sys.executable, "-m")):
    cfg = os.path.join(os.path.dirname(out), "tiny.json")
    with open(cfg, "w") as f:
        json.dump(tiny_config().to_dict(), f)
    cmd = [*launcher, "dytrack_ros.training.train", "--out", out, "--steps", str(steps), "--batch", "4",
           "--workers", "0", "--model-config", cfg, "--save-every", "2", "--log-every", "1", "--warmup", "2", *extra]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r


def test_train_logs_checkpoints_and_resumes(tmp_path):
    out = str(tmp_path / "run")
    run_train(out, 3)
    at3, extra = load_checkpoint(os.path.join(out, "last.pt"))
    assert extra["step"] == 3
    rows = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert all(np.isfinite(float(r["total"])) for r in rows) and "distill" in rows[0]
    r = run_train(out, 5)
    assert "resuming from" in r.stdout and "at step 3" in r.stdout
    assert [int(x["step"]) for x in csv.DictReader(open(os.path.join(out, "log.csv")))] == [0, 1, 2, 3, 4]
    final, extra = load_checkpoint(os.path.join(out, "final.pt"))
    assert extra["step"] == 5
    # the pretrained stem stays frozen (every tensor, BatchNorm statistics included, equal to the published weights
    # after 5 steps and equal between steps 3 and 5), the transformer moved
    assert final.cfg.freeze_stem
    from dytrack_ros.model import DyTrackNet
    published = DyTrackNet(tiny_config()).stem.state_dict()
    before, after = at3.state_dict(), final.state_dict()
    stem_keys = [k for k in after if k.startswith("stem.")]
    assert len(stem_keys) == len(published) > 0
    changed = [k for k in stem_keys if not torch.equal(after[k], published[k[len("stem."):]])
               or not torch.equal(after[k], before[k])]
    assert not changed, f"{len(changed)} stem tensors changed in training, e.g. {changed[:3]}"
    moved = [k for k in after if not k.startswith("stem.") and after[k].is_floating_point()
             and not torch.equal(after[k], before[k])]
    assert len(moved) > 10, "the transformer should move between steps 3 and 5"


def test_ablation_flags_reach_the_model(tmp_path):
    out = str(tmp_path / "abl")
    run_train(out, 1, extra=("--recycling", "none", "--distill-weight", "0"))
    model, _ = load_checkpoint(os.path.join(out, "final.pt"))
    assert model.cfg.recycling == "none"
    assert "distill" not in next(csv.DictReader(open(os.path.join(out, "log.csv"))))


def test_distributed_data_parallel_world_size_2(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = str(tmp_path / "ddp")
    run_train(out, 2, launcher=(torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m"))
    _, extra = load_checkpoint(os.path.join(out, "final.pt"))
    assert extra["world_size"] == 2
    assert json.load(open(os.path.join(out, "config.json")))["world_size"] == 2


def test_a_runs_config_reruns_it_exactly(tmp_path):
    first = str(tmp_path / "first")
    run_train(first, 2, extra=("--lr", "5e-4", "--seed", "3", "--distill-weight", "0.2", "--recycling", "none"))
    again = str(tmp_path / "again")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "dytrack_ros.training.train", "--config",
                        os.path.join(first, "config.json"), "--out", again],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a, _ = load_checkpoint(os.path.join(first, "final.pt"))
    b, _ = load_checkpoint(os.path.join(again, "final.pt"))
    assert b.cfg.to_dict() == a.cfg.to_dict() and b.cfg.recycling == "none"
    assert all(np.array_equal(a.state_dict()[k].numpy(), v.numpy()) for k, v in b.state_dict().items())
    settings = json.load(open(os.path.join(again, "config.json")))["train"]
    assert settings["lr"] == 5e-4 and settings["seed"] == 3 and settings["distill_weight"] == 0.2


def test_a_resumed_run_carries_its_optimizer_in_one_checkpoint_and_keeps_the_schedule(tmp_path):
    straight = str(tmp_path / "straight")
    run_train(straight, 5)
    out = str(tmp_path / "resumed")
    run_train(out, 3)
    _, extra = load_checkpoint(os.path.join(out, "last.pt"))
    assert extra["optimizer"]["state"] and set(extra["rng"]) >= {"torch", "numpy", "python"}
    assert sorted(os.listdir(out)) == ["config.json", "final.pt", "last.pt", "log.csv"]
    run_train(out, 5)
    lr = lambda d: [float(r["lr"]) for r in csv.DictReader(open(os.path.join(d, "log.csv")))]
    assert lr(out)[3:] == lr(straight)[3:]       # steps 3-4 of a 5-step schedule, resumed or not


def test_the_shipped_models_run_configs_rerun_it():
    """build_model.sh reruns each training run of models/dytrack_small from the config.json it wrote: the settings
    parse in this version, and the last run's model settings are the shipped checkpoint's architecture."""
    from dytrack_ros.model import ModelConfig
    from dytrack_ros.training.train import parse_args
    folder = os.path.join(ROOT, "models", "dytrack_small")
    for name in ("transformer_phase2", "transformer_iou", "first_exit_iou", "train"):
        args, model_settings = parse_args(["--config", os.path.join(folder, f"{name}_config.json"), "--out", "x"])
        recorded = json.load(open(os.path.join(folder, f"{name}_config.json")))
        assert model_settings == recorded["model"]
        assert {k: getattr(args, k) for k in ("steps", "lr", "seed", "negatives", "trainable")} == \
            {k: recorded["train"][k] for k in ("steps", "lr", "seed", "negatives", "trainable")}
    shipped, _ = load_checkpoint(os.path.join(folder, "model.pt"))
    assert ModelConfig.from_dict(model_settings).to_dict() == shipped.cfg.to_dict()


def test_refining_exits_train_on_a_frozen_network(tmp_path):
    """--trainable exit_heads: only the transformer exits' box and IoU heads move; the first exit, the stem and the
    transformer blocks stay as the --init model had them."""
    import torch
    from dytrack_ros.model import DyTrackNet, save_checkpoint
    torch.manual_seed(0)
    cfg = tiny_config(stem="nanotrack_v2", first_exit="nanotrack_v2", template_size=128, search_size=256,
                      stem_channels=48, depth=2, stage_ends=(1, 2), exit_head="refine")
    init = str(tmp_path / "init.pt")
    save_checkpoint(init, DyTrackNet(cfg).eval())
    out = str(tmp_path / "refine")
    cmd = [sys.executable, "-m", "dytrack_ros.training.train", "--out", out, "--steps", "3", "--batch", "4",
           "--workers", "0", "--init", init, "--trainable", "exit_heads", "--log-every", "1", "--warmup", "1",
           "--lr", "1e-2", "--distill-weight", "0"]
    r = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    before = load_checkpoint(init)[0].state_dict()
    after, _ = load_checkpoint(os.path.join(out, "final.pt"))
    moved = {n for n, v in after.state_dict().items() if not torch.equal(v, before[n])}
    assert moved and all(n.startswith(("exit_heads.", "iou_heads.")) for n in moved), sorted(moved)
    assert any(n.startswith("exit_heads.") and ".delta." in n for n in moved)   # the refinement itself learned
    rows = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
    assert float(rows[0]["focal1"]) == 0.0 and np.isfinite(float(rows[-1]["giou1"]))
