"""vidiff: a PyTorch toolkit for diffusion-based video generation.

Import stays light: subpackages are imported where they are used, never here.

Conventions shared by the whole toolkit (see docs/architecture.md):
  * a video is a float32 tensor ``(C, T, H, W)`` with values in ``[0, 1]``; a batch is ``(B, C, T, H, W)``;
  * models see ``[-1, 1]`` (``x * 2 - 1``), the pipeline converts at the boundary;
  * every diffusion model is used through one denoiser ``D(x, sigma, **cond) -> x0_hat``
    with ``x = x0 + sigma * eps``.
"""

__version__ = "0.1.0"
