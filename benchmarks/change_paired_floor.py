"""How low the change family's G can take individual_error when it is shown the answer.

The change family learns from unpaired periods. This check trains the same generator
(:class:`gankit.models.change.ChangeGenerator`, the preset's width and depth) with the
hidden pairs as an L1 target, ``‖G(x, m) − op(x, m)‖₁`` with ``m ~ U(0, 1)`` drawn
afresh each batch, on the training split, and scores ``individual_error`` on held-out
items. It is a bound on what the network can express at the budget, not a model gankit
offers: a user's own periods have no pairs. Where the unpaired model scores far above
this floor, the objective and not the network is what limits it.

    python benchmarks/change_paired_floor.py                       # thicken, 3000 steps
    python benchmarks/change_paired_floor.py --operator fade --width 64 --steps 1000
"""

from __future__ import annotations

import argparse

import torch

from common import command_line

N = 500  # held-out items scored, as change_individual.py


def main() -> None:
    from gankit.data.change import digits_change
    from gankit.metrics.change import individual_scores
    from gankit.models.change import ChangeGenerator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operator", default="thicken", help="a digits-change operator")
    parser.add_argument("--width", type=int, default=32, help="change-digits: 32")
    parser.add_argument("--layers", type=int, default=3, help="change-digits: 3")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=5e-4, help="change-digits: 5e-4")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    bundle = digits_change(operator=args.operator)
    operator = bundle.extra["change"]
    train, held_out = bundle.train.tensors[0], bundle.held_out.tensors[0][:N]
    generator = ChangeGenerator(bundle.shape, args.width, args.layers)
    optimizer = torch.optim.Adam(generator.parameters(), args.lr, betas=(0.5, 0.999))
    for _ in range(args.steps):
        x = train[torch.randint(len(train), (64,))]
        m = torch.rand(len(x))
        loss = (generator(x, m) - operator.apply(x, m).clamp(-1.0, 1.0)).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    class Paired:  # the change interface that individual_scores reads
        @torch.no_grad()
        def change(self, x, amount, net=None):
            c = torch.as_tensor(amount, dtype=x.dtype).expand(len(x))
            return generator.eval()(x, c)

    m = torch.rand(len(held_out), generator=torch.Generator().manual_seed(args.seed + 1))
    scores = individual_scores(Paired(), held_out, operator.apply(held_out, m).clamp(-1, 1), m)
    print(
        f"{args.operator}, G {args.layers} x {args.width}, {args.steps} steps, paired L1: "
        + ", ".join(f"{key} {value:.3f}" for key, value in scores.items())
    )
    print(command_line())


if __name__ == "__main__":
    main()
