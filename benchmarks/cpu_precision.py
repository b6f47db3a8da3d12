"""Steps a second in fp32 and in bfloat16 autocast on this CPU, side by side in one run.

bfloat16 pays on a CPU only where its cores multiply in bfloat16 (Intel AMX or
AVX512-BF16; the script prints which of these flags the CPU has). Elsewhere it is
emulated and slower. Rounds alternate fp32 / bf16 for each preset; each round trains
``--steps`` steps through ``gankit.train`` and times the steps between the first and last
log lines (start-up and the final checkpoint left out). Medians and the ratio are
printed, with the whole command's wall time for one run of each beside them (what a
user waits for, start-up included).

    python benchmarks/cpu_precision.py                       # infogan-fashion-10min, 3 rounds
    python benchmarks/cpu_precision.py --presets gan-grid infogan-fashion-10min --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from common import command_line, gankit_steps_per_second, load_average, machine_line, spread

FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            words = set(handle.read().split())
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    return ", ".join(flag for flag in FLAGS if flag in words) or "none of " + ", ".join(FLAGS)


def whole_command(preset: str, precision: str, steps: int, runs_dir: str) -> float:
    """Seconds of ``gankit train`` as a user runs it, interpreter start-up included."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gankit", "train", preset, "--runs-dir", runs_dir,
         "--name", f"whole-{preset}-{precision}", "--overwrite", "--no-progress",
         "--set", f"train.steps={steps}", "--set", "train.time_limit=null",
         "--set", f"train.precision={precision}"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["infogan-fashion-10min"])
    parser.add_argument("--steps", type=int, default=600, help="steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(machine_line())
    print(f"bfloat16 units of this CPU: {cpu_flags()}")
    with tempfile.TemporaryDirectory() as runs_dir:
        for preset in args.presets:
            rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
            for r in range(args.rounds):
                for precision in rates:
                    settings = {"train.precision": precision, "train.time_limit": None}
                    name = f"{preset}-{precision}-{r}"
                    rate = gankit_steps_per_second(preset, settings, args.steps, runs_dir, name)
                    rates[precision].append(rate)
            whole = {p: whole_command(preset, p, args.steps, runs_dir) for p in rates}
            ratio = statistics.median(rates["bf16"]) / statistics.median(rates["fp32"])
            print(
                f"{preset}: fp32 {spread(rates['fp32'], 1)} steps/s, "
                f"bf16 {spread(rates['bf16'], 1)} steps/s: bf16 makes {ratio:.2f} times "
                f"the steps; the whole `gankit train` of {args.steps} steps "
                f"{whole['fp32']:.1f} s (fp32) and {whole['bf16']:.1f} s (bf16)"
            )
    print(f"load average after: {load_average()}")
    print(command_line())


if __name__ == "__main__":
    main()
