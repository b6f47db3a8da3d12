r"""Recurrent language models: an LSTM or GRU that predicts the next token.

A text of tokens ``t_1 … t_L`` (characters or words) is cut into windows of N tokens;
within a window the network reads ``t_1 … t_i`` and outputs ``p_θ(t_{i+1} | t_1 … t_i)``,
a softmax over the vocabulary, at every position. Training minimises the cross-entropy
(the negative log-likelihood) of the next tokens:

``min_θ  −(1/N) Σ_i log p_θ(t_{i+1} | t_1 … t_i)``

in nats per token; divided by ln 2 it is in bits per token (bits per character at the
character level), and ``exp`` of it is the perplexity.

The network is an embedding, ``n_layers`` stacked LSTM or GRU layers with dropout
between them (and before the output layer), and a linear layer to the vocabulary's
logits. Gradients are clipped to norm ``grad_clip``: recurrent networks have rare,
very large gradients (Pascanu et al. 2013).

Sampling continues a prompt one token at a time, carrying the recurrent state, from

``p_T(i) ∝ exp(log p(i) / T)``

the model's distribution at temperature T: T = 1 is the model itself, T → 0 tends to
greedy decoding (always the most probable token), T > 1 flattens it. Top-k keeps the
k most probable tokens of ``p_T`` and renormalises. Character-level English at T ≈ 0.2
repeats frequent words; at T ≈ 1.2 it invents words (Chollet, *Deep Learning with
Python*, 8.1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.conventions import UNKNOWN_TOKEN, WORD_TOKEN
from gankit.errors import GankitError
from gankit.models.base import MAX_WIDTH, Model, check_optimizer, check_sizes, check_weights
from gankit.nn import eval_mode
from gankit.registry import register_model

#: The longest passage one call samples.
MAX_LENGTH = 100_000


def temperature_probs(
    logits: torch.Tensor, temperature: float, top_k: int | None = None
) -> torch.Tensor:
    """``p_T(i) ∝ exp(log p(i) / T)`` over the last dimension, then top-k.

    Args:
        logits: (..., V) unnormalised log-probabilities.
        temperature: T > 0.
        top_k: keep the k most probable tokens and renormalise; None keeps all.

    Returns:
        (..., V) probabilities that sum to 1.
    """
    scaled = logits.float().log_softmax(dim=-1) / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        top = scaled.topk(top_k, dim=-1)
        scaled = torch.full_like(scaled, -math.inf).scatter(-1, top.indices, top.values)
    return scaled.softmax(dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """``H(p) = −Σ_i p(i) log₂ p(i)`` over the last dimension, with 0 log 0 = 0."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1) / math.log(2)


@dataclass
class Sampled:
    """A sampled continuation: ``tokens`` (B, length) ids and ``entropy`` (B, length),
    the entropy in bits of the distribution each token was drawn from."""

    tokens: torch.Tensor
    entropy: torch.Tensor


#: Karpathy's char-rnn stacks 2 or 3 layers; 8 of width 2048 are 268 million weights.
MAX_RNN_LAYERS = 8


