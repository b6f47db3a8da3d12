"""Scoring a generator against real data, always next to the real-vs-real floor; the
report ``gankit eval`` prints and writes, and which way each score is better.

``evaluate_run`` (behind ``gankit eval``) and the trainer's ``eval_every`` both call
:class:`Scorer`: it holds the reference split (and, for images, its features) so that
repeated evaluations during training only pay for the generated side. It runs the
metrics of the data's kind that :data:`gankit.metrics.registry.METRICS` holds:

- toy data: ``modes`` (modes captured, high-quality share and reverse KL, PacGAN's
  protocol) and ``w1`` (exact Wasserstein-1 between sample sets, POT);
- images: ``fd`` (Fréchet distance), ``kid``, ``is``, ``pr`` (precision/recall) and
  ``dc`` (density/coverage), in the features of gankit's evaluator classifier or of
  InceptionV3.

The *floor* scores real training images against the same reference split with the same
``n``: no generator can be expected to do better, so a score is read against it. Where
the floor's images are the reference's own (data with no held-out split, scored on its
train split with ``n`` at least its size), the floor is FD 0, precision 1 and recall 1
by construction: the report says so (``extra["floor_is_reference"]``) instead of
printing them as a floor.

Which way is better is declared once per score name: by each registered metric, and in
:data:`NO_GOAL_PATTERNS` and :data:`TASK_DIRECTIONS` for the rest
(:func:`score_directions`). Each task's evaluation has its own module:
:mod:`~gankit.metrics.sample`, :mod:`~gankit.metrics.translate`,
:mod:`~gankit.metrics.adapt`, :mod:`~gankit.metrics.change`, :mod:`~gankit.metrics.text`.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch

from gankit.conventions import MAX_SEED
from gankit.data import DataBundle
from gankit.data.base import take
from gankit.errors import GankitError, check_int, choices
from gankit.files import atomic_write_text, json_safe
from gankit.metrics.progress import QUIET, Progress
from gankit.metrics.registry import (
    HIGHER,
    LOWER,
    Metric,
    MetricInput,
    default_metrics,
    metric_directions,
    metrics_for,
    registered,
)
from gankit.ranks import SINGLE_RANK, RankShare
from gankit.runs.load import Run

DEFAULT_N = {"toy": 2500, "image": 2000}
#: The most samples one evaluation scores: FID's usual 50,000 (train.eval_n has the same).
MAX_EVAL_N = 50_000
FEATURE_KINDS = ("evaluator", "inception")

#: Score names that are references to read a score against, not goals: spreads
#: (``kid_std``), the untranslated or unchanged input's scores (``*_before``), baselines
#: and the temperature curve. Tried first, before any metric's own declaration.
NO_GOAL_PATTERNS: tuple[tuple[str, str | None], ...] = (
    ("*_std", None),
    ("*_before", None),
    ("unigram_*", None),
    ("uniform_*", None),
    ("word_share_*", None),
    ("entropy_*", None),
    ("kl", None),  # the VAE's KL term: a part of the ELBO, no goal alone
)
#: The scores of the tasks other than "sample" and of the families, as ``fnmatch``
#: patterns: tried after the registered metrics' score names.
TASK_DIRECTIONS: tuple[tuple[str, str | None], ...] = (
    # translation, adaptation, segmentation, change
    ("fd_*", LOWER),
    ("cycle_l1_*", LOWER),
    ("acc_*", HIGHER),
    ("*accuracy", HIGHER),
    ("*miou", HIGHER),
    ("*iou_*", HIGHER),
    ("control*", HIGHER),
    ("identity", LOWER),
    ("individual_error", LOWER),
    ("calibration_error", LOWER),
    ("calibration_rank", HIGHER),
    ("class_kept*", HIGHER),
    # paired translation (pix2pix): G(x) against its true target
    ("l1_*", LOWER),
    ("ssim_*", HIGHER),
    # the adversarial autoencoder: its codes against its prior
    ("prior_sw1", LOWER),
    # the families' own (Model.family_scores) and language models
    ("code_error", LOWER),
    ("cond_acc", HIGHER),
    ("elbo", HIGHER),
    ("nll", LOWER),
    ("recon_mse", LOWER),
    ("bits_per_*", LOWER),
    ("perplexity", LOWER),
    # the change family with a categorical code, on mixed operators
    ("operator_individual_error", LOWER),
    ("kind_error", LOWER),
)
ARROWS = {LOWER: "↓", HIGHER: "↑"}


def score_directions() -> tuple[tuple[str, str | None], ...]:
    """Which way each score gankit writes is better, as ``(fnmatch pattern, way)``
    pairs, the first that matches deciding (way None: no better way): the no-goal
    patterns, then every registered metric's score names, then the other tasks'."""
    return (*NO_GOAL_PATTERNS, *metric_directions(), *TASK_DIRECTIONS)


def score_direction(name: str) -> str | None:
    """``"lower"`` or ``"higher"``: which way the score ``name`` is better (None: neither,
    or a name gankit does not know)."""
    return next(
        (way for pattern, way in score_directions() if fnmatch.fnmatchcase(name, pattern)),
        None,
    )


def parse_metrics(
    names: str | list[str] | tuple[str, ...] | None, kind: str, task: str = "sample"
) -> tuple[str, ...]:
    """``"fd,kid"`` or a list -> validated names of ``task``'s registered metrics for data
    of ``kind`` ("toy", "image", ...); None: that kind's defaults."""
    if names is None:
        return default_metrics(kind, task)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    known = [m.name for m in metrics_for(task)]
    valid = [m.name for m in metrics_for(task, kind)]
    for name in names:
        if name not in known:
            raise GankitError(f"unknown metric '{name}'; valid: {choices(known)}")
        if name not in valid:
            raise GankitError(
                f"metric '{name}' does not apply to {kind} data; valid here: {choices(valid)}"
            )
    if not names:
        raise GankitError(f"--metrics is empty; valid: {choices(valid)}")
    return tuple(dict.fromkeys(names))


