"""gankit's own metrics of the task "sample", registered in the order they run by default
and write their scores (``eval.json``, the table): toy data first, then images.

They live together here rather than next to their computations (:mod:`~gankit.metrics.toy`,
:mod:`~gankit.metrics.divergences`, :mod:`~gankit.metrics.frechet`): those modules import
torch, and the registry must fill without it (``gankit --help`` lists the metrics). Each
function imports its computation when it runs.
"""

from __future__ import annotations

from gankit.metrics.registry import HIGHER, LOWER, MetricInput, register_metric

# ------------------------------------------------------------------------------- toy data


@register_metric(
    "modes", kind="toy", needs={"modes"},
    scores={"modes": HIGHER, "high_quality": HIGHER, "reverse_kl": LOWER},
    description="modes captured, high-quality share and reverse KL (PacGAN's protocol)",
)  # fmt: skip
def modes(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.toy import mode_coverage

    bundle = inputs.bundle
    return mode_coverage(inputs.samples, bundle.modes, bundle.mode_std).as_dict()


@register_metric(
    "w1", kind="toy", scores={"w1": LOWER},
    description="exact Wasserstein-1 between the sample sets (POT)",
)  # fmt: skip
def w1(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.divergences import wasserstein

    return {"w1": wasserstein(inputs.samples, inputs.reference)}


# --------------------------------------------------------------------------------- images


@register_metric(
    "fd", kind="image", needs={"features"}, scores={"fd": LOWER},
    description="Fréchet distance between the feature distributions (FID in InceptionV3's)",
)  # fmt: skip
def fd(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.frechet import frechet_distance

    return {"fd": frechet_distance(*_features(inputs))}


@register_metric(
    "kid", kind="image", needs={"features"}, scores={"kid": LOWER, "kid_std": None},
    description="kernel inception distance, mean and spread over feature subsets",
)  # fmt: skip
def kid(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.frechet import kernel_inception_distance

    mean, std = kernel_inception_distance(*_features(inputs), seed=inputs.seed)
    return {"kid": mean, "kid_std": std}


@register_metric(
    "is", kind="image", needs={"probs"}, scores={"is": HIGHER, "is_std": None},
    description="Inception Score of the class probabilities, mean and spread over splits",
)  # fmt: skip
def inception_score(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.frechet import inception_score as score

    mean, std = score(inputs.features["probs"])
    return {"is": mean, "is_std": std}


@register_metric(
    "pr", kind="image", needs={"features"}, scores={"precision": HIGHER, "recall": HIGHER},
    description="precision and recall of the feature manifolds (Kynkäänniemi et al.)",
)  # fmt: skip
def precision_recall(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.frechet import precision_recall as score

    fake, real = _features(inputs)
    precision, recall = score(real, fake)
    return {"precision": precision, "recall": recall}


@register_metric(
    "dc", kind="image", needs={"features"}, scores={"density": HIGHER, "coverage": HIGHER},
    description="density and coverage of the feature manifolds (Naeem et al.)",
)  # fmt: skip
def density_coverage(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.frechet import density_coverage as score

    fake, real = _features(inputs)
    density, coverage = score(real, fake)
    return {"density": density, "coverage": coverage}


def _features(inputs: MetricInput):
    """(scored set's, reference's) (n, d) features."""
    return inputs.features["features"], inputs.reference_features["features"]


# ------------------------------------------------------------- self-organising maps, off
# After the others, so that the default metrics keep their places and their order.


@register_metric(
    "som_toy", kind="toy", scores={"som_coverage": HIGHER}, default=False,
    description="SOM coverage: share of the real points' units on a 10x10 SOM that samples reach",
)  # fmt: skip
def som_toy(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.som import som_coverage

    return som_coverage(inputs.reference, inputs.samples, seed=inputs.seed)


@register_metric(
    "som", kind="image", needs={"features"}, scores={"som_coverage": HIGHER}, default=False,
    description="SOM coverage: share of the real features' units on a 10x10 SOM that samples reach",
)  # fmt: skip
def som(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.som import som_coverage

    fake, real = _features(inputs)
    return som_coverage(real, fake, seed=inputs.seed)


# ---------------------------------------------------------------- FD∞, off by default
# Five FDs per set instead of one: asked for by name (--metrics fd_inf).


@register_metric(
    "fd_inf", kind="image", needs={"features"}, scores={"fd_inf": LOWER, "fd_inf_slope": None},
    default=False,
    description="FD extrapolated to infinitely many samples (FID∞, Chong & Forsyth), k of k/n",
)  # fmt: skip
def fd_infinity(inputs: MetricInput) -> dict[str, float]:
    from gankit.metrics.frechet import frechet_distance_infinity

    value, slope = frechet_distance_infinity(*_features(inputs), seed=inputs.seed)
    return {"fd_inf": value, "fd_inf_slope": slope}
