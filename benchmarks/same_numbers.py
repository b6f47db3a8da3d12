"""Fingerprint gankit's numbers through the CLI, to prove that a change moved none of them.

Every item is produced by ``python -m gankit ...`` in a subprocess, so the script runs
unchanged on any version of gankit whose CLI accepts these commands. ``--record`` writes
the fingerprints to a JSON file; ``--check`` recomputes them and prints one line per item,
``same`` or ``DIFFERENT`` with the values that moved, and exits 1 if any moved.

The items, all from short CPU runs (``train.threads=1``, ``train.device=cpu``, one
thread for every other torch op, evaluators trained fresh in ``GANKIT_CACHE`` under the
work directory):

- ``evaluator digits`` / ``evaluator digits-m``: ``gankit evaluator train ... --resolution
  16`` stdout (the test accuracy), the evaluators that the image metrics below read.
- ``gan-ring``: samples from ``gankit sample --out .npy`` (SHA-256 of the array bytes and
  their mean), ``metrics.jsonl`` without its ``time`` field (SHA-256 and the last line),
  ``gankit eval`` stdout and ``eval.json``.
- ``cgan-digits``, ``infogan-digits``: samples, ``gankit eval`` stdout and ``eval.json``
  (``cgan-digits`` also ``metrics.jsonl``).
- ``cyclegan-digits-m``, ``adaptseg-segshift``: ``gankit eval`` stdout and ``eval.json``.
- ``dcgan-digits resume``: 40 steps straight against 20 steps then ``--resume`` to 40; the
  two sample arrays and metric logs must be equal, and their hashes are recorded.

``gankit eval`` stdout drops the ``evaluated in ... s`` line and shows the work directory
as ``<workdir>``; ``eval.json`` is compared on ``scores``, ``floor`` (full floats) and the
sample counts. Runs are independent chains spread over ``--jobs`` processes, each on one
thread, so the numbers do not depend on ``--jobs`` or on the machine's load.

    PYTHONPATH=src python benchmarks/same_numbers.py --record benchmarks/same_numbers_baseline.json
    PYTHONPATH=src python benchmarks/same_numbers.py --check benchmarks/same_numbers_baseline.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

Items = dict[str, Any]
PLACEHOLDER = "<workdir>"

# Every training run: one torch thread, on the CPU.
COMMON = ["train.threads=1", "train.device=cpu"]


class CommandFailed(Exception):
    """A gankit command exited non-zero; the message holds its command and output tail."""


class Cli:
    """Runs ``python -m gankit`` in the work directory with a pinned environment."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "GANKIT_CACHE": str(workdir / "cache"),
            "CUDA_VISIBLE_DEVICES": "",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0",
        }

    def __call__(self, *args: str) -> str:
        command = [sys.executable, "-m", "gankit", *args]
        done = subprocess.run(
            command, cwd=self.workdir, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise CommandFailed(f"exit {done.returncode}: gankit {' '.join(args)}\n{tail}")
        return done.stdout

    def train(self, preset: str, name: str, overrides: list[str], resume: bool = False) -> None:
        args = ["train"] if resume else ["train", preset]
        args += ["--name", name, "--runs-dir", "runs", "--no-progress"]
        args += ["--resume"] if resume else []
        for override in [*COMMON, *overrides]:
            args += ["--set", override]
        self(*args)

    def sample(self, run: str, n: int) -> np.ndarray:
        out = self.workdir / f"{run}-samples.npy"
        self("sample", run, "--runs-dir", "runs", "--n", str(n), "--seed", "0", "--out", out.name)
        return np.load(out)

    def eval(self, run: str) -> tuple[list[str], dict[str, Any]]:
        """``gankit eval`` stdout lines (timing line dropped) and the ``eval.json`` numbers."""
        text = self("eval", run, "--runs-dir", "runs", "--train-evaluator")
        report = json.loads((self.workdir / "runs" / run / "eval.json").read_text())
        keys = ("scores", "floor", "step", "n", "n_reference", "n_floor")
        return self.clean(text), {key: report.get(key) for key in keys}

    def clean(self, text: str) -> list[str]:
        lines = []
        for line in text.splitlines():
            if line.startswith("evaluated in "):
                continue
            for where in {str(self.workdir.resolve()), str(self.workdir)}:
                line = line.replace(where, PLACEHOLDER)
            lines.append(line.rstrip())
        return lines

    def metrics_log(self, run: str) -> dict[str, Any]:
        """``metrics.jsonl`` without ``time``: SHA-256 of the lines (keys sorted), the last."""
        rows = []
        for line in (self.workdir / "runs" / run / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                row.pop("time", None)
                rows.append(row)
        canonical = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
        return {
            "sha256": hashlib.sha256(canonical.encode()).hexdigest(),
            "lines": len(rows),
            "last": rows[-1] if rows else None,
        }


def array_fingerprint(array: np.ndarray) -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "mean": float(array.astype(np.float64).mean()),
    }


def short_run(steps: int, log_every: int | None = None) -> list[str]:
    """Overrides for a run of ``steps`` steps that ends with a checkpoint and a preview."""
    overrides = [f"train.steps={steps}", f"train.sample_every={steps}", f"train.ckpt_every={steps}"]
    if log_every is not None:
        overrides.append(f"train.log_every={log_every}")
    return overrides


# --------------------------------------------------------------------------- the chains
# Each chain trains its own runs and returns its items; chains share nothing but the
# evaluators, which are trained before any chain starts.


def evaluator_chain(dataset: str) -> Callable[[Cli], Items]:
    """Train the evaluator of ``dataset`` at 16 px into ``GANKIT_CACHE``."""

    def chain(cli: Cli) -> Items:
        out = cli("evaluator", "train", dataset, "--resolution", "16")
        return {f"evaluator {dataset}": {"stdout": cli.clean(out)}}

    return chain


def image_chain(
    preset: str, steps: int, samples: int | None, metrics: bool, log_every: int | None = None
) -> Callable[[Cli], Items]:
    """Train ``preset`` for ``steps``; fingerprint samples (if ``samples``), the log, eval."""

    def chain(cli: Cli) -> Items:
        cli.train(preset, preset, short_run(steps, log_every))
        items: Items = {}
        if samples:
            items[f"{preset} samples"] = array_fingerprint(cli.sample(preset, samples))
        if metrics:
            items[f"{preset} metrics.jsonl"] = cli.metrics_log(preset)
        stdout, numbers = cli.eval(preset)
        items[f"{preset} eval stdout"] = {"stdout": stdout}
        items[f"{preset} eval.json"] = numbers
        return items

    return chain


def resume_chain(cli: Cli) -> Items:
    """dcgan-digits: 40 steps straight, and 20 steps then ``--resume`` to 40."""
    settings = ["train.sample_every=20", "train.ckpt_every=20", "train.log_every=5"]
    cli.train("dcgan-digits", "dcgan-straight", ["train.steps=40", *settings])
    cli.train("dcgan-digits", "dcgan-resumed", ["train.steps=20", *settings])
    cli.train("dcgan-digits", "dcgan-resumed", ["train.steps=40", *settings], resume=True)
    straight = array_fingerprint(cli.sample("dcgan-straight", 64))
    resumed = array_fingerprint(cli.sample("dcgan-resumed", 64))
    log_straight = cli.metrics_log("dcgan-straight")["sha256"]
    log_resumed = cli.metrics_log("dcgan-resumed")["sha256"]
    return {
        "dcgan-digits resume": {
            "samples_sha256_straight": straight["sha256"],
            "samples_sha256_resumed": resumed["sha256"],
            "samples_equal": straight["sha256"] == resumed["sha256"],
            "metrics_sha256_straight": log_straight,
            "metrics_sha256_resumed": log_resumed,
            "metrics_equal": log_straight == log_resumed,
            "mean": straight["mean"],
        }
    }


EVALUATORS: dict[str, Callable[[Cli], Items]] = {
    "evaluator digits": evaluator_chain("digits"),
    "evaluator digits-m": evaluator_chain("digits-m"),
}
CHAINS: dict[str, Callable[[Cli], Items]] = {
    "cyclegan-digits-m": image_chain("cyclegan-digits-m", 100, None, False, log_every=25),
    "infogan-digits": image_chain("infogan-digits", 200, 100, False),
    "cgan-digits": image_chain("cgan-digits", 200, 100, True, log_every=25),
    "adaptseg-segshift": image_chain("adaptseg-segshift", 100, None, False, log_every=25),
    "gan-ring": image_chain("gan-ring", 300, 1000, True, log_every=25),
    "dcgan-digits resume": resume_chain,
}


def run_chain(name: str, chain: Callable[[Cli], Items], cli: Cli) -> tuple[Items, float]:
    """The chain's items; a failed command becomes one ``{"error": ...}`` item."""
    start = time.perf_counter()
    try:
        items = chain(cli)
    except CommandFailed as failure:
        print(f"FAILED {name}: {failure}", file=sys.stderr, flush=True)
        items = {f"{name} (failed)": {"error": str(failure).replace(str(cli.workdir), PLACEHOLDER)}}
    return items, time.perf_counter() - start


def fingerprint(workdir: Path, jobs: int) -> Items:
    """All items: the evaluators first (every image eval reads them), then the chains."""
    cli = Cli(workdir)
    items: Items = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for stage in (EVALUATORS, CHAINS):
            futures = {
                name: pool.submit(run_chain, name, chain, cli) for name, chain in stage.items()
            }
            for name, future in futures.items():
                stage_items, seconds = future.result()
                print(f"  {name}: {seconds:.0f} s", flush=True)
                items.update(stage_items)
    return items


# --------------------------------------------------------------------------- comparison
def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """``{"scores.fd": 1.0, "stdout[3]": "...", ...}``: every leaf of a JSON value."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(leaves(inner, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and path.split(".")[-1] in ("stdout", "error"):
        return {f"{path}[{i}]": line for i, line in enumerate(value)}
    return {path: value}


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def differences(recorded: Any, now: Any) -> list[str]:
    old, new = leaves(recorded), leaves(now)
    out = []
    for key in list(old) + [k for k in new if k not in old]:
        if key not in new:
            out.append(f"{key}: recorded {old[key]!r}, now missing")
        elif key not in old:
            out.append(f"{key}: not recorded, now {new[key]!r}")
        elif not equal(old[key], new[key]):
            out.append(f"{key}: recorded {old[key]!r}, now {new[key]!r}")
    return out


def compare(recorded: Items, now: Items) -> int:
    """Print one line per item; the number of items that differ."""
    different = 0
    for name in list(recorded) + [k for k in now if k not in recorded]:
        if name not in now:
            print(f"DIFFERENT {name}: recorded, now missing")
            different += 1
            continue
        if name not in recorded:
            error = now[name].get("error", "") if isinstance(now[name], dict) else ""
            print(f"DIFFERENT {name}: not in the recording" + (f"; {error}" if error else ""))
            different += 1
            continue
        found = differences(recorded[name], now[name])
        if found:
            different += 1
            print(f"DIFFERENT {name}")
            for line in found:
                print(f"    {line}")
        else:
            print(f"same      {name}")
    return different


def environment() -> dict[str, str]:
    import torch

    import gankit

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "gankit": str(Path(gankit.__file__).parent),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", type=Path, metavar="FILE", help="write the fingerprints")
    mode.add_argument("--check", type=Path, metavar="FILE", help="compare with a recording")
    parser.add_argument(
        "--workdir", type=Path, help="where runs and evaluators go (empty or new; kept)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--jobs", type=int, default=2, help="chains run at once (one thread each)")
    args = parser.parse_args()

    recorded = None
    if args.check is not None:
        recorded = json.loads(args.check.read_text())
    if args.workdir is not None:
        if args.workdir.exists() and any(args.workdir.iterdir()):
            parser.error(f"--workdir '{args.workdir}' is not empty")
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = args.workdir.resolve()
    else:
        workdir = Path(tempfile.mkdtemp(prefix="gankit-same-numbers-"))

    env = environment()
    print(f"gankit from {env['gankit']}; torch {env['torch']}; work directory {workdir}")
    start = time.perf_counter()
    try:
        items = fingerprint(workdir, max(1, args.jobs))
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - start
    print(f"fingerprinted {len(items)} items in {seconds:.0f} s")

    failed = [name for name in items if name.endswith("(failed)")]
    if args.record is not None:
        if failed:
            print(f"not recorded: {', '.join(failed)}", file=sys.stderr)
            return 1
        resume = items["dcgan-digits resume"]
        if not (resume["samples_equal"] and resume["metrics_equal"]):
            print("warning: the resumed dcgan-digits run differs from the straight one")
        env["seconds"] = f"{seconds:.0f}"
        record = {"environment": env, "items": items}
        args.record.write_text(json.dumps(record, indent=2) + "\n")
        print(f"recorded to {args.record}")
        return 0

    assert recorded is not None
    for key in ("python", "torch", "numpy", "machine"):
        if recorded["environment"].get(key) != env[key]:
            print(
                f"note: recorded with {key} {recorded['environment'].get(key)}, now {env[key]};"
                " numbers may differ for that reason alone"
            )
    different = compare(recorded["items"], items)
    print(f"{different} of {len(recorded['items'])} items differ" if different else "all same")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
