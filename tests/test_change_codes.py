"""Several codes for the change family: mixed operators, change_cat, operator_accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import one_line_error
from gankit.data import load_dataset
from gankit.data.change import IMAGE_OPERATORS
from gankit.errors import GankitError
from gankit.metrics.change_codes import matched_accuracy, operator_scores
from gankit.nn import torch_threads
from gankit.registry import create_model


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the networks are tiny, and on a shared CPU more threads wait."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def mixed():
    return load_dataset("digits-change-mixed")


def held_out_pairs(bundle):
    """(earlier, its own later item, operator index, magnitude) of the test split."""
    later = bundle.domain_b
    earlier = bundle.held_out.tensors[0][later.extra["source_index"]["test"]]
    extra = later.extra
    return (
        earlier,
        later.held_out.tensors[0],
        extra["operator_index"]["test"],
        extra["magnitude"]["test"],
    )


# --------------------------------------------------------------------------- data
def test_mixed_data_keeps_the_operator_out_of_batches(mixed):
    """Batches carry images and labels only; the operator, m and the pairing live in
    domain_b.extra, and each later item is its operator's change of its earlier one."""
    model = create_model("change_cat", data_shape=(1, 8, 8), width=8, n_layers=1)
    datasets = model.training_data(mixed)
    index = mixed.domain_b.extra["operator_index"]["train"]
    for dataset in datasets.values():
        for tensor in dataset.tensors:
            assert tensor.dtype != index.dtype or not torch.equal(tensor, index)
            assert tensor.shape[1:] in ((), (1, 8, 8))  # items or class labels, nothing else
    labels = mixed.domain_b.train.tensors[1]
    assert not torch.equal(labels, index)
    assert 0.4 < float(index.float().mean()) < 0.6  # about half of each
    assert mixed.domain_b.extra["operators"] == ("thicken", "fade")
    earlier, later, j, m = held_out_pairs(mixed)
    for k, name in enumerate(mixed.domain_b.extra["operators"]):
        chosen = j == k
        made = IMAGE_OPERATORS[name].apply(earlier[chosen], m[chosen]).clamp(-1.0, 1.0)
        assert torch.allclose(made, later[chosen], atol=1e-6), name
    again = load_dataset("digits-change-mixed")
    assert torch.equal(again.domain_b.extra["operator_index"]["train"], index)


def test_bad_mixed_options_are_one_line_errors():
    for operators, words in (("thicken", "at least two"), ("thicken,blur", "unknown operator")):
        with pytest.raises(GankitError, match=words):
            load_dataset("digits-change-mixed", operators=operators)
    bundle = load_dataset("digits-change-mixed", operators="fade,rotate,thicken")
    assert bundle.domain_b.extra["operators"] == ("fade", "rotate", "thicken")
    with pytest.raises(GankitError, match="no one operator"):
        bundle.extra["change"].apply(bundle.train.tensors[0][:2], torch.zeros(2))


def test_a_bad_operator_list_ends_in_one_line_on_the_cli(tmp_path):
    from conftest import cli

    result = cli("train", "change-mixed", "--set", "data.operators=thicken", "--set",
                 "train.steps=1", "--runs-dir", tmp_path)  # fmt: skip
    one_line_error(result, "at least two")


# --------------------------------------------------------------------------- matching
def test_hungarian_accuracy_by_hand():
    """Found 0 0 1 1 1 2 against true 1 1 0 0 2 2: the best one-to-one matching is
    0->1, 1->0, 2->2, agreeing on 2 + 2 + 1 = 5 of 6 (confusion rows found, columns
    true: [[0,2,0],[2,0,1],[0,0,1]])."""
    found = torch.tensor([0, 0, 1, 1, 1, 2])
    truth = torch.tensor([1, 1, 0, 0, 2, 2])
    agree, found_for = matched_accuracy(found, truth, 3, 3)
    assert agree == 5
    assert found_for == [1, 0, 2]
    # fewer codes than operators: operator 1 is unmatched and gets the code it meets most
    agree, found_for = matched_accuracy(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 1, 2]),
                                        2, 3)  # fmt: skip
    assert (agree, found_for) == (3, [0, 0, 1])


