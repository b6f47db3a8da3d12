"""The pictures a run draws while it trains, one kind per task.

The trainer calls ``inputs`` once (and saves them with the run, so every preview of a
run shows the same noise or the same images) and ``draw`` every ``train.sample_every``
steps; it never looks at what they draw. :mod:`gankit.tasks` picks the kind by task.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gankit.explore import toy
from gankit.explore.pictures import save_samples
from gankit.files import atomic_save, atomic_write, make_folder
from gankit.images import image_grid

#: Held-out inputs per domain in a translator's previews.
TRANSLATION_COLUMNS = 8


class SamplePreviews:
    """Samplers: the samples of the fixed noise, as a grid of images or a scatter over
    the real points. Toy runs also keep a small frame of G against D per preview
    (``snapshots/``), which ``gankit explore --what toy --animate`` replays."""

    def __init__(self, model, bundle, seed: int) -> None:
        self.model, self.bundle, self.seed = model, bundle, seed
        self.toy = bundle.kind == "toy"
        self._bounds: tuple[float, float, float, float] | None = None

    def inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self.model.sample_latent(n, generator)

    def draw(self, step: int, inputs, net: nn.Module | None, paths, title: str) -> Path:
        samples = self.model.render(inputs, net=net).cpu()
        real = None
        if self.toy:
            real = self.bundle.train.tensors[0][:2000]
            self._snapshot(step, net, real, paths)
        return save_samples(paths.samples / f"step_{step:08d}.png", samples, real, title)

    def _snapshot(self, step: int, net, real: torch.Tensor, paths) -> None:
        """A ~20 kB frame of G against D, for ``gankit explore --what toy --animate``."""
        if self._bounds is None:
            self._bounds = toy.plane_bounds(self.bundle.train.tensors[0][:20000])
        frame = toy.snapshot(self.model, net, real, step, self._bounds, seed=self.seed)
        make_folder(paths.snapshots)
        atomic_save(frame, paths.snapshots / f"step_{step:08d}.pt")


class TranslationPreviews:
    """Translators: held-out images of each domain (the test split, else train), and
    one picture of six rows: A inputs, their translations and reconstructions, then
    the same for B."""

    def __init__(self, model, bundle) -> None:
        self.model, self.bundle = model, bundle

    def inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs = {}
        for key, domain in (("a", self.bundle), ("b", self.bundle.domain_b)):
            split = domain.held_out
            index = torch.randperm(len(split), generator=generator)[: min(n, TRANSLATION_COLUMNS)]
            inputs[key] = torch.stack([split[int(i)][0] for i in index])
        return inputs

    @torch.no_grad()
    def draw(self, step: int, inputs, net: nn.Module | None, paths, title: str) -> Path:
        rows, labels = [], []
        for key, direction in zip(("a", "b"), self.model.directions):
            translated, reconstructed = self.model.round_trip(inputs[key], direction, net)
            rows += [inputs[key], translated, reconstructed]
            domain, other = key.upper(), "B" if key == "a" else "A"
            labels += [f"{domain} input", f"{domain} -> {other}", f"-> {domain} again"]
        path = paths.samples / f"step_{step:08d}.png"
        scale = max(1, 32 // rows[0].shape[-1])
        grid = image_grid(rows, scale=scale, title=title, row_labels=labels)
        atomic_write(path, grid.save, keep_suffix=True)
        return path
