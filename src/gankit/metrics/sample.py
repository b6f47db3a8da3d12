"""The task ``sample`` in ``gankit eval``: samplers' samples scored with the data's
registered metrics (:mod:`gankit.metrics.registry`), next to the real-vs-real floor,
then the family's own scores."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from gankit.data import DataBundle
from gankit.data.base import take
from gankit.metrics.evaluate import EvalOptions, EvalReport, Scorer, reference_split
from gankit.metrics.progress import Progress
from gankit.ranks import RankShare
from gankit.runs.load import Run


def evaluate_samples(run: Run, bundle: DataBundle, options: EvalOptions) -> EvalReport:
    """``gankit eval`` for samplers: the data's metrics on ``n`` samples against the
    reference split, next to the real-vs-real floor, then the family's own scores
    (``Model.family_scores``: a VAE's ELBO, a conditional GAN's label accuracy, InfoGAN's
    code matching).

    Under torchrun every rank draws and embeds its block of the samples and the real
    images (:mod:`gankit.ranks`); rank 0 scores them and adds the family's
    scores, and the other ranks return a report that prints nothing (``follower``)."""
    from gankit.models.base import ScoreContext

    started = time.perf_counter()
    o = options
    progress = Progress(o.progress)
    scorer = Scorer(
        bundle, o.metrics, o.n, o.split, o.features, o.inception_weights, o.data_dir, o.seed,
        o.train_evaluator, progress, RankShare.current(),
    )  # fmt: skip
    progress.say(f"drawing {scorer.n:,} samples from the checkpoint of step {run.step}...")
    generator = torch.Generator().manual_seed(o.seed)
    scores = scorer.score_drawn(drawn_rows(run.model, scorer.n, generator, run.sampler_net))
    floor = scorer.floor()
    if not scorer.ranks.is_main:
        return EvalReport.of_follower(str(run.path), run.step, o.split)
    x, y = take(reference_split(bundle, scorer.split), scorer.n, o.seed)
    evaluator = scorer.extractor if scorer.features_kind == "evaluator" else None
    context = ScoreContext(x, y, evaluator, bundle.num_classes, scorer.n, o.seed, run.sampler_net)
    family, family_floor = run.model.family_scores(context)
    scores.update(family)
    floor.update(family_floor)
    extra = {
        "notes": scorer.notes,
        "metrics": list(scorer.metrics),
        "checkpoint": str(run.checkpoint),
        "resolution": bundle.shape[-1] if bundle.kind == "image" else None,
    }
    if scorer.floor_is_reference:
        extra["floor_is_reference"] = True
    if evaluator is not None:
        extra["evaluator_test_accuracy"] = evaluator.test_accuracy
    return EvalReport(
        run=str(run.path), step=run.step, n=scorer.n, n_reference=len(scorer.reference),
        n_floor=scorer.n_floor, split=o.split, features=scorer.features_kind, scores=scores,
        floor=floor, seconds=round(time.perf_counter() - started, 3), extra=extra,
    )  # fmt: skip


def drawn_rows(
    model, n: int, generator: torch.Generator, net: nn.Module | None
) -> Callable[[slice], torch.Tensor]:
    """``draw(rows)`` for :meth:`Scorer.score_drawn`: the samples of ``rows`` of the
    ``n`` latents that ``model.sample_latent(n, generator)`` draws, as ``model.sample``
    would give them. Every rank draws all ``n`` latents from the same seeded generator
    (a few floats each) and renders only its rows, so the gathered samples are the
    single process's ``model.sample(n, generator)``, row for row."""

    def draw(rows: slice) -> torch.Tensor:
        latent = model.sample_latent(n, generator)
        return model.render({key: value[rows] for key, value in latent.items()}, net=net)

    return draw
