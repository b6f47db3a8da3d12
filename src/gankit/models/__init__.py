"""Model families, one file per family. Importing a family module registers its variants."""

from gankit.models.base import Model, ScoreContext

__all__ = ["Model", "ScoreContext"]
