"""``gankit translate RUN``: translate image files with a CycleGAN run.

Inputs are read like a data source reads them (short side resized to the run's
resolution, centre square cropped, converted to the input domain's channels), translated
by G_AB (``AtoB``) or G_BA (``BtoA``), and written as PNGs at the run's resolution. With
strips, each input also gets ``NAME_strip.png`` (input | translated | reconstructed,
enlarged), and ``strips.png`` shows the strips of the first 16 inputs, four per row.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.errors import GankitError, choices
from gankit.explore.pictures import writing
from gankit.files import atomic_write, refuse_inputs
from gankit.images import image_grid, to_pil
from gankit.runs.load import Run

#: Strips in the overview picture ``strips.png``, and strips per row.
OVERVIEW_STRIPS, OVERVIEW_PER_ROW = 16, 4
#: The most input files one call translates (0.5 GB of 64 px RGB inputs), and how many
#: go through the generators at once (their working memory).
MAX_INPUTS, TRANSLATE_CHUNK = 10_000, 256


def _check_translator(run: Run) -> None:
    model = run.model
    if model.task == "translate":
        return
    data = run.config["data"]
    target = f" -> {data['target']}" if data.get("target") else ""
    raise GankitError(
        f"run '{run.path.name}' is a '{model.model_name}' run on {data['name']}{target}, not an "
        "image translator; translate needs a CycleGAN run (model cyclegan or cyclegan_small)"
    )


def read_inputs(path: str | Path, shape: tuple[int, ...]) -> tuple[list[Path], torch.Tensor]:
    """An image file, or every image under a folder, as (N, C, R, R) in [-1, 1].

    Raises:
        GankitError: the path does not exist, the folder holds no images, or a file
            cannot be decoded (named).
    """
    from gankit.data.folders import UnreadableImage, decode_image, list_images

    path = Path(path).expanduser()
    if not path.exists():
        raise GankitError(f"--input '{path}' does not exist; give an image file or a folder")
    files = list_images(path) if path.is_dir() else [path]
    if not files:
        raise GankitError(f"--input '{path}' holds no images (png, jpg, bmp, gif, tif, webp)")
    if len(files) > MAX_INPUTS:
        raise GankitError(
            f"--input '{path}' holds {len(files)} images; one call translates at most "
            f"{MAX_INPUTS}: split the folder"
        )
    images = []
    for file in files:
        try:
            images.append(decode_image(file, shape[-1], channels=shape[0]))
        except UnreadableImage as err:
            raise GankitError(f"cannot read image {file} ({err.reason})") from None
    return files, torch.stack(images)


def translate_files(
    run: Run,
    direction: str,
    input_path: str | Path,
    out_dir: str | Path,
    strips: bool = False,
    overwrite: bool = False,
    amount: float | None = None,
) -> list[Path]:
    """Translate the images at ``input_path`` into ``out_dir``; returns the files written.

    Nothing is written when any output already exists and ``overwrite`` is False.
    ``amount`` belongs to change runs: a translator refuses it.
    """
    _check_translator(run)
    if amount is not None:
        raise GankitError(
            f"--amount applies to change runs; run '{run.path.name}' is a "
            f"'{run.model.model_name}' translator, which always translates fully: drop --amount"
        )
    model = run.model
    if direction not in model.directions:
        raise GankitError(
            f"--direction must be one of {choices(model.directions)}, got '{direction}'"
        )
    root = Path(input_path).expanduser()
    files, images = read_inputs(root, model.input_shape(direction))
    # sampler_net is G_AB, or its EMA when the run kept one; round_trip uses it for the
    # A -> B half of either direction
    trips = [
        model.round_trip(chunk, direction, run.sampler_net)
        for chunk in images.split(TRANSLATE_CHUNK)
    ]
    translated = torch.cat([fake for fake, _ in trips])
    reconstructed = torch.cat([back for _, back in trips])

    out = Path(out_dir).expanduser()
    names = [
        (f.relative_to(root) if root.is_dir() else Path(f.name)).with_suffix("") for f in files
    ]
    planned = {}
    for name, source, fake, back in zip(names, images, translated, reconstructed):
        target = out / name.with_name(name.name + ".png")
        if target in planned:
            raise GankitError(f"two inputs would both be written to {target}; rename one of them")
        planned[target] = to_pil(fake)
        if strips:
            strip = image_grid(
                [[source, fake, back]], scale=_strip_scale(source), column_labels=HEADERS
            )
            planned[out / name.with_name(name.name + "_strip.png")] = strip
    if strips:
        triples = list(zip(images, translated, reconstructed))[:OVERVIEW_STRIPS]
        gap = torch.ones_like(translated[0])  # a white tile between neighbouring strips
        rows = [
            [tile for triple in triples[i : i + OVERVIEW_PER_ROW] for tile in (*triple, gap)][:-1]
            for i in range(0, len(triples), OVERVIEW_PER_ROW)
        ]
        headers = [*HEADERS, ""] * min(OVERVIEW_PER_ROW, len(triples))
        planned[out / "strips.png"] = image_grid(
            rows, scale=_strip_scale(images[0]), column_labels=headers[:-1]
        )
    return save_planned(planned, overwrite, files)


def save_planned(planned: dict, overwrite: bool, inputs: list[Path]) -> list[Path]:
    """Write ``{path: Pillow image}``; nothing is written when one of the paths exists
    and ``overwrite`` is False, or when one is among the ``inputs``. Returns the paths."""
    refuse_inputs(planned, inputs)
    existing = [p for p in planned if p.exists()]
    if existing and not overwrite:
        raise GankitError(
            f"'{existing[0]}' already exists ({len(existing)} of {len(planned)} outputs); "
            "pass --overwrite or choose another --out"
        )
    for path, picture in planned.items():
        with writing(path):
            atomic_write(path, picture.save, keep_suffix=True)
    return list(planned)


#: The column headers of a strip.
HEADERS = ["input", "translated", "reconstructed"]


def _strip_scale(image: torch.Tensor) -> int:
    """Tiles of about 64 px, wide enough for their headers: small images enlarged by
    nearest neighbour."""
    return max(1, 64 // image.shape[-1])
