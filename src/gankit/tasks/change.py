"""The task ``change``: models that turn an earlier item into a later one by an amount
c in [0, 1] (the change family, :mod:`gankit.models.change`). They read ``change(x, c,
net)`` and ``predict_amount(x, changed)``.

- previews: held-out earlier items, changed by c = 0, 0.25, …, 1 (labelled columns);
- scores during training and ``gankit eval``: control (Spearman between c and the
  data's read-back of the change), FD to the later domain, class kept, identity
  (:mod:`gankit.metrics.change`);
- views: ``change``, the same rows for ``--pairs`` held-out items;
- ``gankit translate RUN --amount C`` changes image files.
"""

from __future__ import annotations

import torch

from gankit.explore.change import ChangePreviews, change_files, change_view
from gankit.metrics.change import change_scores, evaluate_change
from gankit.tasks import Task, register_task


def change_during_training(model, bundle, cfg):
    """Every ``eval_every`` steps: :func:`change_scores` on ``eval_n`` held-out items
    (an evaluator is trained if missing, under ``fork_rng``)."""

    def evaluate(step: int, net) -> dict[str, float]:
        with torch.random.fork_rng(devices=[]):
            scores, _, _ = change_scores(model, bundle, cfg.eval_n, cfg.seed, True, net=net)
        return scores

    return evaluate


CHANGE = register_task(
    Task(
        name="change",
        model_methods=("change", "predict_amount"),
        summary="changes earlier items into later ones by an amount c in [0, 1]",
        evaluate=evaluate_change,
        previews=ChangePreviews,
        scores=change_during_training,
        views={"change": change_view},
        default_views=("change",),
        translate_files=change_files,
    )
)
