"""Train DyTrack. One entry point: `dytrack-train` (or `python -m dytrack_ros.training.train`).

Single process:   dytrack-train --out runs/base --steps 3000
Data parallel:    torchrun --nproc_per_node 2 -m dytrack_ros.training.train --out runs/ddp --steps 100
                  (gloo on CPU, nccl on CUDA; each rank draws different data, gradients are averaged)
Resume:           the same command again: it continues from <out>/last.pt (weights, optimizer and random generators in
                  that one file, written atomically; the LR schedule is replayed to the step, so --steps may grow).
Rerun a run:      dytrack-train --config runs/base/config.json [--out runs/base_again]  (every run writes its whole
                  setting, model and training, to <out>/config.json; flags given beside --config override it)
Real sequences:   --data real   (the train split of data/real_sequences.json, extracted into .data/realdata)
Other datasets:   --data got10k:/path/to/GOT-10k/train  (or lasot:..., trackingnet:..., otb:...)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..model import DyTrackNet, ModelConfig, load_checkpoint, save_checkpoint, transfer_weights
from .losses import dytrack_loss


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None,
                   help="a run's config.json ({'model': ..., 'train': ...}): its settings, then any flags given here")
    p.add_argument("--out", default=None, help="run folder: checkpoints, log.csv, config.json")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32, help="per process")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="data-generating processes per training process")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    p.add_argument("--data", default="synthetic",
                   help="synthetic | real[:DIR] | otb:DIR | got10k:DIR | lasot:DIR | trackingnet:DIR")
    p.add_argument("--synthetic-share", type=float, default=0.0,
                   help="with real data: share of pairs drawn from the photo-built generator instead")
    p.add_argument("--schedule", choices=["joint", "deep_then_exits"], default="joint",
                   help="joint: all exits from the start; deep_then_exits: deepest exit for the first half, then all")
    p.add_argument("--distill-weight", type=float, default=0.5, help="target-aware self-distillation (0 = off)")
    p.add_argument("--recycling", default=None, help="override the model's feature-recycling schema")
    p.add_argument("--model-config", default=None, help="JSON file with ModelConfig fields")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights")
    p.add_argument("--negatives", type=float, default=0.0,
                   help="share of pairs whose search crop lacks the target (trains the IoU score towards 0)")
    p.add_argument("--beside-target", type=float, default=0.0,
                   help="share of the target-absent pairs cut beside the target in a frame of its own sequence "
                        "(real data); the rest come from other sequences")
    p.add_argument("--trainable", choices=["all", "iou_heads", "first_exit_iou", "exit_heads", "transformer"],
                   default="all",
                   help="iou_heads: fine-tune only the exits' IoU heads (e.g. with --negatives, from --init); "
                        "first_exit_iou: only the first exit's (the correlation exit's) IoU head; "
                        "exit_heads: the transformer exits' box and IoU heads on a frozen network (e.g. refining "
                        "exits, exit_head 'refine', started from a trained model with --init); transformer: "
                        "everything after the first exit (its head and IoU score stay as they are)")
    p.add_argument("--stem-lr-scale", type=float, default=0.0,
                   help="> 0: also fine-tune the pretrained stem's convolutions at this share of --lr (its "
                        "BatchNorm statistics and affine terms stay frozen); 0: the stem stays frozen")
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p


def read_run_config(path: str) -> dict:
    try:
        with open(path) as f:
            run = json.load(f)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--config {path}: cannot read it as JSON ({exc})")
    if not isinstance(run, dict) or not isinstance(run.get("train"), dict):
        raise SystemExit(f"--config {path}: expected a run config with a 'train' section (a run's config.json)")
    return run


def parse_args(argv=None):
    """The flags; with --config, the run config's 'train' values are the defaults the flags given override, and its
    'model' section (args.model_settings) is the architecture unless --model-config is given explicitly."""
    p = build_parser()
    first, _ = p.parse_known_args(argv)
    run = read_run_config(first.config) if first.config else {"train": {}}
    known = {a.dest for a in p._actions}
    ignored = sorted(set(run["train"]) - known)
    if ignored:
        print(f"note: {first.config} sets {', '.join(ignored)}, which this version does not have: ignored")
    p.set_defaults(**{k: v for k, v in run["train"].items() if k in known and k != "config"})
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out is required (or a --config whose run names it)")
    explicit_model = args.model_config is not None and args.model_config != run["train"].get("model_config")
    model_settings = None if explicit_model else run.get("model")
    return args, model_settings


def build_dataset(args, cfg, rank):
    """synthetic: photo-built scenes; real[:DIR]: the train split of data/real_sequences.json (OTB layout, default
    .data/realdata); got10k:/lasot:/trackingnet:DIR: those datasets' own layouts."""
    from ..data import pairs, photos
    seed = args.seed * 1000 + rank
    synthetic = pairs.SyntheticPairs(cfg, photos.load_photos("train"), seed=seed, negatives=args.negatives) \
        if args.data == "synthetic" or args.synthetic_share > 0 else None
    if args.data == "synthetic":
        return synthetic
    kind, _, root = args.data.partition(":")
    if kind == "real":
        from ..data.realdata import load_split, realdata_root, split_names
        root = root or realdata_root()
        sequences = load_split("train", root, require_all=False)
        missing = sorted(set(split_names("train")) - {q.name for q in sequences})
        if rank == 0:
            print(f"training on {len(sequences)} real sequences under {root}"
                  + (f"; not present there (not used): {', '.join(missing)}" if missing else ""), flush=True)
        if not sequences:
            raise SystemExit(f"no training sequences under {root} (README, 'Real video: data': scripts/extract_realdata.py extracts them)")
        cache = os.path.join(root, "..", "cache", f"train_{len(sequences)}seq_{pairs.cache_size_for(cfg)}px.npy")
        return pairs.RealPairs(cfg, sequences, cache, seed=seed, negatives=args.negatives,
                               synthetic=synthetic, synthetic_share=args.synthetic_share,
                               beside_target=args.beside_target)
    from ..data import sequences as ds
    readers = {"got10k": ds.read_got10k, "lasot": ds.read_lasot, "trackingnet": ds.read_trackingnet,
               "otb": ds.read_otb}
    if kind not in readers or not root:
        raise SystemExit(f"--data must be synthetic, real[:DIR] or one of {sorted(readers)}:DIR, got {args.data!r}")
    return pairs.FolderPairs(cfg, readers[kind](root), seed=seed)


