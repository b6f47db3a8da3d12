"""Evaluation shared by two gloo ranks equals the single process's, score for score.

Each rank draws all ``n`` latents from the one seeded generator, renders and embeds its
own block of rows, and the blocks are gathered in rank order, so rank 0 scores the very
samples (and features) one process would: ``gankit.ranks``. Every test starts
processes, so all are slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

import gankit
from conftest import tiny_config
from test_distributed import free_port

pytestmark = pytest.mark.slow

WORLD = 2
#: odd, so that the ranks' blocks differ in size (the gather pads and cuts them)
N = 201
METRICS = "fd,is"  # features and class probabilities both go through the gathers


def _as_rank(rank: int, port: int) -> dict[str, int]:
    """Torchrun's environment for ``rank``; returns the rows this process renders and
    embeds, counted as it goes (the share of the work it did)."""
    from gankit.metrics.features import Evaluator
    from gankit.models.base import Model

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    rows = {"rendered": 0, "embedded": 0}
    render, features = Model.render, Evaluator.features

    def counted_render(self, latent, net=None):
        rows["rendered"] += len(next(iter(latent.values())))
        return render(self, latent, net)

    def counted_features(self, images, *args):
        rows["embedded"] += len(images)
        return features(self, images, *args)

    Model.render, Evaluator.features = counted_render, counted_features
    return rows


def _evaluate(rank: int, port: int, runs_dir: str, out: str) -> None:
    rows = _as_rank(rank, port)
    report = gankit.evaluate_run("tiny-dcgan", METRICS, n=N, seed=3, runs_dir=runs_dir)
    torch.save(
        {"scores": report.scores, "floor": report.floor, "summary": report.summary(), **rows},
        os.path.join(out, f"rank{rank}.pt"),
    )


def _train(rank: int, port: int, config: dict, runs_dir: str, out: str) -> None:
    rows = _as_rank(rank, port)
    gankit.train(config, runs_dir=runs_dir)
    torch.save(rows, os.path.join(out, f"rank{rank}.pt"))


def _digits_run(tmp_path, **train) -> dict:
    config = tiny_config("dcgan", "digits", steps=4, threads=1, ckpt_every=4, **train)
    gankit.train(config, runs_dir=tmp_path / "runs")
    return config


def test_gankit_eval_on_two_ranks_gives_the_single_process_scores(tmp_path, evaluator_cache):
    _digits_run(tmp_path)
    runs = tmp_path / "runs"
    single = gankit.evaluate_run("tiny-dcgan", METRICS, n=N, seed=3, runs_dir=runs, write=False)
    mp.spawn(_evaluate, args=(free_port(), str(runs), str(tmp_path)), nprocs=WORLD, join=True)
    rank_0, rank_1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert single.scores["fd"] > 0 and single.floor["fd"] > 0
    for key in ("fd", "is"):
        # float tolerance: the evaluator's convolutions run on other batch sizes
        assert rank_0["scores"][key] == pytest.approx(single.scores[key], rel=1e-5), key
        assert rank_0["floor"][key] == pytest.approx(single.floor[key], rel=1e-5), key
    # each rank rendered its block of the samples and embedded its block of the samples,
    # the reference and the floor: 100 and 101 rows of 201
    for rank, state in enumerate((rank_0, rank_1)):
        block = len(range(N)[rank * N // WORLD : (rank + 1) * N // WORLD])
        assert (state["rendered"], state["embedded"]) == (block, 3 * block), rank
    # rank 0 alone scored, printed and wrote eval.json
    assert rank_1["scores"] == {} and rank_1["summary"] == []
    assert any("eval.json" in line for line in rank_0["summary"])
    saved = json.loads((runs / "tiny-dcgan" / "eval.json").read_text())
    assert saved["scores"]["fd"] == rank_0["scores"]["fd"] and saved["history"] == []


def test_eval_every_on_two_ranks_logs_the_single_process_scores(tmp_path, evaluator_cache):
    """The scores logged while 2 ranks train equal those one process computes on the
    checkpoint of the same step: every rank samples from rank 0's weights and batch-norm
    statistics (broadcast before each evaluation) and scores its block."""
    from gankit.config import TrainConfig
    from gankit.data import load_data
    from gankit.tasks import get_task

    config = tiny_config(
        "dcgan", "digits", steps=4, threads=1, ckpt_every=4, eval_every=4, eval_n=N,
        eval_metrics=METRICS,
    )  # fmt: skip
    runs = tmp_path / "runs"
    mp.spawn(_train, args=(free_port(), config, str(runs), str(tmp_path)), nprocs=WORLD, join=True)
    lines = [json.loads(line) for line in (runs / "tiny-dcgan" / "metrics.jsonl").open()]
    logged = next(line for line in lines if "eval_fd" in line)
    assert logged["step"] == 4
    # rank 1 embedded its block of the reference and of the samples (101 rows each)
    assert torch.load(tmp_path / "rank1.pt", weights_only=True)["embedded"] == 2 * (N - N // 2)

    run = gankit.load_run(runs / "tiny-dcgan")
    evaluate = get_task(run.model).scores(
        run.model, load_data(run.config["data"]), TrainConfig(**run.config["train"])
    )
    single = evaluate(4, run.sampler_net)
    for key in ("fd", "is"):
        assert logged[f"eval_{key}"] == pytest.approx(single[key], rel=1e-5), key


def test_torchrun_gankit_eval_prints_once_and_writes_the_single_process_fd(
    tmp_path, evaluator_cache
):
    """The command itself under torchrun (``--n-samples``: torchrun's own parser takes
    ``--n`` for an abbreviation of its options)."""
    _digits_run(tmp_path)
    runs = tmp_path / "runs"
    single = gankit.evaluate_run("tiny-dcgan", "fd", n=N, seed=3, runs_dir=runs, write=False)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
        "2", "-m", "gankit", "eval", "tiny-dcgan", "--runs-dir", str(runs), "--metrics",
        "fd", "--n-samples", str(N), "--seed", "3",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("written to") == 1  # rank 0's report alone
    assert done.stderr.count("drawing 201 samples") == 1  # rank 0 alone says what it does
    saved = json.loads((runs / "tiny-dcgan" / "eval.json").read_text())
    assert saved["scores"]["fd"] == pytest.approx(single.scores["fd"], rel=1e-5)
