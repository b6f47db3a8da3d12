"""Does a categorical code find the operator? Scores of the change family on mixed data.

On held-out pairs of data whose later items were each made by one of several hidden
operators (``digits-change-mixed``): earlier items x, each one's own later item
``op_j(x, m)``, and the hidden j (used for scoring only, never for training):

- ``operator_accuracy`` ↑: for each pair, the kind k (and the amount c on a grid of
  ``AMOUNT_STEPS`` + 1 values in [0, 1]) whose output ``G(x, k, c)`` is nearest (L1) to
  the real later item; then the share of pairs whose k names the true operator, after
  the one-to-one matching of kinds to operators that agrees most often (Hungarian,
  ``scipy.optimize.linear_sum_assignment``): codes carry no names, so kind 1 may be
  the data's ``fade``. Floor: 1.

  A kind counts as *found* only where choosing it explains at least ``DECISIVE`` (a
  tenth) of the item's own change: ``(max_k d_k − min_k d_k) / ‖x − op_j(x, m)‖₁ ≥
  0.1``, with ``d_k`` kind k's nearest distance. Elsewhere the pair counts as a guess
  among the J operators, 1/J right. Why: the nearest of two outputs is scale-free, so
  with ``thicken`` and ``fade`` (which move ink in opposite ways) *any* two codes that
  differ at all, by however little, split the pairs by the direction of their change.
  Without the rule an untrained ``change_cat`` scored 0.95-0.98 (three seeds); with
  it, about 1/J. A model with one code (the ``change`` family) finds nothing: 1/J;
- ``operator_individual_error`` ↓: ``individual_error`` with each pair given the kind
  matched to its true operator, ``Σ‖G(x, k(j), m) − op_j(x, m)‖₁ / Σ‖x − op_j(x, m)‖₁``:
  how well the model makes each individual's change once told which change (in its
  own code's names). ``individual_error`` itself uses ``change(x, m)``, the default kind.

A model offers kinds by ``n_kinds`` and ``change_kind(x, k, c, net)``
(:class:`gankit.models.change_cat.ChangeCat`).
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

#: The amounts searched for each pair and kind: 0, 1/20, ..., 1.
AMOUNT_STEPS = 20
#: The share of an item's own change that choosing its kind must explain for the kind
#: to count as found (module docstring).
DECISIVE = 0.1
#: Keeps the share finite for a pair with no change (m = 0).
EPS = 1e-6


def matched_accuracy(
    found: torch.Tensor, truth: torch.Tensor, n_found: int, n_truth: int
) -> tuple[int, list[int]]:
    """How many of (N,) found labels in [0, n_found) agree with (N,) true ones in
    [0, n_truth) after the one-to-one matching of found labels to true ones that agrees
    most often (Hungarian).

    Returns:
        the number that agree, and for each true label j the found label matched to it
        (an unmatched j, where there are more true labels than found ones, gets the
        found label that most often meets it).
    """
    confusion = torch.zeros(n_found, n_truth, dtype=torch.long)
    confusion.index_put_((found, truth), torch.ones_like(found), accumulate=True)
    rows, cols = linear_sum_assignment(confusion.numpy(), maximize=True)
    found_for = confusion.argmax(dim=0).tolist()
    for row, col in zip(rows, cols, strict=True):
        found_for[int(col)] = int(row)
    return sum(int(confusion[r, c]) for r, c in zip(rows, cols, strict=True)), found_for


def _changed(model, x: torch.Tensor, kind, amount, net) -> torch.Tensor:
    """G(x, k, c), clamped to the data's range; a model with one code ignores k."""
    if getattr(model, "n_kinds", 1) == 1:
        return model.change(x, amount, net).clamp(-1.0, 1.0)
    return model.change_kind(x, kind, amount, net).clamp(-1.0, 1.0)


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 distance per item, (N,)."""
    return (a - b).abs().reshape(len(a), -1).sum(dim=1)


def operator_scores(
    model,
    earlier: torch.Tensor,
    later: torch.Tensor,
    operator_index: torch.Tensor,
    magnitude: torch.Tensor,
    n_operators: int,
    net: torch.nn.Module | None = None,
) -> dict[str, float]:
    """``operator_accuracy`` and ``operator_individual_error`` (module docstring) on
    pairs: earlier items (N, ...), each one's own later item (N, ...), its hidden
    operator's index (N,) in [0, n_operators) and magnitude (N,)."""
    kinds = getattr(model, "n_kinds", 1)
    amounts = torch.linspace(0.0, 1.0, AMOUNT_STEPS + 1)

    def nearest_of(kind: int) -> torch.Tensor:
        """(N,) kind's nearest distance to each later item over the amounts."""
        gaps = [_distance(_changed(model, earlier, kind, float(c), net), later) for c in amounts]
        return torch.stack(gaps).min(dim=0).values

    # (N, K): each kind's best distance over the amounts
    nearest = torch.stack([nearest_of(k) for k in range(kinds)], dim=1)
    real = _distance(earlier, later)
    explained = (nearest.max(dim=1).values - nearest.min(dim=1).values) / real.clamp_min(EPS)
    decided = explained >= DECISIVE
    agree, kind_for = matched_accuracy(
        nearest.argmin(dim=1)[decided], operator_index[decided], kinds, n_operators
    )
    guessed = int((~decided).sum()) / n_operators
    told = torch.tensor(kind_for)[operator_index]
    own = _distance(_changed(model, earlier, told, magnitude, net), later)
    return {
        "operator_accuracy": (agree + guessed) / len(earlier),
        "operator_individual_error": float(own.sum() / real.sum()),
    }


__all__ = ["AMOUNT_STEPS", "DECISIVE", "matched_accuracy", "operator_scores"]