def reference_split(bundle: DataBundle, split: str):
    """The ``train`` or ``test`` part of ``bundle``, refusing a split it lacks."""
    if split == "train":
        return bundle.train
    if split == "test":
        if bundle.test is None:
            raise GankitError(f"dataset '{bundle.name}' has no test split; use --split train")
        return bundle.test
    raise GankitError(f"--split must be train or test, got '{split}'")


@dataclass
class EvalOptions:
    """The options of ``gankit eval``; each task reads the ones that apply to it.

    Attributes:
        metrics: metric names (see the module docstring); None: the data's defaults.
        n: samples to score (and reference items); None: 2500 for toy data, 2000 for
            images. At most 50,000.
        features: ``evaluator`` or ``inception``, for image metrics.
        split: the reference split, ``test`` or ``train``.
        seed: seeds the samples and the subsets; in [0, 2**32 - 1].
        inception_weights: a local InceptionV3 (FID) weights file.
        data_dir: where the data (and an evaluator's training data) is.
        train_evaluator: train the dataset's evaluator classifier if it is missing.
        progress: say on stderr what is being done (sampling, features), with bars.
    """

    metrics: str | list[str] | tuple[str, ...] | None = None
    n: int | None = None
    features: str = "evaluator"
    split: str = "test"
    seed: int = 0
    inception_weights: str | None = None
    data_dir: str | None = None
    train_evaluator: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if self.n is not None:
            check_int("--n", self.n, 1, MAX_EVAL_N)
        check_int("--seed", self.seed, 0, MAX_SEED)

    def asked(self) -> dict[str, Any]:
        """What decides the scores (``eval.json`` keeps it: the same step asked the same
        way again is the same numbers)."""
        metrics = self.metrics
        if metrics is not None and not isinstance(metrics, str):
            metrics = ",".join(metrics)
        return {"metrics": metrics, "n": self.n, "features": self.features,
                "split": self.split, "seed": self.seed}  # fmt: skip

    def check_defaults(self, run: Run, what: str, keys: tuple[str, ...]) -> None:
        """Refuse options that this kind of run does not read."""
        defaults = EvalOptions()
        changed = [k for k in keys if getattr(self, k) != getattr(defaults, k)]
        if changed:
            flags = ", ".join("--" + k.replace("_", "-") for k in changed)
            raise GankitError(
                f"run '{run.path.name}' is {what} ({run.model.model_name}); drop {flags}"
            )


