"""Per-sample seeded noise (NVlabs/edm ``generate.py`` StackedRandomGenerator idea).

A video must depend only on (model, prompt, seed, sampler settings), never on the batch it was
generated in: each sample draws its initial and its ancestral-step noise from its own generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class SeededNoise:
    """One ``torch.Generator`` per sample, seeded with ``seeds[i]``, on ``device``.

    ``randn(shape)`` returns ``(B, *shape)``; calling it on a tensor ``x`` (the sampler's ``noise``
    argument) returns unit noise like ``x``, each row from its own generator. Results depend on the
    device's generator (CPU and CUDA streams differ), not on the batch composition.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("SeededNoise needs at least one seed")
        self.seeds, self.device = seeds, torch.device(device)
        self.generators = [torch.Generator(self.device).manual_seed(s) for s in seeds]

    def __len__(self) -> int:
        return len(self.seeds)

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Unit normal noise of shape ``(B, *shape)`` (``shape`` excludes the batch dim)."""
        return torch.stack(
            [
                torch.randn(tuple(shape), generator=g, device=self.device, dtype=dtype)
                for g in self.generators
            ]
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != len(self.generators):
            raise ValueError(
                f"batch of {x.shape[0]} samples but SeededNoise holds {len(self.generators)} seeds"
            )
        return self.randn(x.shape[1:], dtype=x.dtype).to(x.device)