class RNNLanguageModel(Model):
    """Embedding, stacked LSTM or GRU, linear to the vocabulary's logits.

    Args:
        data_shape: (N,): the tokens per training window.
        num_classes: the vocabulary size V.
        class_names: the vocabulary, token i first; saved with the model's arguments so
            that a checkpoint alone encodes a prompt and decodes a sample. None: the
            model works on ids only (``encode``/``decode`` refuse).
        cell: ``lstm`` or ``gru``.
        embed_dim: width of the token embedding.
        hidden_dim: width of each recurrent layer.
        n_layers: stacked recurrent layers (at most 8).
        dropout: dropout between the layers and before the output layer.
        lr: Adam's learning rate.
        grad_clip: clip the gradient's norm to this; 0 turns clipping off.
    """

    task = "sequence"

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        class_names: tuple[str, ...] | None = None,
        *,
        cell: Literal["lstm", "gru"] = "lstm",
        embed_dim: int = 32,
        hidden_dim: int = 256,
        n_layers: int = 2,
        dropout: float = 0.2,
        lr: float = 2e-3,
        grad_clip: float = 1.0,
    ) -> None:
        super().__init__(data_shape, num_classes)
        if len(self.data_shape) != 1:
            raise GankitError(
                f"model: a language model reads (N,) token windows; the data gives items of "
                f"shape {self.data_shape} (use a text source: devils-dictionary, text:PATH)"
            )
        if not num_classes or num_classes < 2:
            raise GankitError(
                f"model: a language model needs a vocabulary of at least 2 tokens, got "
                f"num_classes={num_classes}"
            )
        if class_names is not None and len(class_names) != num_classes:
            raise GankitError(
                f"model: {len(class_names)} vocabulary entries for num_classes={num_classes}"
            )
        check_sizes(MAX_WIDTH, embed_dim=embed_dim, hidden_dim=hidden_dim)
        check_sizes(MAX_RNN_LAYERS, n_layers=n_layers)
        check_optimizer(lr=lr)
        check_weights(grad_clip=grad_clip)
        if not 0.0 <= dropout < 1.0:
            raise GankitError(f"model: dropout must be in [0, 1), got {dropout}")
        self.vocabulary = tuple(class_names) if class_names is not None else None
        self.cell, self.lr, self.grad_clip = cell, lr, grad_clip
        self.embedding = nn.Embedding(num_classes, embed_dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            embed_dim,
            hidden_dim,
            num_layers=n_layers,
            dropout=dropout if n_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, num_classes)

    @property
    def level(self) -> str:
        """``char`` when every token is one character, else ``word``."""
        if self.vocabulary is None or all(len(token) == 1 for token in self.vocabulary):
            return "char"
        return "word"

    # ------------------------------------------------------------------ the network
    def forward(self, tokens: torch.Tensor, state=None) -> tuple[torch.Tensor, object]:
        """(B, T) ids -> (B, T, V) logits of each next token, and the recurrent state."""
        hidden, state = self.rnn(self.embedding(tokens), state)
        return self.head(self.dropout(hidden)), state

    @torch.no_grad()
    def log_probs(self, tokens: torch.Tensor, state=None) -> tuple[torch.Tensor, object]:
        """(B, T) ids -> (B, T, V) ``log p(next token)``, in eval mode; ``state`` carries
        the recurrent state from a previous chunk of the same streams."""
        with eval_mode(self):
            logits, state = self(tokens.to(self.device), state)
        return logits.float().log_softmax(dim=-1), state

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"rnn": torch.optim.Adam(self.parameters(), lr=self.lr)}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        tokens, targets = batch["x"], batch["y"]
        optimizer = self.optimizers["rnn"]
        optimizer.zero_grad(set_to_none=True)
        logits, _ = self(tokens)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        self.backward(loss)
        stats = {"loss": loss.item(), "bits_per_token": loss.item() / math.log(2)}
        if self.grad_clip > 0:
            if self.grad_scaler is not None:  # clip the true gradients, not the scaled ones
                self.grad_scaler.unscale_(optimizer)
            norm = nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
            stats["grad_norm"] = float(norm)
        self.step(optimizer)
        return stats

    # ------------------------------------------------------------------ task "sequence"
    @torch.no_grad()
    def sample_tokens(
        self,
        prompt: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Sampled:
        """Continue (B, P) prompt ids by ``length`` tokens, in eval mode.

        Each token is drawn from ``p_T`` (:func:`temperature_probs`), or is the most
        probable one when ``greedy``; ``generator`` (on the CPU) makes the draws
        reproducible.
        """
        if temperature <= 0:
            raise GankitError(f"temperature must be > 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise GankitError(f"top-k must be >= 1, got {top_k}")
        if not 1 <= length <= MAX_LENGTH:
            raise GankitError(f"length must be in 1..{MAX_LENGTH}, got {length}")
        if prompt.dim() != 2 or prompt.shape[1] < 1:
            raise GankitError("the prompt must hold at least one token")
        tokens, entropies = [], []
        with eval_mode(self):
            logits, state = self(prompt.to(self.device))
            last = logits[:, -1]
            for _ in range(length):
                probs = temperature_probs(last, temperature, top_k).cpu()
                if greedy:
                    chosen = probs.argmax(dim=-1)
                    entropies.append(torch.zeros(len(chosen)))
                else:
                    chosen = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                    entropies.append(entropy_bits(probs))
                tokens.append(chosen)
                logits, state = self(chosen.to(self.device)[:, None], state)
                last = logits[:, -1]
        return Sampled(torch.stack(tokens, dim=1), torch.stack(entropies, dim=1))

    def _require_vocabulary(self) -> tuple[str, ...]:
        if self.vocabulary is None:
            raise GankitError(
                f"model '{self.model_name}' was built without a vocabulary; it reads and "
                "writes token ids only"
            )
        return self.vocabulary

    def out_of_vocabulary(self, text: str) -> list[str]:
        """The distinct characters (or words) of ``text`` that the vocabulary lacks."""
        vocabulary = set(self._require_vocabulary())
        tokens = text if self.level == "char" else re.findall(WORD_TOKEN, text)
        return sorted(set(tokens) - vocabulary)

    def encode(self, text: str) -> torch.Tensor:
        """``text`` -> (P,) ids. Characters outside the vocabulary are an error that names
        them; at the word level, unknown words become ``<unk>`` as in training.

        Raises:
            GankitError: the text is empty, or has characters the vocabulary lacks.
        """
        vocabulary = self._require_vocabulary()
        index = {token: i for i, token in enumerate(vocabulary)}
        if not text:
            raise GankitError("the seed text is empty; give at least one token")
        if self.level == "char":
            missing = self.out_of_vocabulary(text)
            if missing:
                shown = ", ".join(repr(c) for c in missing[:10])
                raise GankitError(
                    f"the seed text has {len(missing)} character(s) that run's vocabulary "
                    f"lacks: {shown}; it knows {len(vocabulary)}: "
                    f"{''.join(vocabulary).encode('unicode_escape').decode()}"
                )
            return torch.tensor([index[c] for c in text], dtype=torch.long)
        unknown = index[UNKNOWN_TOKEN]
        return torch.tensor(
            [index.get(t, unknown) for t in re.findall(WORD_TOKEN, text)], dtype=torch.long
        )

    def decode(self, ids: torch.Tensor) -> str:
        """(L,) ids -> the text."""
        vocabulary = self._require_vocabulary()
        return "".join(vocabulary[i] for i in ids.tolist())


# --------------------------------------------------------------------------- variants
register_model(
    "char_lstm",
    RNNLanguageModel,
    "language model: stacked LSTM over characters (or words: data.level=word)",
)
register_model(
    "char_gru",
    RNNLanguageModel,
    "language model: stacked GRU over characters (or words: data.level=word)",
    cell="gru",
)
