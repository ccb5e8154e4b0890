"""Trainable objectives: what :func:`vidiff.train.loop.train` runs, whatever the model is.

An **objective** is an ``nn.Module`` with

* ``training_loss(video, captions, seeds) -> (B,)`` (required): per-sample losses of a batch of
  ``[0, 1]`` videos, every random draw of sample ``i`` made from ``seeds[i]`` (so a sample's loss never
  depends on its batch, and several processes reproduce one);

and optionally

* ``trainable_parameters() -> list[Parameter]``: what the main optimiser steps (default: every
  parameter with ``requires_grad`` that no extra step owns);
* ``extra_steps() -> list[ExtraStep]``: second players with their own AdamW, stepped after the main
  step on the same micro-batches (a GAN discriminator);
* ``begin_step(step)`` / ``end_step(step)``: named hooks around an optimiser step (gate a loss term
  by step; restart dead codebook entries after the step, before the EMA);
* ``save(directory, *, dtype)``: the slim export that generation (or ``CausalVideoVAE.load``) reads.

Implemented by :class:`vidiff.pipeline.VideoPipeline` (diffusion), the distillation objectives
(:mod:`vidiff.distill`) and :class:`vidiff.train.objectives.autoencoder.VAEObjective` (the causal
VAE with its patch-GAN). :func:`build_objective` maps a config's ``model.arch`` to one; the loop
never names an architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from vidiff.train.objectives.base import (  # noqa: F401 (re-exported)
    ExtraStep,
    Objective,
    call_hook,
    extra_steps,
    trainable_parameters,
)


def build_objective(config: Any) -> nn.Module:
    """The objective a :class:`~vidiff.config.Config` describes: ``model.arch: vae`` trains the causal
    VAE (:class:`~vidiff.train.objectives.autoencoder.VAEObjective`), ``gan`` the video GAN
    (:class:`~vidiff.train.objectives.gan.GANObjective`), ``vqvae`` / ``videogpt`` VideoGPT's two
    stages (:mod:`vidiff.train.objectives.videogpt`); every other arch is a diffusion network inside
    a :class:`~vidiff.pipeline.VideoPipeline`."""
    if config.model.arch == "gan":
        from vidiff.families.gan import GANPipeline
        from vidiff.train.objectives.gan import GANObjective

        return GANObjective(GANPipeline(config.pipeline_config()))
    if config.model.arch in ("vqvae", "videogpt"):
        from vidiff.train.objectives.videogpt import build_videogpt_objective

        return build_videogpt_objective(config)
    if config.model.arch == "vae":
        from vidiff.models.vae import build_vae
        from vidiff.train.objectives.autoencoder import VAEObjective

        return VAEObjective(build_vae(config.model))
    from vidiff.pipeline import VideoPipeline

    return VideoPipeline(config.pipeline_config())


def ema_objective(config: Any, state: dict[str, Any], source: str | Path) -> nn.Module:
    """The objective of a training checkpoint (``state``, read from ``source``) holding its EMA
    weights, for export; a :class:`~vidiff.files.NonFiniteWeightsError` if they are not finite."""
    from vidiff.files import check_finite, load_strict

    weights = state["ema"]["module"]
    check_finite(weights, f"checkpoint {source}")
    objective = run_objective(config, state, training=False)
    load_strict(objective, weights, f"checkpoint {source}")
    return objective


def run_objective(
    config: Any, state: dict[str, Any] | None = None, *, training: bool = True
) -> nn.Module:
    """The objective a run trains, before any checkpoint weights: built from ``config`` (with the
    network a checkpoint ``state`` stored), ``model.init``'s base weights on a fresh run, then the
    LoRA adapter of ``train.trainable: lora`` on top (a checkpoint holds base and adapter weights).
    For ``training``, ``train.keep_above_sigma`` gives it a frozen copy of model.init as its loss
    reference (:func:`vidiff.train.finetune.keep_above`)."""
    from vidiff.adapters import add_lora_for_run
    from vidiff.train.finetune import init_weights, keep_above
    from vidiff.train.settings import with_stored_net

    config = with_stored_net(config, state)
    objective = build_objective(config)
    keep = training and config.train.keep_above_sigma is not None
    if keep and not hasattr(objective, "loss_reference"):  # a diffusion pipeline's training hook
        raise ValueError(
            f"train.keep_above_sigma needs a diffusion model; model.init is {config.model.arch}"
        )
    if state is None and config.model.init is not None:
        init_weights(objective, config.model.init, config)
    add_lora_for_run(objective, config)
    if keep:
        reference = build_objective(config)
        init_weights(reference, config.model.init, config)
        objective.loss_reference = keep_above(reference, config.train.keep_above_sigma)
    return objective
