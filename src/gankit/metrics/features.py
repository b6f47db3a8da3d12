"""Feature extractors for image metrics: gankit's evaluator classifiers, and InceptionV3.

**Evaluators.** Inception features mean little for 8x8 digits or 28x28 clothing, so the
usual practice for MNIST-like data (TF-GAN's ``mnist_frechet_distance``; Bińkowski et al.
2018) is a classifier trained on the dataset itself: its penultimate layer gives the
features for FD, KID, precision/recall and density/coverage, its softmax the class
probabilities for IS. gankit trains one per (dataset, resolution, architecture, seed)
once, records its test accuracy, and caches it under ``$GANKIT_CACHE`` (default
``~/.cache/gankit``) in ``evaluators/``. Scores compare only within one evaluator.

**InceptionV3.** For standard FID values: the FID network of torch-fidelity, through
torchmetrics, from a local weights file (``--inception-weights``) or fetched by that
package. Optional: ``pip install 'gankit[inception]'``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from gankit.errors import GankitError, choices
from gankit.training.checkpoint import atomic_save

#: Datasets an evaluator can be trained for, with their native resolution.
EVALUATOR_DATASETS = {"digits": 8, "fashion-mnist": 28, "mnist": 28, "cifar10": 32}
ARCHITECTURES = ("cnn",)
#: Passes over the training split: digits has 1437 images, the others 50-60k.
DEFAULT_EPOCHS = {"digits": 20, "fashion-mnist": 4, "mnist": 3, "cifar10": 10}
FEATURE_DIM = 128


def cache_root() -> Path:
    if os.environ.get("GANKIT_CACHE"):
        return Path(os.environ["GANKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gankit"


def _check(dataset: str, arch: str, resolution: int | None) -> int:
    if dataset not in EVALUATOR_DATASETS:
        raise GankitError(
            f"no evaluator for dataset '{dataset}'; valid: {choices(EVALUATOR_DATASETS)} "
            "(for other data use --features inception)"
        )
    if arch not in ARCHITECTURES:
        raise GankitError(
            f"unknown evaluator architecture '{arch}'; valid: {choices(ARCHITECTURES)}"
        )
    return resolution or EVALUATOR_DATASETS[dataset]


def evaluator_path(
    dataset: str, arch: str = "cnn", seed: int = 0, resolution: int | None = None
) -> Path:
    """Where the evaluator of this dataset, architecture, seed and resolution is cached."""
    resolution = _check(dataset, arch, resolution)
    return cache_root() / "evaluators" / f"{dataset}-{resolution}px-{arch}-seed{seed}.pt"


class EvaluatorCNN(nn.Module):
    """A small classifier: three 3x3 conv layers, then 128 features, then class logits.

    (N, C, R, R) in [-1, 1] -> features (N, 128) -> logits (N, K).
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(128 * 4, FEATURE_DIM), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class Evaluator(nn.Module):
    """A trained evaluator in eval mode, with its provenance.

    Attributes:
        dataset, arch, seed, resolution: what it was trained for (its cache key).
        test_accuracy: accuracy on the dataset's test split.
        input_shape: the (C, R, R) it reads.
    """

    def __init__(self, net: EvaluatorCNN, meta: dict) -> None:
        super().__init__()
        self.net = net.eval()
        self.meta = meta
        self.dataset = meta["dataset"]
        self.test_accuracy = meta["test_accuracy"]
        self.input_shape = tuple(meta["input_shape"])

    def _batches(self, images: torch.Tensor, fn, batch_size: int = 1000) -> torch.Tensor:
        if tuple(images.shape[1:]) != self.input_shape:
            raise GankitError(
                f"the {self.dataset} evaluator reads images of shape {self.input_shape}, "
                f"got {tuple(images.shape[1:])}"
            )
        with torch.no_grad():
            return torch.cat([fn(chunk.float()) for chunk in images.split(batch_size)])

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, R, R) -> (N, 128) penultimate-layer features."""
        return self._batches(images, self.net.trunk)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._batches(images, self.net)

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, R, R) -> (N, K) class probabilities, for the Inception Score."""
        return self.logits(images).softmax(dim=1)


