"""``unpaired:PATH``: two unpaired image domains in CycleGAN's layout, PATH/trainA,
trainB, testA and testB.

A two-domain source: it returns domain A's bundle with domain B's as ``domain_b``.
"""

from __future__ import annotations

from pathlib import Path

from gankit.data.base import DataBundle, check_resolution
from gankit.data.folders import MODES, folder
from gankit.errors import GankitError


def unpaired(
    *, path: str, resolution: int = 32, channels: int = 3, skip_bad: bool = False
) -> DataBundle:
    """Two unpaired image domains in CycleGAN's layout: (C, R, R) images in [-1, 1].

    PATH/trainA and PATH/trainB are required; PATH/testA and PATH/testB are optional
    (a missing one leaves that domain's ``test`` as None, noted in ``info``). Images
    sit directly inside each folder and are unlabelled (``NO_LABEL``).

    Args:
        path: the folder holding trainA, trainB, testA, testB.
        resolution: side R: short side resized, centre cropped (as ``folder:``).
        channels: 1 for grayscale, 3 for RGB.
        skip_bad: skip unreadable files instead of failing.

    Returns:
        Domain A's bundle, with domain B's as ``domain_b``.

    Raises:
        GankitError: a bad option, a missing trainA/trainB, or an unreadable image.
    """
    where = "data (unpaired)"
    check_resolution(resolution, where)
    if channels not in MODES:
        raise GankitError(f"{where}: channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    root = Path(path).expanduser()
    for required in ("trainA", "trainB"):
        if not (root / required).is_dir():
            raise GankitError(
                f"{where}: missing folder '{required}' in {root}; expected the CycleGAN "
                "layout PATH/trainA, PATH/trainB and optionally PATH/testA, PATH/testB"
            )

    def read(subfolder: str):
        # The `folder:` source reads each folder: decoded into memory when it holds at
        # most 20000 images (every CycleGAN dataset does), streamed from disk otherwise.
        if not (root / subfolder).is_dir():
            return None
        images = folder(
            path=str(root / subfolder), resolution=resolution, channels=channels, skip_bad=skip_bad
        )
        return images.train

    bundles = {}
    for domain in "AB":
        train, test = read(f"train{domain}"), read(f"test{domain}")
        info = f"unpaired {root} domain {domain}: {len(train)} train / "
        info += f"{len(test)} test images" if test is not None else f"no test{domain} folder"
        bundles[domain] = DataBundle(
            name=f"unpaired:{path}" + ("" if domain == "A" else " (B)"),
            kind="image",
            train=train,
            test=test,
            shape=(channels, resolution, resolution),
            info=f"{info}, {resolution}px",
        )
    bundles["A"].domain_b = bundles["B"]
    return bundles["A"]
