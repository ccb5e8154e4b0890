"""The prompt rendered as a coarse clip: ``layout_prior`` of the U-Net and the DiT.

At the highest noise levels the best denoiser outputs the prompt's *mean clip*; for "moving right"
that is a band on the left early and on the right late. A network reaches such a layout only
through a product of prompt, frame and position features, and that regime is a few percent of
training, so it learns the layout slowly if at all while colour and shape are already right
(docs/recipe.md, "Why direction comes last"; docs/latent-dit.md for the DiT). :class:`LayoutPrior`
learns that mean clip from the pooled prompt directly, through one small MLP, as extra input
channels: a learnt, end-to-end version of the text-to-layout stage of layout-guided video
generation (LVD, Lian et al. 2023). Its read-out starts at zero, so a net with it computes what it
would without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidiff.nn.embeddings import masked_mean

LAYOUT_SIZE = 8  # frames, rows and columns of the coarse clip


class LayoutPrior(nn.Sequential):
    """``MLP(pooled prompt) -> (channels, 8, 8, 8)`` (frames x rows x columns), trilinearly resized
    to the clip it joins; the parameters are ``0`` and ``2`` (Linear, SiLU, Linear) as the U-Net's
    first layout read-out had them."""

    def __init__(self, context_dim: int, hidden: int, channels: int) -> None:
        n = LAYOUT_SIZE
        super().__init__(
            nn.Linear(context_dim, hidden), nn.SiLU(), nn.Linear(hidden, channels * n**3)
        )
        nn.init.zeros_(self[2].weight)
        nn.init.zeros_(self[2].bias)
        self.channels = channels

    def render(
        self, context: torch.Tensor | None, context_mask: torch.Tensor | None, like: torch.Tensor
    ) -> torch.Tensor:
        """The coarse clip ``(B, channels, T, H, W)`` at ``like``'s frames and size; zeros without a
        prompt."""
        b, _, t, h, w = like.shape
        if context is None:
            return like.new_zeros(b, self.channels, t, h, w)
        n = LAYOUT_SIZE
        coarse = self(masked_mean(context, context_mask)).view(b, self.channels, n, n, n)
        return F.interpolate(coarse, size=(t, h, w), mode="trilinear").to(like.dtype)