def _load_data(dataset: str, resolution: int, data_dir: str | None):
    from gankit.data import load_dataset

    options = {"resolution": resolution}
    if data_dir is not None and dataset != "digits":
        options["data_dir"] = data_dir
    return load_dataset(dataset, **options)


def train_evaluator(
    dataset: str,
    *,
    arch: str = "cnn",
    seed: int = 0,
    resolution: int | None = None,
    epochs: int | None = None,
    progress: bool = True,
    data_dir: str | None = None,
) -> Evaluator:
    """Train the evaluator classifier of ``dataset``, cache it atomically, return it."""
    resolution = _check(dataset, arch, resolution)
    bundle = _load_data(dataset, resolution, data_dir)
    x_train, y_train = bundle.train.tensors
    x_test, y_test = bundle.test.tensors
    epochs = epochs or DEFAULT_EPOCHS[dataset]
    started = time.perf_counter()
    # A private RNG stream: training an evaluator must not disturb a caller's randomness.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = EvaluatorCNN(x_train.shape[1], bundle.num_classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=3e-3, total_steps=epochs * (len(x_train) // 128 + 1)
        )
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"evaluator {dataset}", unit="epoch", disable=not progress)
        net.train()
        for _ in range(epochs):
            for index in torch.randperm(len(x_train)).split(128):
                loss = nn.functional.cross_entropy(net(x_train[index]), y_train[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
    net.eval()
    meta = {
        "dataset": dataset, "arch": arch, "seed": seed, "resolution": resolution,
        "input_shape": list(x_train.shape[1:]), "epochs": epochs,
        "train_seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    evaluator = Evaluator(net, {**meta, "test_accuracy": 0.0})
    predictions = evaluator.logits(x_test).argmax(dim=1)
    meta["test_accuracy"] = float((predictions == y_test).float().mean())
    evaluator = Evaluator(net, meta)
    atomic_save(
        {"state_dict": net.state_dict(), "meta": meta, "num_classes": bundle.num_classes},
        evaluator_path(dataset, arch, seed, resolution),
    )
    return evaluator


def load_evaluator(
    dataset: str,
    *,
    arch: str = "cnn",
    seed: int = 0,
    resolution: int | None = None,
    train_if_missing: bool = False,
    data_dir: str | None = None,
    progress: bool = True,
) -> Evaluator:
    """The cached evaluator; trains it first when missing and ``train_if_missing``."""
    path = evaluator_path(dataset, arch, seed, resolution)
    if not path.exists():
        if not train_if_missing:
            res = resolution or EVALUATOR_DATASETS[dataset]
            raise GankitError(
                f"no {dataset} evaluator at {res} px in {path.parent}; train it once with: "
                f"gankit evaluator train {dataset} --resolution {res}"
            )
        return train_evaluator(
            dataset,
            arch=arch,
            seed=seed,
            resolution=resolution,
            data_dir=data_dir,
            progress=progress,
        )
    state = torch.load(path, map_location="cpu", weights_only=False)
    meta = state["meta"]
    net = EvaluatorCNN(meta["input_shape"][0], state["num_classes"])
    net.load_state_dict(state["state_dict"])
    return Evaluator(net, meta)


class InceptionExtractor(nn.Module):
    """InceptionV3 pool3 features (2048) and class probabilities, for standard FID/IS."""

    def __init__(self, weights_path: str | None) -> None:
        super().__init__()
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3

            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=weights_path,
            )
        except (ImportError, ModuleNotFoundError, RuntimeError) as err:
            raise GankitError(
                "InceptionV3 features need torch-fidelity: pip install 'gankit[inception]' "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
            ) from None
        self.test_accuracy = None

    @staticmethod
    def _to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
        # The FID network takes uint8 RGB in [0, 255] and resizes to 299 itself.
        pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels

    def _run(self, images: torch.Tensor, index: int) -> torch.Tensor:
        with torch.no_grad():
            outs = [self.net(self._to_uint8_rgb(c))[index] for c in images.split(200)]
        return torch.cat(outs)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(images, 0)

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(images, 1).softmax(dim=1)


def inception_features(weights_path: str | None = None) -> InceptionExtractor:
    if weights_path is not None and not Path(weights_path).is_file():
        raise GankitError(f"--inception-weights '{weights_path}' is not a file")
    return InceptionExtractor(weights_path)
