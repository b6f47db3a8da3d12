"""What a language model (task ``sequence``) writes: previews, passages, the temperature curve.

- previews during training: ``samples/step_XXXXXXXX.txt``, two held-out prompts
  continued at T = 0.5 and T = 1.0 from a seed saved with the run, so previews compare
  across steps and resumes;
- ``gankit generate RUN [--seed-text ...]``: one passage per temperature
  (:func:`passages`), continuing the seed text, or by default a start drawn from the
  training text (:func:`training_seed_text`);
- ``gankit explore RUN --what temperature``: word share and entropy of samples over a
  range of temperatures, the trade-off between real words and variety, as a labelled
  picture and the samples it scored as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gankit.data import load_data
from gankit.errors import GankitError
from gankit.explore.explore import ExploreOptions, Picture
from gankit.explore.pictures import pyplot
from gankit.files import atomic_write_text
from gankit.metrics.text import check_vocabulary, held_out_prompts, temperature_scores
from gankit.runs.load import Run

#: Temperatures of every preview, and the tokens each preview continues its prompt by.
PREVIEW_TEMPERATURES = (0.5, 1.0)
PREVIEW_PROMPTS, PREVIEW_LENGTH = 2, 300
#: The temperatures of the course (Chollet, Deep Learning with Python, 8.1).
COURSE_TEMPERATURES = (0.2, 0.5, 1.0, 1.2)
#: ``explore --what temperature``: the curve's temperatures.
CURVE_TEMPERATURES = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.2, 1.5, 2.0)


class TextPreviews:
    """Held-out prompts continued at :data:`PREVIEW_TEMPERATURES`, one text file per step."""

    def __init__(self, model, bundle, seed: int) -> None:
        self.model, self.bundle = model, bundle

    def inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        prompt_length = min(self.bundle.shape[0], 32)
        prompts = held_out_prompts(self.bundle, min(n, PREVIEW_PROMPTS), prompt_length)
        return {"prompts": prompts, "seed": torch.randint(2**31, (1,), generator=generator)}

    def draw(self, step: int, inputs, net: nn.Module | None, paths, title: str) -> Path:
        lines = [f"# {title}", ""]
        for temperature in PREVIEW_TEMPERATURES:
            generator = torch.Generator().manual_seed(int(inputs["seed"]))
            sampled = self.model.sample_tokens(
                inputs["prompts"], PREVIEW_LENGTH, temperature, generator=generator
            )
            for prompt, tokens in zip(inputs["prompts"], sampled.tokens):
                held_out = self.model.decode(prompt)
                lines.append(f"--- temperature {temperature:g}, held-out prompt {held_out!r} ---")
                lines += [self.model.decode(tokens), ""]
        path = paths.samples / f"step_{step:08d}.txt"
        atomic_write_text(path, "\n".join(lines))
        return path


@dataclass
class Passage:
    """One continuation of the seed text: how it was drawn, and the text."""

    label: str
    text: str


#: The window a default seed text is cut from, in tokens: about 60 characters, or
#: about a dozen words with their spaces.
SEED_WINDOW = {"char": 60, "word": 24}


def training_seed_text(run: Run, seed: int = 0) -> tuple[str, int]:
    """A seed text drawn from the run's training text, and the token offset it starts at.

    ``seed`` picks the window of :data:`SEED_WINDOW` tokens, so the same seed gives the
    same text; the window is trimmed to whole words (from after its first space to its
    last space, kept: a continuation then starts a new word) where it has spaces.
    """
    ids = load_data(run.config["data"]).extra["train_ids"]
    window = min(SEED_WINDOW[run.model.level], len(ids))
    generator = torch.Generator().manual_seed(seed)
    offset = int(torch.randint(len(ids) - window + 1, (1,), generator=generator))
    text = run.model.decode(ids[offset : offset + window])
    first, last = _first_space(text), _last_space(text)
    if first is not None and last is not None and first < last:
        return text[first + 1 : last + 1], offset
    return text, offset


def _first_space(text: str) -> int | None:
    return next((i for i, c in enumerate(text) if c.isspace()), None)


def _last_space(text: str) -> int | None:
    return next((i for i in range(len(text) - 1, -1, -1) if text[i].isspace()), None)


def passages(
    run: Run,
    seed_text: str,
    temperatures: tuple[float, ...] = COURSE_TEMPERATURES,
    length: int = 400,
    top_k: int | None = None,
    greedy: bool = False,
    seed: int = 0,
) -> list[Passage]:
    """The seed text continued by ``length`` tokens at each temperature (or greedily),
    each drawn with a generator seeded by ``seed``.

    Raises:
        GankitError: a temperature is <= 0, top-k or
            the length is out of range, or the seed text has characters the run's
            vocabulary lacks.
    """
    model = run.model
    bad = [t for t in temperatures if not t > 0]
    if bad:
        raise GankitError(f"--temperature must be > 0, got {bad[0]:g}")
    if top_k is not None and not 1 <= top_k <= model.num_classes:
        raise GankitError(
            f"--top-k must be in 1..{model.num_classes} (the vocabulary), got {top_k}"
        )
    prompt = model.encode(seed_text).unsqueeze(0)
    runs = [("greedy", 1.0)] if greedy else [(f"temperature {t:g}", t) for t in temperatures]
    out = []
    for label, temperature in runs:
        generator = torch.Generator().manual_seed(seed)
        sampled = model.sample_tokens(prompt, length, temperature, top_k, greedy, generator)
        suffix = f", top-k {top_k}" if top_k is not None and not greedy else ""
        out.append(Passage(label + suffix, seed_text + model.decode(sampled.tokens[0])))
    return out


def temperature_curve(run: Run, options: ExploreOptions) -> list[Picture]:
    """Word share and entropy of ``options.n`` samples of 200 tokens per temperature."""
    bundle = load_data(run.config["data"])
    check_vocabulary(run.model, bundle)
    n = min(options.n, 32)
    scores, samples = temperature_scores(
        run.model, bundle, CURVE_TEMPERATURES, n=n, seed=options.seed
    )
    temperatures = list(CURVE_TEMPERATURES)
    share = [100 * scores[f"word_share_t{t:g}"] for t in temperatures]
    entropy = [scores[f"entropy_t{t:g}"] for t in temperatures]
    title = f"{run.path.name} step {run.step}: {n} samples of 200 tokens per temperature"

    def picture(path: Path) -> None:
        plt = pyplot()
        fig, left = plt.subplots(figsize=(6, 4), dpi=100)
        left.plot(
            temperatures, share, "o-", color="#1f77b4", label="sampled words found in the corpus"
        )
        left.axhline(
            100 * scores["word_share_real"], color="#1f77b4", ls=":", label="the held-out text's"
        )
        left.set_xlabel("temperature T")
        left.set_ylabel("word share (%)", color="#1f77b4")
        right = left.twinx()
        right.plot(temperatures, entropy, "s--", color="#d62728", label="entropy of p_T")
        right.set_ylabel("entropy of p_T (bits per token)", color="#d62728")
        handles = left.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        left.legend(handles[0] + more[0], handles[1] + more[1], loc="center left", fontsize=8)
        left.set_title(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    def text(path: Path) -> None:
        lines = [f"# {title}", ""]
        for t in temperatures:
            lines.append(
                f"--- temperature {t:g}: word share {share[temperatures.index(t)]:.1f} %, "
                f"entropy {entropy[temperatures.index(t)]:.2f} bits ---"
            )
            lines += [samples[f"{t:g}"], ""]
        path.write_text("\n".join(lines))

    return [Picture("temperature.png", picture), Picture("temperature.txt", text)]
