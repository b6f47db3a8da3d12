"""Scoring a generator against real data, always next to the real-vs-real floor.

``evaluate_run`` (behind ``gankit eval``) and the trainer's ``eval_every`` both call
:class:`Scorer`: it holds the reference split (and, for images, its features) so that
repeated evaluations during training only pay for the generated side.

Metric names:

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

Which way is better is declared once per score name, in :data:`SCORE_DIRECTIONS`.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import time
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
from gankit.runs.load import Run

TOY_METRICS = ("modes", "w1")
IMAGE_METRICS = ("fd", "kid", "is", "pr", "dc")
DEFAULT_METRICS = {"toy": ("modes", "w1"), "image": ("fd", "kid", "is", "pr", "dc")}
DEFAULT_N = {"toy": 2500, "image": 2000}
#: The most samples one evaluation scores: FID's usual 50,000 (train.eval_n has the same).
MAX_EVAL_N = 50_000
FEATURE_KINDS = ("evaluator", "inception")

LOWER, HIGHER = "lower", "higher"
#: Which way each score gankit writes is better, by name (``fnmatch`` patterns, the first
#: that matches decides; None: no better way). Spreads (``kid_std``), the untranslated
#: or unchanged input's scores (``*_before``), baselines and the temperature curve are
#: references to read a score against, not goals.
SCORE_DIRECTIONS: tuple[tuple[str, str | None], ...] = (
    ("*_std", None),
    ("*_before", None),
    ("unigram_*", None),
    ("uniform_*", None),
    ("word_share_*", None),
    ("entropy_*", None),
    ("kl", None),  # the VAE's KL term: a part of the ELBO, no goal alone
    # images: Fréchet distance, KID, Inception Score, precision/recall, density/coverage
    ("fd", LOWER),
    ("fd_*", LOWER),
    ("kid", LOWER),
    ("is", HIGHER),
    ("precision", HIGHER),
    ("recall", HIGHER),
    ("density", HIGHER),
    ("coverage", HIGHER),
    # toy data: PacGAN's modes captured, high-quality share, reverse KL; exact W1
    ("modes", HIGHER),
    ("high_quality", HIGHER),
    ("reverse_kl", LOWER),
    ("w1", LOWER),
    # translation, adaptation, segmentation, change
    ("cycle_l1_*", LOWER),
    ("acc_*", HIGHER),
    ("*accuracy", HIGHER),
    ("*miou", HIGHER),
    ("*iou_*", HIGHER),
    ("control*", HIGHER),
    ("identity", LOWER),
    ("class_kept*", HIGHER),
    # the families' own (Model.family_scores) and language models
    ("code_error", LOWER),
    ("cond_acc", HIGHER),
    ("elbo", HIGHER),
    ("nll", LOWER),
    ("recon_mse", LOWER),
    ("bits_per_*", LOWER),
    ("perplexity", LOWER),
)
ARROWS = {LOWER: "↓", HIGHER: "↑"}


def score_direction(name: str) -> str | None:
    """``"lower"`` or ``"higher"``: which way the score ``name`` is better (None: neither,
    or a name gankit does not know)."""
    return next(
        (way for pattern, way in SCORE_DIRECTIONS if fnmatch.fnmatchcase(name, pattern)), None
    )


def parse_metrics(names: str | list[str] | tuple[str, ...] | None, kind: str) -> tuple[str, ...]:
    """``"fd,kid"`` or a list -> validated names for data of ``kind`` ("toy" or "image")."""
    if names is None:
        return DEFAULT_METRICS[kind]
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    valid = TOY_METRICS if kind == "toy" else IMAGE_METRICS
    for name in names:
        if name not in TOY_METRICS + IMAGE_METRICS:
            raise GankitError(
                f"unknown metric '{name}'; valid: {choices(TOY_METRICS + IMAGE_METRICS)}"
            )
        if name not in valid:
            raise GankitError(
                f"metric '{name}' does not apply to {kind} data; valid here: {choices(valid)}"
            )
    if not names:
        raise GankitError(f"--metrics is empty; valid: {choices(valid)}")
    return tuple(dict.fromkeys(names))


def _split(bundle: DataBundle, split: str):
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
    ) -> None:
        self.bundle = bundle
        self.progress = progress
        self.kind = bundle.kind
        self.metrics = parse_metrics(metrics, self.kind)
        self.n = n or DEFAULT_N[self.kind]
        if self.n < 2:
            raise GankitError(f"--n must be at least 2, got {self.n}")
        self.split = split
        self.seed = seed
        self.reference = take(_split(bundle, split), self.n, seed)[0]
        self.features_kind = None
        self.extractor = None
        self.notes: list[str] = []
        self.floor_is_reference = False
        if self.kind == "image":
            if features not in FEATURE_KINDS:
                raise GankitError(f"--features must be one of {choices(FEATURE_KINDS)}")
            if features == "inception" and "is" in self.metrics:
                if metrics is not None:
                    from gankit.metrics.features import INCEPTION_NO_IS

                    raise GankitError(INCEPTION_NO_IS)
                self.metrics = tuple(m for m in self.metrics if m != "is")
                self.notes.append(
                    "no IS: the offline FID InceptionV3 ends at pool3 and has no class logits"
                )
            self.features_kind = features
            self.extractor = self._extractor(features, inception_weights, data_dir, train_evaluator)
            what = f"reference images ({split} split)"
            self.reference_features = self._embed(self.reference, what, cache=True)

    # ------------------------------------------------------------------ features
    def _extractor(self, features, inception_weights, data_dir, train_evaluator):
        from gankit.metrics import features as feature_module

        if features == "inception":
            self.progress.say("loading the InceptionV3 (FID) network...")
            return feature_module.inception_features(inception_weights)
        return feature_module.load_evaluator(
            self.bundle.name,
            resolution=self.bundle.shape[-1],
            train_if_missing=train_evaluator,
            data_dir=data_dir,
        )

    def _embed(
        self, images: torch.Tensor, what: str, cache: bool = False
    ) -> dict[str, torch.Tensor]:
        """Features (and class probabilities for the IS) of ``images``. With ``cache``,
        InceptionV3 features of real data are kept on disk, keyed by the images' bytes:
        they cost minutes on a CPU and every evaluation of the dataset reuses them."""
        network = "InceptionV3" if self.features_kind == "inception" else "evaluator"
        self.progress.say(f"extracting {network} features of {len(images):,} {what}...")
        with torch.no_grad():
            if cache and self.features_kind == "inception":
                from gankit.metrics.features import cached_features

                out = {"features": cached_features(self.extractor, images, self.progress)}
            else:
                out = {"features": self.extractor.features(images, self.progress)}
            if "is" in self.metrics:
                out["probs"] = self.extractor.probs(images)
        return out

    # ------------------------------------------------------------------ scoring
    def score(self, samples: torch.Tensor) -> dict[str, float]:
        """Score (n, ...) samples against the reference; returns flat named numbers."""
        samples = samples.detach().float().cpu()
        if samples.shape[1:] != self.reference.shape[1:]:
            raise GankitError(
                f"samples of shape {tuple(samples.shape[1:])} cannot be scored against data of "
                f"shape {tuple(self.reference.shape[1:])}"
            )
        if self.kind == "toy":
            return self._score_toy(samples)
        return self._score_images(self._embed(samples, "generated samples"))

    def floor(self) -> dict[str, float]:
        """The same metrics for real data from the other split (training data when the
        reference is the test split), so the floor includes the train/test gap.

        Data without a test split scored on its train split draws the floor from that
        same split; when that gives the reference's own images (``n`` at least the
        split's size), ``floor_is_reference`` is set and a note says so: such a floor
        is 0 or 1 by construction and tells nothing."""
        other = "train" if self.split == "test" or self.bundle.test is None else "test"
        real = take(_split(self.bundle, other), self.n, self.seed + 1)[0]
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
        if self.kind == "toy":
            return self._score_toy(real)
        return self._score_images(self._embed(real, f"real {other} images (the floor)", cache=True))

    def _score_toy(self, samples: torch.Tensor) -> dict[str, float]:
        from gankit.metrics.divergences import wasserstein
        from gankit.metrics.toy import mode_coverage

        out: dict[str, float] = {}
        if "modes" in self.metrics:
            if self.bundle.modes is None:
                raise GankitError(
                    f"metric 'modes' needs a mixture with known modes (ring, grid); "
                    f"'{self.bundle.name}' has none: use w1"
                )
            out.update(mode_coverage(samples, self.bundle.modes, self.bundle.mode_std).as_dict())
        if "w1" in self.metrics:
            out["w1"] = wasserstein(samples, self.reference)
        return out

    def _score_images(self, gen: dict[str, torch.Tensor]) -> dict[str, float]:
        from gankit.metrics import frechet

        real = self.reference_features["features"]
        fake = gen["features"]
        out: dict[str, float] = {}
        if "fd" in self.metrics:
            out["fd"] = frechet.frechet_distance(fake, real)
        if "kid" in self.metrics:
            mean, std = frechet.kernel_inception_distance(fake, real, seed=self.seed)
            out["kid"], out["kid_std"] = mean, std
        if "is" in self.metrics:
            mean, std = frechet.inception_score(gen["probs"])
            out["is"], out["is_std"] = mean, std
        if "pr" in self.metrics:
            out["precision"], out["recall"] = frechet.precision_recall(real, fake)
        if "dc" in self.metrics:
            out["density"], out["coverage"] = frechet.density_coverage(real, fake)
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

    def summary(self) -> list[str]:
        """What ``gankit eval`` prints: what was scored against what, the table, the notes,
        and where it was written (or that the scores were kept from an earlier call)."""
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


# --------------------------------------------------------------------------- task "sample"
def evaluate_samples(run: Run, bundle: DataBundle, options: EvalOptions) -> EvalReport:
    """``gankit eval`` for samplers: the data's metrics on ``n`` samples against the
    reference split, next to the real-vs-real floor, then the family's own scores
    (``Model.family_scores``: a VAE's ELBO, a conditional GAN's label accuracy, InfoGAN's
    code matching)."""
    from gankit.models.base import ScoreContext

    started = time.perf_counter()
    o = options
    progress = Progress(o.progress)
    scorer = Scorer(
        bundle, o.metrics, o.n, o.split, o.features, o.inception_weights, o.data_dir, o.seed,
        o.train_evaluator, progress,
    )  # fmt: skip
    progress.say(f"drawing {scorer.n:,} samples from the checkpoint of step {run.step}...")
    scores = scorer.score(run.sample(scorer.n, seed=o.seed))
    floor = scorer.floor()
    x, y = take(_split(bundle, scorer.split), scorer.n, o.seed)
    evaluator = scorer.extractor if scorer.features_kind == "evaluator" else None
    context = ScoreContext(x, y, evaluator, bundle.num_classes, scorer.n, o.seed, run.sampler_net)
    family, family_floor = run.model.family_scores(context)
    scores.update(family)
    floor.update(family_floor)
    extra = {
        "notes": scorer.notes,
        "metrics": list(scorer.metrics),
        "checkpoint": str(run.checkpoint),
        "resolution": bundle.shape[-1] if bundle.kind == "image" else None,
    }
    if scorer.floor_is_reference:
        extra["floor_is_reference"] = True
    if evaluator is not None:
        extra["evaluator_test_accuracy"] = evaluator.test_accuracy
    return EvalReport(
        run=str(run.path), step=run.step, n=scorer.n, n_reference=len(scorer.reference),
        n_floor=scorer.n_floor, split=o.split, features=scorer.features_kind, scores=scores,
        floor=floor, seconds=round(time.perf_counter() - started, 3), extra=extra,
    )  # fmt: skip


# --------------------------------------------------------------------------- task "translate"
def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): grey repeated in R, G, B, or RGB averaged to
    grey, so an untranslated image can be read by the other domain's evaluator."""
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, channels, -1, -1)
    return images.mean(dim=1, keepdim=True)


