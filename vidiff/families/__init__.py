"""Model families beside diffusion, and the one loader of an exported model folder.

Every exported model folder holds ``config.json`` (a :class:`~vidiff.config.PipelineConfig`) and
``model.safetensors``. ``model.arch`` names its family:

* ``unet3d`` / ``dit`` -- diffusion, :class:`vidiff.pipeline.VideoPipeline`;
* ``gan`` -- a MoCoGAN-style video GAN, :class:`vidiff.families.gan.GANPipeline`;
* ``videogpt`` -- a VQ-VAE and a causal transformer over its codes,
  :class:`vidiff.families.videogpt.VideoGPTPipeline`.

:func:`load_model` reads the folder and returns the right object (a LoRA adapter folder,
:mod:`vidiff.adapters`: its base model with the adapter applied); all of them offer
``generate(prompts, seeds, ...) -> (B, C, T, H, W)`` in ``[0, 1]`` (a clip depends on its prompt and
seed, never on its batch), ``num_frames``, ``size``, ``config`` and ``save(dir, dtype=)``, so
``vidiff generate``, ``vidiff eval`` and the Python API treat them alike. Options that only mean
something for diffusion (steps, sampler, guidance, noise correlation, known frames) are refused by
the other families with a ``ValueError`` naming the option and the family.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidiff.config import PipelineConfig, load_pipeline_config, to_dict
from vidiff.files import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    export_tensors,
    load_strict,
    model_folder,
    read_json,
    read_weights,
    write_model_folder,
)
from vidiff.pipeline import PipelineBase, VideoPipeline

FAMILIES = {"gan": "vidiff.families.gan:GANPipeline",
            "videogpt": "vidiff.families.videogpt:VideoGPTPipeline"}  # fmt: skip


# generate() keywords only diffusion takes, and how a user sets each (the other families refuse them).
DIFFUSION_OPTIONS = {"steps": "--steps", "sampler": "--sampler", "cfg": "--cfg",
                     "noise_correlation": "--noise-correlation", "known_frames": "--first-frame",
                     "frame_mask": "frame_mask", "cond": "cond"}  # fmt: skip


def family_of(arch: str) -> str:
    """``diffusion``, ``gan`` or ``videogpt``."""
    return arch if arch in FAMILIES else "diffusion"


def _family_class(arch: str) -> type:
    import importlib

    module, name = FAMILIES[arch].split(":")
    return getattr(importlib.import_module(module), name)


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model of an exported folder, whatever its family (see the module docstring)."""
    directory = Path(directory)
    from vidiff.adapters import is_adapter, load_adapted

    if is_adapter(directory) and not (directory / CONFIG_NAME).is_file():  # its base + the adapter
        return load_adapted(directory, device=device)
    if not (directory / CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"{directory} is not an exported vidiff model: missing {CONFIG_NAME}"
        )
    meta = read_json(directory / CONFIG_NAME)
    arch = meta.get("model", {}).get("arch") if isinstance(meta, dict) else None
    if arch in FAMILIES:
        return _family_class(arch).load(directory, device=device)
    return VideoPipeline.load(directory, device=device)


class FamilyPipeline(PipelineBase):
    """Shared part of the non-diffusion families: the config, the caption tokenizer (the built-in
    vocabulary of ``model.text``), refusal of diffusion-only options, per-batch generation, and the
    folder format. Subclasses build their networks and implement ``_generate_batch(prompts,
    generators, **options) -> (B, C, T, H, W)`` in ``[0, 1]``, drawing sample ``i``'s randomness from
    ``generators[i]`` (seeded by its seed, :func:`seed_generators`)."""

    family = "?"
    baked_cfg = None  # no classifier-free guidance to report
    sampling_options: tuple[str, ...] = ()  # the family's own generate() keywords

    def __init__(self, config: PipelineConfig):
        super().__init__()
        from vidiff.models.text import WordTokenizer

        self.config = config
        mc = config.model
        vocab = mc.text.get("vocab") if mc.text_encoder == "builtin" else None
        if not vocab:
            raise ValueError(
                f"a {self.family} model reads captions with the built-in word vocabulary: set "
                "model.text_encoder: builtin (training fills model.text.vocab from the data)"
            )
        self.tokenizer = WordTokenizer(vocab, mc.text.get("max_length", 32))

    def tokens(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids ``(B, max_length)`` and their mask, on the model's device."""
        ids, mask = self.tokenizer(list(captions))
        return ids.to(self.device), mask.to(self.device)

    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        batch_size: int = 16,
        callback: Any = None,
        **options: Any,
    ) -> torch.Tensor:
        """One video per (prompt, seed): ``(B, C, T, H, W)`` in ``[0, 1]``. ``options`` are the
        family's own (``sampling_options``, e.g. VideoGPT's ``temperature``); the diffusion-only
        keywords of :meth:`VideoPipeline.generate <vidiff.pipeline.VideoPipeline.generate>`
        (:data:`DIFFUSION_OPTIONS`) are accepted only as ``None``, so callers pass one set."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        for key, flag in DIFFUSION_OPTIONS.items():
            if options.pop(key, None) is not None:
                raise ValueError(
                    f"{flag} is a diffusion option; this is a {self.family} model "
                    f"(model.arch={self.config.model.arch!r}), which takes none"
                )
        for key in options:
            if key not in self.sampling_options:
                flag = "--" + key.replace("_", "-")
                accepted = ", ".join(self.sampling_options) or "none"
                raise ValueError(
                    f"{flag} is not an option of a {self.family} model (its own: {accepted})"
                )
        self.tokenizer(list(prompts))  # an unknown word fails here, before any work
        out = []
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                sl = slice(start, start + batch_size)
                out.append(
                    self._generate_batch(list(prompts[sl]), seed_generators(seeds[sl]), **options)
                )
        return torch.cat(out).float().clamp(0, 1)

    def _generate_batch(
        self, prompts: list[str], generators: list[torch.Generator], **options
    ) -> torch.Tensor:
        raise NotImplementedError

    # ---- files ---------------------------------------------------------------------------------
    def export_config(self) -> dict:
        """``config.json``: the pipeline config with the complete network config (no preset)."""
        config = to_dict(self.config)
        config["model"]["preset"] = None
        config["model"]["net"] = json.loads(json.dumps(self.net_config()))
        return config

    def net_config(self) -> dict:
        raise NotImplementedError

    def save(self, directory: str | Path, *, dtype: torch.dtype = torch.float32) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (this module's weights at ``dtype``)."""
        tensors = export_tensors(self.state_dict(), dtype)
        return write_model_folder(directory, tensors, self.export_config(), {"format": "pt"})

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> FamilyPipeline:
        """Read a folder written by :meth:`save` (weights as float32, checked finite)."""
        directory = model_folder(directory)
        pipe = cls(load_pipeline_config(directory / CONFIG_NAME))
        state = read_weights(directory)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        load_strict(pipe, state, directory / WEIGHTS_NAME)
        return pipe.to(device).eval()


def seed_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per sample."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


__all__ = ["FAMILIES", "FamilyPipeline", "family_of", "load_model", "seed_generators"]
