"""Where a change run's individual error comes from, on the data's hidden pairs.

``gankit eval`` gives one number, ``individual_error`` = Σ‖G(x, m) − op(x, m)‖₁ /
Σ‖x − op(x, m)‖₁ over held-out items with their true m. This script splits it, for a
trained run whose data has a known operator (``digits-change``, ``series-change``):

- **calibrated**: the same ratio with each item's best code ĉ (on the grid of codes
  that ``gankit eval``'s calibration searches) in place of m: what is left when the
  amount is read perfectly, so the rest of the error is the shape of the change, not
  its size;
- **by m**: the error of the items in each quarter of m;
- **size of the change**: Σ‖G(x, m) − x‖₁ / Σ‖op(x, m) − x‖₁ (1: G moves as much as
  the operator; below 1, less);
- **where**: the error's L1 split three ways: values the operator changes and G
  changes less in the same direction (*short*), values the operator changes and G
  passes or turns the other way (*past*), and values the operator leaves as they
  are (*untouched*);
- **direction**: the mean cosine between each item's change G(x, m) − x and its real
  change.

    gankit train change-digits --name cd-thicken
    python benchmarks/change_anatomy.py runs/cd-thicken
"""

from __future__ import annotations

import argparse

import torch

from common import command_line
from gankit.metrics.change import CALIBRATION_STEPS

N = 500  # held-out pairs, as change_individual.py scores


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 distance per item, (N,)."""
    return (a - b).abs().flatten(1).sum(dim=1)


def anatomy(model, source: torch.Tensor, later: torch.Tensor, m: torch.Tensor, net=None) -> dict:
    """The split of the module docstring for earlier items, their own later items and
    the true magnitudes."""
    out = model.change(source, m, net).clamp(-1.0, 1.0)
    real = l1(source, later)
    rows = {"individual_error": float(l1(out, later).sum() / real.sum())}
    gaps = torch.stack(
        [l1(model.change(source, float(c), net).clamp(-1.0, 1.0), later)
         for c in torch.linspace(0.0, 1.0, CALIBRATION_STEPS + 1)], dim=1,
    )  # fmt: skip
    rows["calibrated"] = float(gaps.min(dim=1).values.sum() / real.sum())
    for low in (0.0, 0.25, 0.5, 0.75):
        part = (m >= low) & (m < low + 0.25)
        rows[f"m in [{low:.2f}, {low + 0.25:.2f})"] = float(
            l1(out[part], later[part]).sum() / real[part].sum()
        )
    rows["size of the change"] = float(l1(out, source).sum() / real.sum())
    want, got = (later - source).flatten(1), (out - source).flatten(1)
    error = (got - want).abs()
    along = torch.sign(want) * (got - want)  # < 0: short of the real change; > 0: past it
    changed = want != 0
    total = error.sum()
    rows["short"] = float(error[changed & (along < 0)].sum() / total)
    rows["past"] = float(error[changed & (along > 0)].sum() / total)
    rows["untouched"] = float(error[~changed].sum() / total)
    cosine = torch.nn.functional.cosine_similarity(got, want, dim=1, eps=1e-8)
    rows["direction (cosine)"] = float(cosine.mean())
    return rows


def main() -> None:
    import gankit
    from gankit.data import load_data
    from gankit.errors import GankitError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained change runs")
    parser.add_argument("--n", type=int, default=N, help="held-out pairs scored")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for path in args.runs:
        run = gankit.load_run(path)
        bundle = load_data(run.config["data"])
        later = bundle.domain_b
        if bundle.extra.get("change") is None or later is None or "magnitude" not in later.extra:
            raise GankitError(f"run '{path}': its data has no hidden pairs to split an error by")
        split = "test" if later.test is not None else "train"
        source = bundle.held_out.tensors[0][later.extra["source_index"][split]][: args.n]
        targets = later.held_out.tensors[0][: args.n]
        m = later.extra["magnitude"][split][: args.n]
        results[path] = anatomy(run.model, source, targets, m, run.sampler_net)
    print("| | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for key in next(iter(results.values())):
        print(f"| {key} | " + " | ".join(f"{row[key]:.3f}" for row in results.values()) + " |")
    print(command_line())


if __name__ == "__main__":
    main()