# --------------------------------------------------------------------------- the model
def test_change_cat_trains_and_reads_both_codes():
    """One step moves G, D and Q and stays finite; G(x, c) keeps working (the default
    kind); different kinds give different outputs; Q gives one amount and K logits."""
    model = create_model("change_cat", data_shape=(1, 8, 8), width=8, n_layers=1, n_kinds=3)
    model.optimizers = model.configure_optimizers()
    before = {name: [p.detach().clone() for p in getattr(model, name).parameters()]
              for name in ("D", "G", "Q")}  # fmt: skip
    batch = {"x": torch.rand(4, 1, 8, 8) * 2 - 1, "x_b": torch.rand(4, 1, 8, 8) * 2 - 1}
    logged = model.train_step(batch, 0)
    assert all(np.isfinite(value) for value in logged.values()), logged
    assert "kind" in logged
    for name, params in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(params, getattr(model, name).parameters(),
                                                          strict=True)), name  # fmt: skip
    x = batch["x"]
    assert torch.equal(model.change(x, 0.5), model.change_kind(x, 0, 0.5))
    assert not torch.equal(model.change_kind(x, 1, 0.5), model.change_kind(x, 2, 0.5))
    amount, logits = model.read_codes(x, model.change(x, 0.5))
    assert amount.shape == (4,) and logits.shape == (4, 3)
    with pytest.raises(GankitError, match="n_kinds"):
        create_model("change_cat", data_shape=(1, 8, 8), n_kinds=1)


@pytest.mark.slow  # gankit eval fits the class judge of both periods (tens of seconds)
def test_change_cat_trains_and_evaluates_on_mixed_digits(tmp_path, evaluator_cache):
    """A few steps through the shared trainer and gankit eval: the scores of mixed data
    appear, with operator_accuracy's floor of 1."""
    import json

    import gankit
    from conftest import cli

    config = {
        "name": "mixed",
        "model": {"name": "change_cat", "width": 8, "n_layers": 1},
        "data": {"name": "digits-change-mixed"},
        "train": {"steps": 3, "batch_size": 16, "log_every": 1, "sample_every": 100,
                  "ckpt_every": 3, "progress": False, "threads": 1},
    }  # fmt: skip
    run_dir = gankit.train(config, runs_dir=tmp_path).run_dir
    result = cli("eval", run_dir, "--n", "60")
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "eval.json").read_text())
    for key in ("operator_accuracy", "operator_individual_error", "kind_error",
                "individual_error", "control"):  # fmt: skip
        assert key in report["scores"], key
    assert report["floor"]["operator_accuracy"] == 1.0


# --------------------------------------------------------------------------- the metric
class TrueOperators:
    """A reference: kind k applies the data's k-th operator, ``op_k(x, c)``."""

    n_kinds = 2

    def __init__(self, names) -> None:
        self.operators = [IMAGE_OPERATORS[name] for name in names]

    def change_kind(self, x, kind, amount, net=None):
        k = torch.as_tensor(kind).expand(len(x))
        c = torch.as_tensor(amount, dtype=x.dtype).expand(len(x))
        out = x.clone()
        for j, operator in enumerate(self.operators):
            out[k == j] = operator.apply(x[k == j], c[k == j])
        return out


def test_operator_accuracy_is_one_for_the_true_operators_and_a_coin_untrained(mixed):
    """The true operators by k (in either order: codes carry no names) find the operator
    on every pair that has a change to see (m near 0 leaves no trace: a guess, about
    1 % of pairs); an untrained change_cat and a one-code change model about 1/2."""
    pairs = held_out_pairs(mixed)
    names = mixed.domain_b.extra["operators"]
    for order in (names, names[::-1]):
        reference = operator_scores(TrueOperators(order), *pairs, 2)
        assert reference["operator_accuracy"] > 0.97, reference
        assert reference["operator_individual_error"] < 1e-6
    torch.manual_seed(0)
    untrained = operator_scores(create_model("change_cat", data_shape=(1, 8, 8)), *pairs, 2)
    assert 0.4 < untrained["operator_accuracy"] < 0.6, untrained
    assert untrained["operator_individual_error"] > 0.9
    one_code = operator_scores(create_model("change", data_shape=(1, 8, 8)), *pairs, 2)
    assert one_code["operator_accuracy"] == pytest.approx(0.5)
