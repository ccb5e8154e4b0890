"""Distillation: fewer sampling steps and one forward pass per step.

* :class:`ProgressiveDistillation` (Salimans & Ho 2022): a student learns one DDIM step from two of its
  teacher's; rounds halve the step count (64 -> 32 -> 16 -> 8 ...).
* :class:`GuidanceDistillation` (Meng et al. 2023, stage 1): a guidance-embedded student matches the
  classifier-free-guided teacher in one forward pass, for any weight ``w`` in a range.
* ``vidiff distill`` (:func:`vidiff.commands.distill.distill`, rounds planned by
  :mod:`vidiff.distill.rounds`) chains them, each round a resumable
  training run on :func:`vidiff.train.loop.train`, exported as a model folder.

Both objectives work through the denoiser contract only, so they serve every network (U-Net, DiT),
pixel or latent space, with frame conditioning.

Guidance-embedding contract (every architecture): the network config has ``guidance_embed: bool``
(default False); when True the network declares and requires the cond key ``guidance`` (a
``vector`` :class:`~vidiff.nn.conditioning.CondSpec`) -- a float ``(B,)`` tensor,
the classifier-free-guidance weight ``w`` in :func:`~vidiff.diffusion.guidance.cfg_denoiser`'s
convention (``w = 1`` is the conditional model) -- embeds ``1000 * w`` (as flux-dev) with the sinusoidal timestep
embedding + MLP whose last layer is zero-initialised, and adds it to the noise embedding; when False,
passing ``guidance`` is a ValueError. :class:`~vidiff.pipeline.VideoPipeline` passes ``guidance = cfg``
instead of running CFG when the network declares ``guidance``.

Metadata of exported students, ``config.json`` ``diffusion``: ``steps`` (the student's step count),
``sampler: "ddim"`` and ``distilled``:

* ``method``: ``"progressive"`` or ``"guidance"``; ``teacher_steps``, ``steps``; ``train_steps``;
* ``guidance``: ``"baked"`` (CFG at ``cfg`` is in the weights; ``diffusion.cfg`` is 1 and the pipeline
  refuses another cfg), ``"embedded"`` (``guidance_range`` [w_min, w_max] was trained; ``diffusion.cfg``
  = the default ``w``) or ``"none"`` (unguided teacher; CFG is applied to the student at sampling);
* ``cfg``: the guidance weight of the teacher (baked) or the default ``w`` (embedded);
* ``data``: the data section it was distilled on (so it can be the teacher of a later run);
* ``history``: the same records of the earlier rounds, oldest first.
"""

from vidiff.distill.guidance import GuidanceDistillation
from vidiff.distill.objective import Distillation, loss_weight
from vidiff.distill.progressive import ProgressiveDistillation, nested_grids

__all__ = [
    "Distillation",
    "GuidanceDistillation",
    "ProgressiveDistillation",
    "loss_weight",
    "nested_grids",
]
