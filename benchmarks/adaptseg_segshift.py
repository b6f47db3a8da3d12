"""Target mIoU on segshift: source-only, single-level and multi-level AdaptSeg, one budget.

Each seed trains the three presets ``source-only-segshift``, ``adaptseg-single-segshift``
and ``adaptseg-segshift`` with ``train.seed`` = that seed (weights and batch order; the
scenes themselves are segshift's seed 0 in every run), then scores the newest checkpoint
on both test splits (``gankit eval``). Prints one row per run, then the mean over seeds.

    python benchmarks/adaptseg_segshift.py --seeds 0,1,2 --runs-dir /tmp/adaptseg-bench
    python benchmarks/adaptseg_segshift.py --seeds 0 --set train.steps=100   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

PRESETS = ("source-only-segshift", "adaptseg-single-segshift", "adaptseg-segshift")


def main() -> None:
    import gankit
    from gankit.api import evaluate_run
    from gankit.config import resolve_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs-dir", default="runs/adaptseg-bench")
    parser.add_argument("--set", action="append", default=[], help="override for every run")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    rows = {preset: [] for preset in PRESETS}
    print("| preset | seed | source mIoU | target mIoU | target pixel acc. | time |")
    print("|---|---|---|---|---|---|")
    for seed in seeds:
        for preset in PRESETS:
            overrides = [f"train.seed={seed}", f"name={preset}-seed{seed}", *args.set]
            config = resolve_config(preset, overrides)
            started = time.perf_counter()
            result = gankit.train(config, runs_dir=args.runs_dir, overwrite=True)
            scores = evaluate_run(result.run_dir, runs_dir=args.runs_dir).scores
            rows[preset].append(scores)
            print(
                f"| {preset} | {seed} | {100 * scores['source_miou']:.1f} "
                f"| {100 * scores['target_miou']:.1f} | {100 * scores['target_accuracy']:.1f} % "
                f"| {time.perf_counter() - started:.0f} s |",
                flush=True,
            )
    print(f"\n| preset | target mIoU, mean of {len(seeds)} | per seed |\n|---|---|---|")
    for preset, scores in rows.items():
        values = [100 * s["target_miou"] for s in scores]
        per_seed = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {preset} | {statistics.mean(values):.1f} | {per_seed} |")
    print("\ncommand: python benchmarks/adaptseg_segshift.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
