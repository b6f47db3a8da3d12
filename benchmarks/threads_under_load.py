"""Steps per second of dcgan-digits by CPU thread setting, on a quiet and a busy machine.

The thread count that is best on a quiet machine can collapse when something else
keeps a core busy: OpenMP threads that spin while they wait for work then wait on each
other at every operation. This script trains the same preset in fresh processes (the
OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when torch loads) under each setting:

- ``1 thread``: ``train.threads=1``;
- ``all cores, spinning``: the cores, ``OMP_WAIT_POLICY=ACTIVE`` (OpenMP's own default);
- ``all cores, passive`` (gankit's default): the cores, ``OMP_WAIT_POLICY=PASSIVE``.

"busy" runs the same with ``--busy`` background processes each spinning one core in
pure Python. Settings and conditions are interleaved over ``--rounds`` rounds; the
table gives the median steps per second (min-max) of the training loop, from its
first to its last log line.

    python benchmarks/threads_under_load.py
    python benchmarks/threads_under_load.py --steps 200 --rounds 2 --busy 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile

from common import command_line, load_average, spread

SETTINGS = {
    "1 thread": ({"OMP_WAIT_POLICY": "PASSIVE"}, 1),
    "all cores, spinning": ({"OMP_WAIT_POLICY": "ACTIVE"}, None),
    "all cores, passive (default)": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
}

CHILD = """
import json, sys, gankit
preset, steps, threads, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
overrides = {"train.steps": steps, "train.log_every": 10, "train.sample_every": 10**9,
             "train.ckpt_every": 10**9, "train.progress": False}
if threads != "default":
    overrides["train.threads"] = int(threads)
gankit.train(preset, overrides, name="bench", runs_dir=runs, overwrite=True)
rows = [json.loads(l) for l in open(f"{runs}/bench/metrics.jsonl")]
first, last = rows[0], rows[-1]
print(json.dumps((last["step"] - first["step"]) / (last["time"] - first["time"])))
"""


def spin() -> None:
    while True:
        pass


def one_run(preset: str, steps: int, env: dict, threads: int | None, runs: str) -> float:
    environment = {**os.environ, **env}
    argv = [sys.executable, "-c", CHILD, preset, str(steps), str(threads or "default"), runs]
    out = subprocess.run(argv, env=environment, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan-digits")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="spinning background processes")
    args = parser.parse_args()

    print(f"{os.cpu_count()} cores; load average before: {load_average()}")
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as runs:
        for _ in range(args.rounds):
            for condition in ("quiet", "busy"):
                spinners = []
                if condition == "busy":
                    spinners = [multiprocessing.Process(target=spin) for _ in range(args.busy)]
                    for process in spinners:
                        process.start()
                try:
                    for name, (env, threads) in SETTINGS.items():
                        rate = one_run(args.preset, args.steps, env, threads, runs)
                        results.setdefault((name, condition), []).append(rate)
                finally:
                    for process in spinners:
                        process.terminate()
                        process.join()
    print(f"{args.preset}, {args.steps} steps per run, {args.rounds} rounds, busy = "
          f"{args.busy} spinning process(es); median steps/s (min-max)")  # fmt: skip
    print(f"{'setting':<30}{'quiet':>20}{'busy':>20}")
    for name in SETTINGS:
        quiet, busy = spread(results[(name, "quiet")]), spread(results[(name, "busy")])
        print(f"{name:<30}{quiet:>20}{busy:>20}")
    print(f"load average after: {load_average()}")
    print(command_line())


if __name__ == "__main__":
    main()
