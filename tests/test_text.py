"""Language models (task ``sequence``): text data, sampling math, metrics, learning,
``gankit generate`` and ``gankit eval`` on a text run. Every corpus is written by the
test, except the embedded default one."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gankit
from gankit.cli import app
from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.metrics.text import held_out_bits, unigram_log_probs, word_share
from gankit.models.text import entropy_bits, temperature_probs
from gankit.registry import create_model

cli = CliRunner()


def sentences(n: int, seed: int = 0) -> str:
    """A tiny, very regular English: n sentences from a small grammar."""
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "the old man", "my sister", "a bird"]
    verbs = ["sat on", "looked at", "ran to", "slept by", "sang to"]
    objects = ["the mat.", "a tree.", "the river.", "the house.", "my garden."]
    return " ".join(
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}" for _ in range(n)
    )


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(sentences(600))
    return path


# --------------------------------------------------------------------------- data
def test_windows_are_next_token_pairs_split_by_position(corpus):
    text = corpus.read_text()
    bundle = load_dataset(f"text:{corpus}", window=16, test_fraction=0.2)
    assert bundle.kind == "text" and bundle.shape == (16,)
    assert bundle.class_names == sorted(set(text)) and bundle.num_classes == len(set(text))
    x, y = bundle.train.tensors
    assert x.dtype == y.dtype == torch.int64 and x.shape[1] == 16
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    assert len(bundle.train) == len(bundle.extra["train_ids"]) - 16  # stride 1
    # the held-out split is the end of the text, and no training window reaches into it
    train_ids, test_ids = bundle.extra["train_ids"], bundle.extra["test_ids"]
    decode = "".join
    assert decode(bundle.class_names[i] for i in train_ids) == text[: len(train_ids)]
    assert decode(bundle.class_names[i] for i in test_ids) == text[len(train_ids) :]
    assert len(test_ids) == pytest.approx(0.2 * len(text), abs=1)
    assert torch.equal(y[-1], train_ids[-16:])
    assert torch.equal(bundle.test.tensors[0][0], test_ids[:16])


def test_any_unicode_text_round_trips(tmp_path):
    text = "naïve café — Ünïcödé, 日本語 and emoji 🐈\n" * 10
    path = tmp_path / "unicode.txt"
    path.write_text(text, encoding="utf-8")
    bundle = load_dataset(f"text:{path}", window=8)
    ids = torch.cat([bundle.extra["train_ids"], bundle.extra["test_ids"]])
    assert "".join(bundle.class_names[i] for i in ids) == text
    assert bundle.class_names == sorted(set(text))


def test_a_folder_is_its_files_in_order(tmp_path):
    (tmp_path / "b.txt").write_text("second file " * 20)
    (tmp_path / "a.txt").write_text("first file " * 20)  # no trailing newline: one is added
    (tmp_path / ".hidden").write_bytes(b"\x00\x01")  # hidden files are skipped
    bundle = load_dataset(f"text:{tmp_path}", window=8, test_fraction=0.5)
    ids = torch.cat([bundle.extra["train_ids"], bundle.extra["test_ids"]])
    assert "".join(bundle.class_names[i] for i in ids) == "first file " * 20 + "\n" + (
        "second file " * 20
    )
    assert "(2 files)" in bundle.info


def test_word_level_keeps_frequent_words_and_joins_back(corpus):
    text = corpus.read_text()
    bundle = load_dataset(f"text:{corpus}", window=8, level="word")
    ids = torch.cat([bundle.extra["train_ids"], bundle.extra["test_ids"]])
    assert "".join(bundle.class_names[i] for i in ids) == text
    assert bundle.class_names[0] == "<unk>" and "cat" in bundle.class_names
    small = load_dataset(f"text:{corpus}", window=8, level="word", max_vocab=5)
    assert small.num_classes == 5 and "<unk>" in small.info and "cat" not in small.class_names


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n\n ", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is binary"),
        ("caf\u00e9 latin-1".encode("latin-1"), "is not UTF-8 text .*offset 3"),
        (b"too short", "too few for windows of 64"),
    ],
)
def test_bad_text_is_one_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(GankitError, match=message):
        load_dataset(f"text:{path}")
    out = cli.invoke(
        app,
        ["train", "charlstm-devils", "--set", f"data.name=text:{path}", "--runs-dir",
         str(tmp_path / "runs")],
    )  # fmt: skip
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert out.output.startswith("gankit: error: data (text:")
    assert not (tmp_path / "runs").exists()


def test_missing_path_and_bad_options(tmp_path, corpus):
    with pytest.raises(GankitError, match="does not exist"):
        load_dataset(f"text:{tmp_path / 'nope.txt'}")
    with pytest.raises(GankitError, match="holds no files"):
        load_dataset(f"text:{(tmp_path / 'empty').mkdir() or tmp_path / 'empty'}")
    with pytest.raises(GankitError, match="test_fraction must be in"):
        load_dataset(f"text:{corpus}", test_fraction=1.0)
    with pytest.raises(GankitError, match="more than max_vocab 3"):
        load_dataset(f"text:{corpus}", max_vocab=3)
    with pytest.raises(GankitError, match="'level' must be 'char' | 'word', got 'byte'"):
        load_dataset(f"text:{corpus}", level="byte")


def test_the_embedded_corpus_needs_no_download():
    bundle = load_dataset("devils-dictionary")
    assert bundle.num_classes == 83
    assert len(bundle.extra["train_ids"]) + len(bundle.extra["test_ids"]) == 382_679
    text = "".join(bundle.class_names[i] for i in bundle.extra["train_ids"][:8000])
    assert text.startswith("PREFACE") and "ABASEMENT, n." in text


# --------------------------------------------------------------------------- sampling math
def test_temperature_sharpens_and_flattens_the_model_distribution():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    model = logits.softmax(0)
    assert torch.allclose(temperature_probs(logits, 1.0), model)
    # p_T ∝ p^(1/T)
    assert torch.allclose(temperature_probs(logits, 0.5), model**2 / (model**2).sum())
    assert temperature_probs(logits, 0.01)[0] > 0.999  # T -> 0: greedy
    assert torch.allclose(temperature_probs(logits, 100.0), torch.full((4,), 0.25), atol=0.01)
    entropies = [float(entropy_bits(temperature_probs(logits, t))) for t in (0.2, 0.5, 1, 2)]
    assert entropies == sorted(entropies) and entropies[-1] < 2.0  # at most log2(4) bits
    assert float(entropy_bits(torch.full((8,), 1 / 8))) == pytest.approx(3.0)


def test_top_k_zeroes_the_rest_and_renormalises():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 1.0]])
    probs = temperature_probs(logits, 1.0, top_k=2)
    assert probs[0, [0, 3, 4]].eq(0).all() and float(probs.sum()) == pytest.approx(1.0)
    kept = logits[0, [1, 2]].softmax(0)
    assert torch.allclose(probs[0, [1, 2]], kept)
    assert torch.equal(temperature_probs(logits, 1.0, top_k=1)[0], torch.eye(5)[1])


def lm(**kwargs):
    torch.manual_seed(0)
    return create_model(
        "char_lstm", data_shape=(8,), num_classes=6, class_names=list("abcde "),
        hidden_dim=16, embed_dim=8, **kwargs,
    )  # fmt: skip


def test_samples_follow_the_model_and_greedy_is_the_argmax():
    model = lm()
    prompt = torch.tensor([[0, 1, 2]])
    log_p, _ = model.log_probs(prompt)
    first = log_p[0, -1].exp()
    # T = 1 draws from the model's own distribution: frequencies over many draws
    many = prompt.expand(20000, -1)
    sampled = model.sample_tokens(many, 1, 1.0, generator=torch.Generator().manual_seed(0))
    frequencies = torch.bincount(sampled.tokens[:, 0], minlength=6) / 20000
    assert torch.allclose(frequencies, first, atol=0.015)
    assert torch.allclose(sampled.entropy[0, 0], entropy_bits(first), atol=1e-5)
    # greedy: the argmax at every step, and the limit of T -> 0
    greedy = model.sample_tokens(prompt, 12, greedy=True).tokens
    cold = model.sample_tokens(prompt, 12, 1e-4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(greedy, cold.tokens)
    assert greedy[0, 0] == first.argmax()
    # the same seed gives the same passage
    a = model.sample_tokens(prompt, 30, 0.8, generator=torch.Generator().manual_seed(5))
    b = model.sample_tokens(prompt, 30, 0.8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.tokens, b.tokens)


def test_encode_refuses_characters_outside_the_vocabulary():
    model = lm()
    assert model.decode(model.encode("abc e")) == "abc e"
    with pytest.raises(GankitError, match="2 character\\(s\\).*lacks: 'x', 'z'"):
        model.encode("axz")
    with pytest.raises(GankitError, match="seed text is empty"):
        model.encode("")
    with pytest.raises(GankitError, match="reads \\(N,\\) token windows"):
        create_model("char_gru", data_shape=(1, 8, 8), num_classes=10)


# --------------------------------------------------------------------------- metrics
def test_unigram_baseline_and_word_share_by_hand():
    # counts 3, 1, 0 -> add-one: 4/7, 2/7, 1/7
    log_q = unigram_log_probs(torch.tensor([0, 0, 0, 1]), 3)
    assert torch.allclose(log_q.exp(), torch.tensor([4 / 7, 2 / 7, 1 / 7], dtype=torch.float64))
    known = {"the", "cat", "sat"}
    assert word_share("The cat, the hat! 42", known) == pytest.approx(3 / 4)
    assert word_share("  ...  ", known) == 0.0


def test_an_untrained_model_is_above_the_unigram_baseline(corpus):
    bundle = load_dataset(f"text:{corpus}", window=16)
    model = create_model(
        "char_lstm", data_shape=bundle.shape, num_classes=bundle.num_classes,
        class_names=bundle.class_names, hidden_dim=16, embed_dim=8,
    )  # fmt: skip
    scores = held_out_bits(model, bundle)
    assert scores["uniform_bits_per_char"] == pytest.approx(math.log2(bundle.num_classes))
    assert scores["unigram_bits_per_char"] < scores["uniform_bits_per_char"]
    assert scores["bits_per_char"] > scores["unigram_bits_per_char"]
    assert scores["perplexity"] == pytest.approx(2 ** scores["bits_per_char"])


# --------------------------------------------------------------------------- learning
def config(corpus, steps: int) -> dict:
    return {
        "name": "lm-tiny",
        "model": {"name": "char_lstm", "hidden_dim": 64, "embed_dim": 16, "n_layers": 1,
                  "dropout": 0.0, "lr": 1e-2},
        "data": {"name": f"text:{corpus}", "window": 32, "stride": 4},
        "train": {"steps": steps, "batch_size": 32, "log_every": 50, "sample_every": 100,
                  "eval_every": 100, "ckpt_every": 100, "progress": False, "threads": 1},
    }  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LSTM on the tiny grammar: 200 steps, then 100 more by resuming."""
    root = tmp_path_factory.mktemp("lm")
    path = root / "corpus.txt"
    path.write_text(sentences(600))
    runs = root / "runs"
    gankit.train(config(path, 100), runs_dir=runs)
    resumed = gankit.train("lm-tiny", {"train.steps": 200}, runs_dir=runs, resume=True)
    return path, runs, resumed


