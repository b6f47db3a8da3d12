"""Lucic et al. (2018), "Are GANs Created Equal?", at gankit's scale: one random search
per GAN loss over the same space, each trial a dcgan-digits run scored by gankit eval's
FD (evaluator features), then the distribution of FD per loss and the best FD so far
against the number of trials (their figures 4-5), and a table.

Each loss is its own study (``lucic-<loss>``) on the same ``--set`` and search space:
learning rates of G and D log-uniform in [1e-5, 1e-3] and the batch size in {32, 64};
WGAN-GP adds its gradient penalty (weight 10) and 5 critic steps per G step, as in the
paper, and layer norm in D in place of batch norm (the penalty is per sample). A
killed run resumes: run the same command again.

    python benchmarks/lucic_study.py                          # 4 losses x 20 trials
    python benchmarks/lucic_study.py --trials 4 --steps 300   # a reduced run
    python benchmarks/lucic_study.py --trials 6 --steps 200 --resolution 8  # smaller
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import gankit.api as api
from common import command_line, machine_line
from gankit.explore.pictures import pyplot
from gankit.study import best_so_far, default_storage, finished_trials

#: The loss of each study: the model's ``loss`` and what it adds.
LOSSES = {
    "ns": ["model.loss=non_saturating"],
    "wgan-gp": [
        "model.loss=wasserstein",
        "model.gp_weight=10",
        "model.n_critic=5",
        "model.d_norm=layer",
    ],
    "lsgan": ["model.loss=least_squares"],
    "hinge": ["model.loss=hinge"],
}
SEARCH = ["model.lr_g=log:1e-5..1e-3", "model.lr_d=log:1e-5..1e-3", "train.batch_size=32,64"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per loss")
    parser.add_argument("--steps", type=int, default=2000, help="training steps per trial")
    parser.add_argument("--eval-n", type=int, default=2000, help="samples each eval scores")
    parser.add_argument("--resolution", type=int, default=16, help="digits' side: 16 or 8 px")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs-lucic")
    parser.add_argument("--out", default="docs/lucic-digits.png")
    args = parser.parse_args()
    api.train_evaluator("digits", args.resolution)  # once, before any worker needs it
    sets = [f"train.steps={args.steps}", "train.sample_every=100000", "train.progress=false",
            f"data.resolution={args.resolution}"]  # fmt: skip
    results = {}
    for loss, extra in LOSSES.items():
        name = f"lucic-{loss}"
        api.study(
            name, "dcgan-digits", SEARCH, trials=args.trials, metric="fd",
            overrides=[*sets, *extra], eval_n=args.eval_n, workers=args.workers,
            runs_dir=args.runs_dir, on_line=print,
        )  # fmt: skip
        results[loss] = [
            row.value for row in finished_trials(name, default_storage(name, args.runs_dir))[1]
        ]
    print("| loss | trials | best FD | median FD | worst FD |")
    print("|---|---|---|---|---|")
    for loss, values in results.items():
        print(f"| {loss} | {len(values)} | {min(values):.3f} | {statistics.median(values):.3f} "
              f"| {max(values):.3f} |")  # fmt: skip
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    left.boxplot(list(results.values()), showmeans=True)
    left.set_xticks(range(1, len(results) + 1), list(results))
    left.set(title="evaluator FD over random trials", ylabel="FD (lower is better)")
    for loss, values in results.items():
        curve = best_so_far(values, lower=True)
        right.plot(range(1, len(curve) + 1), curve, marker=".", label=loss)
    right.set(title="best FD so far", xlabel="trials", ylabel="best FD")
    right.legend()
    fig.suptitle(
        f"dcgan-digits at {args.resolution} px, {args.steps} steps per trial, "
        f"{args.trials} trials per loss"
    )
    fig.savefig(Path(args.out))
    print(f"figure: {args.out}")
    print(machine_line())
    print(command_line())


if __name__ == "__main__":
    main()
