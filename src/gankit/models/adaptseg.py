r"""Output-space adaptation for semantic segmentation (AdaptSegNet; Tsai et al., CVPR 2018,
"Learning to Adapt Structured Output Space for Semantic Segmentation").

A segmentation network trained on labelled *source* scenes (a game engine's) should work
on unlabelled *target* scenes (a camera's). The images differ a lot, but the *layouts*
do not: sky on top, road at the bottom, cars on the road. So the adversary looks at the
network's output, not its features: a fully-convolutional discriminator ``D_i`` gets the
softmax maps ``P^i`` and tells, patch by patch, whether they came from a source or a
target image. The segmentation network ``G`` is trained to make target predictions look
like source predictions. With outputs at two levels (``i = 1`` auxiliary, on an
intermediate feature map; ``i = 2`` main, on the last one), each level has its own D.

Segmentation network, on source images ``I_s`` with labels ``Y_s`` and target images ``I_t``:

``L(I_s, I_t) = Σ_i λ_seg^i L_seg^i(I_s) + Σ_i λ_adv^i L_adv^i(I_t)``

``L_seg^i(I_s) = −Σ_{h,w} Σ_c Y_s^{(h,w,c)} log P_s^{i,(h,w,c)}`` (cross-entropy; pixels
labelled ``NO_LABEL``, the 255 of label PNGs, are ignored)

``L_adv^i(I_t) = −Σ_{h,w} log D_i(P_t^i)^{(h,w)}`` (target outputs labelled "source")

Discriminators, with ``z = 1`` for a source output and ``z = 0`` for a target output
(the paper's convention; ``D_i(P)`` is the probability of "source" per patch):

``L_d^i(P) = −Σ_{h,w} [(1 − z) log(1 − D_i(P)^{(h,w)}) + z log D_i(P)^{(h,w)}]``

that is, binary cross-entropy with source outputs as "real" and target outputs as
"fake": :func:`gankit.losses.bce_d_loss`, and ``L_adv`` is the non-saturating generator
loss. ``G`` minimises ``L``, each ``D_i`` minimises ``L_d^i`` on *detached* outputs.

Defaults, from the paper and its official code:

- ``λ_seg`` = 1 (main) and 0.1 (auxiliary);
- ``λ_adv`` = 0.001 (main) and 0.0002 (auxiliary); single-level uses 0.001 on the main output;
- D: 4x4 convolutions with stride 2 and LeakyReLU(0.2), widths 64-128-256-512-1 in the paper
  (``d_channels`` = 16 here: 16-32-64-128-1), Adam with lr 1e-4 and β = (0.9, 0.99);
- both learning rates decay as ``(1 − step / steps)^0.9`` ("poly").

Where we differ, because the paper fine-tunes an ImageNet ResNet-101 DeepLab-v2 on a GPU
and we train a small network from scratch on a CPU:

- G is a small dilated FCN (``SegmentationNet``, output stride 4) instead of DeepLab-v2;
  the auxiliary classifier reads its third block, the main one its fourth (as conv4 and
  conv5 of the ResNet);
- G's optimizer is Adam (lr 1e-3) instead of SGD (lr 2.5e-4, momentum 0.9, weight decay
  5e-4), which is far too slow from scratch;
- G normalises with a per-sample norm (``layer``) by default, not batch norm: batch
  statistics of target batches can adapt a network by themselves (AdaBN), and the
  source-only baseline would then differ in more than the adversarial loss. (On segshift
  that effect measured small; see docs/adaptseg.md.)

``adv_weight_main = adv_weight_aux = 0`` turns adaptation off: no discriminator is built,
the target never passes through G, and the model is the *source-only* baseline trained
with the same budget (``gankit adapt`` trains both).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.conventions import NO_LABEL
from gankit.errors import GankitError
from gankit.losses import bce_d_loss, non_saturating_g_loss
from gankit.models.base import (
    MAX_CHANNELS,
    Model,
    check_optimizer,
    check_sizes,
    check_weights,
    set_learning_rate,
    two_domains,
)
from gankit.nn import Norm, eval_mode, frozen, norm_layer
from gankit.registry import register_model

LEVELS = ("aux", "main")


def _conv_block(in_ch: int, out_ch: int, norm: Norm, stride: int = 1, dilation: int = 1):
    """3x3 conv (same size, or halved with stride 2) + norm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride, padding=dilation, dilation=dilation),
        norm_layer(norm, out_ch, conv=True),
        nn.ReLU(),
    )


