"""Which preset should `make demo` train? The digits presets side by side, as a new user
would judge their samples.

Each preset trains for the same number of steps on the embedded digits (16 px), then:

- ``fd``: gankit's evaluator Fréchet distance (2000 samples vs the test split), with the
  real-vs-real floor;
- ``sure``: how sure an *independent* classifier is of its answer on 1000 samples (mean
  top probability). The classifier is scikit-learn's logistic regression on the original
  8x8 digits, which never sees gankit's networks; samples are averaged down to 8x8.
  Real test digits give its ceiling;
- ``classes``: the fewest and most samples it puts in one class, of 1000 (100 each is
  perfectly balanced);
- ``cpu s``: the CPU seconds the training took (a load-independent cost).

    python benchmarks/demo_choice.py
    python benchmarks/demo_choice.py --steps 3000 --presets dcgan-digits cgan-digits
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from common import command_line, load_average

PRESETS = ("dcgan-digits", "cgan-digits", "infogan-digits")


def independent_classifier() -> tuple[LogisticRegression, np.ndarray]:
    """Logistic regression on the 8x8 digits (pixels 0-16), and the held-out last 20 %."""
    digits = load_digits()
    cut = int(0.8 * len(digits.data))
    clf = LogisticRegression(max_iter=5000).fit(digits.data[:cut], digits.target[:cut])
    return clf, digits.data[cut:]


def to_8x8_pixels(images: torch.Tensor) -> np.ndarray:
    """(N, 1, R, R) in [-1, 1] -> (N, 64) in the 0-16 scale of sklearn's digits."""
    small = F.adaptive_avg_pool2d(images.float(), 8)
    return ((small + 1) * 8).clamp(0, 16).reshape(len(images), -1).numpy()


def judge(clf: LogisticRegression, pixels: np.ndarray) -> tuple[float, int, int]:
    probs = clf.predict_proba(pixels)
    counts = np.bincount(probs.argmax(1), minlength=10)
    return float(probs.max(1).mean()), int(counts.min()), int(counts.max())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    import gankit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    clf, held_out = independent_classifier()
    sure, low, high = judge(clf, held_out)
    print(f"load average {load_average()}; {args.steps} steps each, seed {args.seed}")
    print(f"{'preset':<16}{'fd':>8}{'floor':>8}{'sure':>8}{'classes':>12}{'cpu s':>8}")
    print(f"{'real digits':<16}{'':>8}{'':>8}{sure:>8.3f}{f'{low}-{high}':>12}{'':>8}")
    with tempfile.TemporaryDirectory() as runs:
        for preset in args.presets:
            started = cpu_seconds()
            overrides = {"train.steps": args.steps, "train.seed": args.seed,
                         "train.progress": False}  # fmt: skip
            result = gankit.train(preset, overrides, name=preset, runs_dir=runs)
            if result.interrupted:  # Ctrl-C or SIGTERM: stop the script, not just this run
                raise KeyboardInterrupt(result.interrupted)
            spent = cpu_seconds() - started
            report = gankit.evaluate_run(
                Path(runs) / preset, "fd", runs_dir=runs, train_evaluator=True
            )
            run = gankit.load_run(Path(runs) / preset)
            samples = run.sample(1000, seed=args.seed)
            sure, low, high = judge(clf, to_8x8_pixels(samples))
            print(
                f"{preset:<16}{report.scores['fd']:>8.2f}{report.floor['fd']:>8.2f}"
                f"{sure:>8.3f}{f'{low}-{high}':>12}{spent:>8.0f}"
            )
    print(command_line())


if __name__ == "__main__":
    main()
