"""The task ``sample`` in ``gankit eval``: samplers' samples scored with the data's
registered metrics (:mod:`gankit.metrics.registry`), next to the real-vs-real floor,
then the family's own scores."""

from __future__ import annotations

import time

from gankit.data import DataBundle
from gankit.data.base import take
from gankit.metrics.evaluate import EvalOptions, EvalReport, Scorer, reference_split
from gankit.metrics.progress import Progress
from gankit.runs.load import Run


def evaluate_samples(run: Run, bundle: DataBundle, options: EvalOptions) -> EvalReport:
    """``gankit eval`` for samplers: the data's metrics on ``n`` samples against the
    reference split, next to the real-vs-real floor, then the family's own scores
    (``Model.family_scores``: a VAE's ELBO, a conditional GAN's label accuracy, InfoGAN's
    code matching)."""
    from gankit.models.base import ScoreContext

    started = time.perf_counter()
    o = options
    progress = Progress(o.progress)
    scorer = Scorer(
        bundle, o.metrics, o.n, o.split, o.features, o.inception_weights, o.data_dir, o.seed,
        o.train_evaluator, progress,
    )  # fmt: skip
    progress.say(f"drawing {scorer.n:,} samples from the checkpoint of step {run.step}...")
    scores = scorer.score(run.sample(scorer.n, seed=o.seed))
    floor = scorer.floor()
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