class Scorer:
    """Scores sample sets against one reference split of one dataset.

    Args:
        bundle: the data the model was trained on.
        metrics: metric names (see module docstring); None uses the defaults.
        n: how many samples to score (and reference items to use).
        split: the reference split, ``test`` (default) or ``train``.
        features: ``evaluator`` or ``inception``, for image metrics.
        inception_weights: a local InceptionV3 (FID) weights file.
        data_dir: passed on to an evaluator that needs to be trained.
        seed: picks the reference subset.
        train_evaluator: train the dataset's evaluator classifier if it is missing.
        progress: where to say what it is doing (quiet by default, as inside training).
        ranks: under torchrun, ``RankShare.current()``: every rank then builds the
            scorer and calls its methods together; each draws and embeds its block of
            the rows, and rank 0 alone gets the scores (the others get ``{}``). See
            :mod:`gankit.ranks`.
    """

    def __init__(
        self,
        bundle: DataBundle,
        metrics: str | list[str] | tuple[str, ...] | None = None,
        n: int | None = None,
        split: str = "test",
        features: str = "evaluator",
        inception_weights: str | None = None,
        data_dir: str | None = None,
        seed: int = 0,
        train_evaluator: bool = False,
        progress: Progress = QUIET,
        ranks: RankShare = SINGLE_RANK,
    ) -> None:
        self.bundle = bundle
        self.ranks = ranks
        self.progress = progress
        self.kind = bundle.kind
        self.metrics = parse_metrics(metrics, self.kind)
        self.n = n or DEFAULT_N[self.kind]
        if self.n < 2:
            raise GankitError(f"--n must be at least 2, got {self.n}")
        self.split = split
        self.seed = seed
        self.reference = take(reference_split(bundle, split), self.n, seed)[0]
        self.features_kind = None
        self.extractor = None
        self.reference_features = None
        self.notes: list[str] = []
        self.floor_is_reference = False
        if self.kind == "image" and features not in FEATURE_KINDS:
            raise GankitError(f"--features must be one of {choices(FEATURE_KINDS)}")
        without_logits = self._needing("probs") if features == "inception" else []
        if without_logits:
            from gankit.metrics.features import inception_lacks_logits

            if metrics is not None:
                raise GankitError(inception_lacks_logits(without_logits[0]))
            self.metrics = tuple(m for m in self.metrics if m not in without_logits)
            self.notes += [
                f"no {name.upper()}: the offline FID InceptionV3 ends at pool3 and has no "
                "class logits"
                for name in without_logits
            ]
        #: The metrics to run, in registration order: the order of the scores written.
        self.selected: tuple[Metric, ...] = tuple(
            metric for name, metric in registered().items() if name in self.metrics
        )
        if self._needing("features", "probs"):
            self.features_kind = features
            self.extractor = self._extractor(features, inception_weights, data_dir, train_evaluator)
            what = f"reference images ({split} split)"
            self.reference_features = self._embed(self.reference, what, cache=True)

    def _needing(self, *needs: str) -> list[str]:
        """The chosen metrics that need any of ``needs``."""
        return [name for name in self.metrics if registered()[name].needs & set(needs)]

    # ------------------------------------------------------------------ features
    def _extractor(self, features, inception_weights, data_dir, train_evaluator):
        from gankit.metrics import features as feature_module

        if features == "inception":
            self.progress.say("loading the InceptionV3 (FID) network...")
            return feature_module.inception_features(inception_weights)

        def load():
            return feature_module.load_evaluator(
                self.bundle.name,
                resolution=self.bundle.shape[-1],
                train_if_missing=train_evaluator,
                data_dir=data_dir,
            )

        if not (self.ranks.enabled and train_evaluator):
            return load()
        # a missing evaluator is trained by rank 0 alone; the others then load its file
        evaluator = load() if self.ranks.is_main else None
        self.ranks.barrier()
        return evaluator if evaluator is not None else load()

    def _embed(
        self, images: torch.Tensor, what: str, cache: bool = False
    ) -> dict[str, torch.Tensor]:
        """Features (and class probabilities, for metrics that need them) of ``images``.
        With ``cache``, InceptionV3 features of real data are kept on disk, keyed by the
        images' bytes: they cost minutes on a CPU and every evaluation of the dataset
        reuses them.

        Under several ranks each embeds its block of the rows, and the blocks are
        gathered; the cache is read only when every rank finds it, and written by rank 0.
        """
        from gankit.metrics import features as feature_module

        self._say_extracting(len(images), what)
        cache = cache and self.features_kind == "inception"
        if cache:
            kept = feature_module.read_cached_features(images, self.progress)
            if self.ranks.all_agree(kept is not None):
                return {"features": kept}
        mine = images[self.ranks.block(len(images))]
        out = self._features_of_block(mine, len(images))
        if cache and self.ranks.is_main:
            feature_module.save_cached_features(images, out["features"])
        return out

    # ------------------------------------------------------------------ scoring
    def score(self, samples: torch.Tensor) -> dict[str, float]:
        """Score (n, ...) samples against the reference; returns flat named numbers."""
        return self._run(self._checked(samples), "generated samples")

    def score_drawn(self, draw: Callable[[slice], torch.Tensor]) -> dict[str, float]:
        """Score ``n`` samples that ``draw(rows)`` renders, ``rows`` a slice of the
        ``n``: each rank draws only its block (``draw`` must give every rank's rows
        from the same ``n`` latents, drawn with one seed); rank 0 gets the scores."""
        mine = self._checked(draw(self.ranks.block(self.n)))
        self._say_extracting(self.n, "generated samples")
        features = self._features_of_block(mine, self.n)
        return self._scores(self.ranks.gather(mine, self.n), features)

    def _checked(self, samples: torch.Tensor) -> torch.Tensor:
        samples = samples.detach().float().cpu()
        if samples.shape[1:] != self.reference.shape[1:]:
            raise GankitError(
                f"samples of shape {tuple(samples.shape[1:])} cannot be scored against data of "
                f"shape {tuple(self.reference.shape[1:])}"
            )
        return samples

    def floor(self) -> dict[str, float]:
        """The same metrics for real data from the other split (training data when the
        reference is the test split), so the floor includes the train/test gap.

        Data without a test split scored on its train split draws the floor from that
        same split; when that gives the reference's own images (``n`` at least the
        split's size), ``floor_is_reference`` is set and a note says so: such a floor
        is 0 or 1 by construction and tells nothing."""
        other = "train" if self.split == "test" or self.bundle.test is None else "test"
        real = take(reference_split(self.bundle, other), self.n, self.seed + 1)[0]
        self.n_floor = len(real)
        if other == self.split and _same_items(real, self.reference):
            self.floor_is_reference = True
            self.notes.append(
                f"floor: '{self.bundle.name}' has no held-out split, and its {len(real)} "
                f"{self.split} images are both the reference and the floor sample, so the "
                "floor (FD 0, precision 1, recall 1, ...) only scores the images against "
                "themselves; hold images out (data.test_fraction, e.g. 0.1 for a folder) "
                "for a floor that means something"
            )
        return self._run(real, f"real {other} images (the floor)", cache=True)

    def _run(self, items: torch.Tensor, what: str, cache: bool = False) -> dict[str, float]:
        """Every chosen metric on (n, ...) ``items`` against the reference."""
        features = self._embed(items, what, cache) if self.extractor is not None else None
        return self._scores(items, features)

    def _say_extracting(self, n: int, what: str) -> None:
        if self.extractor is not None:
            network = "InceptionV3" if self.features_kind == "inception" else "evaluator"
            self.progress.say(f"extracting {network} features of {n:,} {what}...")

    def _features_of_block(self, mine: torch.Tensor, n: int) -> dict[str, torch.Tensor] | None:
        """The gathered features (and probabilities, where a metric needs them) of every
        rank's block ``mine`` of ``n`` rows: (n, D) and (n, K)."""
        if self.extractor is None:
            return None
        with torch.no_grad():
            out = {"features": self.ranks.gather(self.extractor.features(mine, self.progress), n)}
            if self._needing("probs"):
                out["probs"] = self.ranks.gather(self.extractor.probs(mine), n)
        return out

    def _scores(self, items: torch.Tensor, features) -> dict[str, float]:
        """Every chosen metric on (n, ...) ``items`` and their ``features``, on rank 0
        (the other ranks' share ends with the gathers: ``{}``)."""
        if not self.ranks.is_main:
            return {}
        inputs = MetricInput(
            items, self.reference, features, self.reference_features, self.bundle, self.seed
        )
        out: dict[str, float] = {}
        for metric in self.selected:
            if "modes" in metric.needs and self.bundle.modes is None:
                kind_metrics = metrics_for(metric.task, self.kind)
                others = [m.name for m in kind_metrics if "modes" not in m.needs]
                raise GankitError(
                    f"metric '{metric.name}' needs a mixture with known modes (ring, grid); "
                    f"'{self.bundle.name}' has none: use {', '.join(others)}"
                )
            out.update(metric.function(inputs))
        return out


