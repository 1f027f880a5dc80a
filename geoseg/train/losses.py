"""Training losses, masked to valid pixels: per output channel (building, border, gap), weighted."""

from __future__ import annotations


def masked_bce(logits, target, valid):
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * valid).sum() / valid.sum().clamp(min=1)


def bce_dice(logits, target, valid):
    import torch

    bce = masked_bce(logits, target, valid)
    p = torch.sigmoid(logits) * valid
    inter = (p * target).sum(dim=(1, 2, 3))
    denom = p.sum(dim=(1, 2, 3)) + (target * valid).sum(dim=(1, 2, 3))
    return bce + 1 - ((2 * inter + 1) / (denom + 1)).mean()


def bce_lovasz(logits, target, valid):
    """BCE + the Lovasz hinge (Berman et al. 2018: a convex surrogate of IoU over the whole batch, smp's
    implementation), nodata pixels left out of both."""
    from segmentation_models_pytorch.losses import LovaszLoss

    labels = target.masked_fill(valid == 0, _IGNORE)
    return masked_bce(logits, target, valid) + LovaszLoss("binary", per_image=False, ignore_index=_IGNORE)(logits, labels)


_IGNORE = 255
LOSSES = {"bce_dice": bce_dice, "bce_lovasz": bce_lovasz}  # train.loss: the building channel's loss


def total_loss(logits, target, valid, weights, loss: str = "bce_dice"):
    """Per output channel (building, border, gap), weighted: ``loss`` on the building channel, Dice + BCE on the
    others."""
    logits = logits.float()
    return sum(w * (LOSSES[loss] if c == 0 else bce_dice)(logits[:, c:c + 1], target[:, c:c + 1], valid)
               for c, w in enumerate(weights[:logits.shape[1]]))
