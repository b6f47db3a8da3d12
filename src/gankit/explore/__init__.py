"""Pictures of what a model learned: sample grids, toy scatters, loss curves."""

from gankit.explore.pictures import image_grid, save_loss_curves, save_samples

__all__ = ["image_grid", "save_loss_curves", "save_samples"]
