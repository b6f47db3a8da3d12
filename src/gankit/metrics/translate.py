"""The task ``translate`` in ``gankit eval`` and during training: translators (CycleGAN)
scored by cycle error, Fréchet distance and the class kept, on both domains' held-out
splits."""

from __future__ import annotations

import time

import torch

from gankit.data import DataBundle
from gankit.data.base import take
from gankit.errors import GankitError
from gankit.metrics.evaluate import DEFAULT_N, EvalOptions, EvalReport
from gankit.runs.load import Run


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): grey repeated in R, G, B, or RGB averaged to
    grey, so an untranslated image can be read by the other domain's evaluator."""
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, channels, -1, -1)
    return images.mean(dim=1, keepdim=True)


def paired_scores(translated: torch.Tensor, targets: torch.Tensor, tag: str) -> dict[str, float]:
    """Translations against their true targets, (N, C, H, W) each in [-1, 1]:

    - ``l1_{tag}``: ``mean |G(x) − y|`` per pixel, in [-1, 1] units (lower is better);
    - ``ssim_{tag}``: the structural similarity of G(x) and y (Wang et al. 2004, on
      [0, 1] pixels, Gaussian window 11 px, 7 px below 16 px images; 1 is identical).
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    kernel = 11 if translated.shape[-1] >= 16 else 7
    ssim = structural_similarity_index_measure(
        (translated + 1) / 2, (targets + 1) / 2, data_range=1.0, kernel_size=kernel
    )
    return {f"l1_{tag}": float((translated - targets).abs().mean()), f"ssim_{tag}": float(ssim)}


def translation_scores(
    model,
    bundle: DataBundle,
    n: int | None = None,
    seed: int = 0,
    train_evaluator: bool = False,
    data_dir: str | None = None,
    net: torch.nn.Module | None = None,
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Translators (CycleGAN) on both domains' held-out splits; returns (scores, floor, notes).

    For each direction, ``ab`` (A -> B) and ``ba`` (B -> A), on up to ``n`` held-out
    images x of the source domain (``net`` replaces the A -> B network, e.g. its EMA):

    - ``cycle_l1_a`` / ``cycle_l1_b``: ``mean |F(G(a)) − a|`` and ``mean |G(F(b)) − b|``,
      per pixel in [-1, 1] units;
    - ``fd_ab``: the Fréchet distance between translated G(a) and real B test images in
      the features of B's evaluator classifier, next to ``fd_ab_before``, the same for
      the untranslated a (grey repeated to RGB or RGB averaged to grey where the channel
      counts differ). Translation should bring it down; the floor is real B train
      images against the same B test images;
    - ``acc_ab``: B's evaluator classifying G(a) against a's labels, when both domains
      carry the same labels: does the class survive translation? ``acc_ab_before`` is
      the evaluator on the untranslated a; the floor its accuracy on real B;
    - ``l1_ab`` and ``ssim_ab`` (:func:`paired_scores`): on paired data, where item i
      of A's held-out split belongs with item i of B's, G(a) against its true target.

    A model with one direction only (pix2pix) gets no cycle error.

    Domains without an evaluator (``unpaired:PATH``) get the cycle errors only, with a
    note saying so.
    """
    from gankit.metrics.features import EVALUATOR_DATASETS, load_evaluator
    from gankit.metrics.frechet import frechet_distance

    n = n or DEFAULT_N["image"]
    if n < 2:
        raise GankitError(f"--n must be at least 2, got {n}")
    domains = {"a": bundle, "b": bundle.domain_b}
    held_out = {key: take(d.held_out, n, seed) for key, d in domains.items()}
    scores: dict[str, float] = {}
    floor: dict[str, float] = {}
    notes: list[str] = []
    for (source, target), direction in zip((("a", "b"), ("b", "a")), model.directions):
        tag = source + target
        x, y = held_out[source]
        if len(model.directions) > 1:
            translated, reconstructed = model.round_trip(x, direction, net)
            scores[f"cycle_l1_{source}"] = float((reconstructed - x).abs().mean())
        else:  # one way only (pix2pix): no cycle to close
            translated = model.translate(x, direction, net)
        if bundle.extra.get("paired"):
            scores.update(paired_scores(translated, held_out[target][0], tag))
        domain = domains[target]
        if domain.name not in EVALUATOR_DATASETS:
            notes.append(f"no evaluator for '{domain.name}': fd_{tag} and acc_{tag} skipped")
            continue
        evaluator = load_evaluator(
            domain.name,
            resolution=domain.shape[-1],
            train_if_missing=train_evaluator,
            data_dir=data_dir,
            progress=False,
        )
        # The evaluator reads its dataset's own channels: grey digits that a run reads as
        # RGB (``channels: 3``) are averaged back to grey, which loses nothing.
        channels = evaluator.input_shape[0]
        real = match_channels(held_out[target][0], channels)
        translated, before = match_channels(translated, channels), match_channels(x, channels)
        real_features = evaluator.features(real)
        scores[f"fd_{tag}"] = frechet_distance(evaluator.features(translated), real_features)
        scores[f"fd_{tag}_before"] = frechet_distance(evaluator.features(before), real_features)
        if domain.test is not None:
            other = match_channels(take(domain.train, n, seed + 1)[0], channels)
            floor[f"fd_{tag}"] = frechet_distance(evaluator.features(other), real_features)
        same_labels = domains[source].num_classes == domain.num_classes == evaluator.num_classes
        if same_labels and bool((y >= 0).all()):
            for key, images in ((f"acc_{tag}", translated), (f"acc_{tag}_before", before)):
                predictions = evaluator.logits(images).argmax(dim=1)
                scores[key] = float((predictions == y).float().mean())
            floor[f"acc_{tag}"] = evaluator.test_accuracy
    return scores, floor, notes


def evaluate_translation(run: Run, bundle: DataBundle, options: EvalOptions) -> EvalReport:
    """``gankit eval`` for translators: :func:`translation_scores` on the held-out splits."""
    started = time.perf_counter()
    options.check_defaults(
        run,
        "a translator scored by cycle error, FD and class accuracy on the test splits in "
        "evaluator features",
        ("metrics", "features", "split"),
    )
    n = options.n
    scores, floor, notes = translation_scores(
        run.model, bundle, n, options.seed, options.train_evaluator, options.data_dir,
        run.sampler_net,
    )  # fmt: skip
    n_used = n or DEFAULT_N["image"]
    return EvalReport(
        run=str(run.path), step=run.step, n=min(n_used, len(bundle.held_out)),
        n_reference=min(n_used, len(bundle.domain_b.held_out)),
        n_floor=min(n_used, len(bundle.domain_b.train)), split="test", features="evaluator",
        scores=scores, floor=floor, seconds=round(time.perf_counter() - started, 3),
        extra={"checkpoint": str(run.checkpoint), "notes": notes},
    )  # fmt: skip
