"""Model architectures, one per file, built by name: ``build_model(arch, preset, **overrides)``.

``arch`` is ``"unet3d"`` (factorized space-time U-Net, :mod:`vidiff.models.unet3d`), ``"dit"``
(spatio-temporal diffusion transformer, :mod:`vidiff.models.dit`) or ``"sd_unet"`` (Stable-Diffusion-
layout U-Net with AnimateDiff motion modules, :mod:`vidiff.models.sd_unet`); a new
architecture adds one line to :data:`ARCHITECTURES`. Imports are lazy so ``import vidiff.models``
stays light.
"""

from __future__ import annotations

import importlib

from torch import nn

from vidiff.config import check_fields, preset_config

# arch -> (module, config class, model class, presets dict)
ARCHITECTURES: dict[str, tuple[str, str, str, str]] = {
    "unet3d": ("vidiff.models.unet3d", "UNet3DConfig", "UNet3D", "UNET_PRESETS"),
    "dit": ("vidiff.models.dit", "DiTConfig", "VideoDiT", "DIT_PRESETS"),
    "sd_unet": ("vidiff.models.sd_unet", "SDUNetConfig", "SDUNet", "SD_UNET_PRESETS"),
}


def _arch(arch: str):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
    mod_name, cfg_name, model_name, presets_name = ARCHITECTURES[arch]
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name == mod_name:
            raise ValueError(
                f"architecture {arch!r} is not available ({mod_name} is missing)"
            ) from e
        raise
    return getattr(mod, cfg_name), getattr(mod, model_name), getattr(mod, presets_name)


def build_config(arch: str, preset: str, **overrides):
    """The preset's config dataclass with ``overrides`` applied (unknown names: ValueError)."""
    cfg_cls, _, presets = _arch(arch)
    return preset_config(cfg_cls, presets, preset, arch, **overrides)


def build_model(arch: str, preset: str, **overrides) -> nn.Module:
    """Build ``arch`` from a named preset, e.g. ``build_model("unet3d", "unet-tiny", context_dim=64)``.

    The model's ``config`` attribute holds the dataclass (save ``dataclasses.asdict(model.config)``).
    """
    _, model_cls, _ = _arch(arch)
    return model_cls(build_config(arch, preset, **overrides))


def config_from_dict(cfg_cls, config: dict):
    """``cfg_cls(**config)`` for a plain dict (config.json / YAML); unknown keys are a ValueError
    naming them and the valid ones."""
    check_fields(config, cfg_cls, cfg_cls.__name__)
    return cfg_cls(**config)


def build_model_from_config(arch: str, config: dict) -> nn.Module:
    """Rebuild a model from a saved config dict (e.g. a checkpoint's config.json); unknown keys
    are a ValueError naming them."""
    cfg_cls, model_cls, _ = _arch(arch)
    return model_cls(config_from_dict(cfg_cls, config))


__all__ = [
    "ARCHITECTURES",
    "build_config",
    "build_model",
    "build_model_from_config",
    "config_from_dict",
]
