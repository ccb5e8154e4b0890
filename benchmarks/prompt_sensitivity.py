"""How much a MovingShapes model's output depends on each prompt word, against what the data ask.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prompt_sensitivity.py MODEL [MODEL ...]  # seconds

For each exported model (``vidiff export`` folder or shipped name, pixel U-Net or latent DiT) and
noise level, the denoiser sees one fixed noise clip under four prompts, ``a red circle moving
left`` and the three that each change one word (direction -> ``right``, colour -> ``green``, shape
-> ``square``); its clean-clip prediction ``x0`` is decoded to pixels in [-1, 1] (through the VAE
for a latent model), and the table gives the mean absolute difference of each from the first
prompt's. At the highest noise level the input holds almost no signal, so ``x0`` is about
``E[x0 | prompt]``: the right amount of dependence on a word is then the difference of the data's
*mean clips* for the two prompts, printed in the last row (``data``, from ``--num-clips`` training
clips). Levels are steps 0, 8 and 16 of the model's own 32-step sampling schedule (``sigma``).

This is the diagnosis in docs/recipe.md, "Why direction comes last", and docs/latent-dit.md: a net
whose direction column stays near 0 while the data row says ~0.09 has not learnt where a prompted
object should be.
"""

from __future__ import annotations

import argparse

import torch

from vidiff.data.shapes import MovingShapes
from vidiff.pipeline import VideoPipeline
from vidiff.registry import resolve_model

BASE = "a red circle moving left"
CHANGED = {
    "direction": "a red circle moving right",
    "colour": "a green circle moving left",
    "shape": "a red square moving left",
}
STEPS = (0, 8, 16)  # of the model's own 32-step schedule


@torch.no_grad()
def model_rows(model_dir: str, seed: int) -> list[list[str]]:
    pipe = VideoPipeline.load(resolve_model(model_dir)).eval()
    prompts = [BASE, *CHANGED.values()]
    context, mask = pipe.text_encoder.encode(prompts)
    c, t, h, w = pipe.sample_shape
    noise = torch.randn(1, c, t, h, w, generator=torch.Generator().manual_seed(seed))
    sigmas = pipe.denoiser.default_sigmas(32)
    rows = []
    for step in STEPS:  # no known frames (a frame-conditioned net's default)
        sigma = float(sigmas[step])
        x0 = pipe.denoiser(
            noise.expand(4, -1, -1, -1, -1) * sigma, sigma, context=context, context_mask=mask
        )
        y = pipe.from_model_space(x0) * 2 - 1
        diffs = [(y[k] - y[0]).abs().mean().item() for k in range(1, 4)]
        rows.append([model_dir, f"{sigma:.3g}", *(f"{d:.4f}" for d in diffs)])
    return rows


def data_row(num_clips: int) -> list[str]:
    """Mean |E[x0 | changed prompt] - E[x0 | base prompt]|, each word's means over the clips that
    have it (the other words vary), as at the highest noise level."""
    ds = MovingShapes(split="train")
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for i in range(num_clips):
        item = ds[i]
        words = item["caption"].split()
        if len(words) != 5:  # one object: a COLOUR SHAPE moving DIRECTION
            continue
        x0 = item["video"] * 2 - 1
        for word in (words[1], words[2], words[4]):
            sums[word] = sums.get(word, 0) + x0
            counts[word] = counts.get(word, 0) + 1
    mean = {k: sums[k] / counts[k] for k in sums}
    diffs = [
        (mean[a] - mean[b]).abs().mean().item()
        for a, b in (("right", "left"), ("green", "red"), ("square", "circle"))
    ]
    return [f"data ({num_clips} clips)", "max", *(f"{d:.4f}" for d in diffs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="exported model folders or shipped names")
    ap.add_argument("--num-clips", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rows = [r for m in a.models for r in model_rows(m, a.seed)] + [data_row(a.num_clips)]
    header = ["model", "sigma", *CHANGED]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * n for n in widths], *rows]:
        print("  ".join(str(v).ljust(n) for v, n in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
