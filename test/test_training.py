"""The training entry point for real: a few steps on photo-built pairs, resume, and 2-process DDP (gloo)."""
import csv
import json
import os
import subprocess
import sys

import numpy as np

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
    _, extra = load_checkpoint(os.path.join(out, "last.pt"))
    assert extra["step"] == 3
    rows = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert all(np.isfinite(float(r["total"])) for r in rows) and "distill" in rows[0]
    r = run_train(out, 5)
    assert "resuming from" in r.stdout and "at step 3" in r.stdout
    assert [int(x["step"]) for x in csv.DictReader(open(os.path.join(out, "log.csv")))] == [0, 1, 2, 3, 4]
    final, extra = load_checkpoint(os.path.join(out, "final.pt"))
    assert extra["step"] == 5
    # the pretrained stem stays frozen, the transformer moved
    assert final.cfg.freeze_stem


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