def test_learns_below_the_unigram_baseline_and_resumes_exactly(trained):
    path, runs, resumed = trained
    straight = gankit.train(config(path, 200), runs_dir=runs, name="straight")
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key

    run_dir = resumed.run_dir
    out = cli.invoke(app, ["eval", str(run_dir)])
    assert out.exit_code == 0, out.output
    assert "bits_per_char" in out.output and "unigram_bits_per_char" in out.output
    scores = json.loads((run_dir / "eval.json").read_text())["scores"]
    # the grammar has ~1.7 bits of choice per word; letter frequencies alone cost ~4
    assert scores["bits_per_char"] < 0.5 * scores["unigram_bits_per_char"], scores
    assert scores["word_share_t0.5"] > 0.9 and scores["word_share_real"] == 1.0
    assert scores["entropy_t0.2"] < scores["entropy_t0.5"] < scores["entropy_t1.2"]

    # the training log carries held-out bits, and previews are text files
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [line["eval_bits_per_char"] for line in lines if "eval_bits_per_char" in line]
    assert len(evals) == 2 and evals[1] < evals[0]
    previews = sorted(p.name for p in (run_dir / "samples").iterdir())
    assert previews == ["step_00000100.txt", "step_00000200.txt"]
    assert "temperature 0.5" in (run_dir / "samples" / previews[-1]).read_text()


