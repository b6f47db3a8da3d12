"""``benchmarks/change_anatomy.py``: the split of a change model's individual error."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from gankit.data.change import digits_change
from gankit.metrics.change import IdentityChange, OperatorChange, individual_scores


@pytest.fixture
def anatomy(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    return importlib.import_module("change_anatomy").anatomy


def pairs(operator: str = "thicken", n: int = 64):
    bundle = digits_change(operator=operator)
    x = bundle.held_out.tensors[0][:n]
    m = torch.rand(n, generator=torch.Generator().manual_seed(0))
    op = bundle.extra["change"]
    return op, x, op.apply(x, m).clamp(-1.0, 1.0), m


class HalfChange(OperatorChange):
    """The operator's change at half the amount: short of it everywhere."""

    def change(self, x, amount, net=None):
        return super().change(x, torch.as_tensor(amount) * 0.5, net)


def test_the_operator_scores_no_error_and_leaving_items_scores_all_of_it_short(anatomy):
    op, x, y, m = pairs()
    perfect = anatomy(OperatorChange(op), x, y, m)
    assert perfect["individual_error"] == pytest.approx(0.0, abs=1e-6)
    assert perfect["size of the change"] == pytest.approx(1.0, abs=1e-5)
    assert perfect["direction (cosine)"] == pytest.approx(1.0, abs=1e-5)
    still = anatomy(IdentityChange(), x, y, m)
    assert still["individual_error"] == pytest.approx(1.0)
    assert still["size of the change"] == 0.0 and still["short"] == pytest.approx(1.0)


def test_half_the_change_is_short_and_the_calibrated_error_finds_the_amount(anatomy):
    op, x, y, m = pairs()
    half = anatomy(HalfChange(op), x, y, m)
    # the same number as gankit eval's individual_error
    assert half["individual_error"] == pytest.approx(
        individual_scores(HalfChange(op), x, y, m)["individual_error"]
    )
    assert half["short"] > 0.95 and half["past"] < 0.05
    assert 0.4 < half["size of the change"] < 0.6
    # twice the code gives each item its own change where 2m <= 1: far less error left
    assert half["calibrated"] < 0.6 * half["individual_error"]
