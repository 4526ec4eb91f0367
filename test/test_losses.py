import torch

from dytrack_ros.training.losses import box_iou_and_giou, focal_loss, gaussian_heatmap, target_mask


def test_iou_and_giou_hand_computed():
    a = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    b = torch.tensor([[0.6, 0.5, 0.2, 0.2]])    # shifted by half a width: inter 0.01*... 0.1x0.2
    iou, giou = box_iou_and_giou(a, b)
    assert abs(iou.item() - 0.02 / 0.06) < 1e-5
    # enclosing box 0.3 x 0.2 = 0.06 = union -> GIoU == IoU
    assert abs(giou.item() - iou.item()) < 1e-5
    far = torch.tensor([[0.9, 0.9, 0.1, 0.1]])
    iou, giou = box_iou_and_giou(a, far)
    assert iou.item() == 0 and giou.item() < 0


def test_focal_loss_prefers_the_right_peak():
    gt = torch.tensor([[0.55, 0.55, 0.2, 0.2]])
    heat = gaussian_heatmap(gt, 8)
    assert heat[0, 0, 4, 4] == 1.0 and heat.max() == 1.0
    good = heat.clamp(0.01, 0.99)
    bad = torch.roll(good, shifts=3, dims=3)
    assert focal_loss(good, heat) < focal_loss(bad, heat)


def test_target_mask_covers_the_box_only():
    gt = torch.tensor([[0.5, 0.5, 0.25, 0.25]])
    m = target_mask(gt, 8).view(8, 8)
    assert m[3:5, 3:5].sum() == 4 and m.sum() == 4
