"""Metrics: how good is a generator?

- :mod:`gankit.metrics.toy`: mode coverage on toy mixtures (PacGAN's protocol).
- :mod:`gankit.metrics.divergences`: W1 (exact and sliced), histogram KL/JS, neural W1.
- :mod:`gankit.metrics.evaluate`: :class:`Scorer`, and what ``gankit eval`` measures for
  each task, given a loaded run.
"""

from gankit.metrics.divergences import (
    histogram_js,
    histogram_kl,
    neural_w1,
    sliced_wasserstein,
    wasserstein,
)
from gankit.metrics.toy import ModeCoverage, mode_coverage

__all__ = [
    "ModeCoverage",
    "histogram_js",
    "histogram_kl",
    "mode_coverage",
    "neural_w1",
    "sliced_wasserstein",
    "wasserstein",
]
