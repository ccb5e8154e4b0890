"""The video GAN's training objective: hinge losses, R1 on real clips, two discriminators.

The generator step (the trainer's main optimiser) minimises ``-(w_img mean_t D_img + D_vid)`` of its
fakes -- the hinge generator loss (Lim & Ye, 2017) -- with the discriminators' weights detached, so
its backward leaves no gradient on them. The discriminators are one *extra step*
(:class:`vidiff.train.objectives.ExtraStep`, own AdamW at ``train.lr * disc_lr_mult``) minimising
``relu(1 - D(real)) + relu(1 + D(fake))`` for both critics plus the R1 penalty ``gamma / 2 *
|grad_x D(real)|^2`` (Mescheder et al., 2018, "Which training methods for GANs do actually
converge?"), which keeps the critic flat on the data and the game from oscillating. Each critic is
spectrally normalised (:mod:`vidiff.models.gan`). With ``mismatch_weight`` the critics are also
*matching-aware* (Reed et al., 2016, "Generative adversarial text to image synthesis"): a real clip
paired with the next clip's caption (where the two captions differ) is one more negative,
``mismatch_weight * relu(1 + D(real, wrong caption))``, so the critics cannot ignore the caption
and the generator is pushed towards the prompt, not just towards plausible clips.

Every random draw of sample ``i`` (content code, motion noise) comes from ``seeds[i]``, so the
trainer's resume is exact. State-dict keys: ``pipe.generator.*`` (what ``vidiff export`` writes, as
``generator.*``), ``image_disc.*``, ``video_disc.*``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidiff.families import seed_generators
from vidiff.families.gan import GANPipeline
from vidiff.models.gan import GANConfig, ImageDiscriminator, VideoDiscriminator
from vidiff.train.objectives.base import ExtraStep


class GANObjective(nn.Module):
    """A :class:`GANPipeline` (the generator side) and its two spectrally normalised critics."""

    def __init__(self, pipe: GANPipeline):
        super().__init__()
        self.pipe = pipe
        cfg = pipe.generator.config
        self.image_disc = ImageDiscriminator(cfg)
        self.video_disc = VideoDiscriminator(cfg)

    @property
    def config(self) -> GANConfig:
        return self.pipe.generator.config

    @property
    def net(self) -> nn.Module:
        """The generator: its config is the run's network config (kept in checkpoints)."""
        return self.pipe.generator

    # ---- the trainer's objective protocol ------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.pipe.parameters())

    def extra_steps(self) -> list[ExtraStep]:
        params = list(self.image_disc.parameters()) + list(self.video_disc.parameters())
        return [ExtraStep("d", params, self.discriminator_loss, self.config.disc_lr_mult)]

    def save(self, directory: str | Path, *, dtype: torch.dtype = torch.float32) -> Path:
        """The export: the generator and its tokenizer (:meth:`GANPipeline.save`)."""
        return self.pipe.save(directory, dtype=dtype)

    def generate(self, prompts: list[str], seeds: list[int], **kwargs) -> torch.Tensor:
        """Sample clips (``train.sample_every`` sheets read the EMA objective this way)."""
        return self.pipe.generate(prompts, seeds, **kwargs)

    # ---- losses --------------------------------------------------------------------------------
    def critics(
        self, x: torch.Tensor, captions: list[str], detach: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image logits ``(B, T)`` and video logits ``(B,)`` of model-space clips; ``detach`` uses
        the critics' weights without letting gradients reach them."""
        ids, mask = self.pipe.tokens(captions)
        out = []
        for disc in (self.image_disc, self.video_disc):
            if detach:
                params = {n: p.detach() for n, p in disc.named_parameters()}
                out.append(torch.func.functional_call(disc, params, (x, ids, mask)))
            else:
                out.append(disc(x, ids, mask))
        return out[0], out[1]

    def _critic_score(self, image: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.config.image_weight * image.mean(dim=1) + video  # (B,)

    def training_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int]
    ) -> torch.Tensor:
        """The generator's hinge loss per sample ``(B,)`` (``video`` only sets the batch size)."""
        fake = self.pipe.fake(captions, seed_generators(seeds))
        return -self._critic_score(*self.critics(fake, captions, detach=True))

    def discriminator_loss(
        self, video: torch.Tensor, captions: list[str], seeds: list[int]
    ) -> torch.Tensor:
        """Both critics' hinge losses plus R1 on the real clips, per sample ``(B,)``. Fakes come from
        the current generator (after its step) with the same seeds, without gradients."""
        with torch.no_grad():
            fake = self.pipe.fake(captions, seed_generators(seeds))
        real = (video * 2 - 1).detach().requires_grad_(self.config.r1_gamma > 0)
        r_img, r_vid = self.critics(real, captions)
        f_img, f_vid = self.critics(fake, captions)
        # both critics' hinge, weighted as their scores: relu(1 - D) real, relu(1 + D) fake
        hinge = lambda img, vid, sign: self._critic_score(F.relu(1 + sign * img),
                                                          F.relu(1 + sign * vid))  # fmt: skip
        loss = hinge(r_img, r_vid, -1) + hinge(f_img, f_vid, 1)
        if self.config.r1_gamma > 0:
            loss = loss + self.config.r1_gamma / 2 * r1_penalty(
                self._critic_score(r_img, r_vid), real
            )
        if self.config.mismatch_weight > 0 and len(captions) > 1:
            wrong = captions[1:] + captions[:1]
            differs = torch.tensor([a != b for a, b in zip(captions, wrong)], device=loss.device)
            mismatch = hinge(*self.critics(real.detach(), wrong), 1)
            loss = loss + self.config.mismatch_weight * mismatch * differs
        return loss


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``|grad_x D(x)|^2`` per sample ``(B,)`` at the real inputs ``real`` (which require grad);
    the graph is kept so the penalty trains the critic (double backprop)."""
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1)
