"""Mode coverage on toy mixtures, after PacGAN (Lin et al. 2018) and VEEGAN.

Each sample is assigned to its nearest mode centre by distance measured in units of
the mode's standard deviation. A sample is *high quality* when that distance is
below ``threshold`` (3 std); a mode is *captured* when at least one high-quality
sample is assigned to it.

The *reverse KL* compares the generator's histogram over modes with the true,
uniform one: ``KL(q || u) = Σ_k q_k log(K q_k)`` where ``q_k`` is the share of
high-quality samples assigned to mode ``k``. It is 0 when every mode gets the same
share and ``log K`` when all of them land on a single mode; missing modes raise it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.errors import GankitError


@dataclass(frozen=True)
class ModeCoverage:
    """Attributes:
    modes_captured: modes with at least one high-quality sample.
    n_modes: number of true modes.
    high_quality: fraction of samples within ``threshold`` std of their nearest mode.
    reverse_kl: KL(generated mode histogram || uniform), in nats (inf with no
        high-quality sample at all).
    counts: (K,) high-quality samples per mode.
    """

    modes_captured: int
    n_modes: int
    high_quality: float
    reverse_kl: float
    counts: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        return {
            "modes": float(self.modes_captured),
            "high_quality": self.high_quality,
            "reverse_kl": self.reverse_kl,
        }


def mode_coverage(
    samples: torch.Tensor, centres: torch.Tensor, std: float, threshold: float = 3.0
) -> ModeCoverage:
    """Count captured modes and high-quality samples.

    Args:
        samples: (N, D) generated points.
        centres: (K, D) true mode centres.
        std: the modes' standard deviation.
        threshold: the high-quality radius, in standard deviations.
    """
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise GankitError(
            f"mode_coverage needs samples (N, D) and centres (K, D) of the same D; "
            f"got {tuple(samples.shape)} and {tuple(centres.shape)}"
        )
    if len(samples) == 0:
        raise GankitError("mode_coverage got an empty sample set")
    distances = torch.cdist(samples.double(), centres.double()) / std
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance < threshold
    counts = torch.bincount(nearest[good], minlength=len(centres))
    return ModeCoverage(
        reverse_kl=reverse_kl_to_uniform(counts),
        modes_captured=int((counts > 0).sum()),
        n_modes=len(centres),
        high_quality=float(good.double().mean()),
        counts=counts,
    )


def reverse_kl_to_uniform(counts: torch.Tensor) -> float:
    """``KL(q || uniform)`` for a histogram of counts; empty bins contribute 0."""
    total = counts.sum()
    if total == 0:
        return float("inf")
    q = counts.double() / total
    q = q[q > 0]
    return float((q * (q * len(counts)).log()).sum())
