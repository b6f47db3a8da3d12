r"""``gankit attack``: how robust a classifier is to adversarial examples.

The attacks are :mod:`gankit.attacks`' FGSM and PGD in L∞ or L2. For each classifier
named (a classify-task run, or ``evaluator:DATASET``), this measures the accuracy on
held-out examples attacked at each ε of a grid (the robust-accuracy curve, a figure
and a table) and draws a few examples: the original, the perturbation δ scaled to fill
the grey range, and the adversarial image, each with its predicted class and the
softmax confidence.

``train_eps`` adds, beside each evaluator, a copy of its network trained adversarially
on the same data for the same epochs (Madry et al.: PGD examples at that ε), so that
clean and robust accuracy read side by side. A run is trained adversarially with the
model option ``adversarial_eps`` (DANN, source_only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gankit.attacks import (
    Bounds,
    Logits,
    bounds_of,
    check_attack,
    madry_examples,
    perturb,
)
from gankit.errors import GankitError, check_int, choices, float_list
from gankit.metrics.progress import QUIET, Progress
from gankit.nn import eval_mode, torch_threads

#: The ε grids when none is given, chosen on the 16 px digits evaluator (docs/attack.md):
#: from a barely visible change to where PGD leaves (almost) nothing correct.
DEFAULT_EPS = {
    "linf": (0.025, 0.05, 0.1, 0.15, 0.2, 0.3),
    "l2": (0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
}
#: The ε of the example pictures when none is given: the goal's ε for L∞.
DEFAULT_SHOW_EPS = {"linf": 0.1, "l2": 1.0}
MAX_EXAMPLES = 16
MAX_N = 10_000


@dataclass
class Target:
    """A classifier under attack and the held-out examples it is attacked on.

    Attributes:
        name: what the user named (a run, ``evaluator:digits``), or the name of a copy.
        network: the module whose mode the attack fixes (eval).
        logits: (N, ...) -> (N, K), with gradients.
        x: (N, ...) held-out inputs; y: (N,) their labels.
        bounds: the inputs' value range ([-1, 1] for images; None for points).
    """

    name: str
    network: nn.Module
    logits: Logits
    x: torch.Tensor
    y: torch.Tensor
    bounds: Bounds
    class_names: list[str] | None = None
    note: str = ""


@dataclass
class AttackReport:
    """Robust accuracy per classifier, attack and ε, and the pictures written.

    Attributes:
        norm: ``linf`` or ``l2``; eps: the grid; steps: PGD's steps.
        accuracy: ``{classifier: {"clean": acc, "fgsm@0.1": acc, "pgd@0.1": acc, ...}}``.
    """

    norm: str
    eps: tuple[float, ...]
    attacks: tuple[str, ...]
    steps: int
    n: int
    accuracy: dict[str, dict[str, float]]
    notes: dict[str, str] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    restarts: int = 1

    def table(self) -> list[str]:
        """A markdown table: a row per classifier and attack, a column per ε (in %)."""
        head = ["classifier", "attack", "clean", *(f"ε={eps:g}" for eps in self.eps)]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, scores in self.accuracy.items():
            for attack in self.attacks:
                cells = [scores["clean"]] + [scores[f"{attack}@{eps:g}"] for eps in self.eps]
                percent = [f"{100 * value:.1f}" for value in cells]
                lines.append(f"| {name} | {attack} | " + " | ".join(percent) + " |")
        return lines

    def summary(self) -> list[str]:
        norm = "L∞" if self.norm == "linf" else "L2"
        lines = [
            f"accuracy (%) under attack in {norm}, {self.n} held-out examples each, "
            f"PGD with {self.steps} steps"
            + (f", the best of {self.restarts} random starts:" if self.restarts > 1 else ":"),
            *self.table(),
        ]
        lines += [f"{name}: {note}" for name, note in self.notes.items()]
        return lines + [f"wrote {path}" for path in self.written]


def _evaluator_target(dataset: str, resolution, n, seed, data_dir, progress) -> Target:
    from gankit.data import load_dataset, runtime_options
    from gankit.data.base import take
    from gankit.metrics.features import load_evaluator, trained_evaluator

    if resolution is None:
        resolution, _ = trained_evaluator(dataset)
    evaluator = load_evaluator(dataset, resolution=resolution)
    progress.say(f"the {dataset} evaluator of {resolution} px images...")
    bundle = load_dataset(dataset, resolution=resolution, **runtime_options(dataset, data_dir))
    x, y = take(bundle.test, n, seed)
    return Target(
        f"evaluator:{dataset}", evaluator.net, evaluator.net, x, y, bounds_of(x.shape[1:]),
        evaluator.meta.get("class_names"),
    )  # fmt: skip


def _run_target(run: str, runs_dir, domain: str, n, seed, data_dir) -> Target:
    from gankit.data import load_data
    from gankit.data.base import take
    from gankit.runs.load import load_run

    loaded = load_run(run, runs_dir)
    model = loaded.model
    if model.task != "classify":
        raise GankitError(
            f"run '{run}' has task {model.task}, which has no classifier to attack; "
            "name a classify-task run (dann, source_only, pixelda) or evaluator:DATASET"
        )
    bundle = load_data(loaded.config["data"], data_dir)
    data = bundle if domain == "source" else bundle.domain_b
    if data is None:
        raise GankitError(f"run '{run}' has no target domain; use --domain source")
    x, y = take(data.held_out, n, seed)
    return Target(run, model, model.class_logits, x, y, bounds_of(model.data_shape))


def open_target(
    target: str,
    *,
    resolution: int | None = None,
    runs_dir: str | Path = "runs",
    domain: str = "source",
    n: int = 1000,
    seed: int = 0,
    data_dir: str | None = None,
    progress: Progress = QUIET,
) -> Target:
    """``evaluator:DATASET`` or a classify-task run -> a :class:`Target` with ``n``
    held-out examples (a seeded subset when there are more): the evaluator's test split,
    the run's ``domain`` (``source`` or ``target``) held-out split.

    Raises:
        GankitError: an unknown target, a run whose task has no classifier, an evaluator
            not trained yet.
    """
    if domain not in ("source", "target"):
        raise GankitError(f"unknown --domain '{domain}'; valid: source, target")
    if target.startswith("evaluator:"):
        if domain != "source":
            raise GankitError("--domain target reads a run's target; an evaluator has one")
        dataset = target.split(":", 1)[1]
        return _evaluator_target(dataset, resolution, n, seed, data_dir, progress)
    if not Path(runs_dir, target).is_dir() and not Path(target).is_dir():
        raise GankitError(
            f"unknown classifier '{target}'; valid: evaluator:DATASET (e.g. "
            "evaluator:digits) or a classify-task run directory"
        )
    return _run_target(target, runs_dir, domain, n, seed, data_dir)


def robust_copy(
    target: Target,
    eps: float,
    norm: str,
    steps: int = 7,
    seed: int = 0,
    data_dir: str | None = None,
    progress: Progress = QUIET,
) -> Target:
    """An evaluator's network trained again from scratch on its training split, with
    the same recipe and epochs, on PGD examples at ``eps`` (``steps`` steps): Madry's
    adversarial training. Its test examples are the target's."""
    from gankit.data import load_dataset, runtime_options
    from gankit.metrics.features import DEFAULT_EPOCHS, fit_classifier

    if not target.name.startswith("evaluator:"):
        raise GankitError(
            f"--train-eps trains a copy of an evaluator; '{target.name}' is a run: train "
            "one with --set model.adversarial_eps=EPS instead and attack both"
        )
    dataset = target.name.split(":", 1)[1]
    resolution = target.x.shape[-1]
    bundle = load_dataset(dataset, resolution=resolution, **runtime_options(dataset, data_dir))
    x, y = bundle.train.tensors
    epochs = DEFAULT_EPOCHS[dataset]
    progress.say(
        f"training a copy of {target.name} on PGD examples at ε={eps:g} ({norm}, {steps} "
        f"steps), {epochs} epochs..."
    )

    def adversary(net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return madry_examples(net, net, inputs, labels, eps, norm, steps, target.bounds)

    net = fit_classifier(
        x, y, bundle.num_classes, epochs=epochs, seed=seed, adversary=adversary,
        progress=progress.enabled, desc=f"adversarial training ε={eps:g}",
    )  # fmt: skip
    name = f"{target.name} + PGD training ε={eps:g}"
    return Target(name, net, net, target.x, target.y, target.bounds, target.class_names)


def _accuracy(logits: Logits, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((logits(x).argmax(dim=1) == y).float().mean())


def robust_accuracy(
    target: Target,
    attacks: tuple[str, ...],
    norm: str,
    eps_grid: tuple[float, ...],
    steps: int,
    seed: int = 0,
    restarts: int = 1,
) -> dict[str, float]:
    """``{"clean": acc, "ATTACK@EPS": acc, ...}``: accuracy on the target's examples,
    clean and attacked by each attack at each ε (PGD's starts seeded by ``seed``, from
    ``restarts`` random starts)."""
    scores = {"clean": _accuracy(target.logits, target.x, target.y)}
    with eval_mode(target.network):
        for attack in attacks:
            for eps in eps_grid:
                generator = torch.Generator().manual_seed(seed)
                adversarial = perturb(
                    attack, target.logits, target.x, target.y, eps, norm, steps,
                    target.bounds, generator, restarts,
                )  # fmt: skip
                scores[f"{attack}@{eps:g}"] = _accuracy(target.logits, adversarial, target.y)
    return scores


def _save_curve(out: Path, report: AttackReport) -> None:
    from gankit.vision.common import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    grid = (0.0, *report.eps)
    for index, (name, scores) in enumerate(report.accuracy.items()):
        # a colour per classifier, a line style per attack
        for attack, style in zip(report.attacks, ("--", "-")):
            values = [scores["clean"], *(scores[f"{attack}@{eps:g}"] for eps in report.eps)]
            percent = [100 * value for value in values]
            ax.plot(grid, percent, style, color=f"C{index}", marker="o", label=f"{name}, {attack}")
    norm = "L∞" if report.norm == "linf" else "L2"
    ax.set_xlabel(f"ε ({norm} radius, inputs in [-1, 1])")
    ax.set_ylabel("accuracy on attacked held-out examples (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"robust accuracy: FGSM and PGD ({report.steps} steps) in {norm}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out)


def _caption(probs: torch.Tensor, class_names: list[str] | None) -> str:
    confidence, label = probs.max(dim=0)
    name = class_names[int(label)] if class_names else str(int(label))
    return f"{name} ({100 * float(confidence):.0f} %)"


def _save_examples(out: Path, target: Target, attack: str, norm: str, eps, steps, k, seed):
    """Rows of original / δ scaled to [-1, 1] / adversarial, each with its predicted class
    and confidence (points have no picture: refused before)."""
    from gankit.vision.common import pyplot, save_figure, show

    x, y = target.x[:k], target.y[:k]
    with eval_mode(target.network):
        generator = torch.Generator().manual_seed(seed)
        adversarial = perturb(
            attack, target.logits, x, y, eps, norm, steps, target.bounds, generator
        )
        with torch.no_grad():
            clean_probs = target.logits(x).softmax(dim=1)
            adversarial_probs = target.logits(adversarial).softmax(dim=1)
    delta = adversarial - x
    peak = delta.flatten(1).abs().amax(dim=1).clamp_min(1e-12)
    scaled = delta / peak.view(-1, 1, 1, 1)
    plt = pyplot()
    fig, axes = plt.subplots(k, 3, figsize=(5.4, 1.9 * k + 0.6), dpi=110, squeeze=False)
    for row in range(k):
        true = target.class_names[int(y[row])] if target.class_names else str(int(y[row]))
        show(axes[row, 0], x[row], f"true {true}: {_caption(clean_probs[row], target.class_names)}")
        show(axes[row, 1], scaled[row], f"δ × {1 / float(peak[row]):.1f}")
        show(axes[row, 2], adversarial[row], _caption(adversarial_probs[row], target.class_names))
    norm_name = "L∞" if norm == "linf" else "L2"
    fig.suptitle(
        f"{target.name}: original / perturbation (scaled) / {attack.upper()} {norm_name} "
        f"ε={eps:g}\npredicted class (softmax confidence)", fontsize=9,
    )  # fmt: skip
    fig.tight_layout()
    save_figure(fig, out)


def _file_name(name: str) -> str:
    """A classifier's name as an ASCII file-name part: ``evaluator:digits`` ->
    ``evaluator-digits``, ``runs/dann`` -> ``runs-dann``."""
    kept = "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "-" for c in name)
    return "-".join(part for part in kept.split("-") if part).strip(".") or "classifier"


def attack_classifiers(
    targets: list[str],
    out_dir: Path | None,
    *,
    attacks: str | tuple[str, ...] = ("fgsm", "pgd"),
    norm: str = "linf",
    eps: str | tuple[float, ...] | None = None,
    steps: int = 20,
    n: int = 1000,
    examples: int = 6,
    show_eps: float | None = None,
    train_eps: float | None = None,
    train_steps: int = 7,
    restarts: int = 1,
    resolution: int | None = None,
    domain: str = "source",
    seed: int = 0,
    runs_dir: str | Path = "runs",
    data_dir: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> AttackReport:
    """``gankit attack``: robust accuracy of each classifier in ``targets`` over the ε
    grid (``eps``: comma-separated or a tuple; default :data:`DEFAULT_EPS` of the norm),
    and, into ``out_dir`` (None: the table only), ``robust-accuracy.png``,
    ``robust-accuracy.md`` and ``examples-NAME.png`` for image classifiers (PGD at
    ``show_eps``, the first ``examples`` held-out images).

    Raises:
        GankitError: ε <= 0 or not finite, an unknown attack or norm, a run whose task
            has no classifier, an existing output without ``overwrite``.
    """
    from gankit.explore.pictures import writing
    from gankit.vision.common import check_output

    if isinstance(attacks, str):
        attacks = tuple(part.strip() for part in attacks.split(",") if part.strip())
    eps_grid = float_list(eps, "--eps", "0.05,0.1,0.2") if eps is not None else None
    if not targets:
        raise GankitError("name at least one classifier: a classify-task run or evaluator:DATASET")
    if not attacks:
        raise GankitError(f"--attack names no attack; valid: {choices(('fgsm', 'pgd'))}")
    check_attack(attacks[0], norm, 1.0, steps, restarts)
    eps_grid = tuple(sorted(set(eps_grid or DEFAULT_EPS[norm])))
    for value in (*eps_grid, *(v for v in (show_eps, train_eps) if v is not None)):
        for attack in attacks:
            check_attack(attack, norm, value, steps)
    check_attack("pgd", norm, 1.0, train_steps)
    check_int("--n", n, 1, MAX_N)
    check_int("--examples", examples, 0, MAX_EXAMPLES)
    show_eps = DEFAULT_SHOW_EPS[norm] if show_eps is None else show_eps
    shown = Progress(progress)
    with torch_threads(1):  # small networks: one thread is faster on a shared CPU
        opened = []
        for name in targets:
            shown.say(f"loading {name}...")
            opened.append(open_target(name, resolution=resolution, runs_dir=runs_dir,
                                      domain=domain, n=n, seed=seed, data_dir=data_dir,
                                      progress=shown))  # fmt: skip
            if train_eps is not None:
                opened.append(robust_copy(opened[-1], train_eps, norm, train_steps, seed,
                                          data_dir, shown))  # fmt: skip
        paths = {}
        if out_dir is not None:
            out_dir = Path(out_dir)
            if out_dir.exists() and not out_dir.is_dir():
                raise GankitError(f"--out '{out_dir}' is not a folder")
            names = ["robust-accuracy.png", "robust-accuracy.md"]
            names += [
                f"examples-{_file_name(t.name)}.png" for t in opened if examples and t.x.dim() == 4
            ]
            paths = {name: check_output(out_dir / name, overwrite) for name in names}
        accuracy = {}
        for target in opened:
            shown.say(f"attacking {target.name} on {len(target.x)} examples...")
            accuracy[target.name] = robust_accuracy(
                target, attacks, norm, eps_grid, steps, seed, restarts
            )
        report = AttackReport(
            norm, eps_grid, attacks, steps, len(opened[0].x), accuracy, restarts=restarts
        )
        if out_dir is None:
            return report
        out_dir.mkdir(parents=True, exist_ok=True)
        curve, table = out_dir / "robust-accuracy.png", out_dir / "robust-accuracy.md"
        with writing(curve):
            _save_curve(curve, report)
        from gankit.files import atomic_write_text

        with writing(table):
            atomic_write_text(table, "\n".join(report.summary()) + "\n")
        report.written += [curve, table]
        for target in opened:
            path = paths.get(f"examples-{_file_name(target.name)}.png")
            if path is None:
                continue
            with writing(path):
                _save_examples(path, target, "pgd", norm, show_eps, steps,
                               min(examples, len(target.x)), seed)  # fmt: skip
            report.written.append(path)
    return report


__all__ = ["DEFAULT_EPS", "AttackReport", "Target", "attack_classifiers", "open_target"]
