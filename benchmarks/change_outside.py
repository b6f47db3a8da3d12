"""gankit's ``individual_error`` against an outside re-implementation, through files.

The check of the change family's per-individual score from outside the library: this
script re-implements the operator from ``docs/change.md`` with numpy and scipy (not
gankit's code), writes held-out scikit-learn digits as PNG files, changes them with
``gankit translate RUN --amount m`` on a grid of m, reads the PNGs back, and computes

    individual_error = Σ ||G(x, m) − op(x, m)||₁ / Σ ||x − op(x, m)||₁

over every item and every m of the grid (a ratio of sums, as gankit's; the grid's
uniform m stands in for gankit's m ~ U(0, 1)). It prints this beside the
``individual_error`` of ``gankit eval RUN`` and their relative difference.

The operators, on ink ``u = (x + 1) / 2`` in [0, 1]:

- ``thicken``: ``u + m·(dilate₃ₓ₃(u) − u)``, the grey dilation by a 3x3 square;
- ``fade``: ``u·(1 − 0.8 m)``.

What differs from gankit's own score: the PNG files hold 8-bit values (a rounding of at
most 1/255 per pixel in and out), the held-out digits are all 360 of the fixed test split
(gankit's eval scores up to ``--n``), and m runs over a grid instead of one draw per item.

    PYTHONPATH=src python benchmarks/change_outside.py runs/NAME --operator thicken
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import grey_dilation

from common import command_line

#: The digits' fixed test split, as docs/datasets describe it: stratified, 20 %, seed 0.
TEST_FRACTION, SPLIT_SEED = 0.2, 0
GRID = (np.arange(10) + 0.5) / 10  # midpoints: the mean over m ~ U(0, 1) by the midpoint rule


def operator(name: str, ink: np.ndarray, m: float) -> np.ndarray:
    """(N, H, W) ink in [0, 1] changed by m, as docs/change.md defines it."""
    if name == "thicken":
        dilated = grey_dilation(ink, size=(1, 3, 3), mode="constant", cval=0.0)
        return ink + m * (dilated - ink)
    if name == "fade":
        return ink * (1.0 - 0.8 * m)
    raise SystemExit(f"change_outside: operator must be thicken or fade, got '{name}'")


def held_out_ink() -> np.ndarray:
    """The 360 test digits as (N, 8, 8) ink in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    raw = load_digits()
    _, test = train_test_split(np.arange(len(raw.target)), test_size=TEST_FRACTION,
                               random_state=SPLIT_SEED, stratify=raw.target)  # fmt: skip
    return raw.images[test] / 16.0


def write_pngs(ink: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, item in enumerate(ink):
        Image.fromarray(np.round(item * 255).astype(np.uint8), mode="L").save(
            folder / f"{i:04d}.png"
        )


def read_pngs(folder: Path, n: int) -> np.ndarray:
    return np.stack([np.asarray(Image.open(folder / f"{i:04d}.png").convert("L"), dtype=np.float64)
                     for i in range(n)]) / 255.0  # fmt: skip


def gankit(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"gankit {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a trained change run on digits-change")
    parser.add_argument("--operator", required=True, choices=["thicken", "fade"])
    parser.add_argument("--n", type=int, default=360, help="gankit eval's --n")
    args = parser.parse_args()
    ink = held_out_ink()
    own = change = 0.0
    with tempfile.TemporaryDirectory(prefix="gankit-outside-") as work:
        inputs = Path(work) / "in"
        write_pngs(ink, inputs)
        x = read_pngs(inputs, len(ink))  # what gankit reads: the 8-bit values
        for m in GRID:
            out = Path(work) / f"m{m:.2f}"
            gankit("translate", args.run, "--amount", str(m), "--input", str(inputs),
                   "--out", str(out))  # fmt: skip
            truth = operator(args.operator, x, m)
            own += np.abs(read_pngs(out, len(ink)) - truth).sum()
            change += np.abs(x - truth).sum()
        outside = own / change
        gankit("eval", args.run, "--n", str(args.n), "--train-evaluator")
    scores = json.loads((Path(args.run) / "eval.json").read_text())["scores"]
    inside = scores["individual_error"]
    print(f"individual_error: outside {outside:.3f} ({len(ink)} digits x {len(GRID)} amounts "
          f"through PNG files), gankit eval {inside:.3f}; relative difference "
          f"{abs(outside - inside) / inside:.1%}")  # fmt: skip
    print(command_line())


if __name__ == "__main__":
    main()
