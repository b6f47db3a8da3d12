"""Scores of the change family (task ``change``): how well c controls the change.

On up to ``n`` held-out earlier items x with codes ``c ~ U(0, 1)`` (seeded):

- ``control``: Spearman's rank correlation between c and the change that the data's
  operator reads back on (x, G(x, c)) (:mod:`gankit.data.change`); its floor is the
  same correlation between the hidden magnitudes m and the read-back on the real later
  held-out items, the best a perfect model could reach;
- ``fd``: Fréchet distance of G(x, c) to the later held-out items, next to
  ``fd_before`` (the untranslated earlier items) and its floor (later training items):
  in the evaluator classifier's features for images, in the raw values for series;
- ``class_kept``: the class that a judge names for G(x, c) equals x's label, next to
  ``class_kept_before`` (the judge on x itself); floor: the judge's accuracy on the
  real later held-out items. The judge is the evaluator's network trained afresh on
  earlier *and* later training items (up to ``JUDGE_ITEMS`` of each, labelled: the
  operator keeps the class; cached once fitted): the shared evaluator, trained on
  earlier items only, names the class of only 63-78 % of real changed digits, so it
  cannot tell a lost class from a change it has never seen. ``class_kept_evaluator``
  keeps its number;
- ``individual_error``: on held-out pairs (x, its own later item op(x, m)), with the
  hidden m used for scoring only, ``Σ‖G(x, m) − op(x, m)‖₁ / Σ‖x − op(x, m)‖₁``: 0 when
  the model makes each individual's own change, 1 when it is no better than leaving x
  as it was (the identity scores exactly 1). The sums, not a mean of per-item ratios:
  an item drawn with m near 0 has a near-zero change, and its ratio would outweigh the
  rest;
- ``calibration_error`` and ``calibration_rank``: for each pair, the code ĉ on a grid of
  ``CALIBRATION_STEPS`` + 1 values in [0, 1] whose output is nearest (L1) to the real
  later item; the mean ``|ĉ − m|``, and Spearman(ĉ, m): does c = 0.5 mean half of the
  real change?
- ``operator_accuracy`` and ``operator_individual_error``, on data whose later items
  were made by one of several hidden operators: does a categorical code find the
  operator (:mod:`gankit.metrics.change_codes`)?
- ``identity``: ``mean |G(x, 0) − x|`` per value;
- ``code_error``: Q's mean absolute error reading c back (``Model.family_scores``).

Data without an operator (two domains from ``data.target``, the user's own periods)
gets no individual scores: nothing there says which later item came from which earlier
one, nor how large each real change was, so a note says ``individual scores: missing
(the data has no hidden pairs ...)`` instead of a number. Control needs no pairs, only a
read-back of the change: the user's own data names one (``extra["readback"]``,
:mod:`gankit.data.periods`); other data without an operator gets none, and a note says
so. Images without an evaluator get no
``fd``/``class_kept``; a note says which were skipped.

Every printed score separates a trained model from an untrained one (tested against the
operator itself), except ``class_kept``, which the identity keeps best: it is read next
to ``fd``. ``control_per_input`` (per x, Spearman over c = 0, 0.25, …, 1) was retired: any
residual G whose change grows with c, trained or not, scored about 1 on it; the
calibration scores ask the per-item question with the real later item as the answer.
"""

from __future__ import annotations

import time

import torch
from scipy.stats import spearmanr

from gankit.data import DataBundle
from gankit.data.base import take
from gankit.errors import GankitError
from gankit.metrics.change_codes import operator_scores
from gankit.metrics.evaluate import EvalOptions, EvalReport
from gankit.metrics.frechet import frechet_distance
from gankit.models.base import ScoreContext
from gankit.runs.load import Run

