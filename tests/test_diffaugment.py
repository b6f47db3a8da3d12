"""DiffAugment (Zhao et al. 2020): differentiable, seeded, shape-keeping transformations
that do what their names say."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.nn import DIFFAUGMENT_POLICIES, diff_augment, parse_diffaugment

ALL = ("color", "translation", "cutout")


def images(n: int = 6, channels: int = 3, size: int = 8) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_parse_policies():
    assert parse_diffaugment("") == ()
    assert parse_diffaugment(" color, cutout ") == ("color", "cutout")
    assert set(DIFFAUGMENT_POLICIES) == set(ALL)
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'flip'; valid: color"):
        parse_diffaugment("color,flip")


def test_off_is_the_identity():
    x = images()
    assert diff_augment(x, ()) is x


@pytest.mark.parametrize("policy", [*[(p,) for p in ALL], ALL])
def test_shapes_kept_and_gradients_reach_the_input(policy):
    x = images().requires_grad_(True)
    out = diff_augment(x, policy)
    assert out.shape == x.shape and out.dtype == x.dtype
    (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), x)
    assert grad.abs().sum() > 0  # the transformation is differentiable, not a constant


@pytest.mark.parametrize("policy", [*[(p,) for p in ALL], ALL])
def test_same_seed_same_augmentation(policy):
    x = images()
    torch.manual_seed(3)
    first = diff_augment(x, policy)
    torch.manual_seed(3)
    again = diff_augment(x, policy)
    torch.manual_seed(4)
    other = diff_augment(x, policy)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_translation_shifts_each_image_by_at_most_an_eighth():
    torch.manual_seed(0)
    x = images(n=32, size=16)
    out = diff_augment(x, ("translation",))
    shifts = []
    for image, moved in zip(x, out):
        # The one shift (dy, dx) within 2 pixels (16 / 8) that maps image onto moved,
        # with zeros where the shifted image left the frame.
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(F.pad(image, (2, 2, 2, 2))[:, 2 - dy : 18 - dy, 2 - dx : 18 - dx], moved)
        ]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 5  # each image draws its own shift


def test_cutout_zeroes_one_square_of_half_the_size_and_keeps_the_rest():
    torch.manual_seed(0)
    x = images(n=32, channels=2, size=8) + 3.0  # no pixel is 0 before the cutout
    out = diff_augment(x, ("cutout",))
    whole_squares = 0
    for image, cut in zip(x, out):
        zero = cut[0] == 0
        assert torch.equal(zero, cut[1] == 0)  # the same square in every channel
        assert torch.equal(cut[:, ~zero], image[:, ~zero])  # the rest is untouched
        rows, cols = zero.any(dim=1).sum().item(), zero.any(dim=0).sum().item()
        assert zero.sum().item() == rows * cols  # a rectangle...
        assert 1 <= rows <= 4 and 1 <= cols <= 4  # ...of at most half the size, cut by
        whole_squares += rows == cols == 4  # the border when its centre is near it
    assert whole_squares > 0


def test_color_is_an_affine_map_of_each_grey_image():
    # On one channel, saturation does nothing: brightness and contrast give
    # out = a x + b per image, with the contrast factor a in [0.5, 1.5).
    torch.manual_seed(0)
    x = images(n=16, channels=1)
    out = diff_augment(x, ("color",))
    for image, coloured in zip(x.flatten(1), out.flatten(1)):
        design = torch.stack([image, torch.ones_like(image)], dim=1)
        a, b = torch.linalg.lstsq(design, coloured.unsqueeze(1)).solution.squeeze(1)
        assert 0.5 <= a.item() < 1.5
        assert torch.allclose(design @ torch.stack([a, b]), coloured, atol=1e-5)
    assert not torch.allclose(out, x)


def test_color_changes_the_saturation_of_colour_images():
    torch.manual_seed(0)
    x = images(n=16)
    out = diff_augment(x, ("color",))
    spread = lambda t: (t - t.mean(dim=1, keepdim=True)).abs().mean(dim=(1, 2, 3))  # noqa: E731
    ratio = spread(out) / spread(x)
    assert ratio.min() < 0.5 and ratio.max() > 1.0  # some images greyer, some more vivid
