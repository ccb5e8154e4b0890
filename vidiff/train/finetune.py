"""Fine-tuning: start a run from an exported model (``model.init``), train only part of it
(``train.trainable``).

Route B of video training (Make-A-Video, AnimateDiff, SVD): inflate a pretrained image model
(:mod:`vidiff.models.inflate`), then train only the new temporal layers. Everything else -- spatial
layers and text encoder -- gets ``requires_grad = False``, so the optimiser holds state for the
temporal layers alone and the EMA leaves the rest untouched: it stays bit-identical to the image model.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path

from torch import nn

from vidiff.config import Config, DiffusionConfig, ModelConfig

TRAINABLE = ("all", "temporal", "lora")


def resolve_init(config: Config) -> Config:
    """``config`` with ``model`` and ``diffusion`` taken from ``model.init``'s ``config.json``
    (``diffusion`` keys the run sets differently from their defaults win); unchanged without init."""
    init = config.model.init
    if init is None:
        return config
    path = Path(init) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"model.init {init} is not an exported vidiff model: no config.json"
        )
    if config.model != ModelConfig(init=init):
        changed = [
            f.name
            for f in dataclasses.fields(ModelConfig)
            if getattr(config.model, f.name) != getattr(ModelConfig(init=init), f.name)
        ]
        raise ValueError(
            f"model.init gives the whole model; remove model.{', model.'.join(changed)} from the run"
        )
    from vidiff.pipeline import read_model_config

    stored = read_model_config(init)
    default = DiffusionConfig()
    mine = {
        f.name: getattr(config.diffusion, f.name)
        for f in dataclasses.fields(DiffusionConfig)
        if getattr(config.diffusion, f.name) != getattr(default, f.name)
    }
    model = dataclasses.replace(stored.model, init=init)
    diffusion = dataclasses.replace(stored.diffusion, **mine)
    return dataclasses.replace(config, model=model, diffusion=diffusion)


def init_weights(objective: nn.Module, init: str) -> None:
    """Load ``init``'s ``model.safetensors`` into the objective built from its config (strict)."""
    from safetensors.torch import load_file

    from vidiff.files import WEIGHTS_NAME, load_strict

    path = Path(init) / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"model.init {init} is not an exported vidiff model: no {WEIGHTS_NAME}"
        )
    state = load_file(str(path))
    reference = objective.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    load_strict(objective, state, path)


def trainable_names(objective: nn.Module, spec: str | list[str], arch: str) -> list[str]:
    """Names of the parameters ``spec`` trains (see :class:`~vidiff.config.TrainConfig`)."""
    names = [n for n, _ in objective.named_parameters()]
    if spec == "all":
        return names
    if spec == "temporal":
        from vidiff.models.inflate import is_temporal

        chosen = [n for n in names if is_temporal(arch, n)]
        if not chosen:
            raise ValueError(f"train.trainable=temporal: this {arch} model has no temporal layers")
        return chosen
    if spec == "lora":  # the adapter vidiff.adapters.add_lora_for_run put on the network
        chosen = [n for n in names if ".lora_" in n]
        if not chosen:
            raise ValueError("train.trainable=lora: the model carries no LoRA adapter")
        return chosen
    patterns = [spec] if isinstance(spec, str) else list(spec)
    chosen = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ValueError(
                f"train.trainable pattern {pattern!r} matches no parameter (names look like "
                f"{names[0]!r}); or use one of {TRAINABLE}"
            )
        chosen += [n for n in hits if n not in chosen]
    return chosen


def set_trainable(objective: nn.Module, spec: str | list[str], arch: str) -> int:
    """Freeze every parameter ``spec`` does not train; returns how many stay trainable."""
    if spec == "all":
        return sum(p.requires_grad for p in objective.parameters())
    keep = set(trainable_names(objective, spec, arch))
    for name, p in objective.named_parameters():
        if name not in keep:
            p.requires_grad_(False)
    n = sum(p.requires_grad for p in objective.parameters())
    if n == 0:
        raise ValueError(f"train.trainable={spec!r} leaves no trainable parameter")
    return n


__all__ = ["init_weights", "resolve_init", "set_trainable", "trainable_names"]
