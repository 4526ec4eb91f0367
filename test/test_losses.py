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


def test_absent_targets_only_train_the_iou_score_towards_zero():
    from conftest import tiny_config
    from dytrack_ros.model import DyTrackNet
    from dytrack_ros.training.losses import dytrack_loss
    torch.manual_seed(0)
    model = DyTrackNet(tiny_config(), load_pretrained=False).train()
    t, s = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 128, 128)
    gt = torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 4)
    outs = model(t, s)
    mixed = dytrack_loss(model, outs, gt, present=torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert "iou_absent" in mixed and "focal0" in mixed
    # the absent part is exactly the IoU scores' distance to 0 for samples 1 and 3
    want = torch.nn.functional.smooth_l1_loss(torch.stack([o["score"][[1, 3]] for o in outs]),
                                              torch.zeros(len(outs), 2), beta=0.1)
    assert torch.allclose(mixed["iou_absent"], want)
    only_absent = dytrack_loss(model, outs, gt, present=torch.zeros(4))
    assert set(only_absent) == {"total", "iou_absent"}
    only_absent["total"].backward()
    assert model.exit_heads[0].score.weight.grad is None  # box heads untouched by absent samples
    assert model.iou_heads[0].mlp[0].weight.grad is not None
