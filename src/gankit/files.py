"""Placeholder until the layering branch lands: atomic writes."""

from __future__ import annotations

from gankit.training.checkpoint import atomic_save

__all__ = ["atomic_save"]
