"""The task ``sequence``: language models that predict the next token (char_lstm, char_gru).

- previews: ``samples/step_XXXXXXXX.txt``, held-out prompts continued at T = 0.5 and 1.0;
- scores during training: bits per character on the held-out text (its first
  ``train.eval_n`` tokens, 20,000 when unset);
- ``gankit eval``: bits per character on the whole held-out split next to the unigram
  and uniform baselines, and the word share and entropy of samples at T = 0.2, 0.5, 1.0,
  1.2 (:mod:`gankit.metrics.text`);
- views: ``temperature``, the curve of word share and entropy over temperatures.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gankit.errors import GankitError
from gankit.explore.text import (
    COURSE_TEMPERATURES,
    Passage,
    TextPreviews,
    passages,
    temperature_curve,
    training_seed_text,
)
from gankit.metrics.evaluate import EvalOptions, EvalReport
from gankit.metrics.text import check_vocabulary, held_out_bits, temperature_scores
from gankit.nn import torch_threads
from gankit.runs.load import Run
from gankit.tasks import Task, register_task

#: Held-out tokens scored every ``train.eval_every`` steps when ``train.eval_n`` is unset.
TRAINING_EVAL_TOKENS = 20_000
#: Samples per temperature in ``gankit eval`` when ``--n`` is unset, and their length.
EVAL_SAMPLES, EVAL_LENGTH = 16, 200


def one_thread(fn: Callable) -> Callable:
    """Run ``fn`` on one CPU thread. Sampling goes one token at a time, in operations far
    too small to share: on a busy 2-core machine, two threads made 400 steps of a small
    LSTM 10x slower (12 s instead of 1 s) while they waited on each other."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return fn(*args, **kwargs)

    return wrapper


def sequence_scores(model, bundle, cfg):
    """Every ``eval_every`` steps: held-out bits per character (no sampling, no RNG)."""
    check_vocabulary(model, bundle)
    max_tokens = cfg.eval_n or TRAINING_EVAL_TOKENS

    def evaluate(step: int, net) -> dict[str, float]:
        scores = held_out_bits(model, bundle, "test", max_tokens)
        unit = "char" if "bits_per_token" not in scores else "token"
        return {f"bits_per_{unit}": scores[f"bits_per_{unit}"]}

    return evaluate


def evaluate_sequence(run: Run, bundle, options: EvalOptions) -> EvalReport:
    """``gankit eval`` for language models: bits on the split with its baselines, then
    ``--n`` samples (16) of 200 tokens per temperature, seeded by ``--seed``."""
    options.check_defaults(
        run,
        "a language model scored by bits per character and its samples' word share",
        ("metrics", "features", "inception_weights", "train_evaluator"),
    )
    if options.split not in ("test", "train"):
        raise GankitError(f"--split must be test or train, got '{options.split}'")
    n = options.n if options.n is not None else EVAL_SAMPLES
    if n < 1:
        raise GankitError(f"--n (samples per temperature) must be >= 1, got {n}")
    started = time.perf_counter()
    check_vocabulary(run.model, bundle)
    scores = held_out_bits(run.model, bundle, options.split)
    sampled, samples = temperature_scores(
        run.model, bundle, COURSE_TEMPERATURES, n, EVAL_LENGTH, options.seed
    )
    scores.update(sampled)
    return EvalReport(
        run=str(run.path), step=run.step, n=0, n_reference=0, n_floor=0, split=options.split,
        features=None, scores=scores, floor={}, seconds=round(time.perf_counter() - started, 3),
        extra={
            "checkpoint": str(run.checkpoint),
            "samples": samples,
            "notes": [
                f"bits on the whole {options.split} split, read in order; baselines: add-one "
                "unigram of the training split, and uniform over the vocabulary",
                f"word_share/entropy_tT: {n} samples of {EVAL_LENGTH} tokens per temperature "
                "T from held-out prompts; word_share_real: the held-out text itself",
            ],
        },
    )  # fmt: skip


@dataclass
class Generation:
    """What ``gankit generate`` wrote: the run, the seed text (and the token offset it
    was drawn at from the training text, when the user gave none), the passages, and
    notes for the reader (seed words read as ``<unk>``)."""

    run: Run
    seed_text: str
    drawn_at: int | None
    passages: list[Passage]
    notes: list[str] = field(default_factory=list)


@one_thread  # one token at a time: see one_thread
def generate(
    run: Run,
    seed_text: str | None,
    temperatures: tuple[float, ...] | None,
    length: int = 400,
    top_k: int | None = None,
    greedy: bool = False,
    seed: int = 0,
) -> Generation:
    """The seed text (None: a start drawn from the training text with ``seed``)
    continued by ``length`` tokens at each temperature (None: the course's 0.2, 0.5,
    1.0, 1.2), or greedily."""
    drawn = None
    if seed_text is None:
        seed_text, drawn = training_seed_text(run, seed)
    temperatures = COURSE_TEMPERATURES if temperatures is None else temperatures
    written = passages(run, seed_text, temperatures, length, top_k, greedy, seed)
    notes = []
    unknown = run.model.out_of_vocabulary(seed_text) if run.model.level == "word" else []
    if unknown:
        notes.append(f"the model reads these seed words as <unk>: {', '.join(unknown)}")
    return Generation(run, seed_text, drawn, written, notes)


SEQUENCE = register_task(
    Task(
        name="sequence",
        model_methods=("log_probs", "sample_tokens", "encode", "decode"),
        summary="predicts the next token of a text, and samples text",
        evaluate=one_thread(evaluate_sequence),
        previews=TextPreviews,
        scores=sequence_scores,
        views={"temperature": one_thread(temperature_curve)},
        default_views=("temperature",),
        preview_caption="Held-out prompts continued by the model at temperatures 0.5 and 1.0.",
        generate=generate,
    )
)
