"""Model families, one file per family. Importing a family module registers its variants."""

from gankit.models.base import GenerativeModel

__all__ = ["GenerativeModel"]
