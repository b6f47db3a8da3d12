"""The change family judged per individual, with its floors and baselines in one table.

For each operator, every row is scored by :func:`gankit.metrics.change.change_scores`
on the same held-out items and pairs: ``individual_error``, ``calibration_error``,
``calibration_rank``, Control and FD (see gankit.metrics.change). The rows:

- references, no training (seconds): ``identity`` (``G(x, c) = x``), ``average
  change`` (every item given the change of the mean item), ``average side`` (for an
  operator with an individual side: the base change at the mean side, ``base(x,
  m·mean k)``), ``operator`` (the operator itself, a perfect model);
- with ``--methods`` (trained on the preset, ``--steps`` each, per seed): ``untrained G``
  (the preset's model as built), ``change_noq``, ``blended CycleGAN`` (images only:
  ``x + c·(G(x) − x)``, :class:`gankit.metrics.change.BlendedTranslation`), ``change``,
  and any variant ``change:key=value,key=value`` of the model's settings (for example
  ``change:discriminator=periods``, ``change:code_scaled=true``).

    PYTHONPATH=src python benchmarks/change_individual.py
    PYTHONPATH=src python benchmarks/change_individual.py --data digits-change \\
        --operators thicken fade --steps 1500 --seeds 0 \\
        --methods "untrained G" change_noq "blended CycleGAN" change
    PYTHONPATH=src python benchmarks/change_individual.py --data series-change \\
        --operators amplitude trend --steps 1000 --seeds 0 1 2 \\
        --methods change change:discriminator=periods change:discriminator=three

Each row is also appended as a JSON line to ``--out`` (when given), so that a long
sweep that stops early keeps what it measured, and sweeps run side by side print as one
table:

    python benchmarks/change_individual.py --table A.jsonl B.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time

import yaml

from common import command_line, load_average

#: The blended baseline's translator: CycleGAN sized for 8 px digits on a CPU (as in
#: change_baselines.py), at cyclegan-digits-m's 16 images per domain per step.
CYCLEGAN = {"name": "cyclegan", "channels": 32, "n_blocks": 3, "d_channels": 32}
CYCLEGAN_BATCH = 16
PRESETS = {"digits-change": "change-digits", "series-change": "change-series"}
KEYS = ("individual_error", "calibration_error", "calibration_rank", "control", "fd")
REFERENCES = ("identity", "average change", "average side", "operator")


def references(bundle) -> dict:
    """The rows that need no training, by name."""
    from gankit.metrics.change import (
        AverageChange,
        AverageSideChange,
        IdentityChange,
        OperatorChange,
    )

    operator, items = bundle.extra["change"], bundle.held_out.tensors[0]
    rows = {
        "identity": IdentityChange(),
        "average change": AverageChange(operator, items),
        "operator": OperatorChange(operator),
    }
    if operator.side is not None:
        rows["average side"] = AverageSideChange(operator, items)
    return rows


def method_config(base: dict, method: str) -> dict:
    """The run config of a trained row: ``change_noq``, ``blended CycleGAN``, ``change``
    or ``change:key=value,...``."""
    if method == "blended CycleGAN":
        train = {**base["train"], "batch_size": CYCLEGAN_BATCH}
        return {**base, "model": dict(CYCLEGAN), "train": train}
    if method == "change_noq":  # the resolved config spells out change's info_weight
        return {**base, "model": {**base["model"], "name": "change_noq", "info_weight": 0.0}}
    name, _, settings = method.partition(":")
    model = {**base["model"], "name": name}
    for setting in filter(None, settings.split(",")):
        key, _, value = setting.partition("=")
        model[key] = yaml.safe_load(value)
    return {**base, "model": model}


def trained(method: str, base: dict, bundle, runs: str, tag: str):
    """(model, net) of one trained row; the untrained G is the preset's model as built."""
    import gankit
    from gankit.metrics.change import BlendedTranslation
    from gankit.registry import create_model

    if method == "untrained G":
        options = {k: v for k, v in base["model"].items() if k != "name"}
        return create_model(base["model"]["name"], data_shape=bundle.shape, **options), None
    result = gankit.train(method_config(base, method), name=tag, runs_dir=runs)
    if result.interrupted:
        raise KeyboardInterrupt(result.interrupted)
    run = gankit.load_run(result.run_dir)
    if method == "blended CycleGAN":
        return BlendedTranslation(run), None
    return run.model, run.sampler_net


