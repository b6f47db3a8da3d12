"""Semantic segmentation scores: the confusion matrix, per-class IoU and mIoU.

``IoU_c = TP_c / (TP_c + FP_c + FN_c)`` for each class ``c``, read off the confusion
matrix ``M`` (rows: truth, columns: prediction) as ``M[c, c] / (Σ_j M[c, j] + Σ_i M[i, c]
− M[c, c])``, accumulated over every pixel of the evaluated set (not averaged per image),
as the Cityscapes benchmark and Tsai et al. (2018) score. ``mIoU`` is the mean over the
classes that occur in the truth or in the prediction; a class absent from both has no
IoU (NaN) and is left out of the mean rather than counted as 0 or 1.

Written by hand rather than with torchmetrics' ``MulticlassJaccardIndex``: that class
scores an absent class as ``zero_division`` (0 by default) inside its macro mean, and we
want it left out, with the per-class values and the pixel accuracy from the same matrix.
"""

from __future__ import annotations

import torch

from gankit.data.base import NO_LABEL


def confusion_matrix(
    prediction: torch.Tensor, truth: torch.Tensor, num_classes: int, ignore_index: int = NO_LABEL
) -> torch.Tensor:
    """Pixel counts by (true class, predicted class).

    Args:
        prediction: (N, H, W) or any shape of predicted class indices.
        truth: the true class indices, of the same shape; ``ignore_index`` marks pixels
            left out (``NO_LABEL``: the 255 of Cityscapes-style label PNGs).
        num_classes: K.

    Returns:
        (K, K) int64, ``M[i, j]`` = pixels of true class i predicted as class j.
    """
    prediction, truth = prediction.reshape(-1).long().cpu(), truth.reshape(-1).long().cpu()
    keep = truth != ignore_index
    index = truth[keep] * num_classes + prediction[keep]
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """(K, K) confusion matrix -> (K,) float64 IoU, NaN for a class absent from both
    the truth and the prediction."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    return torch.where(union > 0, true_positive / union.clamp(min=1), float("nan"))


def segmentation_scores(
    prediction: torch.Tensor, truth: torch.Tensor, num_classes: int, ignore_index: int = NO_LABEL
) -> dict[str, float]:
    """``accuracy`` (pixel accuracy), ``miou`` and ``iou_<c>`` for each class index c.

    A class absent from both truth and prediction reports ``iou_<c>`` = NaN and does not
    enter ``miou``.
    """
    confusion = confusion_matrix(prediction, truth, num_classes, ignore_index)
    iou = iou_per_class(confusion)
    scores = {
        "accuracy": float(confusion.diag().sum() / confusion.sum().clamp(min=1)),
        "miou": float(iou.nanmean()),
    }
    scores.update({f"iou_{c}": float(value) for c, value in enumerate(iou)})
    return scores
