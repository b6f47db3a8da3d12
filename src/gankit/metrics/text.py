r"""Scores of a language model (task ``sequence``): held-out bits and its samples.

- **Bits per character** on a held-out stream of tokens ``t_1 … t_L``:
  ``−(1/C) Σ_i log₂ p_θ(t_{i+1} | t_1 … t_i)`` with C the characters of the scored
  tokens (at the character level, the tokens themselves). The model reads the stream
  in order, carrying its recurrent state, so every token is predicted from all the text
  before it in its stream. ``perplexity`` is ``2^(bits per token)``.
- Next to it, two baselines that need no model: the **unigram** model of the training
  split, ``q(i) = (n_i + 1) / (n + V)`` (add-one smoothing, so that a token unseen in
  training does not cost infinitely many bits), scored on the same held-out tokens as
  ``−(1/C) Σ log₂ q(t)``; and the **uniform** distribution, ``log₂ V`` bits per token.
  A model that learned nothing beyond letter frequencies scores the unigram's bits.
- For samples at temperature T (``p_T(i) ∝ exp(log p(i) / T)``): the **word share**,
  the share of the sample's words (maximal runs of letters, lower-cased) that occur in
  the training text, and the **entropy** of the distribution each token was drawn from,
  ``H(p_T) = −Σ_i p_T(i) log₂ p_T(i)``, averaged over the sampled steps. Low T gives
  real words and little entropy (repetitive text); high T gives entropy and invented
  words. The held-out text's own word share is the reference a sample can reach.

Metrics receive a model and a bundle; they never load a run.
"""

from __future__ import annotations

import math
import re

import torch

from gankit.data import DataBundle
from gankit.errors import GankitError

#: Parallel streams the held-out text is cut into: each is read in order, carrying state.
STREAMS = 16
#: Words: maximal runs of letters (any alphabet), compared lower-cased.
WORD = re.compile(r"[^\W\d_]+")


def check_vocabulary(model, bundle: DataBundle) -> None:
    """The data must tokenise as it did when the model was trained."""
    if model.vocabulary is not None and tuple(bundle.class_names) != model.vocabulary:
        raise GankitError(
            f"data '{bundle.name}' now gives a vocabulary of {len(bundle.class_names)} tokens, "
            f"not the {len(model.vocabulary)} the model was trained with: the text changed "
            "since training"
        )


