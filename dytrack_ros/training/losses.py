"""Per-exit losses: center focal loss, L1 + GIoU on the box, IoU-score regression, and target-aware distillation."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F



def cxcywh_to_xyxy(b):
    return torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def box_iou_and_giou(pred_cxcywh, gt_cxcywh):
    # row-wise IoU and GIoU of matched boxes. torchvision.ops has them, but torchvision does not import beside the
    # CPU torch wheel this project installs (DESIGN.md), so they stay these few lines
    p, g = cxcywh_to_xyxy(pred_cxcywh), cxcywh_to_xyxy(gt_cxcywh)
    lt, rb = torch.max(p[:, :2], g[:, :2]), torch.min(p[:, 2:], g[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_p = (p[:, 2:] - p[:, :2]).clamp(min=0).prod(1)
    area_g = (g[:, 2:] - g[:, :2]).clamp(min=0).prod(1)
    union = area_p + area_g - inter + 1e-7
    iou = inter / union
    elt, erb = torch.min(p[:, :2], g[:, :2]), torch.max(p[:, 2:], g[:, 2:])
    enclose = (erb - elt).clamp(min=0).prod(1) + 1e-7
    return iou, iou - (enclose - union) / enclose


def gaussian_heatmap(gt_cxcywh, grid: int):
    """OSTrack-style target: a Gaussian at the ground-truth center cell, sigma from the box size."""
    ys = torch.arange(grid, dtype=gt_cxcywh.dtype, device=gt_cxcywh.device).view(1, grid, 1)
    xs = torch.arange(grid, dtype=gt_cxcywh.dtype, device=gt_cxcywh.device).view(1, 1, grid)
    cx = (gt_cxcywh[:, 0] * grid).floor().clamp(0, grid - 1).view(-1, 1, 1)
    cy = (gt_cxcywh[:, 1] * grid).floor().clamp(0, grid - 1).view(-1, 1, 1)
    sigma = (gt_cxcywh[:, 2:].prod(1).sqrt() * grid / 6).clamp(min=0.5).view(-1, 1, 1)
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2)).unsqueeze(1)


def focal_loss(pred, target, alpha=2, beta=4):
    pred = pred.clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** alpha * pos
    neg_loss = torch.log(1 - pred) * pred ** alpha * (1 - target) ** beta * neg
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def box_at_cells(size, offset, cells, grid):
    """Decode the box at given cell indices (the ground-truth center), so size/offset learn at the right place."""
    b = size.shape[0]
    gather = cells.view(b, 1, 1).expand(b, 2, 1)
    sz = size.flatten(2).gather(2, gather).squeeze(2)
    off = offset.flatten(2).gather(2, gather).squeeze(2)
    gy = torch.div(cells, grid, rounding_mode="floor")
    gx = cells - gy * grid
    return torch.stack([(gx + off[:, 0]) / grid, (gy + off[:, 1]) / grid, sz[:, 0], sz[:, 1]], 1)


def target_mask(gt_cxcywh, grid: int):
    """(B, grid*grid) mask of the cells whose centers lie inside the ground-truth box (at least the center cell)."""
    centers = (torch.arange(grid, dtype=gt_cxcywh.dtype, device=gt_cxcywh.device) + 0.5) / grid
    xyxy = cxcywh_to_xyxy(gt_cxcywh)
    inx = (centers.view(1, -1) >= xyxy[:, 0:1]) & (centers.view(1, -1) <= xyxy[:, 2:3])
    iny = (centers.view(1, -1) >= xyxy[:, 1:2]) & (centers.view(1, -1) <= xyxy[:, 3:4])
    mask = (iny.unsqueeze(2) & inx.unsqueeze(1)).flatten(1).float()
    cx = (gt_cxcywh[:, 0] * grid).floor().clamp(0, grid - 1).long()
    cy = (gt_cxcywh[:, 1] * grid).floor().clamp(0, grid - 1).long()
    mask[torch.arange(len(mask)), cy * grid + cx] = 1.0
    return mask


def dytrack_loss(model, outs: List[dict], gt: torch.Tensor, exit_weights=None, distill_weight: float = 1.0,
                 iou_weight: float = 1.0, giou_weight: float = 2.0, l1_weight: float = 5.0,
                 present: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """gt: (B, 4) cx, cy, w, h in search-crop fractions; present: (B,) 1 where the target is in the search crop
    (absent samples only train the IoU score, towards 0). Returns the total and its parts (for logging)."""
    if present is not None and not bool(present.all()):
        keep = present > 0.5
        absent_ious = torch.stack([o["score"][~keep] for o in outs])      # (stages, n_absent)
        absent_loss = F.smooth_l1_loss(absent_ious, torch.zeros_like(absent_ious), beta=0.1)
        if not bool(keep.any()):
            return {"total": iou_weight * absent_loss, "iou_absent": absent_loss.detach()}
        parts = dytrack_loss(model, [{k: v[keep] for k, v in o.items()} for o in outs], gt[keep], exit_weights,
                             distill_weight, iou_weight, giou_weight, l1_weight)
        parts["total"] = parts["total"] + iou_weight * absent_loss
        parts["iou_absent"] = absent_loss.detach()
        return parts
    grid = outs[0]["score_map"].shape[-1]
    refine = getattr(model, "refine", False)
    heat = gaussian_heatmap(gt, grid)
    cx = (gt[:, 0] * grid).floor().clamp(0, grid - 1).long()
    cy = (gt[:, 1] * grid).floor().clamp(0, grid - 1).long()
    cells = cy * grid + cx
    exit_weights = exit_weights or [1.0] * len(outs)
    parts = {}
    total = gt.new_zeros(())
    for k, (out, w) in enumerate(zip(outs, exit_weights)):
        if w == 0:
            continue
        # a refining exit's score map is the first exit's (nothing of it to learn there)
        fl = gt.new_zeros(()) if refine and k > 0 else focal_loss(out["score_map"], heat)
        box = box_at_cells(out["size_map"], out["offset_map"], cells, grid)
        _, giou = box_iou_and_giou(box, gt)
        l1 = F.l1_loss(box, gt)
        if refine and k > 0:
            # a refining exit is read where the first exit placed the target, not only at the true centre: it learns
            # at that cell too when it lies within one cell of the truth (a far peak is another object)
            peak = out["peak_cell"]
            near = ((torch.div(peak, grid, rounding_mode="floor") - cy).abs() <= 1) & ((peak % grid - cx).abs() <= 1)
            if bool(near.any()):
                at_peak = box_at_cells(out["size_map"], out["offset_map"], peak, grid)[near]
                _, giou_peak = box_iou_and_giou(at_peak, gt[near])
                giou = torch.cat([giou, giou_peak])
                l1 = 0.5 * (l1 + F.l1_loss(at_peak, gt[near]))
        with torch.no_grad():
            achieved, _ = box_iou_and_giou(out["box"], gt)   # IoU of the box this exit would really output
        iou_loss = F.smooth_l1_loss(out["score"], achieved, beta=0.1)
        total = total + w * (fl + giou_weight * (1 - giou).mean() + l1_weight * l1) + iou_weight * iou_loss
        parts[f"focal{k}"], parts[f"giou{k}"], parts[f"iou_err{k}"] = fl.detach(), giou.mean().detach(), iou_loss.detach()
        parts[f"box_iou{k}"] = achieved.mean()
    students = [o["distill_student"] for o in outs[:-1] if "distill_student" in o]   # (a NanoTrack exit has none)
    if distill_weight > 0 and students:
        mask = target_mask(gt, grid)                      # target-aware: only tokens on the target
        teacher = outs[-1]["search_features"].detach()
        dist = gt.new_zeros(())
        for student in students:
            per_token = ((student - teacher) ** 2).mean(-1)
            dist = dist + (per_token * mask).sum() / mask.sum().clamp(min=1)
        total = total + distill_weight * dist
        parts["distill"] = dist.detach()
    parts["total"] = total
    return parts
