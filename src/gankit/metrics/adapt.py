"""The tasks ``classify`` and ``segment`` in ``gankit eval`` and during training:
classifiers and segmenters (DANN, PixelDA, AdaptSeg) on each domain's held-out split."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from gankit.data import DataBundle
from gankit.data.base import take
from gankit.metrics.evaluate import EvalOptions, EvalReport


def accuracy(model, x: torch.Tensor, y: torch.Tensor, bundle: DataBundle) -> dict[str, float]:
    """The task "classify" on one domain: the share of ``model.predict(x)`` equal to y."""
    return {"accuracy": float((model.predict(x) == y.cpu()).float().mean())}


def segmentation(model, x: torch.Tensor, y: torch.Tensor, bundle: DataBundle) -> dict[str, float]:
    """The task "segment" on one domain: pixel ``accuracy``, ``miou`` and the IoU of each
    class, named ``iou_<class name>`` where the data names its classes."""
    from gankit.metrics.segmentation import segmentation_scores

    scores = segmentation_scores(model.predict(x), y, model.num_classes)
    if not bundle.class_names:
        return scores
    names = dict(enumerate(bundle.class_names))
    return {_class_named(k, names): v for k, v in scores.items()}


DomainScore = Callable[[Any, torch.Tensor, torch.Tensor, DataBundle], dict[str, float]]


def domain_scores(model, bundle: DataBundle, score: DomainScore) -> dict[str, float]:
    """``score`` on the source's and the target's held-out splits, e.g.
    ``source_accuracy`` and ``target_accuracy``. Target labels are used here only, for
    evaluation."""
    out: dict[str, float] = {}
    for prefix, domain in (("source", bundle), ("target", bundle.domain_b)):
        if domain is None:
            continue
        x, y = take(domain.held_out, len(domain.held_out), 0)
        out.update({f"{prefix}_{k}": v for k, v in score(model, x, y, domain).items()})
    return out


def evaluate_domains(
    run, bundle: DataBundle, options: EvalOptions, score: DomainScore
) -> EvalReport:
    """``gankit eval`` for classifiers and segmenters: ``score`` on each domain's
    held-out split. They draw no samples, so there is no floor."""
    started = time.perf_counter()
    return EvalReport(
        run=str(run.path), step=run.step, n=0, n_reference=0, n_floor=0, split="test",
        features=None, scores=domain_scores(run.model, bundle, score), floor={},
        seconds=round(time.perf_counter() - started, 3),
        extra={"checkpoint": str(run.checkpoint)},
    )  # fmt: skip


def _class_named(key: str, names: dict[int, str]) -> str:
    """``iou_3`` -> ``iou_vegetation`` when class 3 has that name; other keys unchanged."""
    metric, _, index = key.rpartition("_")
    if metric == "iou" and index.isdigit() and int(index) in names:
        return f"iou_{names[int(index)]}"
    return key
