r"""Controllable change with two codes: which change (categorical k), and how much (c).

The change family (:mod:`gankit.models.change`) with InfoGAN's categorical code added
(Chen et al. 2016): G(x, k, c) takes an earlier item, a code ``k`` of K values
(uniform, one-hot) and the amount ``c ~ U(0, 1)``; Q reads both back from the pair
(x, G(x, k, c)): K logits for k, one number for c. On data where each later item was
made by one of several operators (``digits-change-mixed``), the mutual-information term
for k asks G to make K changes that Q can tell apart; whether they are the data's
operators is what ``operator_accuracy`` measures (:mod:`gankit.metrics.change_codes`).

Objective, minimised over G and Q and maximised over D:

``L = E_y[log D(y)] + E_{x,k,c}[log(1 − D(G(x, k, c)))]``
``    + λ_I E ||Q_c(x, G(x, k, c)) − c||²``                        (how much)
``    + λ_K E[−log softmax(Q_k(x, G(x, k, c)))_k]``                  (which change)
``    + λ_id E ||G(x, k, 0) − x||_1``                                 (identity at c = 0)
``    + λ_mono E_{x, k, c1 < c2} max(0, d(x, k, c1) − d(x, k, c2))``  (monotone in c)

with ``d(x, k, c) = ||G(x, k, c) − x||_1`` per value. The cross-entropy is
``−log Q(k | x, G)``, so minimising it maximises the variational bound
``E[log Q(k | x, G)] + H(k) ≤ I(k; G(x, k, c) | x)``, as the squared error does for c.
D is the family's (``discriminator``, default ``later``).

G is residual, ``G(x, k, c) = x + Δ(x, onehot(k), c)`` (``x + c·Δ`` when
``code_scaled``): the one-hot k and c enter as K + 1 extra inputs of the MLP (series)
or K + 1 constant channels of the conv stack (images).

**The shared code's ``change(x, c)``** (``gankit translate``, ``explore``, Control,
``individual_error``) uses the default kind ``k = 0``; :meth:`ChangeCat.change_kind`
chooses k.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.base import MAX_DEPTH, ScoreContext, check_sizes, check_weights
from gankit.models.change import ChangeGAN, ChangeGenerator, critic
from gankit.nn import eval_mode
from gankit.registry import register_model

#: The kind that ``change(x, c)`` applies, where no k is chosen.
DEFAULT_KIND = 0


class KindChangeGenerator(ChangeGenerator):
    """``G(x, k, c) = x + Δ(x, onehot(k), c)`` (``x + c·Δ`` when ``code_scaled``):
    (N, ...) items, (N,) codes and (N,) kinds (None: :data:`DEFAULT_KIND`) -> (N, ...)."""

    def __init__(
        self, data_shape: tuple[int, ...], n_kinds: int, width: int, n_layers: int, **options
    ) -> None:
        super().__init__(data_shape, width, n_layers, codes=n_kinds + 1, **options)
        self.n_kinds = n_kinds

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, kind: torch.Tensor | None = None
    ) -> torch.Tensor:
        if kind is None:
            kind = torch.full((len(x),), DEFAULT_KIND, dtype=torch.long, device=x.device)
        codes = torch.cat([F.one_hot(kind, self.n_kinds).to(x.dtype), c.view(-1, 1)], dim=1)
        return self.changed(x, c, codes)


class ChangeCat(ChangeGAN):
    """G(x, k, c), D and Q(x, G) -> (k logits, c) (objective in the module docstring).

    Args:
        data_shape, num_classes: as for :class:`~gankit.models.change.ChangeGAN`.
        n_kinds: K, the values of the categorical code (2 to 10).
        kind_weight: λ_K, weight of Q's cross-entropy on k for G (Q always learns it).
        width, n_layers, code_scaled: as for ``ChangeGAN``; G and Q are rebuilt with the
            K extra inputs and outputs.
        **kwargs: every other option of ``ChangeGAN`` (weights, lr, discriminator, ...).
    """

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        n_kinds: int = 2,
        kind_weight: float = 1.0,
        width: int = 64,
        n_layers: int = 3,
        code_scaled: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(data_shape, num_classes, width=width, n_layers=n_layers,
                         code_scaled=code_scaled, **kwargs)  # fmt: skip
        check_sizes(10, 2, n_kinds=n_kinds)
        check_sizes(MAX_DEPTH, n_layers=n_layers)
        check_weights(kind_weight=kind_weight)
        self.n_kinds, self.kind_weight = n_kinds, kind_weight
        self.G = KindChangeGenerator(
            self.data_shape, n_kinds, width, n_layers, **self.generator_options
        )
        self.Q = critic(self.data_shape, 2, width, n_layers, 1 + n_kinds)

    # ------------------------------------------------------------------ Q's two readings
    def read_codes(
        self, x: torch.Tensor, changed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Q on (N, ...) pairs: the amount (N,) and the kinds' logits (N, K)."""
        out = self.Q(torch.cat([x, changed], dim=1))
        return out[:, 0], out[:, 1:]

    def read_amount(self, x: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        return self.read_codes(x, changed)[0]

    # ------------------------------------------------------------------ the codes
    def draw_codes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``c ~ U(0, 1)`` and a uniform kind ``k``, (N,) each."""
        codes = super().draw_codes(x)
        codes["kind"] = torch.randint(self.n_kinds, (len(x),), device=x.device)
        return codes

    def generate(self, x: torch.Tensor, codes: dict, c: torch.Tensor | None = None):
        return self.G(x, codes["c"] if c is None else c, codes["kind"])

    def info_losses(self, x: torch.Tensor, changed: torch.Tensor, codes: dict) -> dict:
        """Q's squared error on c and its cross-entropy on k."""
        amount, logits = self.read_codes(x, changed)
        return {
            "info": F.mse_loss(amount, codes["c"]),
            "kind": F.cross_entropy(logits, codes["kind"]),
        }

    def info_weights(self) -> dict[str, float]:
        return {"info": self.info_weight, "kind": self.kind_weight}

    # ------------------------------------------------------------------ choosing k
    @torch.no_grad()
    def change_kind(
        self,
        x: torch.Tensor,
        kind: int | torch.Tensor,
        amount: float | torch.Tensor,
        net: nn.Module | None = None,
    ) -> torch.Tensor:
        """G(x, k, c) in eval mode: (N, ...) earlier items, a kind (an int or (N,)) and an
        amount (a number or (N,)) -> (N, ...) changed items on the CPU. ``net``
        replaces G (its EMA)."""
        generator = net if net is not None else self.G
        x = x.to(self.device)
        c = torch.as_tensor(amount, dtype=x.dtype, device=x.device).expand(len(x))
        k = torch.as_tensor(kind, dtype=torch.long, device=x.device).expand(len(x))
        with eval_mode(generator):
            return generator(x, c, k).cpu()

    @torch.no_grad()
    def predict_kind(self, x: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        """Q's reading of k, in eval mode: (N,) on the CPU."""
        with eval_mode(self.Q):
            return self.read_codes(x.to(self.device), changed.to(self.device))[1].argmax(1).cpu()

    def family_scores(self, context: ScoreContext) -> tuple[dict[str, float], dict[str, float]]:
        """``code_error`` as the family's, and ``kind_error``: Q's share of wrong k on
        G(x, k, c) with k and c drawn on held-out x."""
        scores, floor = super().family_scores(context)
        generator = torch.Generator().manual_seed(context.seed + 1)
        kind = torch.randint(self.n_kinds, (len(context.x),), generator=generator)
        c = torch.rand(len(context.x), generator=generator)
        changed = self.change_kind(context.x, kind, c, context.net)
        wrong = self.predict_kind(context.x, changed) != kind
        return {**scores, "kind_error": float(wrong.float().mean())}, floor


# --------------------------------------------------------------------------- variants
register_model(
    "change_cat",
    ChangeCat,
    "the change family with two codes G(x, k, c): an InfoGAN categorical k (which change) "
    "and c ~ U(0, 1) (how much)",
)