class SegmentationNet(nn.Module):
    """A small dilated FCN with classifiers at two depths, both upsampled to the input.

    Two stride-2 blocks bring (3, H, W) to (2w, H/4, W/4); two dilated blocks (dilation
    2 and 4) then widen the receptive field without losing resolution, as DeepLab's
    dilated ResNet stages do. The auxiliary classifier reads block 3, the main one block 4.

    Args:
        in_channels: image channels C.
        num_classes: K.
        width: w, the first block's channels (then 2w, 4w, 4w).
        norm: normalisation after each conv.
        aux: build the auxiliary classifier (multi-level adaptation).
    """

    def __init__(
        self, in_channels: int, num_classes: int, width: int, norm: Norm, aux: bool
    ) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            _conv_block(in_channels, width, norm), _conv_block(width, width, norm, stride=2)
        )
        self.block2 = _conv_block(width, 2 * width, norm, stride=2)
        self.block3 = _conv_block(2 * width, 4 * width, norm, dilation=2)
        self.block4 = _conv_block(4 * width, 4 * width, norm, dilation=4)
        self.main_classifier = nn.Conv2d(4 * width, num_classes, 3, padding=1)
        self.aux_classifier = nn.Conv2d(4 * width, num_classes, 3, padding=1) if aux else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, C, H, W) images -> ``{"main": (N, K, H, W)}`` logits, plus ``"aux"`` when built."""
        size = x.shape[-2:]
        hidden = self.block3(self.block2(self.block1(x)))
        logits = {"main": self.main_classifier(self.block4(hidden))}
        if self.aux_classifier is not None:
            logits["aux"] = self.aux_classifier(hidden)
        return {
            level: F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            for level, out in logits.items()
        }


def output_discriminator(num_classes: int, resolution: int, width: int) -> nn.Sequential:
    """The paper's fully-convolutional D on (N, K, H, W) softmax maps -> (N, 1, h, w) logits.

    4x4 convolutions with stride 2 and LeakyReLU(0.2), widths w, 2w, 4w, 8w, then a
    4x4 stride-2 conv to one logit per patch; no normalisation. The paper's five
    stride-2 convs would shrink small images below one pixel, so fewer hidden layers are
    used when ``resolution`` < 32 (at least one patch logit remains).
    """
    n_hidden = max(1, min(4, int(math.log2(resolution)) - 1))
    layers: list[nn.Module] = []
    in_ch = num_classes
    for i in range(n_hidden):
        layers += [nn.Conv2d(in_ch, width * 2**i, 4, 2, 1), nn.LeakyReLU(0.2)]
        in_ch = width * 2**i
    layers.append(nn.Conv2d(in_ch, 1, 4, 2, 1))
    return nn.Sequential(*layers)


class AdaptSeg(Model):
    """A two-level segmentation network with one output-space discriminator per level.

    Args:
        data_shape: (C, H, W) images, the same in both domains.
        num_classes: K, the classes of the per-pixel labels.
        levels: ``multi`` (auxiliary and main outputs, one D each) or ``single`` (main
            output only, no auxiliary classifier).
        channels: width w of the segmentation network (w, 2w, 4w, 4w).
        d_channels: width of each discriminator's first layer (the paper's 64).
        norm: normalisation in the segmentation network; see the module docstring on
            why not ``batch``.
        seg_weight_aux: λ_seg of the auxiliary output (the main one is 1).
        adv_weight_main: λ_adv of the main output; 0 with ``adv_weight_aux`` 0 gives the
            source-only baseline.
        adv_weight_aux: λ_adv of the auxiliary output (multi-level only).
        lr: Adam's learning rate of the segmentation network.
        lr_d: Adam's learning rate of the discriminators (β = (0.9, 0.99), the paper's).
        lr_schedule: ``poly`` (``(1 − step/steps)^0.9``, the paper's) or ``constant``.
    """

    task = "segment"
    #: What ``gankit adapt`` changes in the model config for the source-only baseline.
    baseline_overrides: ClassVar[dict[str, float]] = {
        "adv_weight_main": 0.0,
        "adv_weight_aux": 0.0,
    }

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int | None = None,
        *,
        levels: Literal["multi", "single"] = "multi",
        channels: int = 16,
        d_channels: int = 16,
        norm: Norm = "layer",
        seg_weight_aux: float = 0.1,
        adv_weight_main: float = 0.001,
        adv_weight_aux: float = 0.0002,
        lr: float = 1e-3,
        lr_d: float = 1e-4,
        lr_schedule: Literal["poly", "constant"] = "poly",
    ) -> None:
        super().__init__(data_shape, num_classes)
        if len(self.data_shape) != 3:
            raise GankitError(
                f"model: adaptseg segments (C, H, W) images; the data gives items of shape "
                f"{self.data_shape} (use segshift or segfolder:PATH)"
            )
        if not num_classes or num_classes < 2:
            raise GankitError(
                f"model: adaptseg needs per-pixel labels of at least 2 classes; the source has "
                f"num_classes={num_classes} (use segshift or segfolder:PATH)"
            )
        check_sizes(MAX_CHANNELS, channels=channels, d_channels=d_channels)
        check_weights(
            seg_weight_aux=seg_weight_aux,
            adv_weight_main=adv_weight_main,
            adv_weight_aux=adv_weight_aux,
        )
        check_optimizer(lr=lr, lr_d=lr_d)
        self.levels, self.lr, self.lr_d, self.lr_schedule = levels, lr, lr_d, lr_schedule
        multi = levels == "multi"
        self.seg_weights = {"main": 1.0, "aux": seg_weight_aux} if multi else {"main": 1.0}
        adv = (
            {"main": adv_weight_main, "aux": adv_weight_aux} if multi else {"main": adv_weight_main}
        )
        # A level with weight 0 has no adversary at all: nothing to train, nothing to save.
        self.adv_weights = {level: w for level, w in adv.items() if w > 0}
        self.segmenter = SegmentationNet(self.data_shape[0], num_classes, channels, norm, aux=multi)
        # D_main and D_aux are direct children, not a ModuleDict: under DDP each network
        # is wrapped on its own (gankit.training.distributed), and frozen() must reach
        # each D's no_sync().
        for level in self.adv_weights:
            discriminator = output_discriminator(num_classes, self.data_shape[-1], d_channels)
            setattr(self, f"D_{level}", discriminator)

    @property
    def discriminators(self) -> dict[str, nn.Module]:
        """The output-space discriminators by level (``main``, ``aux``); empty for source-only."""
        return {level: getattr(self, f"D_{level}") for level in self.adv_weights}

    @property
    def adapting(self) -> bool:
        return bool(self.adv_weights)

    # ------------------------------------------------------------------ training
    def training_data(self, bundle) -> dict:
        """Labelled source scenes ``x``, ``y`` and unlabelled target scenes ``x_b``."""
        return two_domains(self, bundle)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"segmenter": torch.optim.Adam(self.segmenter.parameters(), lr=self.lr)}
        if self.adapting:
            # One Adam over every D: Adam is per-parameter, so this equals one per level.
            d_params = [p for d in self.discriminators.values() for p in d.parameters()]
            optimizers["D"] = torch.optim.Adam(d_params, lr=self.lr_d, betas=(0.9, 0.99))
        return optimizers

    def _decay(self, step: int) -> None:
        if self.lr_schedule != "poly":
            return
        factor = (1.0 - self.progress(step)) ** 0.9
        set_learning_rate(self.optimizers["segmenter"], self.lr * factor)
        if "D" in self.optimizers:
            set_learning_rate(self.optimizers["D"], self.lr_d * factor)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        source, labels = batch["x"], batch["y"]
        if labels.dim() != 3:
            raise GankitError(
                f"model: adaptseg trains on (H, W) label maps; the data gives labels of shape "
                f"{tuple(labels.shape[1:])} per item (use segshift or segfolder:PATH)"
            )
        self._decay(step)
        stats: dict[str, float] = {}

        # --- segmentation network: L_seg on source, L_adv on target through frozen Ds
        seg_opt = self.optimizers["segmenter"]
        seg_opt.zero_grad(set_to_none=True)
        source_logits = self.segmenter(source)
        loss = source_logits["main"].new_zeros(())
        for level, weight in self.seg_weights.items():
            seg_loss = F.cross_entropy(source_logits[level], labels, ignore_index=NO_LABEL)
            loss = loss + weight * seg_loss
            stats[f"loss_seg_{level}"] = seg_loss.item()
        if self.adapting:
            # The source-only baseline never runs the target through the network.
            target_logits = self.segmenter(batch["x_b"])
            for level, weight in self.adv_weights.items():
                discriminator = self.discriminators[level]
                with frozen(discriminator):
                    d_target = discriminator(target_logits[level].softmax(1))
                adv_loss = non_saturating_g_loss(d_target)  # target outputs called "source"
                loss = loss + weight * adv_loss
                stats[f"loss_adv_{level}"] = adv_loss.item()
        self.backward(loss)
        self.step(seg_opt)
        if not self.adapting:
            return stats

        # --- discriminators: source outputs are "real" (z = 1), target outputs "fake"
        # (z = 0); detached, so this step does not reach the segmentation network.
        d_opt = self.optimizers["D"]
        d_opt.zero_grad(set_to_none=True)
        d_loss_total = source.new_zeros(())
        for level, discriminator in self.discriminators.items():
            d_source = discriminator(source_logits[level].detach().softmax(1))
            d_target = discriminator(target_logits[level].detach().softmax(1))
            # The official code halves each domain's term; under Adam that scale is moot.
            d_loss = bce_d_loss(d_source, d_target)
            d_loss_total = d_loss_total + d_loss
            stats[f"loss_d_{level}"] = d_loss.item()
            # 0.5 means D cannot tell target outputs from source outputs
            correct = torch.cat([(d_source > 0).flatten(), (d_target < 0).flatten()])
            stats[f"d_acc_{level}"] = correct.float().mean().item()
        self.backward(d_loss_total)
        self.step(d_opt)
        return stats

    # ------------------------------------------------------------------ task "segment"
    @torch.no_grad()
    def segment(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, C, H, W) images -> per-level (N, K, H, W) class probabilities, in eval mode."""
        with eval_mode(self):
            chunks = [self.segmenter(c.to(self.device)) for c in x.split(256)]
            return {
                level: torch.cat([c[level] for c in chunks]).softmax(1).cpu() for level in chunks[0]
            }

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, H, W) class maps from the main output, in eval mode."""
        return self.segment(x)["main"].argmax(dim=1)

    def predictor(self) -> nn.Module:
        """(N, C, H, W) -> (N, K, H, W) logits of the main (deepest) output."""
        return MainOutput(self.segmenter)


class MainOutput(nn.Module):
    """A segmenter's main output alone: the map ``predict`` reads."""

    def __init__(self, segmenter: nn.Module) -> None:
        super().__init__()
        self.segmenter = segmenter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmenter(x)["main"]


# --------------------------------------------------------------------------- variants
register_model(
    "adaptseg",
    AdaptSeg,
    "AdaptSegNet: segmentation with output-space discriminators at two levels (Tsai 2018)",
)
register_model(
    "adaptseg_single",
    AdaptSeg,
    "AdaptSegNet, single level: one output-space discriminator on the main output",
    levels="single",
)
