"""Model families beside diffusion, and the one loader of an exported model folder.

Every exported model folder holds ``config.json`` (a :class:`~vidiff.config.PipelineConfig`) and
``model.safetensors``. ``model.arch`` names its family:

* ``unet3d`` / ``dit`` -- diffusion, :class:`vidiff.pipeline.VideoPipeline`;
* ``gan`` -- a MoCoGAN-style video GAN, :class:`vidiff.families.gan.GANPipeline`;
* ``videogpt`` -- a VQ-VAE and a causal transformer over its codes,
  :class:`vidiff.families.videogpt.VideoGPTPipeline`.

:func:`load_model` reads the folder and returns the right object (a LoRA adapter folder,
:mod:`vidiff.train.lora`: its base model with the adapter applied); all of them offer
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

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FAMILIES = {"gan": "vidiff.families.gan:GANPipeline",
            "videogpt": "vidiff.families.videogpt:VideoGPTPipeline"}  # fmt: skip


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
    from vidiff.train.lora import is_adapter, load_adapted

    if is_adapter(directory) and not (directory / CONFIG_NAME).is_file():  # its base + the adapter
        return load_adapted(directory, device=device)
    if not (directory / CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"{directory} is not an exported vidiff model: missing {CONFIG_NAME}"
        )
    from vidiff.files import read_json

    meta = read_json(directory / CONFIG_NAME)
    arch = meta.get("model", {}).get("arch") if isinstance(meta, dict) else None
    if arch in FAMILIES:
        return _family_class(arch).load(directory, device=device)
    from vidiff.pipeline import VideoPipeline

    return VideoPipeline.load(directory, device=device)


class FamilyPipeline(nn.Module):
    """Shared part of the non-diffusion families: the config, the caption tokenizer (the built-in
    vocabulary of ``model.text``), refusal of diffusion-only options, per-batch generation, and the
    folder format. Subclasses build their networks and implement ``_generate_batch(prompts, seeds,
    **options) -> (B, C, T, H, W)`` in ``[0, 1]``."""

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

    @property
    def num_frames(self) -> int:
        return self.config.video.num_frames

    @property
    def size(self) -> int:
        return self.config.video.size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokens(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids ``(B, max_length)`` and their mask, on the model's device."""
        ids, mask = self.tokenizer(list(captions))
        return ids.to(self.device), mask.to(self.device)

    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int | None = None,
        sampler: str | None = None,
        cfg: float | None = None,
        noise_correlation: float | None = None,
        known_frames: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        cond: dict | None = None,
        batch_size: int = 16,
        callback: Any = None,
        **options: Any,
    ) -> torch.Tensor:
        """One video per (prompt, seed): ``(B, C, T, H, W)`` in ``[0, 1]``. The diffusion-only
        options (``steps``, ``sampler``, ``cfg``, ``noise_correlation``, known frames, ``cond``)
        must be ``None``; ``options`` are the family's own (e.g. VideoGPT's ``temperature``)."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        given = {"--steps": steps, "--sampler": sampler, "--cfg": cfg,
                 "--noise-correlation": noise_correlation, "--first-frame": known_frames,
                 "frame_mask": frame_mask, "cond": cond}  # fmt: skip
        for flag, value in given.items():
            if value is not None:
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
                out.append(self._generate_batch(list(prompts[sl]), list(seeds[sl]), **options))
        return torch.cat(out).float().clamp(0, 1)

    def _generate_batch(self, prompts: list[str], seeds: list[int], **options) -> torch.Tensor:
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
        from vidiff.files import save_safetensors

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {
            k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous().clone()
            for k, v in self.state_dict().items()
        }
        save_safetensors(tensors, directory / WEIGHTS_NAME, metadata={"format": "pt"})
        text = json.dumps(self.export_config(), indent=2)
        (directory / CONFIG_NAME).write_text(text + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> FamilyPipeline:
        """Read a folder written by :meth:`save` (weights as float32, checked finite)."""
        from vidiff.files import check_finite, load_safetensors, load_strict

        directory = Path(directory)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise FileNotFoundError(
                    f"{directory} is not an exported vidiff model: missing {name}"
                )
        pipe = cls(load_pipeline_config(directory / CONFIG_NAME))
        state = load_safetensors(directory / WEIGHTS_NAME)
        check_finite(state, directory / WEIGHTS_NAME)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        load_strict(pipe, state, directory / WEIGHTS_NAME)
        return pipe.to(device).eval()


def seed_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per sample."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


__all__ = ["FAMILIES", "FamilyPipeline", "family_of", "load_model", "seed_generators"]