def main() -> None:
    import torch

    from gankit.config import resolve_config
    from gankit.data import load_data
    from gankit.metrics.change import change_scores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits-change", choices=sorted(PRESETS))
    parser.add_argument("--operators", nargs="+", default=["thicken", "fade"])
    parser.add_argument("--methods", nargs="*", default=[])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--n", type=int, default=500, help="held-out items scored")
    parser.add_argument("--set", nargs="*", default=[], dest="sets", help="preset overrides")
    parser.add_argument("--out", default=None, help="append each row here as JSON")
    parser.add_argument("--table", nargs="+", default=None, help="print these rows' table")
    args = parser.parse_args()
    if args.table:
        rows: dict[tuple[str, str], list[dict]] = {}
        seen = set()
        for path in args.table:
            with open(path) as handle:
                for row in map(json.loads, handle):
                    # references do not depend on the seed: each is kept once
                    seed = None if row["method"] in REFERENCES else row["seed"]
                    # rows of one method at another budget are another row of the table
                    method = row["method"]
                    if method not in REFERENCES:
                        method = f"{method} ({row['steps']} steps)"
                    key = (row["operator"], method, seed)
                    if key not in seen:
                        seen.add(key)
                        rows.setdefault(key[:2], []).append(row)
        print_table(dict(sorted(rows.items(), key=lambda item: item[0][0])))
        return
    torch.set_num_threads(1)  # tiny networks on a shared CPU: more threads only wait
    print(f"load average {load_average()}", flush=True)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="gankit-change-") as runs:
        for operator in args.operators:
            for seed in args.seeds:
                sets = [f"data.operator={operator}", f"train.seed={seed}", "train.progress=false",
                        "train.sample_every=100000", *args.sets]  # fmt: skip
                if args.steps is not None:
                    sets += [f"train.steps={args.steps}", f"train.ckpt_every={args.steps}"]
                base = resolve_config(PRESETS[args.data], sets)
                bundle = load_data(base["data"])
                named = references(bundle) if seed == args.seeds[0] else {}
                for method in [*named, *args.methods]:
                    started = time.perf_counter()
                    if method in named:
                        model, net = named[method], None
                    else:
                        torch.manual_seed(seed)
                        tag = re.sub(r"[^A-Za-z0-9_.]+", "-", f"{operator}-{method}-{seed}")
                        model, net = trained(method, base, bundle, runs, tag)
                    scores, floor, _ = change_scores(
                        model, bundle, args.n, seed=0, train_evaluator=True, net=net
                    )
                    scores["seconds"] = time.perf_counter() - started
                    row = {"operator": operator, "method": method, "seed": seed, **scores}
                    row.update(floor_fd=floor.get("fd"), steps=base["train"]["steps"])
                    rows.setdefault((operator, method), []).append(row)
                    shown = ", ".join(f"{k} {scores[k]:.3f}" for k in KEYS if k in scores)
                    shown += f", fd_before {scores['fd_before']:.3f}, {scores['seconds']:.0f} s"
                    print(f"{operator} {method} seed {seed}: {shown}", flush=True)
                    if args.out:
                        with open(args.out, "a") as handle:
                            handle.write(json.dumps(row) + "\n")
    print()
    print_table(rows)
    print(command_line())


def print_table(rows: dict[tuple[str, str], list[dict]]) -> None:
    """Markdown: one row per operator and method, mean ± sd over seeds."""

    def cell(runs_: list[dict], key: str) -> str:
        values = [r[key] for r in runs_ if r.get(key) is not None]
        if not values:
            return "-"
        spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        return f"{statistics.fmean(values):.3f}{spread}"

    print("| operator | model | individual_error ↓ | calibration_error ↓ | calibration_rank ↑ "
          "| Control ↑ | FD ↓ (untranslated; floor) | seeds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (operator, method), runs_ in rows.items():
        first = runs_[0]
        fd = f"{cell(runs_, 'fd')} ({first['fd_before']:.3f}; {first['floor_fd']:.3f})"
        cells = " | ".join(cell(runs_, key) for key in KEYS[:4])
        print(f"| {operator} | {method} | {cells} | {fd} | {len(runs_)} |")


if __name__ == "__main__":
    main()
