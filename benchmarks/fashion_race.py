"""The 10-minute race: Inception-FID of the Fashion-MNIST presets after a fixed wall-time
budget of training on this machine.

Each preset trains with ``train.time_limit`` (10 minutes by default) and ``train.steps``
raised so that the clock, not the step count, ends the run (unless ``--keep-steps``:
then a preset whose schedule is laid out over its own steps stops at whichever comes
first). Then 2,000 samples are scored against the first 2,000 test images with the TF
FID InceptionV3 (``gankit fid``), and with gankit's evaluator (``gankit eval``, FD).
The floor is the first 2,000 training images against the same test images.

Every row carries the machine's speed measured just before its training: a probe of
``infogan-fashion`` at its defaults (fp32, the machine's threads) for 400 steps, in steps
a second (``--no-probe`` leaves it out). Races from different days compare through it.

Run it alone: a second job on the cores makes every step slower and the race unfair.
Scoring needs no quiet machine: ``--train-only`` then ``--score-only`` lets the
InceptionV3 features (0.12-0.25 s an image on 2 cores, by CPU) be computed while other
work runs.

    python benchmarks/fashion_race.py
    python benchmarks/fashion_race.py --presets infogan-fashion --time-limit 10m
    python benchmarks/fashion_race.py --train-only && python benchmarks/fashion_race.py --score-only
    python benchmarks/fashion_race.py --presets infogan-fashion-narrow --set train.batch_size=16 \
        --tag b16 --train-only      # a variant: its runs are named PRESET-TAG-race-seedS
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import command_line, gankit_steps_per_second, load_average, machine_line

PRESETS = (
    "dcgan-fashion",
    "infogan-fashion",
    "infogan-fashion-ema",
    "infogan-fashion-narrow",
    "infogan-fashion-10min",
)
N = 2000
REFERENCE = "data:fashion-mnist:test"
PROBE = "infogan-fashion"  # the speed probe: a fixed workload, run before each race
PROBE_STEPS = 400
PROBES = "race-probes.jsonl"  # in --runs-dir: one line per raced run, for --score-only


def probe_speed(runs_dir: str) -> float:
    """Steps a second of the probe workload on this machine, now."""
    return gankit_steps_per_second(PROBE, {}, PROBE_STEPS, runs_dir, "speed-probe")


def read_probes(runs_dir: str) -> dict[str, float]:
    path = Path(runs_dir) / PROBES
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row["run"]: row["probe"] for row in rows}


def main() -> None:
    import gankit
    from gankit.api import fid
    from gankit.config import parse_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--time-limit", default="10m")
    parser.add_argument("--keep-steps", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="runs-race")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override for every raced preset (repeatable)",
    )
    parser.add_argument("--tag", default="", help="names the variant that --set makes")
    parser.add_argument("--n", type=int, default=N, help="samples scored (2,000 in the race)")
    parser.add_argument("--fid-inf", action="store_true", help="also FID∞ (Chong & Forsyth)")
    parser.add_argument("--no-probe", action="store_true", help="skip the speed probe")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--train-only", action="store_true", help="train, score later")
    which.add_argument("--score-only", action="store_true", help="score runs trained before")
    args = parser.parse_args()

    print(machine_line())
    trained = {}
    probes = read_probes(args.runs_dir)
    for preset in args.presets:
        name = f"{preset}{'-' + args.tag if args.tag else ''}-race-seed{args.seed}"
        label = " ".join([preset, *args.set])
        if args.score_only:
            run = gankit.load_run(Path(args.runs_dir) / name)
            seconds = json.loads((run.path / "metrics.jsonl").read_text().splitlines()[-1])["time"]
            trained[label] = (run.path, run.step, seconds, "see the training log", probes.get(name))
            continue
        overrides = parse_overrides(args.set)  # values read as YAML, as `gankit train --set`
        overrides.update({"train.time_limit": args.time_limit, "train.seed": args.seed,
                          "train.progress": False})  # fmt: skip
        if not args.keep_steps:
            overrides["train.steps"] = 1_000_000
        load = load_average()
        if not args.no_probe:
            probes[name] = probe_speed(args.runs_dir)
            with (Path(args.runs_dir) / PROBES).open("a") as handle:
                handle.write(json.dumps({"run": name, "probe": probes[name]}) + "\n")
            print(f"speed probe: {PROBE} {probes[name]:.1f} steps/s")
        result = gankit.train(preset, overrides, name=name, runs_dir=args.runs_dir, overwrite=True)
        if result.interrupted:  # Ctrl-C or SIGTERM: stop the script, not just this run
            raise KeyboardInterrupt(result.interrupted)
        trained[label] = (Path(args.runs_dir) / name, result.step, result.seconds, load,
                          probes.get(name))  # fmt: skip
        print(f"{label}: {result.step} steps in {result.seconds:.0f} s (load before {load})")
    if args.train_only:
        print(command_line())
        return
    n = args.n
    floor, _, _ = fid("data:fashion-mnist:train", REFERENCE, n=n, infinity=args.fid_inf)
    print(f"floor: first {n} train vs first {n} test images: Inception-FID {floor['fid']:.2f}")
    rows = []
    for preset, (run, steps, seconds, load, probe) in trained.items():
        started = time.perf_counter()
        scores, _, _ = fid(str(run), REFERENCE, n=n, seed=args.seed, infinity=args.fid_inf)
        report = gankit.evaluate_run(run, "fd", n, runs_dir=args.runs_dir, train_evaluator=True)
        rows.append((preset, steps, probe, scores, report))
        print(
            f"{preset}: {steps} steps in {seconds:.0f} s (load before {load}), "
            f"Inception-FID {scores['fid']:.2f}, evaluator FD {report.scores['fd']:.2f} "
            f"(floor {report.floor['fd']:.2f}); scored in {time.perf_counter() - started:.0f} s"
        )
    print()

    def inf(scores: dict) -> str:  # the FID∞ column, where asked for
        return f" {scores['fid_inf']:.1f} |" if args.fid_inf else ""

    print("| preset | probe, steps/s | steps in " + args.time_limit + f" | Inception-FID (n={n}) |"
          + (" FID∞ |" if args.fid_inf else "")
          + " KID | precision | recall | evaluator FD (floor) |")  # fmt: skip
    print("|---|---|---|---|---|" + ("---|" if args.fid_inf else "") + "---|---|---|")
    print(f"| real train (floor) | | | {floor['fid']:.1f} |{inf(floor)} {floor['kid']:.4f} | "
          f"{floor['precision']:.2f} | {floor['recall']:.2f} | |")  # fmt: skip
    for preset, steps, probe, scores, report in rows:
        speed = "—" if probe is None else f"{probe:.1f}"
        print(
            f"| {preset} | {speed} | {steps} | {scores['fid']:.1f} |{inf(scores)} "
            f"{scores['kid']:.4f} | "
            f"{scores['precision']:.2f} | {scores['recall']:.2f} | "
            f"{report.scores['fd']:.2f} ({report.floor['fd']:.2f}) |"
        )
    print(command_line())


if __name__ == "__main__":
    main()