#: ``calibration_*``: the codes searched for each pair, 0, 1/50, ..., 1.
CALIBRATION_STEPS = 50
#: Held-out items scored when ``--n`` is unset (digits' test split has 360).
CHANGE_N = 500
#: Training items of each period that the class judge learns from (all of
#: Fashion-MNIST's 60,000: with 6,000 of each the judge named only 84-88 % of held-out
#: items, with all of them 92 %).
JUDGE_ITEMS = 60_000
#: The judge sees at least this many items, and passes over them at least
#: ``JUDGE_EPOCHS`` times (digits: 21 passes; Fashion-MNIST: 6, 92.1 % against 91.4 % at 3).
JUDGE_ITEMS_SEEN = 60_000
JUDGE_EPOCHS = 6
#: Fits to more items than this show a progress bar (they take minutes).
JUDGE_QUIET_ITEMS = 20_000


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rho of two (N,) tensors; 0 when either is constant (no ranking)."""
    if float(a.std()) == 0.0 or float(b.std()) == 0.0:
        return 0.0
    return float(spearmanr(a.numpy(), b.numpy()).statistic)


def _evaluator(bundle: DataBundle, train_evaluator: bool, data_dir: str | None):
    from gankit.metrics.features import EVALUATOR_DATASETS, load_evaluator

    base = bundle.extra.get("evaluator")
    if bundle.kind != "image" or base not in EVALUATOR_DATASETS:
        return None
    return load_evaluator(
        base, resolution=bundle.shape[-1], train_if_missing=train_evaluator,
        data_dir=data_dir, progress=False,
    )  # fmt: skip


def class_judge(bundle: DataBundle, seed: int = 0):
    """A classifier of both periods: the evaluator's network fitted to up to
    ``JUDGE_ITEMS`` labelled training items of the earlier and of the later domain.

    Cached under ``judges/`` in the cache folder, keyed by the SHA-1 of the items as
    the judge reads them (rounded to 8 bits), their labels and how it is fitted: on
    Fashion-MNIST the fit takes minutes, and every ``gankit eval`` of a run on the same
    data would repeat it. The file holds tensors and plain values (``weights_only``).

    Returns an :class:`~gankit.metrics.features.Evaluator`, or None when either period
    lacks labels.
    """
    from gankit.files import atomic_save, cache_root
    from gankit.metrics.features import Evaluator, EvaluatorCNN, fit_classifier, image_digest

    earlier = take(bundle.train, JUDGE_ITEMS, seed + 3)
    later = take(bundle.domain_b.train, JUDGE_ITEMS, seed + 4)
    if not (bool((earlier[1] >= 0).all()) and bool((later[1] >= 0).all())):
        return None
    x, y = torch.cat([earlier[0], later[0]]), torch.cat([earlier[1], later[1]])
    epochs = max(JUDGE_EPOCHS, -(-JUDGE_ITEMS_SEEN // len(x)))
    meta = {
        "dataset": f"{bundle.name} (earlier and later)",
        "arch": "cnn",
        "seed": seed,
        "resolution": bundle.shape[-1],
        "input_shape": list(bundle.shape),
        "num_classes": bundle.num_classes,
        "test_accuracy": float("nan"),
        "epochs": epochs,
        "n_train": len(x),
    }
    key = image_digest(x, y.to(torch.int64), (bundle.num_classes, epochs, seed))
    path = cache_root() / "judges" / f"judge-{key}.pt"
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = EvaluatorCNN(x.shape[1], bundle.num_classes)
            net.load_state_dict(state["state_dict"])
            return Evaluator(net.eval(), meta)
        except Exception:  # an unreadable cache file is refitted and replaced
            pass
    net = fit_classifier(
        x, y, bundle.num_classes, epochs=epochs, seed=seed,
        progress=len(x) > JUDGE_QUIET_ITEMS, desc="fitting the class judge (cached after)",
    )  # fmt: skip
    atomic_save({"meta": meta, "state_dict": net.state_dict()}, path)
    return Evaluator(net, meta)


def change_scores(
    model,
    bundle: DataBundle,
    n: int | None = None,
    seed: int = 0,
    train_evaluator: bool = False,
    data_dir: str | None = None,
    net: torch.nn.Module | None = None,
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """The scores of the module docstring; returns (scores, floor, notes)."""
    n = n or CHANGE_N
    if n < 3:
        raise GankitError(f"--n must be at least 3 for rank correlations, got {n}")
    later = bundle.domain_b
    x, y = take(bundle.held_out, n, seed)
    c = torch.rand(len(x), generator=torch.Generator().manual_seed(seed))
    changed = model.change(x, c, net)
    scores: dict[str, float] = {}
    floor: dict[str, float] = {}
    notes: list[str] = []
    operator = bundle.extra.get("change")
    # the user's own data has no operator, only a read-back (gankit.data.periods)
    readback = operator or bundle.extra.get("readback")
    if readback is not None:
        scores["control"] = rank_correlation(c, readback.measure(x, changed))
    if operator is not None and "magnitude" in later.extra:
        split = "test" if later.test is not None else "train"
        source = bundle.held_out.tensors[0][later.extra["source_index"][split]]
        real_change = operator.measure(source, later.held_out.tensors[0])
        floor["control"] = rank_correlation(later.extra["magnitude"][split], real_change)
        scores.update(individual_scores(model, source[:n], later.held_out.tensors[0][:n],
                                        later.extra["magnitude"][split][:n], net))  # fmt: skip
        if "operator_index" in later.extra:  # several hidden operators: which one?
            scores.update(operator_scores(model, source[:n], later.held_out.tensors[0][:n],
                                          later.extra["operator_index"][split][:n],
                                          later.extra["magnitude"][split][:n],
                                          len(later.extra["operators"]), net))  # fmt: skip
            floor["operator_accuracy"] = 1.0
    else:
        notes.append(
            "individual scores: missing (the data has no hidden pairs: no earlier item's own "
            "later item or amount of change is known, so individual_error and calibration "
            "cannot be measured)"
        )
    if readback is None:
        notes.append(f"data '{bundle.name}' has no change operator nor read-back: control skipped")
    scores["identity"] = float((model.change(x, 0.0, net) - x).abs().mean())

    evaluator = _evaluator(bundle, train_evaluator, data_dir)
    if bundle.kind == "image" and evaluator is None:
        notes.append(f"no evaluator for '{bundle.name}': fd and class_kept skipped")
    else:
        embed = evaluator.features if evaluator is not None else (lambda items: items)
        real = embed(take(later.held_out, n, seed + 1)[0])
        scores["fd"] = frechet_distance(embed(changed.clamp(-1.0, 1.0)), real)
        scores["fd_before"] = frechet_distance(embed(x), real)
        floor["fd"] = frechet_distance(embed(take(later.train, n, seed + 2)[0]), real)
    # the judge is fitted only where its verdict can be checked: labelled held-out items
    labelled = evaluator is not None and bool((y >= 0).all())
    judge = class_judge(bundle, seed) if labelled else None
    if judge is not None:
        output = changed.clamp(-1.0, 1.0)
        judged = (("class_kept", judge, output), ("class_kept_before", judge, x))
        judged += (("class_kept_evaluator", evaluator, output),)
        for key, classifier, items in judged:
            scores[key] = float((classifier.logits(items).argmax(dim=1) == y).float().mean())
        later_x, later_y = take(later.held_out, n, seed + 1)
        if bool((later_y >= 0).all()):
            # the reference: how often each still names real later items' class
            for key, classifier in (("class_kept", judge), ("class_kept_evaluator", evaluator)):
                kept = classifier.logits(later_x).argmax(dim=1) == later_y
                floor[key] = float(kept.float().mean())
    context = ScoreContext(x, y, evaluator, bundle.num_classes, len(x), seed, net)
    family, family_floor = model.family_scores(context)
    scores.update(family)
    floor.update(family_floor)
    return scores, floor, notes


def individual_scores(
    model,
    earlier: torch.Tensor,
    later: torch.Tensor,
    magnitude: torch.Tensor,
    net: torch.nn.Module | None = None,
) -> dict[str, float]:
    """``individual_error``, ``calibration_error`` and ``calibration_rank`` (see the
    module docstring) of ``model`` on pairs: earlier items (N, ...), each one's own later
    item (N, ...) made with the hidden magnitude (N,)."""

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """L1 distance per item, (N,)."""
        return (a - b).abs().reshape(len(a), -1).sum(dim=1)

    own = distance(model.change(earlier, magnitude, net).clamp(-1.0, 1.0), later)
    scores = {"individual_error": float(own.sum() / distance(earlier, later).sum())}
    codes = torch.linspace(0.0, 1.0, CALIBRATION_STEPS + 1)
    gaps = torch.stack(
        [distance(model.change(earlier, float(c), net).clamp(-1.0, 1.0), later) for c in codes],
        dim=1,
    )  # (N, steps + 1)
    found = codes[gaps.argmin(dim=1)]
    scores["calibration_error"] = float((found - magnitude).abs().mean())
    scores["calibration_rank"] = rank_correlation(found, magnitude)
    return scores


class ReferenceChange:
    """What the references and baselines below share: no Q head, so no family scores
    (no ``code_error``), and :func:`change_scores` scores them like a change model."""

    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        return {}, {}


class BlendedTranslation(ReferenceChange):
    """A baseline for the change family: a translator's output blended linearly with its
    input, ``x + c·(G(x) − x)``, so that c "sets the amount" by construction.

    Built from a loaded run of the ``translate`` task (a CycleGAN trained on the same
    earlier and later domains); :func:`change_scores` scores it like a change model.
    """

    def __init__(self, run: Run) -> None:
        self.run = run

    def change(
        self, x: torch.Tensor, amount: float | torch.Tensor, net: torch.nn.Module | None = None
    ) -> torch.Tensor:
        translated = self.run.model.translate(x, "AtoB", net or self.run.sampler_net)
        c = torch.as_tensor(amount, dtype=x.dtype).expand(len(x))
        # lerp, not x + c·(G(x) − x): its ends are exact, so c = 1 is G(x) to the last bit
        return torch.lerp(x, translated, c.view(-1, *[1] * (x.dim() - 1)))


class IdentityChange(ReferenceChange):
    """A reference for the individual scores: every item left as it was, whatever the
    code (``individual_error`` exactly 1)."""

    def change(self, x: torch.Tensor, amount, net: torch.nn.Module | None = None) -> torch.Tensor:
        return x.clone()


class OperatorChange(ReferenceChange):
    """A reference: each item changed by the data's own operator, ``op(x, c)``, what a
    perfect model does (``individual_error`` 0)."""

    def __init__(self, operator) -> None:
        self.operator = operator

    def change(self, x: torch.Tensor, amount, net: torch.nn.Module | None = None) -> torch.Tensor:
        m = torch.as_tensor(amount, dtype=x.dtype).expand(len(x))
        return self.operator.apply(x, m).clamp(-1.0, 1.0)


class AverageSideChange(OperatorChange):
    """A reference for an operator with an individual side, ``base(x, m·k(x))``: every
    item given the base change at the mean side, ``base(x, m·mean k)``: the right kind
    and average amount of change, blind to what sets each individual's own."""

    def __init__(self, operator, items: torch.Tensor) -> None:
        super().__init__(operator.base)
        self.side = float(operator.side(items).mean())

    def change(self, x: torch.Tensor, amount, net: torch.nn.Module | None = None) -> torch.Tensor:
        m = torch.as_tensor(amount, dtype=x.dtype).expand(len(x))
        return super().change(x, m * self.side)


