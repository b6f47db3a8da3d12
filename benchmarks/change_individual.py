"""Reference rows for the change family's individual scores: what leaving items as they
were, applying everyone the average change, and the operator itself score on the held-out
pairs of digits-change (``individual_error``, ``calibration_error``, ``calibration_rank``,
see gankit.metrics.change). A trained model's row is read next to these.

    PYTHONPATH=src python benchmarks/change_individual.py
"""

from __future__ import annotations

from gankit.data import load_dataset
from gankit.metrics.change import (
    AverageChange,
    IdentityChange,
    OperatorChange,
    individual_scores,
)


def main() -> None:
    columns = ("operator", "model", "pairs", "individual_error ↓", "calibration_error ↓",
               "calibration_rank ↑")  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    for operator in ("thicken", "fade"):
        bundle = load_dataset("digits-change", operator=operator)
        later = bundle.domain_b
        earlier = bundle.held_out.tensors[0][later.extra["source_index"]["test"]]
        pairs, m = later.held_out.tensors[0], later.extra["magnitude"]["test"]
        op = bundle.extra["change"]
        models = (("identity", IdentityChange()), ("average change", AverageChange(op, earlier)),
                  ("the operator itself", OperatorChange(op)))  # fmt: skip
        for name, model in models:
            s = individual_scores(model, earlier, pairs, m)
            print(f"| {operator} | {name} | {len(m)} | {s['individual_error']:.3f} | "
                  f"{s['calibration_error']:.3f} | {s['calibration_rank']:.3f} |")  # fmt: skip
    print("\ncommand: PYTHONPATH=src python benchmarks/change_individual.py")


if __name__ == "__main__":
    main()