def translation_scores(
    model,
    bundle: DataBundle,
    n: int | None = None,
    seed: int = 0,
    train_evaluator: bool = False,
    data_dir: str | None = None,
    net: torch.nn.Module | None = None,
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Translators (CycleGAN) on both domains' held-out splits; returns (scores, floor, notes).

    For each direction, ``ab`` (A -> B) and ``ba`` (B -> A), on up to ``n`` held-out
    images x of the source domain (``net`` replaces the A -> B network, e.g. its EMA):

    - ``cycle_l1_a`` / ``cycle_l1_b``: ``mean |F(G(a)) − a|`` and ``mean |G(F(b)) − b|``,
      per pixel in [-1, 1] units;
    - ``fd_ab``: the Fréchet distance between translated G(a) and real B test images in
      the features of B's evaluator classifier, next to ``fd_ab_before``, the same for
      the untranslated a (grey repeated to RGB or RGB averaged to grey where the channel
      counts differ). Translation should bring it down; the floor is real B train
      images against the same B test images;
    - ``acc_ab``: B's evaluator classifying G(a) against a's labels, when both domains
      carry the same labels: does the class survive translation? ``acc_ab_before`` is
      the evaluator on the untranslated a; the floor its accuracy on real B.

    Domains without an evaluator (``unpaired:PATH``) get the cycle errors only, with a
    note saying so.
    """
    from gankit.metrics.features import EVALUATOR_DATASETS, load_evaluator
    from gankit.metrics.frechet import frechet_distance

    n = n or DEFAULT_N["image"]
    if n < 2:
        raise GankitError(f"--n must be at least 2, got {n}")
    domains = {"a": bundle, "b": bundle.domain_b}
    held_out = {key: take(d.held_out, n, seed) for key, d in domains.items()}
    scores: dict[str, float] = {}
    floor: dict[str, float] = {}
    notes: list[str] = []
    for (source, target), direction in zip((("a", "b"), ("b", "a")), model.directions):
        tag = source + target
        x, y = held_out[source]
        translated, reconstructed = model.round_trip(x, direction, net)
        scores[f"cycle_l1_{source}"] = float((reconstructed - x).abs().mean())
        domain = domains[target]
        if domain.name not in EVALUATOR_DATASETS:
            notes.append(f"no evaluator for '{domain.name}': fd_{tag} and acc_{tag} skipped")
            continue
        evaluator = load_evaluator(
            domain.name,
            resolution=domain.shape[-1],
            train_if_missing=train_evaluator,
            data_dir=data_dir,
            progress=False,
        )
        # The evaluator reads its dataset's own channels: grey digits that a run reads as
        # RGB (``channels: 3``) are averaged back to grey, which loses nothing.
        channels = evaluator.input_shape[0]
        real = match_channels(held_out[target][0], channels)
        translated, before = match_channels(translated, channels), match_channels(x, channels)
        real_features = evaluator.features(real)
        scores[f"fd_{tag}"] = frechet_distance(evaluator.features(translated), real_features)
        scores[f"fd_{tag}_before"] = frechet_distance(evaluator.features(before), real_features)
        if domain.test is not None:
            other = match_channels(take(domain.train, n, seed + 1)[0], channels)
            floor[f"fd_{tag}"] = frechet_distance(evaluator.features(other), real_features)
        same_labels = domains[source].num_classes == domain.num_classes == evaluator.num_classes
        if same_labels and bool((y >= 0).all()):
            for key, images in ((f"acc_{tag}", translated), (f"acc_{tag}_before", before)):
                predictions = evaluator.logits(images).argmax(dim=1)
                scores[key] = float((predictions == y).float().mean())
            floor[f"acc_{tag}"] = evaluator.test_accuracy
    return scores, floor, notes


def evaluate_translation(run: Run, bundle: DataBundle, options: EvalOptions) -> EvalReport:
    """``gankit eval`` for translators: :func:`translation_scores` on the held-out splits."""
    started = time.perf_counter()
    options.check_defaults(
        run,
        "a translator scored by cycle error, FD and class accuracy on the test splits in "
        "evaluator features",
        ("metrics", "features", "split"),
    )
    n = options.n
    scores, floor, notes = translation_scores(
        run.model, bundle, n, options.seed, options.train_evaluator, options.data_dir,
        run.sampler_net,
    )  # fmt: skip
    n_used = n or DEFAULT_N["image"]
    return EvalReport(
        run=str(run.path), step=run.step, n=min(n_used, len(bundle.held_out)),
        n_reference=min(n_used, len(bundle.domain_b.held_out)),
        n_floor=min(n_used, len(bundle.domain_b.train)), split="test", features="evaluator",
        scores=scores, floor=floor, seconds=round(time.perf_counter() - started, 3),
        extra={"checkpoint": str(run.checkpoint), "notes": notes},
    )  # fmt: skip


# ---------------------------------------------------------------- tasks "classify", "segment"
def accuracy(model, x: torch.Tensor, y: torch.Tensor, bundle: DataBundle) -> dict[str, float]:
    """The task "classify" on one domain: the share of ``model.predict(x)`` equal to y."""
    return {"accuracy": float((model.predict(x) == y.cpu()).float().mean())}


def segmentation(model, x: torch.Tensor, y: torch.Tensor, bundle: DataBundle) -> dict[str, float]:
    """The task "segment" on one domain: pixel ``accuracy``, ``miou`` and the IoU of each
    class, named ``iou_<class name>`` where the data names its classes."""
    from gankit.metrics.segmentation import segmentation_scores

    scores = segmentation_scores(model.predict(x), y, model.num_classes)
    if not bundle.class_names:
        return scores
    names = dict(enumerate(bundle.class_names))
    return {_class_named(k, names): v for k, v in scores.items()}


DomainScore = Callable[[Any, torch.Tensor, torch.Tensor, DataBundle], dict[str, float]]


def domain_scores(model, bundle: DataBundle, score: DomainScore) -> dict[str, float]:
    """``score`` on the source's and the target's held-out splits, e.g.
    ``source_accuracy`` and ``target_accuracy``. Target labels are used here only, for
    evaluation."""
    out: dict[str, float] = {}
    for prefix, domain in (("source", bundle), ("target", bundle.domain_b)):
        if domain is None:
            continue
        x, y = take(domain.held_out, len(domain.held_out), 0)
        out.update({f"{prefix}_{k}": v for k, v in score(model, x, y, domain).items()})
    return out


def evaluate_domains(
    run, bundle: DataBundle, options: EvalOptions, score: DomainScore
) -> EvalReport:
    """``gankit eval`` for classifiers and segmenters: ``score`` on each domain's
    held-out split. They draw no samples, so there is no floor."""
    started = time.perf_counter()
    return EvalReport(
        run=str(run.path), step=run.step, n=0, n_reference=0, n_floor=0, split="test",
        features=None, scores=domain_scores(run.model, bundle, score), floor={},
        seconds=round(time.perf_counter() - started, 3),
        extra={"checkpoint": str(run.checkpoint)},
    )  # fmt: skip


def _class_named(key: str, names: dict[int, str]) -> str:
    """``iou_3`` -> ``iou_vegetation`` when class 3 has that name; other keys unchanged."""
    metric, _, index = key.rpartition("_")
    if metric == "iou" and index.isdigit() and int(index) in names:
        return f"iou_{names[int(index)]}"
    return key
