"""Metrics: how good is a generator? Toy mode coverage first; more in later modules."""

from gankit.metrics.toy import ModeCoverage, mode_coverage

__all__ = ["ModeCoverage", "mode_coverage"]