class AverageChange(OperatorChange):
    """A reference: every item given the change the operator makes on the mean item
    ``x̄``, ``x + op(x̄, c) − x̄``: the right amount, not the individual's own."""

    def __init__(self, operator, items: torch.Tensor) -> None:
        super().__init__(operator)
        self.mean = items.mean(dim=0, keepdim=True)

    def change(self, x: torch.Tensor, amount, net: torch.nn.Module | None = None) -> torch.Tensor:
        mean = self.mean.expand_as(x)
        return (x + super().change(mean, amount) - mean).clamp(-1.0, 1.0)


def evaluate_change(run: Run, bundle: DataBundle, options: EvalOptions) -> EvalReport:
    """``gankit eval`` for the change family: :func:`change_scores` on held-out items."""
    started = time.perf_counter()
    options.check_defaults(
        run,
        "a change model scored by control (Spearman), FD, class kept and identity on "
        "held-out items",
        ("metrics", "features", "split", "inception_weights"),
    )
    scores, floor, notes = change_scores(
        run.model, bundle, options.n, options.seed, options.train_evaluator, options.data_dir,
        run.sampler_net,
    )  # fmt: skip
    n = min(options.n or CHANGE_N, len(bundle.held_out))
    return EvalReport(
        run=str(run.path), step=run.step, n=n, n_reference=min(n, len(bundle.domain_b.held_out)),
        n_floor=min(n, len(bundle.domain_b.train)), split="test",
        features="evaluator" if bundle.kind == "image" else None, scores=scores, floor=floor,
        seconds=round(time.perf_counter() - started, 3),
        extra={"checkpoint": str(run.checkpoint), "notes": notes},
    )  # fmt: skip


__all__ = [
    "AverageChange",
    "AverageSideChange",
    "BlendedTranslation",
    "IdentityChange",
    "OperatorChange",
    "change_scores",
    "evaluate_change",
    "individual_scores",
    "rank_correlation",
]
