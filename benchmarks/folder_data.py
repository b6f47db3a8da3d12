"""Training from a ``folder:`` dataset of 100,000 images: memory and images per second.

The script writes 100,000 small grayscale PNGs in ten class subfolders (Fashion-MNIST
images, mirrored for the 40,000 past its 60,000; random images if Fashion-MNIST is
absent), once, under ``--root`` (reused when present). It then trains ``dcgan-fashion``
on ``folder:ROOT`` with 0, 1 and 2 DataLoader workers, in interleaved rounds, each
training in its own process so that the memory figures are that run's alone.

Memory is sampled every 0.1 s over the training process and all its children (the
loader workers): the peak of the summed RSS (shared pages counted once per process,
an upper bound) and of the summed PSS (shared pages split between the processes that
share them, the fair total). A folder this size is above ``folder:``'s
``in_memory_limit`` (20,000), so it streams: each worker decodes the files of its
batch and nothing holds the whole folder.

    python benchmarks/folder_data.py                   # 300 steps x 3 worker counts x 2 rounds
    python benchmarks/folder_data.py --steps 100 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import command_line, load_average, machine_line, spread

N_IMAGES = 100_000
N_CLASSES = 10


def write_folder(root: Path) -> float:
    """Write the PNGs (skipped when all are there); returns the seconds it took."""
    import numpy as np
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return 0.0
    started = time.perf_counter()
    try:
        import gankit

        images = gankit.load_dataset("fashion-mnist").train
        pixels = ((images.tensors[0][:, 0] + 1) * 127.5).round().byte().numpy()
        labels = images.tensors[1].numpy()
    except Exception:  # no Fashion-MNIST here: random images make the same load
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (60_000, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, N_CLASSES, 60_000)
    for label in range(N_CLASSES):
        (root / f"class_{label}").mkdir(parents=True, exist_ok=True)
    for i in range(N_IMAGES):
        source = i % len(pixels)
        image = pixels[source] if i < len(pixels) else pixels[source][:, ::-1]
        path = root / f"class_{labels[source]}" / f"{i:06d}.png"
        # compress_level 1: the files stay small and writing 100,000 of them stays fast
        Image.fromarray(np.ascontiguousarray(image)).save(path, compress_level=1)
    done.touch()
    return time.perf_counter() - started


def memory_of_tree(pid: int) -> tuple[int, int]:
    """(summed RSS, summed PSS) in bytes of ``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    rss = pss = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        stack += children.get(current, [])
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue  # a worker that just exited
    return rss, pss


def child(
    root: str, workers: int, steps: int, batch_size: int, threads: int | None, runs_dir: str
) -> None:
    """One training run; prints its images per second as JSON on the last line."""
    import gankit
    from gankit.config import resolve_config

    config = resolve_config("dcgan-fashion")
    config["data"] = {"name": f"folder:{root}", "resolution": 28, "channels": 1}
    overrides = {
        "train.steps": steps,
        "train.batch_size": batch_size,
        "train.num_workers": workers,
        "train.log_every": max(1, steps // 10),
        "train.sample_every": 10 * steps,
        "train.ckpt_every": 10 * steps,
        "train.ema_decay": None,
        "train.threads": threads,
    }
    result = gankit.train(
        config, overrides, name=f"w{workers}", runs_dir=runs_dir, progress=False, overwrite=True
    )
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    first, last = rows[0], rows[-1]
    images_per_second = batch_size * (last["step"] - first["step"]) / (last["time"] - first["time"])
    print(json.dumps({"images_per_second": images_per_second}))


def measure(root: Path, workers: int, args: argparse.Namespace, runs_dir: str) -> dict:
    command = [
        sys.executable, __file__, "--child", "--root", str(root), "--workers", str(workers),
        "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--runs-dir", runs_dir,
    ]  # fmt: skip
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0
    while process.poll() is None:
        rss, pss = memory_of_tree(process.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.1)
    out = process.stdout.read()
    if process.returncode != 0:
        sys.exit(f"folder_data: the run with {workers} workers failed (exit {process.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_rss": peak_rss, "peak_pss": peak_pss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(), "gankit-100k"))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="default: gankit's choice")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.root, args.workers[0], args.steps, args.batch_size, args.threads, args.runs_dir)
        return

    root = Path(args.root)
    seconds = write_folder(root)
    size = sum(f.stat().st_size for f in root.rglob("*.png"))
    print(machine_line())
    print(
        f"{root}: {N_IMAGES:,} PNGs, {size / 1e6:.0f} MB on disk"
        + (f", written in {seconds:.0f} s" if seconds else ", reused")
    )
    print(
        f"dcgan-fashion on folder:{root}, batch {args.batch_size}, {args.steps} steps per run, "
        f"{args.rounds} interleaved rounds, torch threads: {args.threads or 'gankit default'}"
    )
    results: dict[int, list[dict]] = {w: [] for w in args.workers}
    with tempfile.TemporaryDirectory() as runs_dir:
        for _ in range(args.rounds):
            for workers in args.workers:
                results[workers].append(measure(root, workers, args, runs_dir))
                print(f"  done {workers} workers (load {load_average()})")
    print()
    print(f"load average after the runs: {load_average()}")
    print()
    print("| loader workers | images/s | peak RSS, process tree | peak PSS, process tree |")
    print("|---|---|---|---|")
    for workers, runs in results.items():
        rate = [r["images_per_second"] for r in runs]
        rss = max(r["peak_rss"] for r in runs) / 2**20
        pss = max(r["peak_pss"] for r in runs) / 2**20
        print(f"| {workers} | {spread(rate, 0)} | {rss:.0f} MiB | {pss:.0f} MiB |")
    print()
    print("images/s: median (min–max) over rounds; memory: the largest peak over rounds")
    print(command_line())


if __name__ == "__main__":
    main()
