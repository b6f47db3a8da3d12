"""Metrics: how good is a generator?

- :mod:`gankit.metrics.registry`: :data:`~gankit.metrics.registry.METRICS`, the one dict
  of metric names; :func:`~gankit.metrics.registry.register_metric` adds one.
- :mod:`gankit.metrics.builtin`: gankit's own (modes, w1, fd, kid, is, pr, dc).
- :mod:`gankit.metrics.evaluate`: :class:`Scorer` (reads the registry), the report
  ``gankit eval`` writes, and which way each score is better.
- one module per task's evaluation: :mod:`~gankit.metrics.sample`,
  :mod:`~gankit.metrics.translate`, :mod:`~gankit.metrics.adapt`,
  :mod:`~gankit.metrics.change`, :mod:`~gankit.metrics.text`.
- :mod:`gankit.metrics.toy`: mode coverage on toy mixtures (PacGAN's protocol).
- :mod:`gankit.metrics.divergences`: W1 (exact and sliced), histogram KL/JS, neural W1.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use: the registry must load without torch (``gankit --help``).
_LAZY = {
    "ModeCoverage": "gankit.metrics.toy",
    "mode_coverage": "gankit.metrics.toy",
    "histogram_js": "gankit.metrics.divergences",
    "histogram_kl": "gankit.metrics.divergences",
    "neural_w1": "gankit.metrics.divergences",
    "sliced_wasserstein": "gankit.metrics.divergences",
    "wasserstein": "gankit.metrics.divergences",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gankit.metrics' has no attribute {name!r}")
