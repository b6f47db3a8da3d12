"""Toy presets: gankit against the naive loop a first tutorial teaches.

The naive loop (``plain_loops.LoaderBatches`` with ``bce_gan_loop`` or
``wgan_gp_loop``) has the same MLPs, batch, optimizer and update rule as the preset.
It differs where beginners' loops usually differ: the batches come from a shuffling
``DataLoader`` over a ``TensorDataset`` (which indexes and collates one row at a
time), torch keeps its default threads (one per core), and the losses are read with
``.item()`` every step. gankit runs ``gankit.train`` on the preset with its defaults:
in-memory batching by index, and one thread for toy data (``default_threads``).

Rounds alternate gankit / naive / naive on gankit's thread count; the ratios are
gankit's steps per second over each naive loop's in the same round, median and spread
over the rounds. The third loop separates the two causes: its ratio is what the data
path alone (DataLoader against indexing) costs, and the rest is thread contention.

    python benchmarks/toy_naive.py
    python benchmarks/toy_naive.py --presets gan-ring --rounds 3 --steps 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

from common import command_line, gankit_steps_per_second, load_average, machine_line, spread
from plain_loops import bce_gan_loop, count_parameters, mlp, wgan_gp_loop

# preset -> (batch, G/D hidden width, D slope, the naive loop's update rule)
TOYS = {
    "gan-ring": (256, 256, 0.2, "gan"),
    "gan-grid": (1024, 256, 0.2, "gan"),
    "wgan-gp-grid": (256, 512, 0.0, "wgan-gp"),
}


def naive_steps_per_second(preset: str, data: torch.Tensor, steps: int) -> float:
    batch, hidden, slope, rule = TOYS[preset]
    G, D = mlp(2, hidden, 3, 2, 0.0), mlp(2, hidden, 3, 1, slope)
    if rule == "gan":
        seconds = bce_gan_loop(
            G, D, data, batch, steps, latent=2, lr=1e-3, betas=(0.5, 0.999), loader=True
        )
    else:
        seconds = wgan_gp_loop(G, D, data, batch, steps, latent=2, gp_weight=0.1, loader=True)
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(TOYS), choices=list(TOYS))
    parser.add_argument("--steps", type=int, default=300, help="GAN steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import gankit
    from gankit.config import resolve_config
    from gankit.data import load_data
    from gankit.training.runtime import default_threads

    print(machine_line())
    print(
        f"{args.rounds} interleaved rounds; naive: DataLoader(shuffle=True), "
        f"{torch.get_num_threads()} torch threads (the default), .item() every step"
    )
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for preset in args.presets:
            batch, hidden, slope, rule = TOYS[preset]
            bundle = load_data(resolve_config(preset)["data"])
            data = bundle.train.tensors[0]
            model = gankit.create_model(
                resolve_config(preset)["model"]["name"],
                data_shape=(2,),
                **{k: v for k, v in resolve_config(preset)["model"].items() if k != "name"},
            )
            theirs = (mlp(2, hidden, 3, 2, 0.0), mlp(2, hidden, 3, 1, slope))
            if [count_parameters(n) for n in (model.G, model.D)] != [
                count_parameters(n) for n in theirs
            ]:
                raise SystemExit(f"toy_naive: the naive networks of {preset} do not match")
            # a WGAN-GP step holds 5 critic steps: a fifth of the steps for similar time
            steps = args.steps // 5 if rule == "wgan-gp" else args.steps
            naive_steps_per_second(preset, data, 3)  # warm-up
            ours, naive, naive_same_threads = [], [], []
            default = torch.get_num_threads()
            for r in range(args.rounds):
                ours.append(gankit_steps_per_second(preset, {}, steps, runs_dir, f"{preset}-{r}"))
                naive.append(naive_steps_per_second(preset, data, steps))
                torch.set_num_threads(default_threads(bundle.kind))
                naive_same_threads.append(naive_steps_per_second(preset, data, steps))
                torch.set_num_threads(default)
            rows.append((preset, batch, ours, naive, naive_same_threads))
            print(f"  done {preset} (load {load_average()})")
    print()
    print(f"load average after the runs: {load_average()}")
    print()
    print(
        "| preset | batch | gankit steps/s | naive steps/s | speed-up gankit/naive "
        "| naive on gankit's threads, steps/s | speed-up from the data path alone |"
    )
    print("|---|---|---|---|---|---|---|")
    for preset, batch, ours, naive, naive_same_threads in rows:
        ratios = [a / b for a, b in zip(ours, naive)]
        data_path = [a / b for a, b in zip(ours, naive_same_threads)]
        print(
            f"| {preset} | {batch} | {statistics.median(ours):.1f} "
            f"| {statistics.median(naive):.1f} | {spread(ratios, 1)} "
            f"| {statistics.median(naive_same_threads):.1f} | {spread(data_path, 1)} |"
        )
    print()
    print("speed-up: median (min–max) over rounds of gankit / naive in the same round")
    print(command_line())


if __name__ == "__main__":
    main()
