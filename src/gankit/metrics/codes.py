"""Do labels and codes control what comes out? Scores read by an evaluator classifier.

- **Conditional accuracy** (cGAN, ACGAN): the share of samples drawn for label y that
  the dataset's evaluator classifies as y. A G that ignores its label scores ~1/K.
- **Code-class matching** (InfoGAN, after Chen et al. 2016, §7.1): draw samples for each
  value of the categorical code, label them with the evaluator, and map code values to
  classes one-to-one with the Hungarian algorithm on that confusion matrix. The error
  is the share of samples whose class differs from their code's mapped class. Q's
  accuracy on real test images under the same map is the paper's "5 % error on MNIST"
  measure: it classifies real data with a classifier learned without labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.errors import GankitError


def _check_evaluator(evaluator, num_classes: int) -> None:
    if getattr(evaluator, "num_classes", None) != num_classes:
        raise GankitError(
            f"the evaluator predicts {getattr(evaluator, 'num_classes', '?')} classes, the "
            f"model has {num_classes}: both must describe the same dataset"
        )


@torch.no_grad()
def conditional_accuracy(run, evaluator, n: int = 1000, seed: int = 0) -> float:
    """The evaluator's accuracy against the requested labels (balanced over classes)."""
    model = run.model
    _check_evaluator(evaluator, model.num_classes)
    latent = model.sample_latent(n, torch.Generator().manual_seed(seed))
    samples = model.render(latent, net=run.sampler_net).cpu()
    predicted = evaluator.logits(samples).argmax(dim=1)
    return float((predicted == latent["y"]).float().mean())


@dataclass
class CodeMatching:
    """InfoGAN's categorical code against the classes.

    Attributes:
        code_to_class: ``code_to_class[c]`` is the class matched to code value c.
        error: share of generated samples whose evaluator class is not their code's class.
        q_accuracy: Q's accuracy on real test images under the same map (None without them).
        confusion: (K, C) counts of evaluator classes per code value.
    """

    code_to_class: list[int]
    error: float
    q_accuracy: float | None
    confusion: torch.Tensor


@torch.no_grad()
def code_class_matching(
    run,
    evaluator,
    real: tuple[torch.Tensor, torch.Tensor] | None = None,
    n: int = 2000,
    seed: int = 0,
) -> CodeMatching:
    """Hungarian matching of InfoGAN's categorical values to the evaluator's classes.

    Args:
        run: a loaded InfoGAN run.
        evaluator: the dataset's evaluator classifier (same classes as the data).
        real: (images, labels) of real test data, to score Q's own classification.
        n: generated samples, balanced over code values.
    """
    from scipy.optimize import linear_sum_assignment

    model = run.model
    if not hasattr(model, "n_categories"):
        raise GankitError(f"code matching needs an InfoGAN run; this is a '{model.model_name}'")
    k, classes = model.n_categories, evaluator.num_classes
    if k > classes:
        raise GankitError(
            f"cannot match {k} code values one-to-one to {classes} classes; use n_categories <= "
            f"{classes}"
        )
    latent = model.sample_latent(n, torch.Generator().manual_seed(seed))  # c_cat cycles
    samples = model.render(latent, net=run.sampler_net).cpu()
    predicted = evaluator.logits(samples).argmax(dim=1)
    confusion = torch.zeros(k, classes, dtype=torch.long)
    confusion.index_put_((latent["c_cat"], predicted), torch.ones_like(predicted), accumulate=True)
    rows, cols = linear_sum_assignment(confusion.numpy(), maximize=True)
    code_to_class = [0] * k
    for row, col in zip(rows, cols):
        code_to_class[int(row)] = int(col)
    matched = sum(int(confusion[r, c]) for r, c in zip(rows, cols))
    q_accuracy = None
    if real is not None:
        images, labels = real
        codes = torch.cat(
            [model.predict_codes(chunk)["cat"].argmax(dim=1).cpu() for chunk in images.split(500)]
        )
        mapped = torch.tensor(code_to_class)[codes]
        q_accuracy = float((mapped == labels).float().mean())
    return CodeMatching(code_to_class, 1.0 - matched / n, q_accuracy, confusion)
