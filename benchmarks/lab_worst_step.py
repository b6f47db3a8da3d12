"""The slowest step a page can ask of ``gankit lab``: WGAN-GP with every bound at its high.

Trains a few steps of :meth:`gankit.lab.session.Settings.costliest` on one torch thread,
as the lab does, and prints each step's CPU seconds (of the stepping thread alone, so
other processes on the machine do not count) and the slowest.

    python benchmarks/lab_worst_step.py --steps 10
"""

from __future__ import annotations

import argparse
import platform


def main() -> None:
    from gankit.lab.session import INT_BOUNDS, Session, Settings
    from gankit.nn import torch_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    settings = Settings.costliest()
    bounds = ", ".join(f"{name} {high}" for name, (_, high) in INT_BOUNDS.items())
    print(f"{settings.loss}, {bounds}; {platform.processor() or platform.machine()}")
    with torch_threads(1):
        seconds = Session(settings, lambda message: None).time_steps(args.steps)
    print("step CPU seconds: " + " ".join(f"{s:.3f}" for s in seconds))
    print(f"slowest step: {max(seconds):.3f} s of one core")


if __name__ == "__main__":
    main()
