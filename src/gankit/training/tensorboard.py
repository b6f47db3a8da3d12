"""What a run writes to TensorBoard (``train.tensorboard: true``), beyond its scalars.

- every logged number (``loss_*``, ``d_real``, ``eval_*`` ...) as a scalar, by its
  ``metrics.jsonl`` name, at its step;
- every preview as it is drawn: a picture (sample grid, toy scatter, translation
  strips) under ``previews``, or a text preview (language models) as text;
- when training stops, the run's settings with its last numbers as hyper-parameters
  (the HPARAMS tab), so that runs of one folder compare side by side.

The writer is torch's ``SummaryWriter``; the pictures are read back from the PNG the
preview wrote, so TensorBoard shows exactly the labelled picture of ``samples/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def log_preview(writer: Any, path: Path | None, step: int) -> None:
    """Add the preview file at ``path`` (a .png picture or a .txt text) at ``step``."""
    if path is None or not Path(path).is_file():
        return
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        writer.add_image("previews", pixels, step, dataformats="HWC")
    elif path.suffix == ".txt":
        writer.add_text("previews", Path(path).read_text(encoding="utf-8"), step)
    writer.flush()


def hparams(config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The run's model, data and train settings, flat (``model.lr_g``), as TensorBoard
    takes them: numbers, strings and booleans; a list or null as its text."""
    flat = {}
    for section in ("model", "data", "train"):
        for key, value in (config.get(section) or {}).items():
            plain = isinstance(value, (bool, int, float, str))
            flat[f"{section}.{key}"] = value if plain else str(value)
    return flat


def log_hparams(writer: Any, config: dict[str, Any], metrics: dict[str, Any], step: int) -> None:
    """The run's settings against its last numbers (finite ones), in the HPARAMS tab."""
    numbers = {
        f"hparam/{k}": float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
    }
    writer.add_hparams(hparams(config), numbers, run_name=".", global_step=step)
    writer.flush()


__all__ = ["hparams", "log_hparams", "log_preview"]