def as_streams(ids: torch.Tensor, n_streams: int = STREAMS) -> torch.Tensor:
    """(L,) ids -> (S, L // S) consecutive parts, S at most ``n_streams`` (fewer for a
    short text, so that each stream holds at least two tokens)."""
    n_streams = max(1, min(n_streams, len(ids) // 2))
    length = len(ids) // n_streams
    return ids[: n_streams * length].reshape(n_streams, length)


@torch.no_grad()
def stream_nll(model, streams: torch.Tensor, chunk: int) -> torch.Tensor:
    """(S, L) ids -> (S, L − 1) ``−log p(t_{i+1} | t_1 … t_i)`` in nats, each stream read
    in chunks of ``chunk`` tokens with the recurrent state carried between chunks."""
    state, nll = None, []
    inputs, targets = streams[:, :-1], streams[:, 1:]
    for start in range(0, inputs.shape[1], chunk):
        log_p, state = model.log_probs(inputs[:, start : start + chunk], state)
        part = targets[:, start : start + chunk].to(log_p.device)
        nll.append(-log_p.gather(-1, part.unsqueeze(-1)).squeeze(-1).cpu())
    return torch.cat(nll, dim=1)


def token_lengths(bundle: DataBundle) -> torch.Tensor:
    """(V,) characters per token of the vocabulary."""
    return torch.tensor([len(token) for token in bundle.class_names], dtype=torch.float64)


def unigram_log_probs(train_ids: torch.Tensor, vocabulary_size: int) -> torch.Tensor:
    """(V,) ``log q(i)``, with ``q(i) = (n_i + 1) / (n + V)`` counted on ``train_ids``."""
    counts = torch.bincount(train_ids, minlength=vocabulary_size).double() + 1.0
    return (counts / counts.sum()).log()


def held_out_bits(
    model,
    bundle: DataBundle,
    split: str = "test",
    max_tokens: int | None = None,
) -> dict[str, float]:
    """Bits on a split (``test``: the held-out end of the text), next to the unigram and
    uniform baselines, on the same tokens.

    Returns:
        ``bits_per_char`` (or ``bits_per_token`` and ``bits_per_char`` at the word
        level), ``unigram_…`` and ``uniform_…`` of the same unit, ``perplexity`` and
        ``tokens`` scored.
    """
    ids = bundle.extra[f"{split}_ids"]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    streams = as_streams(ids)
    targets = streams[:, 1:]
    nats = stream_nll(model, streams, chunk=bundle.shape[0]).double()
    vocabulary_size = len(bundle.class_names)
    unigram = -unigram_log_probs(bundle.extra["train_ids"], vocabulary_size)[targets]
    n_tokens = targets.numel()
    n_chars = float(token_lengths(bundle)[targets].sum())
    ln2 = math.log(2)
    model_bits, unigram_bits = float(nats.sum()) / ln2, float(unigram.sum()) / ln2
    per_token = model_bits / n_tokens
    if bundle.extra["level"] == "char":
        scores = {
            "bits_per_char": per_token,
            "unigram_bits_per_char": unigram_bits / n_tokens,
            "uniform_bits_per_char": math.log2(vocabulary_size),
        }
    else:
        scores = {
            "bits_per_token": per_token,
            "unigram_bits_per_token": unigram_bits / n_tokens,
            "uniform_bits_per_token": math.log2(vocabulary_size),
            "bits_per_char": model_bits / n_chars,
        }
    scores.update(perplexity=2.0**per_token, tokens=float(n_tokens))
    return scores


def words_of(text: str) -> list[str]:
    """The words of ``text``: maximal runs of letters, lower-cased."""
    return WORD.findall(text.lower())


def word_share(text: str, known: set[str]) -> float:
    """The share of ``text``'s words found in ``known``; 0 when it has no word at all."""
    words = words_of(text)
    return sum(word in known for word in words) / len(words) if words else 0.0


def decode(bundle: DataBundle, ids: torch.Tensor) -> str:
    names = bundle.class_names
    return "".join(names[i] for i in ids.tolist())


def held_out_prompts(bundle: DataBundle, n: int, length: int) -> torch.Tensor:
    """(n, length) prompts: the held-out text at n evenly spaced places."""
    ids = bundle.extra["test_ids"]
    length = min(length, len(ids) - 1)
    starts = torch.linspace(0, len(ids) - length - 1, n).long()
    return torch.stack([ids[s : s + length] for s in starts.tolist()])


def temperature_scores(
    model,
    bundle: DataBundle,
    temperatures: tuple[float, ...],
    n: int = 16,
    length: int = 200,
    seed: int = 0,
    top_k: int | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """``word_share_t{T}`` and ``entropy_t{T}`` of ``n`` samples of ``length`` tokens per
    temperature, each continuing a held-out prompt; and the first sample per temperature.

    ``word_share_real`` is the held-out text's own share of training words, the
    reference a sample can reach.
    """
    known = set(words_of(decode(bundle, bundle.extra["train_ids"])))
    prompts = held_out_prompts(bundle, n, min(bundle.shape[0], 32))
    scores: dict[str, float] = {}
    samples: dict[str, str] = {}
    for temperature in temperatures:
        generator = torch.Generator().manual_seed(seed)
        sampled = model.sample_tokens(prompts, length, temperature, top_k, generator=generator)
        texts = [decode(bundle, row) for row in sampled.tokens]
        scores[f"word_share_t{temperature:g}"] = word_share("\n".join(texts), known)
        scores[f"entropy_t{temperature:g}"] = float(sampled.entropy.mean())
        samples[f"{temperature:g}"] = decode(bundle, prompts[0]) + texts[0]
    real = decode(bundle, bundle.extra["test_ids"])
    scores["word_share_real"] = word_share(real, known)
    return scores, samples
