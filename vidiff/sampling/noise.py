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

    def video(
        self,
        shape: Sequence[int],
        noise_correlation: float = 0.0,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Initial noise ``(B, C, T, ...)`` whose frames share a part: frame ``t`` gets
        ``sqrt(1 - rho) * own_t + sqrt(rho) * shared`` with ``rho = noise_correlation``, so every
        frame stays unit normal (what the spatial layers were trained on) while any two frames'
        noise correlates by ``rho`` (the mixed noise prior of PYoCo, Ge et al. 2023, here used at
        sampling time only). Residual noise the denoiser leaves then varies less from frame to
        frame: less background flicker, at some cost in motion (measured in
        docs/default-model.md). ``rho = 0`` draws exactly :meth:`randn` ``(shape)``; the shared part is drawn
        after it, from the same generators.
        """
        rho = float(noise_correlation)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"frame noise correlation must be in [0, 1), got {rho}")
        own = self.randn(shape, dtype=dtype)
        if rho == 0.0:
            return own
        if len(shape) < 2:
            raise ValueError(
                f"frame-correlated noise needs a (C, T, ...) shape, got {tuple(shape)}"
            )
        shared = self.randn((shape[0], 1, *shape[2:]), dtype=dtype)
        return (1.0 - rho) ** 0.5 * own + rho**0.5 * shared

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != len(self.generators):
            raise ValueError(
                f"batch of {x.shape[0]} samples but SeededNoise holds {len(self.generators)} seeds"
            )
        return self.randn(x.shape[1:], dtype=x.dtype).to(x.device)
