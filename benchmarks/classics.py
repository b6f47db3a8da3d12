"""The classics against their baselines at one budget: pix2pix, the semi-supervised GAN
and the adversarial autoencoder, each next to the same networks without the adversary.

Each seed trains every preset of a study with ``train.seed`` = that seed (and, for the
semi-supervised GAN, ``model.label_seed`` too, so each seed labels other items), then
scores the newest checkpoint with ``gankit eval``. Prints one row per run, the mean over
seeds, the goal of the study and whether the means meet it.

- ``pix2pix`` (``--study pix2pix``): pix2pix-edges2digits against
  pix2pix-l1-edges2digits; goal: pix2pix's FD at most half of L1-only's, its L1 within
  25 % of L1-only's. ``--set data.name=edges2fashion`` (with Fashion-MNIST installed)
  runs the issue's data; pix2pix-edges2fashion is its preset. ``--also
  cyclegan-edges2digits`` (on edges2fashion, ``--also cyclegan-edges2fashion``) adds the
  unpaired baseline, scored the same way.
- ``ssgan``: ssgan-digits against ssgan-labelled-only-digits; goal: test error at most
  0.6 x the labelled-only classifier's.
- ``aae``: aae-digits against aae-plain-digits; goal: the codes' sliced W1 to the prior
  below the plain autoencoder's (``--also vae-digits`` gives the VAE's FD at the same
  budget; a score a preset has not, such as the VAE's ``prior_sw1``, prints as -).
- ``aae-labels``: aae-labels-digits (the mixture component follows the class) against
  aae-mixture-digits (no labels, its components matched to classes); goal: a higher
  ``component_accuracy``.

    python benchmarks/classics.py --study pix2pix --seeds 0,1,2 --runs-dir /tmp/classics
    python benchmarks/classics.py --study ssgan --seeds 0 --set train.steps=200  # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

#: study -> (the method's preset, its baseline's, the scores printed, the goal's check)
STUDIES = {
    "pix2pix": (
        "pix2pix-edges2digits",
        "pix2pix-l1-edges2digits",
        ("l1_ab", "ssim_ab", "fd_ab", "acc_ab"),
    ),
    "ssgan": ("ssgan-digits", "ssgan-labelled-only-digits", ("source_accuracy",)),
    "aae": ("aae-digits", "aae-plain-digits", ("recon_mse", "prior_sw1", "fd")),
    "aae-labels": (
        "aae-labels-digits",
        "aae-mixture-digits",
        ("component_accuracy", "recon_mse", "prior_sw1", "fd"),
    ),
}


def goal(study: str, method: dict[str, float], baseline: dict[str, float]) -> str:
    """The study's goal, stated with the means it reads and met or not."""
    if study == "pix2pix":
        fd, l1 = method["fd_ab"] / baseline["fd_ab"], method["l1_ab"] / baseline["l1_ab"]
        met = fd <= 0.5 and l1 <= 1.25
        return f"FD ratio {fd:.2f} (goal <= 0.5), L1 ratio {l1:.2f} (goal <= 1.25): " + (
            "met" if met else "not met"
        )
    if study == "ssgan":
        ratio = (1 - method["source_accuracy"]) / max(1e-9, 1 - baseline["source_accuracy"])
        return f"error ratio {ratio:.2f} (goal <= 0.6): " + ("met" if ratio <= 0.6 else "not met")
    if study == "aae-labels":
        gain = method["component_accuracy"] - baseline["component_accuracy"]
        return f"component accuracy {gain:+.3f} over the unlabelled mixture (goal > 0): " + (
            "met" if gain > 0 else "not met"
        )
    ratio = method["prior_sw1"] / baseline["prior_sw1"]
    return f"prior W1 ratio {ratio:.2f} (goal < 1): " + ("met" if ratio < 1 else "not met")


def main() -> None:
    import gankit
    from gankit.api import evaluate_run
    from gankit.config import resolve_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=sorted(STUDIES), required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs-dir", default="runs/classics-bench")
    parser.add_argument("--n", type=int, default=None, help="held-out items scored")
    parser.add_argument("--set", action="append", default=[], help="override for every run")
    parser.add_argument(
        "--also", action="append", default=[], help="another preset to score beside the two"
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    method, baseline, keys = STUDIES[args.study]

    presets = (method, baseline, *args.also)
    rows: dict[str, list[dict[str, float]]] = {preset: [] for preset in presets}
    print(f"| preset | seed | {' | '.join(keys)} | time |")
    print("|---|---|" + "---|" * len(keys) + "---|")
    for seed in seeds:
        for preset in presets:
            overrides = [f"train.seed={seed}", f"name={preset}-seed{seed}"]
            if args.study == "ssgan":
                overrides.append(f"model.label_seed={seed}")
            config = resolve_config(preset, [*overrides, *args.set])
            started = time.perf_counter()
            result = gankit.train(config, runs_dir=args.runs_dir, overwrite=True)
            scores = evaluate_run(
                result.run_dir, runs_dir=args.runs_dir, n=args.n, train_evaluator=True
            ).scores
            rows[preset].append(scores)
            values = " | ".join(f"{scores[k]:.4g}" if k in scores else "-" for k in keys)
            print(
                f"| {preset} | {seed} | {values} | {time.perf_counter() - started:.0f} s |",
                flush=True,
            )
    means = {
        p: {k: statistics.mean(s[k] for s in runs) for k in keys if k in runs[0]}
        for p, runs in rows.items()
    }
    print(f"\n| preset | mean of {len(seeds)}: {' | '.join(keys)} |\n|---|" + "---|" * len(keys))
    for preset, mean in means.items():
        cells = (f"{mean[k]:.4g}" if k in mean else "-" for k in keys)
        print(f"| {preset} | " + " | ".join(cells) + " |")
    print("\n" + goal(args.study, means[method], means[baseline]))
    print("\ncommand: python benchmarks/classics.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