def test_generate_prints_one_passage_per_temperature(trained):
    _, runs, _ = trained
    args = ["generate", "lm-tiny", "--runs-dir", str(runs), "--seed-text", "the cat "]
    out = cli.invoke(app, [*args, "--temperature", "0.2,0.5,1.0,1.2", "--length", "60"])
    assert out.exit_code == 0, out.output
    for t in ("0.2", "0.5", "1", "1.2"):
        assert f"--- temperature {t} ---\nthe cat " in out.output
    again = cli.invoke(app, [*args, "--temperature", "0.2,0.5,1.0,1.2", "--length", "60"])
    assert again.output == out.output  # seeded
    greedy = cli.invoke(app, [*args, "--greedy", "--length", "40"])
    assert greedy.exit_code == 0 and "--- greedy ---" in greedy.output
    top = cli.invoke(app, [*args, "--top-k", "3", "--temperature", "1.0"])
    assert "--- temperature 1, top-k 3 ---" in top.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--temperature", "0.5,0"], "--temperature must be > 0, got 0"),
        (["--temperature", "-1"], "--temperature must be > 0, got -1"),
        (["--temperature", "warm"], "--temperature must be comma-separated numbers"),
        (["--seed-text", "the cat 🐈"], "character\\(s\\) that run's vocabulary lacks: '🐈'"),
        (["--seed-text", ""], "seed text is empty"),
        (["--top-k", "0"], "--top-k must be in 1\\.\\."),
        (["--greedy", "--temperature", "1"], "--greedy draws no samples"),
    ],
)
def test_generate_refuses_bad_input_in_one_line(trained, extra, message):
    import re

    _, runs, _ = trained
    args = ["generate", "lm-tiny", "--runs-dir", str(runs), "--seed-text", "the ", *extra]
    out = cli.invoke(app, args)
    assert out.exit_code == 2, out.output
    assert out.output.count("\n") == 1 and re.search(message, out.output), out.output


