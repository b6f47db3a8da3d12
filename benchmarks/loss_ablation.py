"""The loss ablation of R3GAN's Table 1 on gankit's toy grid: which objective is both
stable and covers every mode?

Five arms on the ``gan-grid`` preset (25 Gaussians, std 0.05; the same MLPs, batch,
optimizer and steps in every arm), each trained for the same budget with 5 seeds:

- GAN (non-saturating);
- GAN + R1;
- GAN + R1 + R2;
- RpGAN + R1;
- RpGAN + R1 + R2.

R1 and R2 take one γ (``--gamma``), as in the paper. Each run is scored as ``gankit
bench toy`` scores it (PacGAN's protocol: 2500 samples, a mode is captured by a sample
within 3 std of it). A seed *diverged* when its training stopped on a non-finite value
or its samples capture no mode at all. The table gives mean ± standard error over the
seeds that finished (a diverged seed that finished counts as its 0 modes), and the
share that diverged. The runs go seed by seed across the arms, and each prints its line
as it ends, so that a run cut short still compares the arms on the same seeds.

    python benchmarks/loss_ablation.py                        # gan-grid: 7000 steps
    python benchmarks/loss_ablation.py --steps 500 --seeds 2 # a reduced budget
    python benchmarks/loss_ablation.py --arms 4,5              # RpGAN's arms only
    python benchmarks/loss_ablation.py --set train.threads=1   # any config override
    python benchmarks/loss_ablation.py --seeds 3 --first-seed 2  # seeds 2, 3 and 4
"""

from __future__ import annotations

import argparse
import math
import statistics

from common import command_line, machine_line
from gankit.bench import ToyResult, run_toy
from gankit.errors import GankitError

#: Arm -> its model overrides on top of gan-grid; "{g}" is replaced by γ.
ARMS = {
    "GAN (non-saturating)": [],
    "GAN + R1": ["model.r1_gamma={g}"],
    "GAN + R1 + R2": ["model.r1_gamma={g}", "model.r2_gamma={g}"],
    "RpGAN + R1": ["model.loss=rpgan", "model.r1_gamma={g}"],
    "RpGAN + R1 + R2": ["model.loss=rpgan", "model.r1_gamma={g}", "model.r2_gamma={g}"],
}


def mean_se(values: list[float]) -> str:
    if not values:
        return "—"
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {se:.1f}"


def run_seed(arm: str, sets: list[str], seed: int) -> ToyResult | None:
    """One seed of one arm, or None where its training stopped on a non-finite value."""
    try:
        (row,) = run_toy(["gan-grid"], 1, [f"train.seed={seed}", *sets])
    except GankitError as error:  # a non-finite loss or sample stops the run
        print(f"  {arm}, seed {seed} stopped: {error}", flush=True)
        return None
    print(
        f"  {arm}, seed {seed}: {row.modes}/{row.n_modes} modes, "
        f"{100 * row.high_quality:.1f} % high quality, {row.seconds:.0f} s",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--first-seed", type=int, default=0,
        help="seeds first-seed .. first-seed + seeds - 1, so that a sweep cut short can go on"
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=None, help="default: gan-grid's")
    parser.add_argument("--gamma", type=float, default=0.1, help="γ of R1 and R2")
    parser.add_argument(
        "--arms", default=None, help="comma-separated arm numbers 1-5 (default: all), "
        "so that arms can run in separate processes"
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="a config override for every arm, e.g. train.threads=1 (repeatable)"
    )  # fmt: skip
    args = parser.parse_args()
    numbers = [int(a) for a in args.arms.split(",")] if args.arms else range(1, len(ARMS) + 1)
    shared = [f"train.steps={args.steps}"] if args.steps else []
    shared += args.sets
    chosen = {
        arm: [s.format(g=args.gamma) for s in sets] + shared
        for number, (arm, sets) in enumerate(ARMS.items(), start=1)
        if number in numbers
    }
    outcomes: dict[str, list[ToyResult | None]] = {arm: [] for arm in chosen}
    # Seed by seed across the arms, so that a run cut short leaves every arm the same seeds.
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for arm, overrides in chosen.items():
            outcomes[arm].append(run_seed(arm, overrides, seed))
    print("\n| objective | modes (of 25) | high quality | diverged | s per run |")
    print("|---|---|---|---|---|")
    for arm, runs in outcomes.items():
        rows = [row for row in runs if row is not None]
        diverged = sum(row is None or row.modes == 0 for row in runs)
        seconds = statistics.fmean(r.seconds for r in rows) if rows else float("nan")
        print(
            f"| {arm} | {mean_se([r.modes for r in rows])} "
            f"| {mean_se([100 * r.high_quality for r in rows])} % "
            f"| {diverged}/{args.seeds} | {seconds:.0f} |"
        )
    print(f"\nγ = {args.gamma}; steps: {args.steps or 'the preset'}; {machine_line()}")
    print(command_line())


if __name__ == "__main__":
    main()