def _same_items(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether (N, ...) ``a`` and ``b`` hold the same items, in any order."""
    if a.shape != b.shape:
        return False
    return sorted(row.numpy().tobytes() for row in a) == sorted(row.numpy().tobytes() for row in b)


@dataclass
class EvalReport:
    """What ``gankit eval`` prints and writes to ``eval.json``."""

    run: str
    step: int
    n: int
    n_reference: int
    n_floor: int
    split: str
    features: str | None
    scores: dict[str, float]
    floor: dict[str, float]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    #: When it was scored: UTC, ISO 8601 to the second.
    when: str = field(default_factory=lambda: _now())
    #: The run's earlier evaluations, oldest first: ``{step, when, scores, floor, n,
    #: split, features, asked}`` each (see :func:`with_history`).
    history: list[dict[str, Any]] = field(default_factory=list)
    #: True on a report read back from ``eval.json`` instead of scored (not written).
    reused: ClassVar[bool] = False
    #: True on the ranks other than 0 of an evaluation shared under torchrun: they
    #: helped draw and embed, hold no scores, and neither print nor write.
    follower: ClassVar[bool] = False

    @classmethod
    def of_follower(cls, run: str, step: int, split: str) -> EvalReport:
        """The report of a rank other than 0 (see :attr:`follower`)."""
        report = cls(run, step, 0, 0, 0, split, None, {}, {}, 0.0)
        report.follower = True
        return report

    def summary(self) -> list[str]:
        """What ``gankit eval`` prints: what was scored against what, the table, the notes,
        and where it was written (or that the scores were kept from an earlier call)."""
        if self.follower:
            return []
        written = Path(self.run) / "eval.json"
        lines = []
        if self.reused:
            lines.append(
                f"{written} already holds the scores of step {self.step} with these settings "
                f"(scored {self.when}); the same seed gives the same numbers, so they are not "
                "computed again: --overwrite scores again"
            )
        if self.n:
            lines.append(
                f"run {self.run} at step {self.step}: {self.n} samples vs "
                f"{self.n_reference} of the {self.split} split (floor: {self.n_floor} real)"
                + (f", {self.features} features" if self.features else "")
            )
        else:  # classifiers and segmenters (DANN, AdaptSeg) draw no samples
            lines.append(f"run {self.run} at step {self.step}, scored on the {self.split} split")
        if "evaluator_test_accuracy" in self.extra:
            lines.append(f"evaluator test accuracy: {self.extra['evaluator_test_accuracy']:.4f}")
        lines.append(self.table())
        lines += [f"note: {note}" for note in self.extra.get("notes", [])]
        if not self.reused:
            earlier = f" (with {len(self.history)} earlier in its history)" if self.history else ""
            lines.append(f"evaluated in {self.seconds:.1f} s; written to {written}{earlier}")
        return lines

    def table(self) -> str:
        """The scores as a table, each name with its better way (↓ or ↑, see
        :data:`SCORE_DIRECTIONS`), next to the floor where there is one; then how to
        read it."""
        names = {key: _named(key) for key in self.scores}
        if not self.floor:
            width = max([18, *(len(name) + 2 for name in names.values())])
            lines = [f"{'metric':<{width}}{'value':>12}", "-" * (width + 12)]
            lines += [f"{names[key]:<{width}}{_cell(value)}" for key, value in self.scores.items()]
            return "\n".join([*lines, self._reading(floor=False)])
        width = max([14, *(len(name) + 1 for name in names.values())])
        lines = [
            f"{'metric':<{width}}{'generated':>12}{'real floor':>12}",
            "-" * (width + 24),
        ]
        own = self.extra.get("floor_is_reference", False)
        for key, value in self.scores.items():
            floor = self.floor.get(key)
            floor_text = f"{'':>12}" if floor is None and key not in self.floor else _cell(floor)
            if own and key in self.floor:
                floor_text = f"{'(itself)':>12}"
            lines.append(f"{names[key]:<{width}}{_cell(value)}{floor_text}")
        return "\n".join([*lines, self._reading(floor=True)])

    def _reading(self, floor: bool) -> str:
        ways = {score_direction(key) for key in self.scores}
        said = [f"{ARROWS[way]} {way} is better" for way in (LOWER, HIGHER) if way in ways]
        parts = [", ".join(said)] if said else []
        if floor and self.extra.get("floor_is_reference"):
            parts.append("'(itself)': the floor sample is the reference itself (see the note)")
        elif floor:
            parts.append(
                "'real floor': real images the model never saw, scored against the same "
                "reference: about the best a model can reach"
            )
        return "\n".join(parts)

    def to_json(self) -> str:
        """Strict JSON: a score that is not finite (an IoU of a class absent from both
        maps) is ``null``."""
        return json.dumps(json_safe(asdict(self)), indent=2, allow_nan=False) + "\n"

    def write(self, path: Path) -> Path:
        """:meth:`to_json`, written atomically."""
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> EvalReport:
        """The report ``eval.json`` holds (what :func:`gankit.runs.summary.read_eval` returns)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in saved.items() if key in names})


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _named(key: str) -> str:
    way = score_direction(key)
    return f"{key} {ARROWS[way]}" if way else key


def _cell(value: float | None) -> str:
    """One number in a 12-wide column; a score that was not finite (null in JSON) as nan."""
    return f"{'nan' if value is None else format(value, '.4g'):>12}"


def same_evaluation(saved: dict[str, Any], step: int, asked: dict[str, Any]) -> bool:
    """Whether ``saved`` (a read ``eval.json``) scored ``step`` as ``asked``: the
    same checkpoint, seed and settings give the same numbers, so there is no need to
    spend minutes on them again."""
    return saved.get("step") == step and (saved.get("extra") or {}).get("asked") == asked


def with_history(report: EvalReport, saved: dict[str, Any] | None, replace: bool) -> EvalReport:
    """``report`` with the history of the ``eval.json`` it follows: that file's own
    history, then (unless ``replace``: the same evaluation, scored again) its latest
    evaluation. Earlier files without a history start one."""
    if saved is None:
        return report
    history = [entry for entry in saved.get("history") or [] if isinstance(entry, dict)]
    if not replace:
        extra = saved.get("extra") or {}
        keys = ("step", "when", "scores", "floor", "n", "split", "features")
        history.append({key: saved.get(key) for key in keys} | {"asked": extra.get("asked")})
    report.history = history
    return report