def test_generate_needs_a_language_model_run(tmp_path):
    from conftest import tiny_config

    out = cli.invoke(app, ["generate", "nope", "--seed-text", "a", "--runs-dir", str(tmp_path)])
    assert out.exit_code == 2 and "run 'nope' not found" in out.output
    gankit.train(tiny_config(steps=2), runs_dir=tmp_path)
    out = cli.invoke(app, ["generate", "tiny-gan", "--seed-text", "a", "--runs-dir", str(tmp_path)])
    assert out.exit_code == 2 and "not a language model" in out.output, out.output


def test_explore_draws_the_temperature_trade_off(trained):
    _, _, resumed = trained
    out = cli.invoke(app, ["explore", str(resumed.run_dir), "--what", "temperature", "--n", "4"])
    assert out.exit_code == 0, out.output
    with Image.open(resumed.run_dir / "explore" / "temperature.png") as picture:
        assert picture.width > 300
    passages = (resumed.run_dir / "explore" / "temperature.txt").read_text()
    assert "--- temperature 0.5: word share" in passages
    out = cli.invoke(app, ["eval", str(resumed.run_dir), "--metrics", "fd", "--overwrite"])
    assert out.exit_code == 2 and "drop --metrics" in out.output


def test_word_level_trains_and_scores_bits_per_word_and_per_char(corpus, tmp_path):
    cfg = config(corpus, 20)
    cfg["data"].update(level="word", window=8)
    cfg["train"].update(sample_every=20, eval_every=20, ckpt_every=20)
    result = gankit.train(cfg, runs_dir=tmp_path)
    assert "<unk>" in result.model.vocabulary and result.model.level == "word"
    out = cli.invoke(app, ["eval", str(result.run_dir), "--n", "2"])
    assert out.exit_code == 0, out.output
    scores = json.loads((result.run_dir / "eval.json").read_text())["scores"]
    assert {"bits_per_token", "unigram_bits_per_token", "bits_per_char"} <= set(scores)
    # a word costs more bits than a character: per character, the same bits are spread
    assert scores["bits_per_char"] < scores["bits_per_token"]
    out = cli.invoke(app, ["generate", str(result.run_dir), "--seed-text", "the zebra ",
                           "--temperature", "1", "--length", "5"])  # fmt: skip
    assert out.exit_code == 0 and "the zebra " in out.output
    assert "note: the model reads these seed words as <unk>: zebra" in out.output