def lr_schedule(opt: torch.optim.Optimizer, args) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over args.warmup steps from lr/warmup, then cosine decay to 0 at args.steps (per step)."""
    sched = torch.optim.lr_scheduler
    cosine = sched.CosineAnnealingLR(opt, T_max=max(1, args.steps - args.warmup))
    if args.warmup <= 0:
        return cosine
    warm = sched.LinearLR(opt, start_factor=1.0 / args.warmup, end_factor=1.0, total_iters=max(args.warmup - 1, 1))
    return sched.SequentialLR(opt, [warm, cosine], milestones=[args.warmup])


def rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(keys.astype(np.int64)),
            "numpy_rest": [int(pos), int(has_gauss), float(gauss)], "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    pos, has_gauss, gauss = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def exit_weights(step, args, num_stages):
    if args.schedule == "deep_then_exits" and step < args.steps // 2:
        return [0.0] * (num_stages - 1) + [1.0]
    return [1.0] * num_stages


def main(argv=None):
    args, model_settings = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = torch.device(args.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed + rank)
    np.random.seed(args.seed + rank)
    torch.manual_seed(args.seed)  # same init on every rank

    os.makedirs(args.out, exist_ok=True)
    last = os.path.join(args.out, "last.pt")
    start_step, resume = 0, {}
    if os.path.exists(last):
        model, resume = load_checkpoint(last)
        start_step = int(resume.get("step", 0))
        if rank == 0:
            print(f"resuming from {last} at step {start_step}")
    else:
        init_model = load_checkpoint(args.init)[0] if args.init else None
        if model_settings is not None:    # --config: the run's own architecture, exactly
            cfg = ModelConfig.from_dict(model_settings)
        elif args.model_config:
            cfg = ModelConfig.from_dict(json.load(open(args.model_config)))
        else:   # continuing a run: its own architecture
            cfg = ModelConfig.from_dict(init_model.cfg.to_dict()) if init_model is not None else ModelConfig()
        if args.recycling:
            cfg.recycling = args.recycling
            cfg.__post_init__()
        model = DyTrackNet(cfg)
        if init_model is not None and init_model.cfg.to_dict() == cfg.to_dict():
            model.load_state_dict(init_model.state_dict())
        elif init_model is not None:   # another geometry or a new first exit: start from what fits
            fresh = [n for n in transfer_weights(model, init_model) if not n.startswith(("stem.", "nano_head."))]
            if rank == 0:
                print(f"started from {args.init} (another configuration); newly initialised: {', '.join(fresh)}")
    cfg = model.cfg
    model.to(device).train()
    if args.trainable == "transformer":
        for name, p in model.named_parameters():
            p.requires_grad_(not name.startswith(("stem.", "nano_head.", "nano_iou.")))
    elif args.trainable != "all":
        heads = {"iou_heads": ("iou_heads.", "nano_iou."), "first_exit_iou": ("nano_iou.",),
                 "exit_heads": ("iou_heads.", "exit_heads.")}[args.trainable]
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(heads))
        model.eval()  # frozen BatchNorm elsewhere; the IoU and refining heads have none
    stem_params = []
    if args.stem_lr_scale > 0 and args.trainable == "all":
        # convolutions and squeeze-excite layers only: with batch 32 of one crop size, BatchNorm stays as pretrained
        stem_params = [p for m in model.stem.modules() if not isinstance(m, torch.nn.BatchNorm2d)
                       for p in m.parameters(recurse=False)]
        for p in stem_params:
            p.requires_grad_(True)
    stem_ids = {id(p) for p in stem_params}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) not in stem_ids], "lr": args.lr}]
    if stem_params:
        groups.append({"params": stem_params, "lr": args.lr * args.stem_lr_scale})
    rates = [g["lr"] for g in groups]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    if "optimizer" in resume:
        opt.load_state_dict(resume["optimizer"])
        set_rng_state(resume["rng"])
    elif os.path.exists(os.path.join(args.out, "optimizer.pt")):   # a run from before checkpoints carried it
        opt.load_state_dict(torch.load(os.path.join(args.out, "optimizer.pt"), map_location="cpu", weights_only=True))
    for group, rate in zip(opt.param_groups, rates):   # this invocation's rates, not the checkpoint's last ones
        group["lr"] = group["initial_lr"] = rate
    schedule = lr_schedule(opt, args)
    for _ in range(start_step):   # replayed, not restored: a resumed run may be given more --steps (a longer decay)
        schedule.step()
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if distributed else model
    if rank == 0:
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump({"model": cfg.to_dict(), "train": vars(args), "world_size": world}, f, indent=2)

    dataset = build_dataset(args, cfg, rank if start_step == 0 else rank + 7919 * start_step)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, num_workers=args.workers,
                                         persistent_workers=args.workers > 0)
    batches = iter(loader)
    log_path = os.path.join(args.out, "log.csv")
    log_file = open(log_path, "a", newline="") if rank == 0 else None
    writer = None
    bar = tqdm(range(start_step, args.steps), initial=start_step, total=args.steps, disable=rank != 0,
               desc="train", dynamic_ncols=True)
    t0 = time.time()
    for step in bar:
        template, search, gt, present = (t.to(device, non_blocking=True) for t in next(batches))
        lr = opt.param_groups[0]["lr"]
        outs = net(template, search)
        parts = dytrack_loss(model, outs, gt, exit_weights(step, args, cfg.num_stages), args.distill_weight,
                             present=present)
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        schedule.step()
        if rank == 0 and (step % args.log_every == 0 or step == args.steps - 1):
            row = {"step": step, "lr": lr, "seconds": round(time.time() - t0, 1)}
            row.update({k: round(float(v.detach()), 5) for k, v in parts.items()})
            if writer is None:
                writer = csv.DictWriter(log_file, fieldnames=list(row), extrasaction="ignore")
                if log_file.tell() == 0:
                    writer.writeheader()
            writer.writerow(row)
            log_file.flush()
            bar.set_postfix(loss=f"{row['total']:.3f}", **{f"iou{k}": f"{row.get(f'box_iou{k}', 0):.2f}"
                                                            for k in range(cfg.num_stages)})
        if rank == 0 and ((step + 1) % args.save_every == 0 or step == args.steps - 1):
            # one file, replaced atomically: a crash mid-save leaves the previous checkpoint whole
            save_checkpoint(last, model, {"step": step + 1, "args": vars(args), "optimizer": opt.state_dict(),
                                          "rng": rng_state()})
    if rank == 0:
        save_checkpoint(os.path.join(args.out, "final.pt"), model,
                        {"step": args.steps, "args": vars(args), "train_seconds": round(time.time() - t0, 1),
                         "world_size": world})
        print(f"done: {args.steps} steps in {time.time() - t0:.0f} s -> {args.out}/final.pt")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
