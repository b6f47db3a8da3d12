"""The change family against its baselines on digits: how well does c set the amount?

For each operator (thicken, fade) and seed, three runs on the same data and steps:

- ``change``: the family (``change-digits``);
- ``change_noq``: the same without the Q term;
- blended CycleGAN: a CycleGAN trained on the same earlier -> later domains, whose
  output is blended linearly with its input, ``x + c·(G(x) − x)``
  (:class:`gankit.metrics.change.BlendedTranslation`).

All three are scored by :func:`gankit.metrics.change.change_scores` on the same held-out
inputs and codes: control (Spearman between c and the operator's read-back), FD to the
later domain in the evaluator's features (untranslated earlier items and the real
floor alongside), class kept, identity.

    python benchmarks/change_baselines.py
    python benchmarks/change_baselines.py --operators thicken --seeds 0 1 2 --steps 2000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from common import command_line, load_average

#: The blended baseline's translator: CycleGAN sized for 8 px digits on a CPU.
CYCLEGAN = {"name": "cyclegan", "channels": 32, "n_blocks": 3, "d_channels": 32}
METHODS = ("change", "change_noq", "blended CycleGAN")
KEYS = ("control", "individual_error", "fd", "class_kept", "identity")


def main() -> None:
    import gankit
    from gankit.config import resolve_config
    from gankit.data import load_data
    from gankit.metrics.change import BlendedTranslation, change_scores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operators", nargs="+", default=["thicken", "fade"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--n", type=int, default=360)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--cyclegan-batch", type=int, default=16,
        help="images per domain in a CycleGAN step (cyclegan-digits-m's 16: a step of four "
        "networks and ten passes costs several change steps at the family's 64)",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"load average {load_average()}")
    rows: dict[tuple[str, str], list[dict]] = {}
    floors: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="gankit-change-") as runs:
        for operator in args.operators:
            for seed in args.seeds:
                sets = [f"data.operator={operator}", f"train.seed={seed}",
                        f"train.steps={args.steps}", "train.progress=false"]  # fmt: skip
                base = resolve_config("change-digits", sets)
                configs = {
                    "change": base,
                    # the resolved config spells out change's info_weight: zero it too
                    "change_noq": {
                        **base,
                        "model": {**base["model"], "name": "change_noq", "info_weight": 0.0},
                    },
                    "blended CycleGAN": {
                        **base,
                        "model": dict(CYCLEGAN),
                        "train": {**base["train"], "batch_size": args.cyclegan_batch},
                    },
                }
                configs = {k: v for k, v in configs.items() if k in args.methods}
                bundle = load_data(base["data"])
                for method, config in configs.items():
                    name = f"{operator}-{method.replace(' ', '-')}-{seed}"
                    started = time.perf_counter()
                    result = gankit.train(config, name=name, runs_dir=runs)
                    if result.interrupted:
                        raise KeyboardInterrupt(result.interrupted)
                    run = gankit.load_run(result.run_dir)
                    model = run.model if method != "blended CycleGAN" else BlendedTranslation(run)
                    net = run.sampler_net if method != "blended CycleGAN" else None
                    scores, floor, _ = change_scores(
                        model, bundle, args.n, seed=0, train_evaluator=True, net=net
                    )
                    scores["seconds"] = time.perf_counter() - started
                    rows.setdefault((operator, method), []).append(scores)
                    floors[operator] = {**floor, "fd_before": scores["fd_before"]}
                    shown = ", ".join(f"{k} {scores[k]:.3f}" for k in KEYS)
                    print(f"{operator} {method} seed {seed}: {shown}", flush=True)
    print()
    print("| operator | method | control (Spearman) | individual error | FD to later (before) "
          "| class kept | identity | seeds | time per run |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")

    def mean(runs_: list[dict], key: str) -> str:
        values = [r[key] for r in runs_]
        spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        return f"{statistics.fmean(values):.3f}{spread}"

    for (operator, method), runs_ in rows.items():
        cells = [mean(runs_, key) for key in ("control", "individual_error", "fd")]
        before = floors[operator]["fd_before"]
        print(
            f"| {operator} | {method} | {cells[0]} | {cells[1]} | {cells[2]} ({before:.1f}) "
            f"| {mean(runs_, 'class_kept')} | {mean(runs_, 'identity')} | {len(runs_)} "
            f"| {statistics.fmean(r['seconds'] for r in runs_):.0f} s |"
        )
    for operator, floor in floors.items():
        print(f"floor ({operator}): control {floor.get('control', float('nan')):.3f}, "
              f"FD {floor.get('fd', float('nan')):.2f}, "
              f"class kept {floor.get('class_kept', float('nan')):.3f}")  # fmt: skip
    print(command_line())


if __name__ == "__main__":
    main()
